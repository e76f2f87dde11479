/*
 * hooks.c - the libc socket calls we interpose, and nothing else.
 *
 * Every hook calls the real function first and returns exactly what it
 * returned, with errno as it left it (the tap_* calls save and restore
 * errno). Only bytes the app really moved (return value > 0) are reported,
 * and only for fds in the table; for any other fd a hook costs one
 * relaxed load of the table.
 */
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "preload/real.h"
#include "preload/tap.h"

#define HT_EXPORT __attribute__((visibility("default")))

/* ---- helpers shared by the hooks ---- */

static inline void accepted(int fd, struct sockaddr *addr, socklen_t *len, socklen_t cap)
{
    if (fd < 0 || !ht_fdtab_size)
        return;
    socklen_t got = len ? *len : 0;
    ht_tap_accepted(fd, addr, got < cap ? got : cap);
}

static inline ssize_t received(int fd, ssize_t r, void *buf, size_t want)
{
    if (__builtin_expect(ht_tracked(fd), 0)) {
        if (r > 0) {
            struct iovec v = { buf, (size_t)r };
            ht_tap_data(fd, HT_REQ, &v, 1, (size_t)r);
        } else if (r == 0 && want > 0) {
            ht_tap_eof(fd, HT_REQ);
        }
    }
    return r;
}

static inline ssize_t received_flags(int fd, ssize_t r, void *buf, size_t want, int flags)
{
    if (flags & MSG_PEEK)
        return r;                   /* the bytes will be read again */
    if ((flags & MSG_TRUNC) && r > 0 && ht_tracked(fd)) {
        ht_tap_lost(fd, HT_REQ);    /* discarded by the kernel, never seen */
        return r;
    }
    return received(fd, r, buf, want);
}

static inline size_t iov_total(const struct iovec *iov, int n)
{
    size_t t = 0;
    for (int i = 0; i < n; i++)
        t += iov[i].iov_len;
    return t;
}

static inline ssize_t received_iov(int fd, ssize_t r, const struct iovec *iov, int n)
{
    if (__builtin_expect(ht_tracked(fd), 0)) {
        if (r > 0)
            ht_tap_data(fd, HT_REQ, iov, n, (size_t)r);
        else if (r == 0 && iov_total(iov, n) > 0)
            ht_tap_eof(fd, HT_REQ);
    }
    return r;
}

static inline ssize_t sent(int fd, ssize_t r, const void *buf)
{
    if (r > 0 && __builtin_expect(ht_tracked(fd), 0)) {
        struct iovec v = { (void *)buf, (size_t)r };
        ht_tap_data(fd, HT_RESP, &v, 1, (size_t)r);
    }
    return r;
}

static inline ssize_t sent_iov(int fd, ssize_t r, const struct iovec *iov, int n)
{
    if (r > 0 && __builtin_expect(ht_tracked(fd), 0))
        ht_tap_data(fd, HT_RESP, iov, n, (size_t)r);
    return r;
}

/* ---- accepting ---- */

HT_EXPORT int accept(int s, struct sockaddr *addr, socklen_t *len)
{
    socklen_t cap = addr && len ? *len : 0;
    int fd = REAL(accept)(s, addr, len);
    accepted(fd, addr, len, cap);
    return fd;
}

HT_EXPORT int accept4(int s, struct sockaddr *addr, socklen_t *len, int flags)
{
    socklen_t cap = addr && len ? *len : 0;
    int fd = REAL(accept4)(s, addr, len, flags);
    accepted(fd, addr, len, cap);
    return fd;
}

/* ---- receiving ---- */

HT_EXPORT ssize_t read(int fd, void *buf, size_t n)
{
    return received(fd, REAL(read)(fd, buf, n), buf, n);
}

HT_EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
    return received(fd, REAL(read_chk)(fd, buf, n, buflen), buf, n);
}

HT_EXPORT ssize_t readv(int fd, const struct iovec *iov, int n)
{
    return received_iov(fd, REAL(readv)(fd, iov, n), iov, n);
}

HT_EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags)
{
    return received_flags(fd, REAL(recv)(fd, buf, n, flags), buf, n, flags);
}

HT_EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
    return received_flags(fd, REAL(recv_chk)(fd, buf, n, buflen, flags), buf, n, flags);
}

HT_EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags,
                           struct sockaddr *addr, socklen_t *alen)
{
    return received_flags(fd, REAL(recvfrom)(fd, buf, n, flags, addr, alen), buf, n, flags);
}

HT_EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
                                 struct sockaddr *addr, socklen_t *alen)
{
    return received_flags(fd, REAL(recvfrom_chk)(fd, buf, n, buflen, flags, addr, alen),
                          buf, n, flags);
}

HT_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    ssize_t r = REAL(recvmsg)(fd, msg, flags);
    if (flags & MSG_PEEK)
        return r;
    if ((flags & MSG_TRUNC) && r > 0 && ht_tracked(fd)) {
        ht_tap_lost(fd, HT_REQ);
        return r;
    }
    return received_iov(fd, r, msg->msg_iov, (int)msg->msg_iovlen);
}

/* ---- sending ---- */

HT_EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
    return sent(fd, REAL(write)(fd, buf, n), buf);
}

HT_EXPORT ssize_t writev(int fd, const struct iovec *iov, int n)
{
    return sent_iov(fd, REAL(writev)(fd, iov, n), iov, n);
}

HT_EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags)
{
    return sent(fd, REAL(send)(fd, buf, n, flags), buf);
}

HT_EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags,
                         const struct sockaddr *addr, socklen_t alen)
{
    return sent(fd, REAL(sendto)(fd, buf, n, flags, addr, alen), buf);
}

HT_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    return sent_iov(fd, REAL(sendmsg)(fd, msg, flags), msg->msg_iov, (int)msg->msg_iovlen);
}

/* ---- ending ---- */

HT_EXPORT int shutdown(int fd, int how)
{
    int r = REAL(shutdown)(fd, how);
    if (r == 0 && (how == SHUT_WR || how == SHUT_RDWR) && ht_tracked(fd))
        ht_tap_eof(fd, HT_RESP);
    return r;
}

HT_EXPORT int close(int fd)
{
    struct ht_tconn *t = ht_tracked(fd) ? ht_tap_detach(fd) : NULL;
    int r = REAL(close)(fd);
    if (t)
        ht_tap_finish(t);
    return r;
}
