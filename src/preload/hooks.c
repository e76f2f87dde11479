/*
 * hooks.c - the libc socket calls we interpose, and nothing else.
 *
 * Every hook calls the real function first and returns exactly what it
 * returned, with errno as it left it (the tap_* calls save and restore
 * errno). Only bytes the app really moved (return value > 0) are reported,
 * and only for fds in the table; for any other fd a hook costs one
 * relaxed load of the table.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include <linux/close_range.h>

#include "preload/real.h"
#include "preload/tap.h"

#define HT_EXPORT __attribute__((visibility("default")))

/* ---- helpers shared by the hooks ---- */

/* The app's address buffer is not ours to read: before the call its
 * length may be a bad pointer (the kernel's EFAULT, not our crash), and
 * after it *len is the full address length, which may exceed what the
 * buffer holds. The tap asks the kernel for the peer itself. */
static inline void accepted(int fd)
{
    if (fd < 0 || !ht_fdtab_size)
        return;
    ht_tap_accepted(fd, NULL, 0);
}

/* tok: what fd named when the call began (ht_tap_token, taken before the
 * real call): bytes go to a connection only if fd still names it. */
static inline ssize_t received(int fd, uint64_t tok, ssize_t r, void *buf, size_t want)
{
    if (__builtin_expect(ht_tracked(fd), 0) && r >= 0 && (r > 0 || want > 0) &&
        ht_tap_same(fd, tok, HT_REQ, (uint64_t)r)) {
        if (r > 0) {
            struct iovec v = { buf, (size_t)r };
            ht_tap_data(fd, HT_REQ, &v, 1, (size_t)r);
        } else {
            ht_tap_eof(fd, HT_REQ);
        }
    }
    return r;
}

/* recv flags that keep the bytes from us: MSG_PEEK (they will be read
 * again), MSG_ERRQUEUE (the socket's error queue, not the stream) and
 * MSG_TRUNC on a stream (discarded by the kernel, never seen: a capture
 * gap). True when the bytes must not be fed. */
static inline bool not_fed(int fd, uint64_t tok, ssize_t r, int flags)
{
    if (flags & (MSG_PEEK | MSG_ERRQUEUE))
        return true;
    if ((flags & MSG_TRUNC) && r > 0 && ht_tracked(fd)) {
        if (ht_tap_same(fd, tok, HT_REQ, (uint64_t)r))
            ht_tap_lost(fd, HT_REQ, (uint64_t)r);
        return true;
    }
    return false;
}

static inline ssize_t received_flags(int fd, uint64_t tok, ssize_t r, void *buf, size_t want,
                                     int flags)
{
    return not_fed(fd, tok, r, flags) ? r : received(fd, tok, r, buf, want);
}

static inline size_t iov_total(const struct iovec *iov, int n)
{
    size_t t = 0;
    for (int i = 0; i < n; i++)
        t += iov[i].iov_len;
    return t;
}

static inline ssize_t received_iov(int fd, uint64_t tok, ssize_t r, const struct iovec *iov, int n)
{
    if (__builtin_expect(ht_tracked(fd), 0) && r >= 0 && (r > 0 || iov_total(iov, n) > 0) &&
        ht_tap_same(fd, tok, HT_REQ, (uint64_t)r)) {
        if (r > 0)
            ht_tap_data(fd, HT_REQ, iov, n, (size_t)r);
        else
            ht_tap_eof(fd, HT_REQ);
    }
    return r;
}

static inline ssize_t sent(int fd, uint64_t tok, ssize_t r, const void *buf)
{
    if (r > 0 && __builtin_expect(ht_tracked(fd), 0) && ht_tap_same(fd, tok, HT_RESP, (uint64_t)r)) {
        struct iovec v = { (void *)buf, (size_t)r };
        ht_tap_data(fd, HT_RESP, &v, 1, (size_t)r);
    }
    return r;
}

static inline ssize_t sent_iov(int fd, uint64_t tok, ssize_t r, const struct iovec *iov, int n)
{
    if (r > 0 && __builtin_expect(ht_tracked(fd), 0) && ht_tap_same(fd, tok, HT_RESP, (uint64_t)r))
        ht_tap_data(fd, HT_RESP, iov, n, (size_t)r);
    return r;
}

