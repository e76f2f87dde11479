/*
 * fdreuse_server.c PORT - the fd reuse race, driven step by step
 * (preload_hooks.bats): a thread blocks in read() on client A's
 * connection (fd N); the main thread closes N and accepts client B, which
 * gets N; A's request then arrives through the read that began on A's
 * connection. The server answers B only. It says on stdout what it did:
 *   blocked    the reader thread is in read(2) on N
 *   reused N   B was accepted on the same number
 *   a-read K   the reader got K bytes (A's request)
 *   b-done     B's exchange was answered
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int conn_fd;
static pid_t reader_tid;
static ssize_t a_got = -2;

static void *reader(void *arg)
{
    char buf[4096];
    (void)arg;
    reader_tid = (pid_t)syscall(SYS_gettid);
    a_got = read(conn_fd, buf, sizeof(buf));
    return NULL;
}

/* Is thread tid asleep in read(2)? /proc/self/task/TID/syscall starts with
 * the number of the call it is blocked in. */
static int in_read(pid_t tid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int ok = fgets(line, sizeof(line), f) && atoi(line) == SYS_read;
    fclose(f);
    return ok;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    setvbuf(stdout, NULL, _IONBF, 0);
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 8))
        return 1;

    conn_fd = accept(ls, NULL, NULL);               /* client A */
    pthread_t t;
    pthread_create(&t, NULL, reader, NULL);
    for (int i = 0; i < 1000 && !(reader_tid && in_read(reader_tid)); i++)
        sleep_ms(5);
    if (!in_read(reader_tid))
        return 1;
    printf("blocked\n");

    int n = conn_fd;
    close(n);                                       /* the reader goes on reading A */
    int b = accept(ls, NULL, NULL);                 /* client B, on the same number */
    printf("reused %d\n", b == n);

    pthread_join(t, NULL);                          /* A's request came */
    printf("a-read %zd\n", a_got);

    char req[4096];
    size_t have = 0;
    while (have < sizeof(req) - 1) {
        ssize_t r = read(b, req + have, sizeof(req) - 1 - have);
        if (r <= 0)
            break;
        have += (size_t)r;
        req[have] = 0;
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    write(b, ok, sizeof(ok) - 1);
    close(b);
    printf("b-done\n");
    close(ls);
    return 0;
}
