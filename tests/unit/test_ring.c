/*
 * test_ring.c - the shared-memory record ring: records come out whole and
 * in order across many wrap-arounds, a full ring drops and counts instead
 * of blocking, a record reserved but not committed holds back the ones
 * after it, many producer threads and a producer in another process lose
 * nothing that is not counted, a napping consumer is woken at high water,
 * and a mapping the other process scribbled on is refused, never trusted.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "capture/ring.h"
#include "tap.h"

#define DATA (64u << 10)

static void *new_map(size_t len, bool shared)
{
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS, -1, 0);
    return m == MAP_FAILED ? NULL : m;
}

/* A new ring of DATA bytes, seen from both sides: p writes, c reads. */
static void *ring_pair(struct ht_ring *p, struct ht_ring *c, bool shared)
{
    void *m = new_map(ht_ring_map_size(DATA), shared);
    ht_ring_format(p, m, ht_ring_map_size(DATA), DATA, 1);
    ht_ring_open(c, m, ht_ring_map_size(DATA));
    return m;
}

/* A payload that says who wrote it: seq, then bytes derived from it. */
static void fill(uint8_t *p, uint32_t len, uint64_t seq)
{
    for (uint32_t i = 0; i < len; i++)
        p[i] = (uint8_t)(seq * 31 + i);
    if (len >= 8)
        memcpy(p, &seq, 8);
}

static bool check(const uint8_t *p, uint32_t len, uint64_t seq)
{
    if (len >= 8) {
        uint64_t got;
        memcpy(&got, p, 8);
        if (got != seq)
            return false;
    }
    for (uint32_t i = len >= 8 ? 8 : 0; i < len; i++)
        if (p[i] != (uint8_t)(seq * 31 + i))
            return false;
    return true;
}

static bool put(struct ht_ring *r, uint16_t type, uint32_t len, uint64_t seq)
{
    struct ht_ring_res res;
    if (!ht_ring_reserve(r, type, len, &res))
        return false;
    fill(res.payload, len, seq);
    ht_ring_commit(r, &res);
    return true;
}

static void test_layout(void)
{
    size_t len = ht_ring_map_size(DATA);
    void *m = new_map(len, false);
    struct ht_ring r, c;
    tap_ok(ht_ring_format(&r, m, len, DATA + 1, 1) == -EINVAL &&
           ht_ring_format(&r, m, len, 4096, 1) == -EINVAL &&
           ht_ring_format(&r, m, len - 1, DATA, 1) == -EINVAL,
           "ring: sizes that are not a power of two in range, or a short mapping, are refused");
    tap_ok(ht_ring_open(&c, m, len) == -EBADMSG, "ring: a mapping never formatted is refused");
    tap_ok(ht_ring_format(&r, m, len, DATA, 4242) == 0 && ht_ring_open(&c, m, len) == 0 &&
           c.size == DATA, "ring: a formatted ring opens on the consumer side");
    tap_ok(ht_ring_open(&c, m, len - 1) == -EBADMSG,
           "ring: a mapping shorter than the header says is refused");
    struct ht_ring_counts k;
    ht_ring_counts(&c, &k);
    tap_ok(k.pid == 4242 && k.queued == 0 && k.lost_records == 0, "ring: the producer's pid is in the header");
    munmap(m, len);
}

/* Lengths 0..max in a pattern that lands records on every offset, so
 * padding before the end is exercised many times over. */
static void test_wrap(void)
{
    size_t len = ht_ring_map_size(DATA);
    struct ht_ring p, c;
    void *m = ring_pair(&p, &c, false);
    uint64_t wrote = 0, read = 0, bytes = 0;
    bool ok = true;
    for (int round = 0; round < 4000 && ok; round++) {
        for (int k = 0; k < 3; k++) {
            uint32_t l = (uint32_t)((wrote * 977) % (HT_RING_MAX_REC(DATA) + 1));
            ok &= put(&p, (uint16_t)(wrote % 7 + 1), l, wrote);
            wrote++;
            bytes += l;
        }
        struct ht_ring_rec rec;
        int st;
        while ((st = ht_ring_peek(&c, &rec)) == HT_RING_READY) {
            uint32_t l = (uint32_t)((read * 977) % (HT_RING_MAX_REC(DATA) + 1));
            ok &= rec.len == l && rec.type == read % 7 + 1 && check(rec.payload, rec.len, read);
            ht_ring_consume(&c);
            read++;
        }
        ok &= st == HT_RING_EMPTY;
    }
    tap_ok(ok && read == wrote, "ring: %llu records (%llu MiB) through a 64 KiB ring come out whole, in order",
           (unsigned long long)read, (unsigned long long)(bytes >> 20));
    munmap(m, len);
}

