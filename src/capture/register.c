/*
 * register.c - handing a ring to the collector (register.h).
 *
 * The client side runs inside recorded processes, on an app thread or in
 * a freshly forked child: it calls the kernel directly (syscall(2)), so no
 * hook of ours and no libc lock is involved, and it never waits.
 */
#include "capture/register.h"

#include "capture/ring.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define HELLO_MAGIC 0x48544852u     /* "HTHR" */
#define HELLO_VERSION 1u

struct hello {
    uint32_t magic, version;
    uint32_t data_size, pad;
    uint8_t token[HT_REG_TOKEN_LEN];
};

static const char hexd[] = "0123456789abcdef";

void ht_reg_format(const struct ht_reg_addr *a, char *out, size_t outlen)
{
    char tok[2 * HT_REG_TOKEN_LEN + 1];
    for (int i = 0; i < HT_REG_TOKEN_LEN; i++) {
        tok[2 * i] = hexd[a->token[i] >> 4];
        tok[2 * i + 1] = hexd[a->token[i] & 15];
    }
    tok[2 * HT_REG_TOKEN_LEN] = 0;
    snprintf(out, outlen, "%s:%s", a->name, tok);
}

static int hexval(char c)
{
    const char *p = c ? strchr(hexd, c) : NULL;
    return p ? (int)(p - hexd) : -1;
}

