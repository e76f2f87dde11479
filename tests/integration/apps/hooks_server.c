/*
 * hooks_server.c - a small HTTP/1.1 server for preload_hooks.bats, one
 * request per connection (Connection: close), in the way MODE says:
 *   fork        fork per connection: the parent accepts, the child serves
 *   fork-early  the parent reads the request head, then forks; the child answers
 *   closefrom   serves in-process, then closefrom(listener + 1) after each
 *   vfork       serves in-process, says which fd of it points at the log
 *               (LOGPATH; -1: none), then a vfork child dup2()s onto every
 *               fd number from 3 to 1023 and exits
 *   dupfd       serves in-process, waits for the log (LOGPATH) to be open, then
 *               prints what fcntl(F_DUPFD, 512) returns
 *   mmsg        reads with recvmmsg, answers with sendmmsg (head and body apart)
 *   fdopen      reads and answers through stdio (fdopen)
 *   uring       calls io_uring_queue_init (built with -DHT_URING against a
 *               stand-in liburing), reads with read(), answers with the raw
 *               write system call, as a ring would: bytes the library cannot see
 * Usage: hooks_server PORT MODE COUNT [LOGPATH]. Prints "listening" when
 * ready; exits (exit(0), after its fork children) after COUNT connections.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef HT_URING
int io_uring_queue_init(unsigned entries, void *ring, unsigned flags);
#endif

static const char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\n";
static const char body[] = "hello\n";

/* Read until the end of the request head (no bodies here). */
static int read_head(int fd, char *buf, size_t cap, int use_mmsg)
{
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t r;
        if (use_mmsg) {
            struct iovec v = { buf + n, cap - 1 - n };
            struct mmsghdr m = { .msg_hdr = { .msg_iov = &v, .msg_iovlen = 1 } };
            int k = recvmmsg(fd, &m, 1, 0, NULL);
            r = k == 1 ? (ssize_t)m.msg_len : -1;
        } else {
            r = read(fd, buf + n, cap - 1 - n);
        }
        if (r <= 0)
            return -1;
        n += (size_t)r;
        buf[n] = 0;
        if (strstr(buf, "\r\n\r\n"))
            return 0;
    }
    return -1;
}

static void answer(int fd, const char *mode)
{
    if (!strcmp(mode, "mmsg")) {
        struct iovec v[2] = { { (void *)head, sizeof(head) - 1 }, { (void *)body, 6 } };
        struct mmsghdr m[2] = { { .msg_hdr = { .msg_iov = &v[0], .msg_iovlen = 1 } },
                                { .msg_hdr = { .msg_iov = &v[1], .msg_iovlen = 1 } } };
        sendmmsg(fd, m, 2, 0);
    } else if (!strcmp(mode, "uring")) {
        syscall(SYS_write, fd, head, sizeof(head) - 1);
        syscall(SYS_write, fd, body, 6);
    } else {
        (void)!write(fd, head, sizeof(head) - 1);
        (void)!write(fd, body, 6);
    }
}

static void serve_stdio(int fd)
{
    FILE *f = fdopen(fd, "r+");
    char line[1024];
    if (!f) {
        close(fd);
        return;
    }
    while (fgets(line, sizeof(line), f) && strcmp(line, "\r\n"))
        ;
    fputs(head, f);
    fputs(body, f);
    fclose(f);
}

static void serve(int fd, const char *mode)
{
    char buf[4096];
    if (!strcmp(mode, "fdopen")) {
        serve_stdio(fd);
        return;
    }
    if (read_head(fd, buf, sizeof(buf), !strcmp(mode, "mmsg")) == 0)
        answer(fd, mode);
    shutdown(fd, SHUT_WR);
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
    close(fd);
}

static int fd_of(const char *path)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    char link[300], target[4096];
    int found = -1;
    while (d && (e = readdir(d))) {
        snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(link, target, sizeof(target) - 1);
        if (n > 0) {
            target[n] = 0;
            if (!strcmp(target, path) && atoi(e->d_name) > found)
                found = atoi(e->d_name);
        }
    }
    if (d)
        closedir(d);
    return found;
}

/* The fd of this process that points at the log, or -1 (the collector
 * owns the log: there should be none). */
static int log_fd(const char *logpath)
{
    return logpath ? fd_of(logpath) : -1;
}

static void after(int ls, const char *mode, const char *logpath)
{
    if (!strcmp(mode, "closefrom")) {
        closefrom(ls + 1);
    } else if (!strcmp(mode, "vfork") && logpath) {
        int logfd = log_fd(logpath);
        printf("log fd %d\n", logfd);
        fflush(stdout);
        pid_t p = vfork();
        if (p == 0) {
            for (int n = 3; n < 1024; n++)
                dup2(0, n);
            _exit(0);
        }
        if (p > 0)
            waitpid(p, NULL, 0);
    } else if (!strcmp(mode, "dupfd")) {
        log_fd(logpath);
        int d = fcntl(0, F_DUPFD, 512);
        printf("dupfd %d\n", d);
        fflush(stdout);
        if (d >= 0)
            close(d);
    }
}

int main(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    const char *mode = argv[2], *logpath = argc > 4 ? argv[4] : NULL;
    int count = atoi(argv[3]);
    int fork_mode = !strncmp(mode, "fork", 4);
#ifdef HT_URING
    char ring[512];
    printf("io_uring_queue_init %d\n", io_uring_queue_init(8, ring, 0));
#endif
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 16))
        return 1;
    signal(SIGTERM, SIG_DFL);
    printf("listening\n");
    fflush(stdout);
    for (int i = 0; i < count; i++) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0) {
            i--;
            continue;
        }
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
        if (!fork_mode) {
            serve(fd, mode);
            after(ls, mode, logpath);
            continue;
        }
        char buf[4096];
        int early = !strcmp(mode, "fork-early");
        if (early && read_head(fd, buf, sizeof(buf), 0)) {
            close(fd);
            continue;
        }
        fflush(stdout);
        pid_t p = fork();
        if (p == 0) {
            close(ls);
            if (early)
                answer(fd, mode);
            else if (read_head(fd, buf, sizeof(buf), 0) == 0)
                answer(fd, mode);
            close(fd);
            _exit(0);
        }
        close(fd);
    }
    while (wait(NULL) > 0)
        ;
    return 0;
}
