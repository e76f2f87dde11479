/*
 * real.h - the one table of the real libc functions behind our hooks,
 * resolved once with dlsym(RTLD_NEXT). Every call we forward goes through
 * it. Safe to call ht_real_init() from several threads at once (the stores
 * are idempotent).
 */
#ifndef HT_REAL_H
#define HT_REAL_H

#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

struct ht_real {
    int (*accept)(int, struct sockaddr *, socklen_t *);
    int (*accept4)(int, struct sockaddr *, socklen_t *, int);
    ssize_t (*read)(int, void *, size_t);
    ssize_t (*readv)(int, const struct iovec *, int);
    ssize_t (*recv)(int, void *, size_t, int);
    ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
    ssize_t (*recvmsg)(int, struct msghdr *, int);
    ssize_t (*write)(int, const void *, size_t);
    ssize_t (*writev)(int, const struct iovec *, int);
    ssize_t (*send)(int, const void *, size_t, int);
    ssize_t (*sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
    ssize_t (*sendmsg)(int, const struct msghdr *, int);
    int (*recvmmsg)(int, struct mmsghdr *, unsigned int, int, struct timespec *);
    int (*sendmmsg)(int, struct mmsghdr *, unsigned int, int);
    FILE *(*fdopen)(int, const char *);
    void (*closefrom)(int);
    /* liburing's, when the app has it (else NULL) */
    int (*uring_queue_init)(unsigned, void *, unsigned);
    int (*uring_queue_init_params)(unsigned, void *, void *);
    int (*uring_queue_init_mem)(unsigned, void *, void *, void *, size_t);
    int (*uring_setup)(unsigned, void *);
    int (*close)(int);
    int (*shutdown)(int, int);
    ssize_t (*read_chk)(int, void *, size_t, size_t);
    ssize_t (*recv_chk)(int, void *, size_t, size_t, int);
    ssize_t (*recvfrom_chk)(int, void *, size_t, size_t, int, struct sockaddr *, socklen_t *);
    ssize_t (*sendfile)(int, int, off_t *, size_t);
    ssize_t (*sendfile64)(int, int, off_t *, size_t);
    ssize_t (*splice)(int, loff_t *, int, loff_t *, size_t, unsigned int);
    ssize_t (*copy_file_range)(int, loff_t *, int, loff_t *, size_t, unsigned int);
    int (*dup)(int);
    int (*dup2)(int, int);
    int (*dup3)(int, int, int);
    int (*fcntl)(int, int, ...);
    int (*fcntl64)(int, int, ...);
    int (*close_range)(unsigned int, unsigned int, int);
};

extern struct ht_real ht_real;

void ht_real_init(void);

/* The real function, resolving the table on first use (a hook may run
 * before our constructor, from another library's constructor). */
#define REAL(fn) (__builtin_expect(ht_real.fn != NULL, 1) ? ht_real.fn : (ht_real_init(), ht_real.fn))

#endif