int ht_reg_parse(const char *s, struct ht_reg_addr *a)
{
    const char *colon = strrchr(s, ':');
    size_t n = colon ? (size_t)(colon - s) : 0;
    if (!n || n > HT_REG_NAME_MAX || strlen(colon + 1) != 2 * HT_REG_TOKEN_LEN)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return -EINVAL;
    memcpy(a->name, s, n);
    a->name[n] = 0;
    for (int i = 0; i < HT_REG_TOKEN_LEN; i++) {
        int hi = hexval(colon[1 + 2 * i]), lo = hexval(colon[2 + 2 * i]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        a->token[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int ht_reg_new(struct ht_reg_addr *a, int pid)
{
    uint8_t r[6];
    if (getrandom(a->token, sizeof(a->token), 0) != (ssize_t)sizeof(a->token) ||
        getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
        return -EIO;
    snprintf(a->name, sizeof(a->name), "%d-%02x%02x%02x%02x%02x%02x", pid, r[0], r[1], r[2], r[3],
             r[4], r[5]);
    return 0;
}

static socklen_t sockaddr_of(const struct ht_reg_addr *a, struct sockaddr_un *sa)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    /* Abstract: sun_path[0] stays 0; the name is not NUL-terminated. */
    int n = snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1, "httptape-%s", a->name);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

/* ---- recorded process ---- */

static long sys_close(int fd) { return syscall(SYS_close, fd); }

size_t ht_reg_map_size(uint32_t data_size) { return ht_ring_map_size(data_size) + HT_SKIP_BYTES; }

struct ht_skip_slot *ht_reg_skips(void *map, uint32_t data_size)
{
    return (struct ht_skip_slot *)((uint8_t *)map + ht_ring_map_size(data_size));
}

int ht_reg_ring_new(uint32_t data_size, int pid, struct ht_ring *r, void **map, int *fd)
{
    size_t len = ht_reg_map_size(data_size);
    int rc;
    int mfd = (int)syscall(SYS_memfd_create, "httptape-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (mfd < 0)
        return -errno;
    if (syscall(SYS_ftruncate, mfd, (long)len) ||
        syscall(SYS_fcntl, mfd, F_ADD_SEALS, (long)(F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL))) {
        rc = -errno;
        goto fail;
    }
    void *m = (void *)syscall(SYS_mmap, NULL, len, (long)(PROT_READ | PROT_WRITE), (long)MAP_SHARED, (long)mfd, 0L);
    if (m == MAP_FAILED) {
        rc = -errno;
        goto fail;
    }
    if ((rc = ht_ring_format(r, m, ht_ring_map_size(data_size), data_size, pid))) {
        syscall(SYS_munmap, m, len);
        goto fail;
    }
    *map = m;
    *fd = mfd;
    return 0;
fail:
    sys_close(mfd);
    return rc;
}

int ht_reg_send(const struct ht_reg_addr *a, int ring_fd, uint32_t data_size)
{
    struct sockaddr_un sa;
    socklen_t salen = sockaddr_of(a, &sa);
    int rc = 0;
    int pidfd = (int)syscall(SYS_pidfd_open, (long)syscall(SYS_getpid), 0);
    int s = (int)syscall(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0 || pidfd < 0) {
        rc = -errno;
        goto out;
    }
    if (syscall(SYS_connect, s, &sa, salen) < 0) {
        rc = -errno;
        goto out;
    }
    struct hello h = { .magic = HELLO_MAGIC, .version = HELLO_VERSION, .data_size = data_size };
    memcpy(h.token, a->token, sizeof(h.token));
    struct iovec iov = { &h, sizeof(h) };
    union {
        char buf[CMSG_SPACE(2 * sizeof(int))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof(u));
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                        .msg_controllen = sizeof(u.buf) };
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(2 * sizeof(int));
    int fds[2] = { ring_fd, pidfd };
    memcpy(CMSG_DATA(c), fds, sizeof(fds));
    long w = syscall(SYS_sendmsg, s, &m, MSG_NOSIGNAL);
    if (w != (long)sizeof(h))
        rc = w < 0 ? -errno : -EIO;
out:
    if (s >= 0)
        sys_close(s);
    if (pidfd >= 0)
        sys_close(pidfd);
    return rc;
}

/* ---- collector ---- */

int ht_reg_listen(const struct ht_reg_addr *a)
{
    struct sockaddr_un sa;
    socklen_t salen = sockaddr_of(a, &sa);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -errno;
    if (bind(s, (struct sockaddr *)&sa, salen) || listen(s, 128)) {
        int e = -errno;
        close(s);
        return e;
    }
    return s;
}

/* The pid a pidfd refers to (its fdinfo), or -1. */
static int pidfd_pid(int fd)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
    int f = open(path, O_RDONLY | O_CLOEXEC);
    if (f < 0)
        return -1;
    ssize_t n = read(f, buf, sizeof(buf) - 1);
    close(f);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    const char *p = strstr(buf, "\nPid:");
    return p ? atoi(p + 5) : -1;
}

static bool token_ok(const uint8_t *a, const uint8_t *b)
{
    uint8_t d = 0;
    for (int i = 0; i < HT_REG_TOKEN_LEN; i++)
        d |= a[i] ^ b[i];
    return d == 0;
}

int ht_reg_accept(int lfd, const struct ht_reg_addr *a, struct ht_reg_hello *out)
{
    int s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (s < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
    /* The client sends right after connecting; a client that does not is
     * given a moment, not the collector's attention for ever. */
    struct timeval tv = { 0, 50000 };
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct ucred cr;
    socklen_t crl = sizeof(cr);
    struct hello h;
    struct iovec iov = { &h, sizeof(h) };
    union {
        char buf[CMSG_SPACE(4 * sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                        .msg_controllen = sizeof(u.buf) };
    ssize_t r = recvmsg(s, &m, MSG_CMSG_CLOEXEC | MSG_WAITALL);
    int rc = getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &crl) ? -errno : 0;
    close(s);
    int fds[4] = { -1, -1, -1, -1 };
    size_t nfds = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < n && nfds < 4; i++)
                memcpy(&fds[nfds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        }
    if (!rc && (r != (ssize_t)sizeof(h) || h.magic != HELLO_MAGIC || h.version != HELLO_VERSION ||
                nfds != 2))
        rc = -EPROTO;
    if (!rc && !token_ok(h.token, a->token))
        rc = -EPERM;
    /* The pidfd must be the caller's own: another process's would keep
     * the ring (and a collector waiting for it) alive for as long as that
     * process lives. */
    if (!rc && pidfd_pid(fds[1]) != cr.pid)
        rc = -EPERM;
    if (rc) {
        for (size_t i = 0; i < nfds; i++)
            close(fds[i]);
        return rc;
    }
    out->ring_fd = fds[0];
    out->pid_fd = fds[1];
    out->pid = cr.pid;
    out->uid = cr.uid;
    out->data_size = h.data_size;
    return 1;
}
