/*
 * server.c - a tiny HTTP/1.1 server, linked statically (make builds it as
 * build/static-server). No dynamic loader ever runs for it, so nothing can
 * be preloaded into it: `httptape run` records nothing, `httptape attach`
 * records everything. See README.md.
 *
 *   static-server PORT [--close]
 *
 *   GET  /             a line of text
 *   GET  /hello?name=N "hello, N"
 *   GET  /big          64 KiB of text (over httptape's default 4 KiB excerpt)
 *   GET  /chunked      a chunked response in three chunks
 *   POST /echo         the request body back (Content-Length or chunked in)
 *   anything else      404
 *
 * Keep-alive and pipelining: one thread per connection reads requests off
 * a buffer until the client closes or says "Connection: close". --close
 * closes after every response. Prints "listening on PORT" once it accepts;
 * exits on SIGTERM or SIGINT.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define BUF_MAX (1u << 20)          /* a request (head + body) must fit */

static bool close_each;

struct conn {
    int fd;
    char *buf;
    size_t len;                     /* bytes in buf */
};

/* Read more into c->buf; false on EOF or error. */
static bool fill(struct conn *c)
{
    if (c->len == BUF_MAX)
        return false;
    ssize_t n;
    do
        n = read(c->fd, c->buf + c->len, BUF_MAX - c->len);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return false;
    c->len += (size_t)n;
    return true;
}

static bool write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Head and body in one writev (a short write falls back to write_all). */
static bool respond(int fd, int status, const char *reason, const char *type,
                    const char *body, size_t blen, bool last)
{
    char head[256];
    int hn = snprintf(head, sizeof(head),
                      "HTTP/1.1 %d %s\r\nServer: static-server\r\nContent-Type: %s\r\n"
                      "Content-Length: %zu\r\n%s\r\n",
                      status, reason, type, blen, last ? "Connection: close\r\n" : "");
    struct iovec iov[2] = { { head, (size_t)hn }, { (void *)body, blen } };
    ssize_t w = writev(fd, iov, blen ? 2 : 1);
    if (w < 0)
        return false;
    size_t done = (size_t)w;
    if (done < (size_t)hn)
        return write_all(fd, head + done, (size_t)hn - done) && write_all(fd, body, blen);
    return write_all(fd, body + (done - (size_t)hn), blen - (done - (size_t)hn));
}

static bool send_chunked(int fd, bool last)
{
    char head[160];
    int hn = snprintf(head, sizeof(head),
                      "HTTP/1.1 200 OK\r\nServer: static-server\r\nContent-Type: text/plain\r\n"
                      "Transfer-Encoding: chunked\r\n%s\r\n", last ? "Connection: close\r\n" : "");
    static const char *const parts[] = { "first chunk\n", "second chunk\n", "third and last\n" };
    if (send(fd, head, (size_t)hn, MSG_NOSIGNAL) != hn)
        return false;
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        char line[64];
        int n = snprintf(line, sizeof(line), "%zx\r\n%s\r\n", strlen(parts[i]), parts[i]);
        if (send(fd, line, (size_t)n, MSG_NOSIGNAL) != n)
            return false;
    }
    return send(fd, "0\r\n\r\n", 5, MSG_NOSIGNAL) == 5;
}

/* The value of header name in head (NUL-terminated copy in out), or NULL. */
static const char *header(const char *head, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p && p[2] != '\r'; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (!strncasecmp(line, name, nl) && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            size_t n = strcspn(v, "\r");
            snprintf(out, outlen, "%.*s", (int)n, v);
            return out;
        }
    }
    return NULL;
}

/* Decode a chunked body starting at c->buf[at]; the decoded bytes replace
 * it in place. Returns the offset just past the body, or 0 on error. */
static size_t dechunk(struct conn *c, size_t at, size_t *blen)
{
    size_t in = at, out = at;
    for (;;) {
        char *eol;
        while (!(eol = memmem(c->buf + in, c->len - in, "\r\n", 2)))
            if (!fill(c))
                return 0;
        unsigned long size = strtoul(c->buf + in, NULL, 16);
        in = (size_t)(eol - c->buf) + 2;
        if (size == 0) {
            while (!memmem(c->buf + in, c->len - in, "\r\n", 2))  /* no trailers kept */
                if (!fill(c))
                    return 0;
            in = (size_t)((char *)memmem(c->buf + in, c->len - in, "\r\n", 2) - c->buf) + 2;
            *blen = out - at;
            /* Close the hole so the next pipelined request follows the body. */
            memmove(c->buf + out, c->buf + in, c->len - in);
            c->len -= in - out;
            return out;
        }
        while (c->len - in < size + 2)
            if (!fill(c))
                return 0;
        memmove(c->buf + out, c->buf + in, size);
        out += size;
        in += size + 2;
    }
}

