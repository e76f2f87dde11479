/*
 * sink.c - bounded queue + writer thread + sidecar log (sink.h).
 *
 * The queue is a bounded multi-producer ring with per-cell sequence numbers
 * (Vyukov's design): producers claim a slot with one CAS, the single
 * consumer needs none. The writer naps between batches: 20 ms while
 * traffic flows (2 ms after a big batch), backing off to 100 ms when idle,
 * so that a collector on the server's CPU wakes it rarely and it writes big
 * batches. The pusher (the collector's loop, attach's main thread) wakes it
 * early only when the queue reaches HIGH_WATER while it naps: the one push
 * that lands exactly on that slot makes one futex call; a push onto a full
 * queue waits for the writer.
 *
 * Where the lines go (the log file, standard output, a Unix socket, an
 * inherited descriptor) is dest.h's: before every batch the writer asks it
 * to check its destination (a log renamed away by logrotate gets not one
 * batch more); once a second it checks when idle too, and writes a
 * statistics record when drops happened or the interval is up.
 */
#include "core/sink.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/dest.h"
#include "core/event.h"
#include "core/rules.h"
#include "core/stats.h"

#define POLL_MIN_NS 20000000L    /* 20 ms while traffic flows */
#define POLL_RUSH_NS 2000000L    /* 2 ms after a batch of HIGH_WATER / 2 or more */
#define POLL_MAX_NS 100000000L   /* backing off to 100 ms when idle */
#define HIGH_WATER 256           /* queued exchanges that end a nap early */
#define BATCH_MAX 512
#define PUSH_WAIT_MS 1000        /* a full queue waits this long for the writer, then drops */
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
    _Atomic size_t wake_at;     /* the push that fills this slot wakes the writer; 0: none */
    _Atomic uint32_t wake_seq;  /* futex word the writer naps on */
    size_t high;                /* HIGH_WATER, at most half the queue */
    _Atomic int state;          /* 0 idle, 1 starting, 2 running, 3 failed */
    _Atomic bool stop;
    _Atomic bool abandon;       /* exit's flush time is up: start no write */
    _Atomic bool writing;       /* a write(2) to the log is under way */
    pthread_t thread;
    int pid;
    int for_pid;                /* the process the log speaks for; 0: this one */
} s;

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