/* ---- accepting ---- */

HT_EXPORT int accept(int s, struct sockaddr *addr, socklen_t *len)
{
    int fd = REAL(accept)(s, addr, len);
    accepted(fd);
    return fd;
}

HT_EXPORT int accept4(int s, struct sockaddr *addr, socklen_t *len, int flags)
{
    int fd = REAL(accept4)(s, addr, len, flags);
    accepted(fd);
    return fd;
}

/* ---- receiving ---- */

HT_EXPORT ssize_t read(int fd, void *buf, size_t n)
{
    uint64_t tok = ht_tap_token(fd);
    return received(fd, tok, REAL(read)(fd, buf, n), buf, n);
}

HT_EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
    uint64_t tok = ht_tap_token(fd);
    return received(fd, tok, REAL(read_chk)(fd, buf, n, buflen), buf, n);
}

HT_EXPORT ssize_t readv(int fd, const struct iovec *iov, int n)
{
    uint64_t tok = ht_tap_token(fd);
    return received_iov(fd, tok, REAL(readv)(fd, iov, n), iov, n);
}

HT_EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags)
{
    uint64_t tok = ht_tap_token(fd);
    return received_flags(fd, tok, REAL(recv)(fd, buf, n, flags), buf, n, flags);
}

HT_EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
    uint64_t tok = ht_tap_token(fd);
    return received_flags(fd, tok, REAL(recv_chk)(fd, buf, n, buflen, flags), buf, n, flags);
}

HT_EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags,
                           struct sockaddr *addr, socklen_t *alen)
{
    uint64_t tok = ht_tap_token(fd);
    return received_flags(fd, tok, REAL(recvfrom)(fd, buf, n, flags, addr, alen), buf, n,
                          flags);
}

HT_EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
                                 struct sockaddr *addr, socklen_t *alen)
{
    uint64_t tok = ht_tap_token(fd);
    return received_flags(fd, tok, REAL(recvfrom_chk)(fd, buf, n, buflen, flags, addr, alen),
                          buf, n, flags);
}

/* Connections handed over by another process (node's cluster module, a
 * process accepting for a pool of workers) arrive as SCM_RIGHTS: a TCP
 * socket received connected is tracked as if accepted here. Unix-domain
 * sockets received this way are servers' own channels, not HTTP. */
static void received_fds(const struct msghdr *msg)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR((struct msghdr *)msg); c;
         c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const int *fds = (const int *)CMSG_DATA(c);
        for (size_t i = 0; i < n; i++)
            ht_tap_received(fds[i]);
    }
}

/* After a successful recvmsg the kernel has read *msg and its iovec
 * array and written msg_controllen (what it stored there): only then is
 * any of it looked at. */
static ssize_t received_msg(int fd, uint64_t tok, ssize_t r, struct msghdr *msg, int flags)
{
    if (r < 0)
        return r;
    if (ht_fdtab_size && msg->msg_controllen > 0)
        received_fds(msg);
    return not_fed(fd, tok, r, flags) ? r
                                      : received_iov(fd, tok, r, msg->msg_iov, (int)msg->msg_iovlen);
}

HT_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    uint64_t tok = ht_tap_token(fd);
    return received_msg(fd, tok, REAL(recvmsg)(fd, msg, flags), msg, flags);
}

/* Only the r messages the kernel reported, msg_len bytes each. */
HT_EXPORT int recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags,
                       struct timespec *timeout)
{
    uint64_t tok = ht_tap_token(fd);
    int r = REAL(recvmmsg)(fd, vec, vlen, flags, timeout);
    if (r > 0 && ht_fdtab_size) {
        int saved = errno;
        for (int i = 0; i < r; i++)
            received_msg(fd, tok, (ssize_t)vec[i].msg_len, &vec[i].msg_hdr, flags);
        errno = saved;
    }
    return r;
}

/* ---- sending ---- */

HT_EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
    uint64_t tok = ht_tap_token(fd);
    return sent(fd, tok, REAL(write)(fd, buf, n), buf);
}

HT_EXPORT ssize_t writev(int fd, const struct iovec *iov, int n)
{
    uint64_t tok = ht_tap_token(fd);
    return sent_iov(fd, tok, REAL(writev)(fd, iov, n), iov, n);
}