static void test_full(void)
{
    size_t len = ht_ring_map_size(DATA);
    struct ht_ring p, c;
    void *m = ring_pair(&p, &c, false);
    unsigned n = 0;
    while (put(&p, 1, 1000, n) && n < 1000)
        n++;
    struct ht_ring_counts k;
    ht_ring_counts(&c, &k);
    tap_ok(n > 50 && n < 70 && k.lost_records == 1 && k.lost_bytes == 1000,
           "ring: a full ring refuses the next record and counts it (%u fit, %llu lost)", n,
           (unsigned long long)k.lost_records);
    tap_ok(!put(&p, 1, HT_RING_MAX_REC(DATA) + 1, 0), "ring: a record over the size limit is refused");
    struct ht_ring_rec rec;
    unsigned got = 0;
    while (ht_ring_peek(&c, &rec) == HT_RING_READY) {
        got += check(rec.payload, rec.len, got);
        ht_ring_consume(&c);
    }
    tap_ok(got == n && put(&p, 1, 1000, 0), "ring: after the consumer drains it, there is room again");
    munmap(m, len);
}

static void test_pending(void)
{
    size_t len = ht_ring_map_size(DATA);
    struct ht_ring p, c;
    void *m = ring_pair(&p, &c, false);
    struct ht_ring_res a, b;
    ht_ring_reserve(&p, 1, 16, &a);
    ht_ring_reserve(&p, 2, 16, &b);
    fill(b.payload, 16, 2);
    ht_ring_commit(&p, &b);
    struct ht_ring_rec rec;
    tap_ok(ht_ring_peek(&c, &rec) == HT_RING_PENDING,
           "ring: a committed record waits behind one reserved before it");
    fill(a.payload, 16, 1);
    ht_ring_commit(&p, &a);
    int st1 = ht_ring_peek(&c, &rec);
    bool first = st1 == HT_RING_READY && rec.type == 1 && check(rec.payload, 16, 1);
    ht_ring_consume(&c);
    int st2 = ht_ring_peek(&c, &rec);
    bool second = st2 == HT_RING_READY && rec.type == 2 && check(rec.payload, 16, 2);
    ht_ring_consume(&c);
    tap_ok(first && second, "ring: records come out in reservation order, not commit order");

    /* A producer that never commits (its thread died mid-record). */
    ht_ring_reserve(&p, 3, 40, &a);
    put(&p, 4, 8, 9);
    bool skipped = ht_ring_peek(&c, &rec) == HT_RING_PENDING && ht_ring_skip_pending(&c);
    struct ht_ring_counts k;
    ht_ring_counts(&c, &k);
    tap_ok(skipped && ht_ring_peek(&c, &rec) == HT_RING_READY && rec.type == 4 && k.lost_records == 1,
           "ring: a pending record can be skipped, counted as lost, and the next one read");
    munmap(m, len);
}

/* ---- many producers ---- */

#define THREADS 4
#define PER_THREAD 200000

struct mt {
    struct ht_ring *r;
    int id;
    _Atomic unsigned long refused;
};

static _Atomic int producers_done;

static void *producer(void *arg)
{
    struct mt *t = arg;
    for (uint64_t i = 0; i < PER_THREAD; i++) {
        uint64_t seq = (uint64_t)t->id << 40 | i;
        /* Even threads try again when the ring is full (bounded), so
         * every one of their records must come out. */
        bool ok = false;
        for (int k = 0; !ok && k < (t->id % 2 ? 1 : 1000000); k++)
            if (!(ok = put(t->r, (uint16_t)(t->id + 1), (uint32_t)(8 + i % 200), seq)))
                sched_yield();
        if (!ok)
            atomic_fetch_add(&t->refused, 1);
    }
    atomic_fetch_add(&producers_done, 1);
    return NULL;
}

static void test_threads(void)
{
    size_t len = ht_ring_map_size(DATA);
    struct ht_ring p, c;
    void *m = ring_pair(&p, &c, false);
    struct mt t[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        t[i] = (struct mt){ .r = &p, .id = i };
        pthread_create(&th[i], NULL, producer, &t[i]);
    }
    uint64_t next[THREADS] = { 0 }, got = 0;
    bool ok = true;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (ok) {
        struct ht_ring_rec rec;
        int st = ht_ring_peek(&c, &rec);
        if (st == HT_RING_READY) {
            uint64_t seq;
            memcpy(&seq, rec.payload, 8);
            int id = (int)(seq >> 40);
            uint64_t i = seq & ((1ull << 40) - 1);
            ok &= id >= 0 && id < THREADS && rec.type == id + 1 && i >= next[id] &&
                  rec.len == 8 + i % 200 && check(rec.payload, rec.len, seq);
            if (ok)
                next[id] = i + 1;
            got++;
            ht_ring_consume(&c);
            continue;
        }
        ok &= st == HT_RING_EMPTY || st == HT_RING_PENDING;
        /* Producers done and, after that, the ring empty: all is read. */
        if (atomic_load(&producers_done) == THREADS && ht_ring_peek(&c, &rec) == HT_RING_EMPTY)
            break;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec > 60)
            break;              /* bounded: a hang is a failure below */
    }
    unsigned long refused = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        refused += atomic_load(&t[i].refused);
    }
    struct ht_ring_counts k;
    ht_ring_counts(&c, &k);
    tap_ok(ok && next[0] == PER_THREAD && next[2] == PER_THREAD,
           "ring: producers that wait for room get every record through, in order");
    /* The ring counts every refusal, retries included. */
    tap_ok(ok && got + refused == (uint64_t)THREADS * PER_THREAD && k.lost_records >= refused,
           "ring: %d threads x %d records: each thread's come out in order, read + counted lost = "
           "written (%llu read, %lu lost)", THREADS, PER_THREAD, (unsigned long long)got, refused);
    munmap(m, len);
}