static void wake_writer(void)
{
    atomic_fetch_add(&s.wake_seq, 1);
    syscall(SYS_futex, &s.wake_seq, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* The writer, with nothing queued: sleep up to ns, or until an app thread
 * fills the queue to s.high (that push sees wake_at and wakes us), or
 * until shutdown wakes us. */
static void nap(long ns)
{
    uint32_t seen = atomic_load(&s.wake_seq);
    atomic_store(&s.wake_at, s.deq + s.high);
    if (atomic_load(&s.enq) - s.deq < s.high && !atomic_load(&s.stop)) {
        struct timespec ts = { ns / 1000000000L, ns % 1000000000L };
        syscall(SYS_futex, &s.wake_seq, FUTEX_WAIT_PRIVATE, seen, &ts, NULL, 0);
    }
    atomic_store(&s.wake_at, 0);
}

static bool queue_push(struct ht_exchange *ex)
{
    size_t pos = atomic_load_explicit(&s.enq, memory_order_relaxed);
    for (;;) {
        struct cell *c = &s.cells[pos & s.mask];
        size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        intptr_t diff = (intptr_t)seq - (intptr_t)pos;
        if (diff == 0) {
            /* seq_cst: ordered against the writer publishing wake_at
             * and then reading enq (see nap()). */
            if (atomic_compare_exchange_weak_explicit(&s.enq, &pos, pos + 1,
                                                      memory_order_seq_cst,
                                                      memory_order_relaxed)) {
                c->ex = ex;
                atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
                if (pos + 1 == atomic_load(&s.wake_at))
                    wake_writer();
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
    atomic_store(&s.wake_at, 0);
    s.high = HIGH_WATER < (s.mask + 1) / 2 ? HIGH_WATER : (s.mask + 1) / 2;
}

bool ht_sink_push(struct ht_exchange *ex)
{
    HT_STAT_ADD(exchanges_seen, 1);
    enum ht_verdict v = ht_rules_final(ex);
    if (v == HT_FILTERED || v == HT_SAMPLED_OUT) {
        HT_STAT_ADD(filtered, v == HT_FILTERED);
        HT_STAT_ADD(sampled_out, v == HT_SAMPLED_OUT);
        ht_exchange_free(ex);
        return true;
    }
    if (atomic_load_explicit(&s.state, memory_order_acquire) == ST_RUNNING) {
        if (queue_push(ex))
            return true;
        /* Full: the pusher is the collector (or attach), not an app
         * thread, and its source (a ring) holds what comes meanwhile:
         * wait for the writer, a bounded time, rather than drop. */
        for (int i = 0; i < PUSH_WAIT_MS; i++) {
            wake_writer();
            struct timespec ts = { 0, 1000000L };
            nanosleep(&ts, NULL);
            if (queue_push(ex))
                return true;
        }
    }
    HT_STAT_ADD(dropped_queue_full, 1);
    ht_exchange_free(ex);
    return false;
}

/* ---- the destination ---- */

void ht_sink_speak_for(int pid) { s.for_pid = pid; }

/* Write b (whole lines) to the destination (dest.h). Returns how many of
 * its lines reached it, SIZE_MAX meaning all of them. */
static size_t log_write(struct ht_dest *d, const struct ht_buf *b)
{
    if (!d)
        return 0;
    /* Announce the write, then look at abandon (seq_cst both ways): either
     * shutdown sees us writing and waits, or we see it gave up. */
    atomic_store(&s.writing, true);
    if (atomic_load(&s.abandon)) {
        atomic_store(&s.writing, false);
        return 0;
    }
    size_t lines = ht_dest_write(d, b);
    atomic_store(&s.writing, false);
    return lines;
}

/* ---- the writer ---- */

struct writer {
    struct ht_dest *log;
    struct ht_buf buf;
    uint64_t dropped_reported;
    int64_t last_stats, last_check;
};

static void write_stats(struct writer *w, bool final)
{
    struct ht_stats_record r;
    ht_buf_reset(&w->buf);
    ht_stats_record_take(&r, wall_now(), s.pid, s.mode, final);
    w->last_stats = r.wall_ns;
    /* Drops count as reported only once the record is in the file. */
    if (ht_event_format_stats(&r, &w->buf) == 0 && log_write(w->log, &w->buf) >= 1)
        w->dropped_reported = r.dropped;
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
    /* Every batch: a log renamed away (logrotate's "create") gets not
     * one batch more. */
    if (w->log)
        ht_dest_check(w->log);
    size_t written = log_write(w->log, &w->buf);
    if (written > lines)
        written = lines;
    HT_STAT_ADD(exchanges_written, written);
    HT_STAT_ADD(dropped_write_error, lines - written);
    if (w->log)
        ht_dest_rotate(w->log);
    return n;
}

/* Once a second: follow a renamed log (when idle too), report drops,
 * periodic stats. */
static void housekeeping(struct writer *w)
{
    int64_t now = wall_now();
    if (now - w->last_check < 1000000000LL)
        return;
    w->last_check = now;
    if (w->log)
        ht_dest_check(w->log);
    bool periodic = s.cfg.stats_interval &&
                    now - w->last_stats >= (int64_t)s.cfg.stats_interval * 1000000000LL;
    if (periodic || ht_stats_dropped() != w->dropped_reported)
        write_stats(w, false);
}

static void *writer_main(void *arg)
{
    struct writer w = { 0 };
    char path[sizeof(s.cfg.log_path) + 16];
    long pause = POLL_MIN_NS;
    (void)arg;
    if (ht_config_log_path(&s.cfg, s.pid, path, sizeof(path)))
        snprintf(path, sizeof(path), "%s", s.cfg.log_path);
    /* Out of memory: every batch is counted as dropped (log_write). */
    w.log = ht_dest_new(path, s.cfg.log_mode, s.cfg.rotate_size, s.cfg.rotate_keep);
    if (w.log)
        ht_dest_check(w.log);
    w.last_stats = w.last_check = wall_now();
    while (!atomic_load_explicit(&s.stop, memory_order_acquire)) {
        size_t n = write_batch(&w);
        housekeeping(&w);
        if (n == 0) {
            nap(pause);
            pause = pause * 2 > POLL_MAX_NS ? POLL_MAX_NS : pause * 2;
        } else if (n < BATCH_MAX) {
            /* A big batch means traffic fast enough to fill the queue:
             * look again soon, so that it never has to wait for us. */
            pause = POLL_MIN_NS;
            nap(n >= s.high / 2 ? POLL_RUSH_NS : POLL_MIN_NS);
        }
    }
    while (write_batch(&w) > 0)
        ;
    write_stats(&w, true);
    ht_buf_free(&w.buf);
    ht_dest_free(w.log);
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
    s.pid = s.for_pid ? s.for_pid : getpid();
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
    wake_writer();                      /* out of its nap now */
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += s.cfg.flush_ms / 1000;
    deadline.tv_nsec += (long)(s.cfg.flush_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    /* Bounded: a stuck disk must not hold the app's exit hostage. When the
     * time is up no new write starts, and the one under way (a write cut
     * by exit would leave half a line) gets a little longer to finish. */
    if (pthread_timedjoin_np(s.thread, NULL, &deadline) == 0) {
        atomic_store(&s.state, ST_IDLE);
        return;
    }
    atomic_store(&s.abandon, true);
    for (int i = 0; i < 500 && atomic_load(&s.writing); i++) {
        struct timespec ts = { 0, 10000000L };
        nanosleep(&ts, NULL);
    }
}
