/*
 * sink.c - bounded queue + writer thread + sidecar log (sink.h).
 *
 * The queue is a bounded multi-producer ring with per-cell sequence numbers
 * (Vyukov's design): producers claim a slot with one CAS, the single
 * consumer needs none. The writer polls: an app thread never wakes it, so
 * pushing costs no system call. Records reach the file within 2 ms while
 * traffic flows; an idle writer backs off to one wake-up every 50 ms.
 *
 * The log is opened O_APPEND|O_CLOEXEC|O_CREAT|O_NOFOLLOW, mode 0600, and
 * written a batch of whole lines per write(2), so processes sharing one log
 * never interleave within a line.
 */
#include "core/sink.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/event.h"
#include "core/stats.h"

#define POLL_MIN_NS 2000000L     /* 2 ms while busy */
#define POLL_MAX_NS 50000000L    /* backing off to 50 ms when idle */
#define BATCH_MAX 512
#define STATS_MIN_INTERVAL_NS 1000000000LL

struct cell {
    _Atomic size_t seq;
    struct ht_exchange *ex;
};

static struct {
    struct ht_config cfg;
    const char *mode;
    struct cell *cells;
    size_t mask;
    _Alignas(64) _Atomic size_t enq;
    _Alignas(64) size_t deq;
    _Atomic int state;          /* 0 idle, 1 starting, 2 running, 3 failed */
    _Atomic bool stop;
    pthread_t thread;
    int fd;
    int pid;
} s = { .fd = -1 };

enum { ST_IDLE, ST_STARTING, ST_RUNNING, ST_FAILED };

static int64_t wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void ht_sink_configure(const struct ht_config *cfg, const char *mode)
{
    s.cfg = *cfg;
    s.mode = mode;
}

/* ---- queue ---- */

static bool queue_push(struct ht_exchange *ex)
{
    size_t pos = atomic_load_explicit(&s.enq, memory_order_relaxed);
    for (;;) {
        struct cell *c = &s.cells[pos & s.mask];
        size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        intptr_t diff = (intptr_t)seq - (intptr_t)pos;
        if (diff == 0) {
            if (atomic_compare_exchange_weak_explicit(&s.enq, &pos, pos + 1,
                                                      memory_order_relaxed,
                                                      memory_order_relaxed)) {
                c->ex = ex;
                atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
                return true;
            }
        } else if (diff < 0) {
            return false;                       /* full */
        } else {
            pos = atomic_load_explicit(&s.enq, memory_order_relaxed);
        }
    }
}

static struct ht_exchange *queue_pop(void)
{
    struct cell *c = &s.cells[s.deq & s.mask];
    size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
    if ((intptr_t)seq - (intptr_t)(s.deq + 1) != 0)
        return NULL;
    struct ht_exchange *ex = c->ex;
    atomic_store_explicit(&c->seq, s.deq + s.mask + 1, memory_order_release);
    s.deq++;
    return ex;
}

static void queue_reset(void)
{
    for (size_t i = 0; i <= s.mask; i++)
        atomic_store_explicit(&s.cells[i].seq, i, memory_order_relaxed);
    atomic_store(&s.enq, 0);
    s.deq = 0;
}

bool ht_sink_push(struct ht_exchange *ex)
{
    HT_STAT_ADD(exchanges_seen, 1);
    if (atomic_load_explicit(&s.state, memory_order_acquire) == ST_RUNNING && queue_push(ex))
        return true;
    HT_STAT_ADD(dropped_queue_full, 1);
    ht_exchange_free(ex);
    return false;
}

/* ---- the log file ---- */

static int open_log(void)
{
    char path[sizeof(s.cfg.log_path) + 16];
    if (ht_config_log_path(&s.cfg, s.pid, path, sizeof(path)))
        return -ENAMETOOLONG;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        int e = errno;
        char msg[sizeof(path) + 128];
        int n = snprintf(msg, sizeof(msg), "httptape: cannot open log %s: %s; "
                         "exchanges will be counted as dropped\n", path, strerror(e));
        if (n > 0)
            (void)!write(STDERR_FILENO, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg));
        return -e;
    }
    return fd;
}

