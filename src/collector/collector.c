/*
 * collector.c - registrations, rings and the loop that drains them
 * (collector.h).
 *
 * Each recorded process is one entry: its ring's mapping and its pidfd.
 * The loop drains every ring, then sleeps in poll(2) on the registration
 * socket and the pidfds: 5 ms while records flow, backing off to 100 ms
 * when all is quiet (a ring holds far more than 5 ms of traffic; sleeping
 * longer costs a server on the same CPU nothing).
 *
 * A ring's memfd must be sealed against shrinking: a process that could
 * shrink it under our mapping could make the collector fault (SIGBUS).
 */
#include "collector/collector.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "capture/ring.h"

#define NAP_BUSY_MS 5
#define NAP_IDLE_MS 100
#define BATCH 4096                  /* records per ring per pass: fairness */
#define PENDING_GIVE_UP_NS 2000000000LL

struct proc {
    int32_t pid;
    int pidfd;
    void *map;
    size_t maplen;
    struct ht_ring ring;
    bool gone;                      /* its pidfd said so */
    bool broken;                    /* ring refused: read no more */
    int64_t pending_since;          /* a record reserved, not committed, since */
};

struct ht_collector {
    struct ht_reg_addr addr;
    int lfd;
    int wait_pidfd;                 /* -1 once that process is gone (or none) */
    struct ht_coll_ops ops;
    struct proc *procs;
    size_t nprocs, cap;
    struct ht_coll_counts counts;
    uint64_t lost_gone_records, lost_gone_bytes;    /* of processes already forgotten */
    int64_t last_tick;
};

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct ht_collector *ht_coll_new(const struct ht_reg_addr *a, int wait_pidfd,
                                 const struct ht_coll_ops *ops, int *err)
{
    struct ht_collector *c = calloc(1, sizeof(*c));
    if (!c) {
        *err = -ENOMEM;
        return NULL;
    }
    c->addr = *a;
    c->ops = *ops;
    c->wait_pidfd = wait_pidfd;
    c->lfd = ht_reg_listen(a);
    if (c->lfd < 0) {
        *err = c->lfd;
        free(c);
        return NULL;
    }
    c->last_tick = mono_ns();
    return c;
}

int ht_coll_add(struct ht_collector *c, int ring_fd, int pid_fd, int32_t pid)
{
    struct stat st;
    int rc = 0;
    void *map = MAP_FAILED;
    int seals = fcntl(ring_fd, F_GET_SEALS);
    if (fstat(ring_fd, &st) || seals < 0 || !(seals & F_SEAL_SHRINK) ||
        st.st_size < (off_t)HT_RING_HDR_SIZE || st.st_size > (off_t)ht_ring_map_size(HT_RING_MAX_DATA)) {
        rc = -EBADMSG;
        goto fail;
    }
    map = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, ring_fd, 0);
    if (map == MAP_FAILED) {
        rc = -errno;
        goto fail;
    }
    struct ht_ring ring;
    if ((rc = ht_ring_open(&ring, map, (size_t)st.st_size)))
        goto fail;
    if (c->nprocs == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 16;
        struct proc *np = realloc(c->procs, ncap * sizeof(*np));
        if (!np) {
            rc = -ENOMEM;
            goto fail;
        }
        c->procs = np;
        c->cap = ncap;
    }
    close(ring_fd);
    c->procs[c->nprocs++] = (struct proc){ .pid = pid, .pidfd = pid_fd, .map = map,
                                           .maplen = (size_t)st.st_size, .ring = ring };
    c->counts.processes++;
    return 0;
fail:
    if (map != MAP_FAILED)
        munmap(map, (size_t)st.st_size);
    close(ring_fd);
    if (pid_fd >= 0)
        close(pid_fd);
    c->counts.refused++;
    return rc;
}

static void take_registrations(struct ht_collector *c)
{
    for (int i = 0; i < 64; i++) {
        struct ht_reg_hello h;
        int r = ht_reg_accept(c->lfd, &c->addr, &h);
        if (r == 0)
            return;
        if (r < 0) {
            if (r == -EPERM || r == -EPROTO)
                c->counts.refused++;
            continue;
        }
        ht_coll_add(c, h.ring_fd, h.pid_fd, h.pid);
    }
}