HT_EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags)
{
    uint64_t tok = ht_tap_token(fd);
    return sent(fd, tok, REAL(send)(fd, buf, n, flags), buf);
}

HT_EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags,
                         const struct sockaddr *addr, socklen_t alen)
{
    uint64_t tok = ht_tap_token(fd);
    return sent(fd, tok, REAL(sendto)(fd, buf, n, flags, addr, alen), buf);
}

/* msg is read only after the kernel accepted it (r > 0). */
HT_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    uint64_t tok = ht_tap_token(fd);
    ssize_t r = REAL(sendmsg)(fd, msg, flags);
    return r > 0 ? sent_iov(fd, tok, r, msg->msg_iov, (int)msg->msg_iovlen) : r;
}

HT_EXPORT int sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags)
{
    uint64_t tok = ht_tap_token(fd);
    int r = REAL(sendmmsg)(fd, vec, vlen, flags);
    if (r > 0 && __builtin_expect(ht_tracked(fd), 0))
        for (int i = 0; i < r; i++)
            sent_iov(fd, tok, (ssize_t)vec[i].msg_len, vec[i].msg_hdr.msg_iov,
                     (int)vec[i].msg_hdr.msg_iovlen);
    return r;
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
    struct ht_tconn *t = ht_tracked(fd) && !ht_tap_foreign_process() ? ht_tap_detach(fd) : NULL;
    int r = REAL(close)(fd);
    if (t)
        ht_tap_finish(t);
    return r;
}

/* ---- bytes that bypass our buffers ---- */

/* *offset is read only after a successful call (the kernel wrote it: the
 * end of the range it sent); before the call it may be a bad pointer. */
static ssize_t sent_file(int out_fd, uint64_t tok, int in_fd, const off_t *offset, ssize_t r)
{
    if (r > 0 && ht_tracked(out_fd) && ht_tap_same(out_fd, tok, HT_RESP, (uint64_t)r)) {
        int saved = errno;
        /* Without an offset argument sendfile used (and moved) the file's
         * own offset: either way the range ends where it points now. */
        off_t end = offset ? *offset : lseek(in_fd, 0, SEEK_CUR);
        errno = saved;
        ht_tap_sent_file(out_fd, in_fd, end >= 0 ? (int64_t)(end - r) : -1, (uint64_t)r);
    }
    return r;
}

HT_EXPORT ssize_t sendfile(int out_fd, int in_fd, off_t *offset, size_t count)
{
    uint64_t tok = ht_tap_token(out_fd);
    return sent_file(out_fd, tok, in_fd, offset, REAL(sendfile)(out_fd, in_fd, offset, count));
}

HT_EXPORT ssize_t sendfile64(int out_fd, int in_fd, off_t *offset, size_t count)
{
    uint64_t tok = ht_tap_token(out_fd);
    return sent_file(out_fd, tok, in_fd, offset, REAL(sendfile64)(out_fd, in_fd, offset, count));
}

/* splice / copy_file_range move bytes kernel-side: counted, never seen. */
static ssize_t moved(int fd_in, int fd_out, ssize_t r)
{
    if (r > 0 && ht_tracked(fd_out))
        ht_tap_unseen(fd_out, HT_RESP, (uint64_t)r);
    if (r > 0 && ht_tracked(fd_in))
        ht_tap_unseen(fd_in, HT_REQ, (uint64_t)r);
    return r;
}

HT_EXPORT ssize_t splice(int fd_in, loff_t *off_in, int fd_out, loff_t *off_out,
                         size_t len, unsigned int flags)
{
    return moved(fd_in, fd_out, REAL(splice)(fd_in, off_in, fd_out, off_out, len, flags));
}

HT_EXPORT ssize_t copy_file_range(int fd_in, loff_t *off_in, int fd_out, loff_t *off_out,
                                  size_t len, unsigned int flags)
{
    return moved(fd_in, fd_out, REAL(copy_file_range)(fd_in, off_in, fd_out, off_out, len, flags));
}

/* ---- fds that change meaning ---- */

static inline int duped(int oldfd, int newfd)
{
    if (newfd >= 0 && ht_fdtab_size && (ht_tracked(oldfd) || ht_tracked(newfd)) &&
        !ht_tap_foreign_process())
        ht_tap_dup(oldfd, newfd);
    return newfd;
}