/* Write all of b; 0 or -errno. */
static int write_all(const struct ht_buf *b)
{
    size_t off = 0;
    while (off < b->len) {
        ssize_t w = write(s.fd, b->p + off, b->len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        off += (size_t)w;
    }
    return 0;
}

/* ---- the writer ---- */

struct writer {
    struct ht_buf buf;
    uint64_t dropped_reported;
    int64_t last_stats;
};

static uint64_t dropped_total(void)
{
    return HT_STAT_GET(dropped_queue_full) + HT_STAT_GET(dropped_write_error) +
           HT_STAT_GET(dropped_no_memory);
}

static void write_stats(struct writer *w, bool final)
{
    struct ht_stats_record r;
    ht_buf_reset(&w->buf);
    ht_stats_record_take(&r, wall_now(), s.pid, s.mode, final);
    if (ht_event_format_stats(&r, &w->buf) == 0 && s.fd >= 0)
        (void)write_all(&w->buf);
    w->dropped_reported = r.dropped_queue_full + r.dropped_write_error + r.dropped_no_memory;
    w->last_stats = r.wall_ns;
}

/* Drain up to one batch into the buffer and write it; returns how many
 * exchanges were taken off the queue. */
static size_t write_batch(struct writer *w)
{
    size_t n = 0, lines = 0;
    struct ht_exchange *ex;
    ht_buf_reset(&w->buf);
    while (n < BATCH_MAX && (ex = queue_pop())) {
        n++;
        if (ht_event_format(ex, &w->buf) == 0)
            lines++;
        else
            HT_STAT_ADD(dropped_no_memory, 1);
        ht_exchange_free(ex);
    }
    if (!lines)
        return n;
    if (s.fd >= 0 && write_all(&w->buf) == 0)
        HT_STAT_ADD(exchanges_written, lines);
    else
        HT_STAT_ADD(dropped_write_error, lines);
    return n;
}

static void *writer_main(void *arg)
{
    struct writer w = { 0 };
    long nap = POLL_MIN_NS;
    (void)arg;
    s.fd = open_log();
    while (!atomic_load_explicit(&s.stop, memory_order_acquire)) {
        size_t n = write_batch(&w);
        /* Drops are reported promptly (at most once a second), so a reader
         * sees them near where they happened, not only at exit. */
        if (dropped_total() != w.dropped_reported && wall_now() - w.last_stats >= STATS_MIN_INTERVAL_NS)
            write_stats(&w, false);
        if (n == 0) {
            struct timespec ts = { 0, nap };
            nanosleep(&ts, NULL);
            nap = nap * 2 > POLL_MAX_NS ? POLL_MAX_NS : nap * 2;
        } else {
            nap = POLL_MIN_NS;
        }
    }
    while (write_batch(&w) > 0)
        ;
    write_stats(&w, true);
    ht_buf_free(&w.buf);
    if (s.fd >= 0)
        close(s.fd);
    s.fd = -1;
    return NULL;
}

int ht_sink_start(void)
{
    int expected = ST_IDLE;
    if (!atomic_compare_exchange_strong(&s.state, &expected, ST_STARTING))
        return expected == ST_FAILED ? -EIO : 0;

    size_t cap = 16;
    while (cap < s.cfg.queue_len)
        cap *= 2;
    if (!s.cells) {
        s.cells = calloc(cap, sizeof(*s.cells));
        if (!s.cells)
            goto fail;
        s.mask = cap - 1;
    }
    queue_reset();
    s.pid = getpid();
    atomic_store(&s.stop, false);

    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&s.thread, NULL, writer_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc)
        goto fail;
    atomic_store_explicit(&s.state, ST_RUNNING, memory_order_release);
    return 0;
fail:
    atomic_store(&s.state, ST_FAILED);
    return -ENOMEM;
}

void ht_sink_shutdown(void)
{
    if (atomic_load(&s.state) != ST_RUNNING)
        return;
    atomic_store_explicit(&s.stop, true, memory_order_release);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += s.cfg.flush_ms / 1000;
    deadline.tv_nsec += (long)(s.cfg.flush_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    /* Bounded: a stuck disk must not hold the app's exit hostage. */
    if (pthread_timedjoin_np(s.thread, NULL, &deadline) == 0)
        atomic_store(&s.state, ST_IDLE);
}

void ht_sink_after_fork_child(void)
{
    /* The writer thread was not copied; its fd (if any) is ours to drop.
     * Queued exchanges are the parent's: forgotten, not written twice. */
    if (s.fd >= 0)
        close(s.fd);
    s.fd = -1;
    if (s.cells)
        queue_reset();
    atomic_store(&s.state, ST_IDLE);
    ht_stats_reset();
}