/* Hand over up to BATCH records of p. Returns how many. */
static size_t drain(struct ht_collector *c, struct proc *p, int64_t now)
{
    size_t n = 0;
    while (!p->broken && n < BATCH) {
        struct ht_ring_rec rec;
        int st = ht_ring_peek(&p->ring, &rec);
        if (st == HT_RING_READY) {
            c->ops.record(c->ops.ctx, p->pid, rec.type, rec.payload, rec.len);
            ht_ring_consume(&p->ring);
            p->pending_since = 0;
            n++;
            continue;
        }
        if (st == HT_RING_PENDING) {
            /* Its writer died mid-record, or stalls: give up on that
             * record after a while (at once if the process is gone). */
            if (!p->pending_since)
                p->pending_since = now;
            if (p->gone || now - p->pending_since > PENDING_GIVE_UP_NS) {
                if (ht_ring_skip_pending(&p->ring)) {
                    p->pending_since = 0;
                    continue;
                }
                p->broken = true;
                c->counts.rings_broken++;
            }
            break;
        }
        if (st < 0) {
            p->broken = true;
            c->counts.rings_broken++;
        }
        break;
    }
    return n;
}

static bool drained(struct proc *p)
{
    struct ht_ring_rec rec;
    return p->broken || ht_ring_peek(&p->ring, &rec) == HT_RING_EMPTY;
}

static void forget(struct ht_collector *c, size_t i)
{
    struct proc *p = &c->procs[i];
    struct ht_ring_counts k;
    ht_ring_counts(&p->ring, &k);
    c->lost_gone_records += k.lost_records;
    c->lost_gone_bytes += k.lost_bytes;
    c->ops.process_gone(c->ops.ctx, p->pid);
    munmap(p->map, p->maplen);
    if (p->pidfd >= 0)
        close(p->pidfd);
    c->procs[i] = c->procs[--c->nprocs];
}

/* Look at the pidfds (non-blocking) and the registration socket; sleep up
 * to ms first. */
static void wait_events(struct ht_collector *c, int ms)
{
    size_t n = 2 + c->nprocs;
    struct pollfd stackfds[64], *fds = n <= 64 ? stackfds : calloc(n, sizeof(*fds));
    if (!fds) {
        poll(NULL, 0, ms);
        return;
    }
    fds[0] = (struct pollfd){ .fd = c->lfd, .events = POLLIN };
    fds[1] = (struct pollfd){ .fd = c->wait_pidfd, .events = POLLIN };
    for (size_t i = 0; i < c->nprocs; i++)
        fds[2 + i] = (struct pollfd){ .fd = c->procs[i].gone ? -1 : c->procs[i].pidfd,
                                      .events = POLLIN };
    if (poll(fds, (nfds_t)n, ms) > 0) {
        if (fds[1].revents) {
            close(c->wait_pidfd);
            c->wait_pidfd = -1;
        }
        for (size_t i = 0; i < c->nprocs; i++)
            if (fds[2 + i].revents)
                c->procs[i].gone = true;
    }
    if (fds != stackfds)
        free(fds);
}

int ht_coll_run(struct ht_collector *c, volatile const int *stop)
{
    int nap = NAP_BUSY_MS;
    for (;;) {
        take_registrations(c);
        int64_t now = mono_ns();
        size_t moved = 0;
        for (size_t i = 0; i < c->nprocs; i++)
            moved += drain(c, &c->procs[i], now);
        /* A gone process is forgotten once everything it wrote is read:
         * its records come before its exit in every sense. */
        for (size_t i = c->nprocs; i-- > 0;)
            if (c->procs[i].gone && drained(&c->procs[i]))
                forget(c, i);
        if (c->ops.tick && now - c->last_tick >= 1000000000LL) {
            c->last_tick = now;
            c->ops.tick(c->ops.ctx);
        }
        if (moved) {
            nap = NAP_BUSY_MS;
            continue;                   /* more may be waiting */
        }
        bool stopping = stop && *stop;
        if ((c->wait_pidfd < 0 && c->nprocs == 0) || stopping) {
            take_registrations(c);
            if (c->nprocs == 0 || stopping)
                break;
        }
        wait_events(c, nap);
        nap = nap * 2 > NAP_IDLE_MS ? NAP_IDLE_MS : nap * 2;
    }
    /* Stopping: what is in the rings still goes out. */
    int64_t now = mono_ns();
    for (size_t i = 0; i < c->nprocs; i++)
        while (drain(c, &c->procs[i], now) > 0)
            ;
    return 0;
}

void ht_coll_counts(const struct ht_collector *c, struct ht_coll_counts *out)
{
    *out = c->counts;
    out->lost_records += c->lost_gone_records;
    out->lost_bytes += c->lost_gone_bytes;
    for (size_t i = 0; i < c->nprocs; i++) {
        struct ht_ring_counts k;
        ht_ring_counts(&c->procs[i].ring, &k);
        out->lost_records += k.lost_records;
        out->lost_bytes += k.lost_bytes;
    }
}

void ht_coll_free(struct ht_collector *c)
{
    if (!c)
        return;
    while (c->nprocs)
        forget(c, c->nprocs - 1);
    free(c->procs);
    if (c->lfd >= 0)
        close(c->lfd);
    if (c->wait_pidfd >= 0)
        close(c->wait_pidfd);
    free(c);
}