/* Serve one request from the front of c->buf. false: close the connection. */
static bool serve_one(struct conn *c)
{
    char *end;
    while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4)))
        if (!fill(c))
            return false;
    size_t head_len = (size_t)(end - c->buf) + 4;
    char *head = malloc(head_len + 1);
    if (!head)
        return false;
    memcpy(head, c->buf, head_len);
    head[head_len] = 0;

    char method[16], target[1024], val[64];
    if (sscanf(head, "%15s %1023s", method, target) != 2) {
        free(head);
        return false;
    }
    bool last = close_each || (header(head, "connection", val, sizeof(val)) &&
                               !strcasecmp(val, "close"));
    size_t body_at = head_len, body_len = 0, next;
    if (header(head, "transfer-encoding", val, sizeof(val)) && strstr(val, "chunked")) {
        if (!(next = dechunk(c, body_at, &body_len))) {
            free(head);
            return false;
        }
        next = body_at + body_len;
    } else {
        body_len = header(head, "content-length", val, sizeof(val)) ? strtoul(val, NULL, 10) : 0;
        if (body_len > BUF_MAX - head_len) {
            free(head);
            return false;
        }
        while (c->len < head_len + body_len)
            if (!fill(c))
                return false;
        next = head_len + body_len;
    }
    free(head);

    bool ok;
    char *q = strchr(target, '?');
    if (q)
        *q++ = 0;
    if (!strcmp(method, "POST") && !strcmp(target, "/echo")) {
        ok = respond(c->fd, 200, "OK", "application/octet-stream", c->buf + body_at, body_len, last);
    } else if (strcmp(method, "GET")) {
        static const char msg[] = "method not allowed\n";
        ok = respond(c->fd, 405, "Method Not Allowed", "text/plain", msg, sizeof(msg) - 1, last);
    } else if (!strcmp(target, "/")) {
        static const char msg[] = "static-server: statically linked, no preload possible\n";
        ok = respond(c->fd, 200, "OK", "text/plain", msg, sizeof(msg) - 1, last);
    } else if (!strcmp(target, "/hello")) {
        char msg[300];
        const char *name = q && !strncmp(q, "name=", 5) ? q + 5 : "world";
        int n = snprintf(msg, sizeof(msg), "hello, %.200s\n", name);
        ok = respond(c->fd, 200, "OK", "text/plain", msg, (size_t)n, last);
    } else if (!strcmp(target, "/big")) {
        static char big[65536];
        for (size_t i = 0; i < sizeof(big); i++)
            big[i] = (i % 64 == 63) ? '\n' : (char)('a' + i % 26);
        ok = respond(c->fd, 200, "OK", "text/plain", big, sizeof(big), last);
    } else if (!strcmp(target, "/chunked")) {
        ok = send_chunked(c->fd, last);
    } else {
        static const char msg[] = "not found\n";
        ok = respond(c->fd, 404, "Not Found", "text/plain", msg, sizeof(msg) - 1, last);
    }
    memmove(c->buf, c->buf + next, c->len - next);
    c->len -= next;
    return ok && !last;
}

static void *serve(void *arg)
{
    struct conn c = { .fd = (int)(intptr_t)arg, .buf = malloc(BUF_MAX) };
    while (c.buf && serve_one(&c))
        ;
    free(c.buf);
    close(c.fd);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: static-server PORT [--close]\n");
        return 2;
    }
    close_each = argc > 2 && !strcmp(argv[2], "--close");
    signal(SIGPIPE, SIG_IGN);

    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof(sa)) || listen(ls, 128)) {
        perror("static-server");
        return 1;
    }
    printf("listening on %s\n", argv[1]);
    fflush(stdout);
    for (;;) {
        int fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            perror("static-server: accept");
            return 1;
        }
        pthread_t t;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &at, serve, (void *)(intptr_t)fd))
            close(fd);
        pthread_attr_destroy(&at);
    }
}
