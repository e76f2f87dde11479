/*
 * hooks_badargs.c - calls the hooked functions with arguments libc rejects
 * (NULL or bad pointers, bad fds), on a tracked (accepted) and an untracked
 * (connecting) socket, and prints each return value and errno. Run with and
 * without the library, the output must be the same (preload_hooks.bats).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

static void *volatile bad_ptr = (void *)16;    /* never mapped */
#define BAD bad_ptr

static void show(const char *what, long r)
{
    printf("%-34s %ld %s\n", what, r, r < 0 ? strerror(errno) : "-");
    fflush(stdout);
    errno = 0;
}

static int dial(const struct sockaddr_in *a)
{
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c, (const struct sockaddr *)a, sizeof(*a)))
        exit(1);
    return c;
}

int main(int argc, char **argv)
{
    (void)argc;
    alarm(10);      /* never hang a test */
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t al = sizeof(a);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 8) ||
        getsockname(ls, (struct sockaddr *)&a, &al))
        return 1;
    int c = dial(&a);                       /* untracked: we connected it */
    int t = accept(ls, NULL, NULL);         /* tracked: accepted */
    int file = open(argv[0], O_RDONLY);
    char buf[64];
    struct msghdr badiov = { .msg_iov = BAD, .msg_iovlen = 1 };

    /* Bytes waiting on both sides, so a bad buffer is what fails. */
    (void)!write(c, "GET / HTTP/1.1\r\n", 16);
    (void)!write(t, "HTTP/1.1 ", 9);
    usleep(50000);

    show("sendmsg(tracked, NULL)", sendmsg(t, NULL, 0));
    show("sendmsg(untracked, NULL)", sendmsg(c, NULL, 0));
    show("sendmsg(tracked, bad iov)", sendmsg(t, &badiov, 0));
    show("recvmsg(-1, NULL)", recvmsg(-1, NULL, 0));
    show("recvmsg(tracked, NULL)", recvmsg(t, NULL, MSG_DONTWAIT));
    show("recvmsg(untracked, NULL)", recvmsg(c, NULL, MSG_DONTWAIT));
    show("recvmsg(tracked, bad iov)", recvmsg(t, &badiov, MSG_DONTWAIT));
    show("recvmmsg(tracked, NULL)", recvmmsg(t, NULL, 1, MSG_DONTWAIT, NULL));
    show("sendmmsg(tracked, NULL)", sendmmsg(t, NULL, 1, 0));
    show("readv(tracked, bad)", readv(t, BAD, 1));
    show("writev(tracked, bad)", writev(t, BAD, 1));
    show("sendfile(tracked, bad offset)", sendfile(t, file, BAD, 10));
    show("sendfile(untracked, bad offset)", sendfile(c, file, BAD, 10));
    show("sendfile64(tracked, bad offset)", sendfile64(t, file, BAD, 10));
    show("read(tracked, bad)", read(t, BAD, 10));
    show("recv(tracked, bad)", recv(t, BAD, 10, MSG_DONTWAIT));

    /* accept with a bad length pointer: the kernel takes the connection
     * and fails with EFAULT. */
    int c2 = dial(&a), c3 = dial(&a), c4 = dial(&a);
    struct sockaddr_storage ss;
    show("accept(bad addrlen)", accept(ls, (struct sockaddr *)&ss, BAD));
    show("accept4(bad addrlen)", accept4(ls, (struct sockaddr *)&ss, BAD, 0));
    show("accept(bad addr)", accept(ls, BAD, &al));
    show("sendfile(-1, bad offset)", sendfile(-1, file, BAD, 10));
    show("recvmsg(untracked, bad iov)", recvmsg(c, &badiov, MSG_DONTWAIT));
    show("read(tracked) still works", read(t, buf, sizeof(buf)) > 0);
    close(c2);
    close(c3);
    close(c4);
    return 0;
}
