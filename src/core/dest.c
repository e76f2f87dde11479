/*
 * dest.c - the writer's destination (dest.h): a log file, standard output,
 * a Unix stream socket or an inherited descriptor.
 *
 * The log file is opened O_APPEND|O_CLOEXEC|O_CREAT|O_NOFOLLOW, mode 0600,
 * through directories checked one by one (logpath.h: nothing another user
 * controls), and written a batch of whole lines per write(2), so processes
 * sharing one log never interleave within a line. The writer checks before
 * every batch that the path still names its file (logrotate), and rotates
 * by size after a batch.
 *
 * A stream (the socket; a descriptor that is a pipe, socket or terminal) is
 * non-blocking. A batch waits at most STREAM_WAIT_MS for its reader; lines
 * it did not take are dropped. A line cut in the middle is kept (one line,
 * at most the batch) and sent first next time, so the reader never sees
 * half a line followed by another. A socket whose peer went away is closed
 * and connected again, first after 100 ms, doubling up to 5 s.
 */
#include "core/dest.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/logpath.h"

#define STREAM_WAIT_MS 100
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

enum kind { K_FILE, K_STDOUT, K_UNIX, K_FD };

struct ht_dest {
    enum kind kind;
    int fd;
    int inherited;              /* K_FD: the descriptor's number */
    bool stream;                /* non-blocking, bounded waits, no cut */
    bool complained;            /* said once that it cannot be opened / reached */
    bool slow_said;             /* said once that the reader drops lines */
    bool fragment;              /* a partial line may end the file */
    mode_t mode;
    uint64_t rotate_size;
    unsigned rotate_keep;
    dev_t dev;
    ino_t ino;
    int64_t retry_at;           /* K_UNIX: no connect before this (ms) */
    int backoff;                /* ms */
    uint64_t lost;              /* lines dropped since the last message */
    struct ht_buf pending;      /* the rest of a line cut short (stream) */
    char path[4096 + 16];
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void say(const char *fmt, const char *a, const char *b)
{
    char msg[sizeof(((struct ht_dest *)0)->path) + HT_LOGPATH_WHY + 200];
    int n = snprintf(msg, sizeof(msg), fmt, a, b);
    if (n > 0)
        (void)!write(STDERR_FILENO, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
}

struct ht_dest *ht_dest_new(const char *path, uint32_t mode, uint64_t rotate_size,
                            unsigned rotate_keep)
{
    struct ht_dest *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->fd = -1;
    d->mode = mode ? (mode_t)mode : 0600;
    d->rotate_size = rotate_size;
    d->rotate_keep = rotate_keep;
    d->backoff = BACKOFF_MIN_MS;
    if (!strcmp(path, "-")) {
        d->kind = K_STDOUT;
        snprintf(d->path, sizeof(d->path), "-");
    } else if (!strncmp(path, "unix:", 5)) {
        d->kind = K_UNIX;
        d->stream = true;
        snprintf(d->path, sizeof(d->path), "%s", path + 5);
    } else if (!strncmp(path, "fd:", 3)) {
        char *end;
        long n = strtol(path + 3, &end, 10);
        d->kind = K_FD;
        d->inherited = *end || n < 0 || n > 1 << 30 ? -1 : (int)n;
        snprintf(d->path, sizeof(d->path), "%s", path);
    } else {
        d->kind = K_FILE;
        snprintf(d->path, sizeof(d->path), "%s", path);
    }
    return d;
}

static void dest_close(struct ht_dest *d)
{
    if (d->fd >= 0 && d->kind != K_STDOUT && d->kind != K_FD)
        close(d->fd);
    if (d->kind != K_FD)
        d->fd = -1;
    d->pending.len = 0;
}

/* ---- the log file ---- */

static void file_open(struct ht_dest *d)
{
    char why[HT_LOGPATH_WHY];
    const char *name;
    struct stat st;
    dest_close(d);
    int dir = ht_logpath_dir(d->path, &name, why, sizeof(why));
    int fd = dir < 0 ? dir : ht_logpath_open(dir, name, d->mode, &st, why, sizeof(why));
    if (dir >= 0)
        close(dir);
    if (fd < 0) {
        if (!d->complained)
            say("httptape: cannot open log %s: %s; exchanges are counted as dropped "
                "until it can be\n", d->path, why);
        d->complained = true;
        return;
    }
    d->fd = fd;
    d->dev = st.st_dev;
    d->ino = st.st_ino;
    d->complained = false;
    d->fragment = false;
}

/* Does the path still name our file, through trusted directories, and is
 * it still one the log may be? Fills *dir (the file's directory, the
 * caller closes it; -errno when the walk failed) and *name. */
static bool file_is_ours(const struct ht_dest *d, int *dir, const char **name)
{
    char why[HT_LOGPATH_WHY];
    struct stat st;
    *dir = ht_logpath_dir(d->path, name, why, sizeof(why));
    return *dir >= 0 && fstatat(*dir, *name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
           st.st_dev == d->dev && st.st_ino == d->ino &&
           ht_logpath_check_file(&st, why, sizeof(why)) == 0;
}

/* The path no longer names our file (renamed or deleted by logrotate's
 * "create" mode, or by hand), or no longer passes the checks: follow the
 * path, which says why when it cannot be opened. */
static void file_check(struct ht_dest *d)
{
    int dir = -1;
    const char *name;
    bool ours = d->fd >= 0 && file_is_ours(d, &dir, &name);
    /* Out of descriptors: we cannot look now, and the file we have is
     * better than none. */
    if (!ours && !(d->fd >= 0 && (dir == -EMFILE || dir == -ENFILE || dir == -ENOMEM)))
        file_open(d);
    if (dir >= 0)
        close(dir);
}

/* Size rotation: log -> log.1 -> ... -> log.keep. Processes sharing the
 * log serialise on flock; whoever finds the file already rotated just
 * follows the path. */
void ht_dest_rotate(struct ht_dest *d)
{
    struct stat st;
    if (d->fd < 0 || d->kind != K_FILE || !d->rotate_size || fstat(d->fd, &st) ||
        (uint64_t)st.st_size < d->rotate_size)
        return;
    if (flock(d->fd, LOCK_EX))
        return;
    int dir = -1;
    const char *name;
    if (file_is_ours(d, &dir, &name)) {
        /* Renamed within the directory just checked, not through the path. */
        char from[sizeof(d->path) + 16], to[sizeof(d->path) + 16];
        for (unsigned i = d->rotate_keep; i > 1; i--) {
            snprintf(from, sizeof(from), "%s.%u", name, i - 1);
            snprintf(to, sizeof(to), "%s.%u", name, i);
            renameat(dir, from, dir, to);
        }
        snprintf(to, sizeof(to), "%s.1", name);
        renameat(dir, name, dir, to);
    }
    if (dir >= 0)
        close(dir);
    flock(d->fd, LOCK_UN);
    file_open(d);
}

/* ---- the socket and the inherited descriptor ---- */

static void unix_connect(struct ht_dest *d)
{
    int64_t now = now_ms();
    if (now < d->retry_at)
        return;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    const char *why = "path too long";
    int fd = -1;
    if (strlen(d->path) < sizeof(sa.sun_path)) {
        memcpy(sa.sun_path, d->path, strlen(d->path) + 1);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            d->fd = fd;
            d->backoff = BACKOFF_MIN_MS;
            d->slow_said = false;
            if (d->complained) {
                char n[24];
                snprintf(n, sizeof(n), "%llu", (unsigned long long)d->lost);
                say("httptape: log socket %s: connected again; %s lines were dropped "
                    "meanwhile (counted in the statistics record)\n", d->path, n);
            }
            d->complained = false;
            d->lost = 0;
            return;
        }
        why = strerror(errno);
        if (fd >= 0)
            close(fd);
    }
    if (!d->complained)
        say("httptape: cannot connect to log socket %s: %s; exchanges are counted as "
            "dropped until it accepts (trying again, at most every 5 s)\n", d->path, why);
    d->complained = true;
    d->retry_at = now + d->backoff;
    d->backoff = d->backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : d->backoff * 2;
}

/* The peer went away: say so once, connect again after the backoff. */
static void unix_lost(struct ht_dest *d, const char *why)
{
    dest_close(d);
    if (!d->complained)
        say("httptape: log socket %s: %s; exchanges are counted as dropped until it "
            "accepts again\n", d->path, why);
    d->complained = true;
    d->retry_at = now_ms() + d->backoff;
}

static void fd_open(struct ht_dest *d)
{
    struct stat st;
    if (d->fd >= 0 || d->complained)
        return;
    if (d->inherited < 0 || fstat(d->inherited, &st)) {
        say("httptape: log %s: %s; exchanges are counted as dropped\n", d->path,
            d->inherited < 0 ? "no descriptor to write to (a collector the library started "
                               "inherits none of the app's; use httptape run or collect)"
                             : "no such descriptor is open");
        d->complained = true;
        return;
    }
    d->fd = d->inherited;
    d->stream = !S_ISREG(st.st_mode);
    if (d->stream) {
        int fl = fcntl(d->fd, F_GETFL);
        if (fl >= 0)
            fcntl(d->fd, F_SETFL, fl | O_NONBLOCK);
    }
}

void ht_dest_check(struct ht_dest *d)
{
    switch (d->kind) {
    case K_STDOUT:
        d->fd = STDOUT_FILENO;
        break;
    case K_FD:
        fd_open(d);
        break;
    case K_FILE:
        if (d->fd < 0)
            file_open(d);
        else
            file_check(d);
        break;
    case K_UNIX:
        if (d->fd < 0) {
            unix_connect(d);
        } else {
            struct pollfd p = { .fd = d->fd, .events = POLLRDHUP };
            if (poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
                unix_lost(d, "the reader went away");
        }
        break;
    }
}

/* ---- writing ---- */

static size_t count_lines(const char *p, size_t n)
{
    size_t lines = 0;
    for (const char *e = p + n; (p = memchr(p, '\n', (size_t)(e - p))); p++)
        lines++;
    return lines;
}

/* Send p[0..n) to a stream, waiting for room up to the deadline. Returns
 * how many bytes went, or -1 when the stream is broken. */
static ssize_t stream_send(struct ht_dest *d, const char *p, size_t n, int64_t deadline)
{
    size_t off = 0;
    while (off < n) {
        ssize_t w = d->kind == K_UNIX ? send(d->fd, p + off, n - off, MSG_NOSIGNAL)
                                      : write(d->fd, p + off, n - off);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno != EAGAIN)
            return -1;
        int64_t left = deadline - now_ms();
        struct pollfd pf = { .fd = d->fd, .events = POLLOUT };
        if (left <= 0 || poll(&pf, 1, (int)left) != 1 || !(pf.revents & POLLOUT))
            break;
    }
    return (ssize_t)off;
}

static size_t stream_write(struct ht_dest *d, const struct ht_buf *b)
{
    int64_t deadline = now_ms() + STREAM_WAIT_MS;
    size_t total = count_lines(b->p, b->len);
    ssize_t w = 0;
    if (d->pending.len) {
        w = stream_send(d, d->pending.p, d->pending.len, deadline);
        if (w > 0) {
            memmove(d->pending.p, d->pending.p + w, d->pending.len - (size_t)w);
            d->pending.len -= (size_t)w;
        }
    }
    if (w >= 0 && !d->pending.len)
        w = stream_send(d, b->p, b->len, deadline);
    else if (w >= 0)
        w = 0;
    if (w < 0) {
        if (d->kind == K_UNIX)
            unix_lost(d, strerror(errno));
        else if (!d->complained) {
            say("httptape: log %s: %s; exchanges are counted as dropped\n", d->path,
                strerror(errno));
            d->complained = true;
        }
        d->lost += total;
        return 0;
    }
    size_t off = (size_t)w;
    if (off == b->len)
        return SIZE_MAX;
    size_t lines = count_lines(b->p, off);
    const char *nl = memchr(b->p + off, '\n', b->len - off);
    if (off > 0 && b->p[off - 1] != '\n' && nl) {
        /* Cut inside a line: keep its rest, it goes first next time. */
        if (ht_buf_append(&d->pending, b->p + off, (size_t)(nl + 1 - (b->p + off))) == 0)
            lines++;
    }
    if (lines < total) {
        d->lost += total - lines;
        if (!d->slow_said)
            say("httptape: log %s%s: the reader does not keep up; lines it cannot take "
                "within 100 ms are dropped and counted (statistics record)\n",
                d->kind == K_UNIX ? "socket " : "", d->path);
        d->slow_said = true;
    }
    return lines;
}

/* A write cut short (disk full) may leave part of a line: it is cut off
 * again when no one appended after it, else ended with a newline before
 * the next write so that only that one line is damaged. */
static size_t file_write(struct ht_dest *d, const struct ht_buf *b)
{
    size_t off = 0;
    if (d->fragment) {
        if (write(d->fd, "\n", 1) != 1)
            return 0;
        d->fragment = false;
    }
    while (off < b->len) {
        ssize_t w = write(d->fd, b->p + off, b->len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    if (off == b->len)
        return SIZE_MAX;                /* all of it */
    size_t lines = 0, last_nl = 0;
    for (size_t i = 0; i < off; i++)
        if (b->p[i] == '\n') {
            lines++;
            last_nl = i + 1;
        }
    if (off > last_nl) {
        /* After an O_APPEND write our offset is the end of what we wrote;
         * if the file ends there too, nobody appended since: cut ours. */
        off_t ours = lseek(d->fd, 0, SEEK_CUR);
        struct stat st;
        bool cut = ours >= 0 && fstat(d->fd, &st) == 0 && st.st_size == ours &&
                   ftruncate(d->fd, ours - (off_t)(off - last_nl)) == 0;
        if (!cut)
            d->fragment = true;
    }
    return lines;
}

size_t ht_dest_write(struct ht_dest *d, const struct ht_buf *b)
{
    if (d->fd < 0) {
        d->lost += count_lines(b->p, b->len);
        return 0;
    }
    return d->stream ? stream_write(d, b) : file_write(d, b);
}

void ht_dest_free(struct ht_dest *d)
{
    if (!d)
        return;
    dest_close(d);
    ht_buf_free(&d->pending);
    free(d);
}