HT_EXPORT int dup(int fd)
{
    return duped(fd, REAL(dup)(fd));
}

HT_EXPORT int dup2(int oldfd, int newfd)
{
    /* Even a failed dup2 never closes newfd; a successful one does. */
    return duped(oldfd, REAL(dup2)(oldfd, newfd));
}

HT_EXPORT int dup3(int oldfd, int newfd, int flags)
{
    return duped(oldfd, REAL(dup3)(oldfd, newfd, flags));
}

/* fcntl is variadic; every command's argument fits in a pointer-sized
 * integer, which is how glibc itself passes it on. */
static int fcntl_common(int (*real)(int, int, ...), int fd, int cmd, uintptr_t arg)
{
    int r = real(fd, cmd, arg);
    if ((cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) && r >= 0)
        duped(fd, r);
    return r;
}

HT_EXPORT int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    uintptr_t arg = va_arg(ap, uintptr_t);
    va_end(ap);
    return fcntl_common(REAL(fcntl), fd, cmd, arg);
}

HT_EXPORT int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    uintptr_t arg = va_arg(ap, uintptr_t);
    va_end(ap);
    return fcntl_common(REAL(fcntl64), fd, cmd, arg);
}

/* Connections whose fds a successful close_range closed. */
static void closed_range(unsigned int first, unsigned int last, int flags)
{
    if (!(flags & CLOSE_RANGE_CLOEXEC) && ht_fdtab_size && ht_tap_any_tracked(first) &&
        !ht_tap_foreign_process()) {
        int saved = errno;
        ht_tap_close_range(first, last);
        errno = saved;
    }
}

HT_EXPORT int close_range(unsigned int first, unsigned int last, int flags)
{
    int r = REAL(close_range)(first, last, flags);
    if (r == 0)
        closed_range(first, last, flags);
    return r;
}

/* glibc's closefrom calls the close_range system call itself, past our
 * close_range hook: the connections it closed end here. */
HT_EXPORT void closefrom(int lowfd)
{
    REAL(closefrom)(lowfd);
    int saved = errno;
    closed_range(lowfd < 0 ? 0 : (unsigned)lowfd, ~0U, 0);
    errno = saved;
}

/* ---- bytes out of our reach ---- */

/* stdio reads and writes through glibc's internal calls, not through our
 * hooks: a tracked connection handed to it is counted, not recorded. */
HT_EXPORT FILE *fdopen(int fd, const char *mode)
{
    FILE *f = REAL(fdopen)(fd, mode);
    if (f && __builtin_expect(ht_tracked(fd), 0) && !ht_tap_foreign_process())
        ht_tap_out_of_reach(fd, HT_UNSEEN_STDIO);
    return f;
}

/* liburing's set-up calls, when the app links it: the ring moves bytes
 * without any call we see. (A ring set up with the raw system call is
 * not noticed.) */
static int uring_set_up(int r)
{
    if (r >= 0 && ht_fdtab_size && !ht_tap_foreign_process())
        ht_tap_uses_io_uring();
    return r;
}

HT_EXPORT int io_uring_queue_init(unsigned entries, void *ring, unsigned flags)
{
    if (!REAL(uring_queue_init))
        return -ENOSYS;
    return uring_set_up(REAL(uring_queue_init)(entries, ring, flags));
}

HT_EXPORT int io_uring_queue_init_params(unsigned entries, void *ring, void *p)
{
    if (!REAL(uring_queue_init_params))
        return -ENOSYS;
    return uring_set_up(REAL(uring_queue_init_params)(entries, ring, p));
}

HT_EXPORT int io_uring_queue_init_mem(unsigned entries, void *ring, void *p, void *buf,
                                      size_t size)
{
    if (!REAL(uring_queue_init_mem))
        return -ENOSYS;
    return uring_set_up(REAL(uring_queue_init_mem)(entries, ring, p, buf, size));
}

HT_EXPORT int io_uring_setup(unsigned entries, void *p)
{
    if (!REAL(uring_setup))
        return -ENOSYS;     /* liburing's convention */
    return uring_set_up(REAL(uring_setup)(entries, p));
}