/* ---- another process ---- */

static void test_process(void)
{
    size_t len = ht_ring_map_size(DATA);
    struct ht_ring p, c;
    void *m = ring_pair(&p, &c, true);
    const uint64_t n = 300000;
    pid_t pid = fork();
    if (pid == 0) {
        /* What does not fit is counted in the ring's header. */
        for (uint64_t i = 0; i < n; i++)
            put(&p, 5, (uint32_t)(8 + i % 300), i);
        _exit(0);
    }
    uint64_t next = 0, got = 0;
    bool ok = true, exited = false;
    int status = 0;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (ok) {
        struct ht_ring_rec rec;
        int st = ht_ring_peek(&c, &rec);
        if (st == HT_RING_READY) {
            uint64_t seq;
            memcpy(&seq, rec.payload, 8);
            ok &= seq >= next && rec.len == 8 + seq % 300 && check(rec.payload, rec.len, seq);
            next = seq + 1;
            got++;
            ht_ring_consume(&c);
            continue;
        }
        if (exited && st == HT_RING_EMPTY)
            break;
        if (!exited && waitpid(pid, &status, WNOHANG) == pid)
            exited = true;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec > 60)
            break;
        ht_ring_nap(&c, 1000000);
    }
    if (!exited)
        waitpid(pid, &status, 0);
    struct ht_ring_counts k;
    ht_ring_counts(&c, &k);
    tap_ok(ok && WIFEXITED(status) && got + k.lost_records == n,
           "ring: a producer in another process: %llu read + %llu counted lost = %llu written",
           (unsigned long long)got, (unsigned long long)k.lost_records, (unsigned long long)n);
    munmap(m, len);
}

static void *late_filler(void *arg)
{
    struct ht_ring *p = arg;
    struct timespec ts = { 0, 100000000L };
    nanosleep(&ts, NULL);
    for (uint64_t i = 0; i < 200; i++)
        put(p, 1, 200, i);     /* 200 x 208 bytes: past a quarter of the ring */
    return NULL;
}

static void test_wake(void)
{
    size_t len = ht_ring_map_size(DATA);
    struct ht_ring p, c;
    void *m = ring_pair(&p, &c, false);
    pthread_t th;
    pthread_create(&th, NULL, late_filler, &p);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    ht_ring_nap(&c, 20L * 1000000000L);
    clock_gettime(CLOCK_MONOTONIC, &b);
    pthread_join(th, NULL);
    tap_ok(b.tv_sec - a.tv_sec < 10,
           "ring: a consumer napping for 20 s is woken when producers fill the ring to high water");
    munmap(m, len);
}

/* The other process wrote nonsense where the ring's state lives. */
static void test_hostile(void)
{
    size_t len = ht_ring_map_size(DATA);
    struct ht_ring p, c;
    uint8_t *m = ring_pair(&p, &c, false);
    put(&p, 1, 32, 1);
    struct ht_ring_rec rec;
    /* The frame claims a length running past the end of the data. */
    uint32_t *state = (uint32_t *)(m + HT_RING_HDR_SIZE);
    uint32_t saved = *state;
    *state = (1u << 31) | (DATA - 4);
    tap_ok(ht_ring_peek(&c, &rec) == -EBADMSG, "ring: a frame longer than the ring is refused");
    *state = saved;
    tap_ok(ht_ring_peek(&c, &rec) == HT_RING_READY, "ring: the same frame, restored, reads");
    /* Changed again between peek and consume: the consumer frees what it checked. */
    *state = (1u << 31) | (DATA / 2);
    ht_ring_consume(&c);
    tap_ok(c.tail == 8 + 32, "ring: consume frees the length peek checked, not what the mapping says now");
    /* head beyond tail + size */
    uint64_t *head = (uint64_t *)(m + 64);
    *head = c.tail + DATA + 8;
    tap_ok(ht_ring_peek(&c, &rec) == -EBADMSG, "ring: a head more than a ring ahead of the tail is refused");
    munmap(m, len);
}

int main(void)
{
    test_layout();
    test_wrap();
    test_full();
    test_pending();
    test_threads();
    test_process();
    test_wake();
    test_hostile();
    return tap_done();
}
