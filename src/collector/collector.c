/*
 * collector.c - registrations, rings and the loop that drains them
 * (collector.h).
 *
 * Each recorded process is one entry: its ring's mapping and its pidfd.
 * The loop drains every ring, then sleeps in one FUTEX_WAITV over every
 * ring's wake word: 5 ms while records flow, backing off to 100 ms when
 * all is quiet, and woken early by a producer whose record crosses its
 * ring's high-water mark (a quarter full), so a burst never waits for the
 * timer. Registrations and exits (pidfds) are looked at after each nap.
 * A source (attach's BPF ring buffer) is drained on the same passes; with
 * one, the nap is a poll on the sources' fds instead, since a futex cannot
 * wait on an fd.
 *
 * A ring's memfd must be sealed against shrinking: a process that could
 * shrink it under our mapping could make the collector fault (SIGBUS).
 */
#include "collector/collector.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>

#include "capture/ring.h"

#define NAP_BUSY_MS 5
#define NAP_IDLE_MS 100
#define BATCH 4096                  /* records per ring per pass: fairness */
#define MAX_SOURCES 4

struct proc {
    int32_t pid, ppid;
    int pidfd;
    void *map;
    size_t maplen;
    struct ht_ring ring;
    struct ht_skip_slot *skips;
    bool gone;                      /* its pidfd said so */
    bool broken;                    /* ring refused: read no more */

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
    struct ht_coll_source sources[MAX_SOURCES];
    size_t nsources;

    /* Registrations are taken by a thread of their own, blocked in poll on
     * the socket, so that a new ring is read at once, not after a nap: it
     * maps each ring, leaves it in pending[] and rings the doorbell (a
     * futex word the loop's nap waits on with the rings'). */
    pthread_t watcher;
    bool watching;
    int stop_pipe[2];
    pthread_mutex_t lock;           /* pending[], counts.refused */
    struct proc *pending;
    size_t npending, cap_pending;
    _Atomic uint32_t doorbell;
};

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *watch(void *arg);

struct ht_collector *ht_coll_new(const struct ht_reg_addr *a, int wait_pidfd,
                                 const struct ht_coll_ops *ops, int *err)
{
    struct ht_collector *c = calloc(1, sizeof(*c));
    if (!c) {
        *err = -ENOMEM;
        return NULL;
    }
    c->ops = *ops;
    c->wait_pidfd = wait_pidfd;
    c->lfd = -1;
    c->stop_pipe[0] = c->stop_pipe[1] = -1;
    c->last_tick = mono_ns();
    pthread_mutex_init(&c->lock, NULL);
    if (!a)
        return c;
    c->addr = *a;
    c->lfd = ht_reg_listen(a);
    if (c->lfd < 0) {
        *err = c->lfd;
        pthread_mutex_destroy(&c->lock);
        free(c);
        return NULL;
    }
    if (pipe2(c->stop_pipe, O_CLOEXEC) == 0) {
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        c->watching = pthread_create(&c->watcher, NULL, watch, c) == 0;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    return c;
}

/* The parent of pid as /proc says now, or 0. */
static int32_t parent_of(int32_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "re");
    int32_t pp = 0;
    while (f && fgets(buf, sizeof(buf), f))
        if (sscanf(buf, "PPid: %d", &pp) == 1)
            break;
    if (f)
        fclose(f);
    return pp;
}

/* Check and map a ring handed over with its process's pidfd; fds are
 * consumed either way. 0 with *out filled, or -errno. */
static int map_proc(int ring_fd, int pid_fd, int32_t pid, struct proc *out)
{
    struct stat st;
    int rc = 0;
    void *map = MAP_FAILED;
    int seals = fcntl(ring_fd, F_GET_SEALS);
    if (fstat(ring_fd, &st) || seals < 0 || !(seals & F_SEAL_SHRINK) ||
        st.st_size < (off_t)HT_RING_HDR_SIZE ||
        st.st_size > (off_t)ht_reg_map_size(HT_RING_MAX_DATA)) {
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
    if ((size_t)st.st_size != ht_reg_map_size((uint32_t)ring.size)) {
        rc = -EBADMSG;
        goto fail;
    }
    close(ring_fd);
    ht_ring_set_consumer(&ring, (int32_t)getpid());
    ht_ring_heartbeat(&ring, (uint64_t)mono_ns());
    *out = (struct proc){ .pid = pid, .ppid = parent_of(pid), .pidfd = pid_fd, .map = map,
                          .maplen = (size_t)st.st_size,
                          .ring = ring, .skips = ht_reg_skips(map, (uint32_t)ring.size) };
    return 0;
fail:
    if (map != MAP_FAILED)
        munmap(map, (size_t)st.st_size);
    close(ring_fd);
    if (pid_fd >= 0)
        close(pid_fd);
    return rc;
}

static int grow(struct proc **v, size_t *cap, size_t n)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
    struct proc *nv = realloc(*v, ncap * sizeof(*nv));
    if (!nv)
        return -ENOMEM;
    *v = nv;
    *cap = ncap;
    return 0;
}

static void unmap_proc(struct proc *p)
{
    munmap(p->map, p->maplen);
    if (p->pidfd >= 0)
        close(p->pidfd);
}

int ht_coll_add(struct ht_collector *c, int ring_fd, int pid_fd, int32_t pid)
{
    struct proc p;
    int rc = map_proc(ring_fd, pid_fd, pid, &p);
    if (!rc && (rc = grow(&c->procs, &c->cap, c->nprocs)))
        unmap_proc(&p);
    if (rc) {
        pthread_mutex_lock(&c->lock);
        c->counts.refused++;
        pthread_mutex_unlock(&c->lock);
        return rc;
    }
    c->procs[c->nprocs++] = p;
    c->counts.processes++;
    return 0;
}

int ht_coll_add_source(struct ht_collector *c, const struct ht_coll_source *src)
{
    if (c->nsources == MAX_SOURCES)
        return -ENOSPC;
    c->sources[c->nsources++] = *src;
    return 0;
}

/* The watcher thread: registrations in, mapped, left for the loop. */
static void *watch(void *arg)
{
    struct ht_collector *c = arg;
    for (;;) {
        struct pollfd fds[2] = { { .fd = c->lfd, .events = POLLIN },
                                 { .fd = c->stop_pipe[0], .events = POLLIN } };
        if (poll(fds, 2, -1) < 0 && errno != EINTR)
            break;
        if (fds[1].revents)
            break;
        if (!(fds[0].revents & POLLIN))
            continue;
        for (int i = 0; i < 64; i++) {
            struct ht_reg_hello h;
            struct proc p;
            int r = ht_reg_accept(c->lfd, &c->addr, &h);
            if (r == 0)
                break;
            bool ok = r > 0 && map_proc(h.ring_fd, h.pid_fd, h.pid, &p) == 0;
            pthread_mutex_lock(&c->lock);
            if (ok && grow(&c->pending, &c->cap_pending, c->npending) == 0)
                c->pending[c->npending++] = p;
            else if (r < 0 || !ok)
                c->counts.refused++;
            pthread_mutex_unlock(&c->lock);
        }
        atomic_fetch_add(&c->doorbell, 1);
        syscall(SYS_futex, &c->doorbell, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0L);
    }
    return NULL;
}

static size_t drain(struct ht_collector *c, struct proc *p);
static void forget(struct ht_collector *c, size_t i);

/* The rings the watcher mapped become the loop's. */
static void take_registrations(struct ht_collector *c)
{
    if (!c->watching) {
        if (c->lfd < 0)
            return;                     /* no registrations taken */
        /* No watcher thread (it could not start): take them here. */
        for (int i = 0; i < 64; i++) {
            struct ht_reg_hello h;
            int r = ht_reg_accept(c->lfd, &c->addr, &h);
            if (r == 0)
                return;
            if (r < 0) {
                pthread_mutex_lock(&c->lock);
                c->counts.refused++;
                pthread_mutex_unlock(&c->lock);
            } else {
                ht_coll_add(c, h.ring_fd, h.pid_fd, h.pid);
            }
        }
        return;
    }
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->npending; i++) {
        /* The same pid again: it exec'd (a server's hot restart) and made
         * a new ring. The old one is read to its end and forgotten. */
        for (size_t j = c->nprocs; j-- > 0;)
            if (c->procs[j].pid == c->pending[i].pid) {
                while (drain(c, &c->procs[j]) > 0)
                    ;
                forget(c, j);
            }
        if (grow(&c->procs, &c->cap, c->nprocs)) {
            unmap_proc(&c->pending[i]);
            c->counts.refused++;        /* under the lock */
            continue;
        }
        c->procs[c->nprocs++] = c->pending[i];
        c->counts.processes++;
    }
    c->npending = 0;
    pthread_mutex_unlock(&c->lock);
}

/* Hand over up to BATCH records of p. Returns how many. */
static size_t drain(struct ht_collector *c, struct proc *p)
{
    size_t n = 0;
    while (!p->broken && n < BATCH) {
        struct ht_ring_rec rec;
        int st = ht_ring_peek(&p->ring, &rec);
        if (st == HT_RING_READY) {
            c->ops.record(c->ops.ctx, p->pid, p->ppid, rec.type, rec.payload, rec.len);
            ht_ring_consume(&p->ring);
            n++;
            continue;
        }
        if (st == HT_RING_PENDING) {
            /* Its writer has not committed yet. Only once the process is
             * gone is the record given up: a live writer that was merely
             * slow (stopped, preempted, paging) would write its payload
             * into room handed back to another record. */
            if (p->gone) {
                if (ht_ring_skip_pending(&p->ring))
                    continue;
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
    if (p->broken && k.queued) {
        c->lost_gone_records++;         /* what was left unread in it */
        c->lost_gone_bytes += k.queued;
    }
    c->ops.process_gone(c->ops.ctx, p->pid);
    unmap_proc(p);
    c->procs[i] = c->procs[--c->nprocs];
}

int ht_coll_skip(struct ht_collector *c, int32_t pid, uint64_t id, const uint64_t to[2])
{
    for (size_t i = 0; i < c->nprocs; i++) {
        struct proc *p = &c->procs[i];
        if (p->pid != pid)
            continue;
        struct ht_skip_slot *sl = &p->skips[id % HT_SKIP_SLOTS];
        atomic_store_explicit(&sl->id, 0, memory_order_relaxed);
        atomic_thread_fence(memory_order_release);
        atomic_store_explicit(&sl->to[0], to[0], memory_order_relaxed);
        atomic_store_explicit(&sl->to[1], to[1], memory_order_relaxed);
        atomic_store_explicit(&sl->id, id, memory_order_release);
        return 0;
    }
    return -ESRCH;
}

/* With sources: sleep up to ms, or until one's fd says it is filling. */
static void nap_sources(struct ht_collector *c, int ms)
{
    struct pollfd fds[MAX_SOURCES];
    for (size_t i = 0; i < c->nsources; i++)
        fds[i] = (struct pollfd){ .fd = c->sources[i].fd, .events = POLLIN };
    poll(fds, (nfds_t)c->nsources, ms);
}

/* Sleep up to ms, or until a ring fills to its high-water mark: one
 * FUTEX_WAITV over every ring's wake word (at most FUTEX_WAITV_MAX rings;
 * with more, plain sleep). */
static void nap_rings(struct ht_collector *c, int ms)
{
    struct futex_waitv w[FUTEX_WAITV_MAX];
    size_t n = 0;
    bool sleep_ok = true;
    if (c->watching) {
        uint32_t bell = atomic_load(&c->doorbell);
        pthread_mutex_lock(&c->lock);
        sleep_ok = c->npending == 0;
        pthread_mutex_unlock(&c->lock);
        w[n++] = (struct futex_waitv){ .val = bell, .uaddr = (uintptr_t)&c->doorbell,
                                       .flags = FUTEX_32 | FUTEX_PRIVATE_FLAG };
    }
    for (size_t i = 0; i < c->nprocs && n < FUTEX_WAITV_MAX; i++) {
        struct proc *p = &c->procs[i];
        uint32_t *word, val;
        if (p->broken)
            continue;
        sleep_ok &= ht_ring_nap_begin(&p->ring, &word, &val);
        w[n++] = (struct futex_waitv){ .val = val, .uaddr = (uintptr_t)word, .flags = FUTEX_32 };
    }
    if (sleep_ok) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += ms / 1000;
        ts.tv_nsec += (long)(ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        /* Past FUTEX_WAITV_MAX rings the others wake us by the timer only. */
        if (syscall(SYS_futex_waitv, w, (unsigned)n, 0, &ts, CLOCK_MONOTONIC) < 0 &&
            (errno == ENOSYS || errno == EINVAL))
            poll(NULL, 0, ms);
    }
    for (size_t i = 0; i < c->nprocs; i++)
        if (!c->procs[i].broken)
            ht_ring_nap_end(&c->procs[i].ring);
}

/* Look at the pidfds and the registration socket without waiting, after
 * napping up to ms on the rings. */
static void wait_events(struct ht_collector *c, int ms)
{
    if (c->nsources)
        nap_sources(c, ms);
    else
        nap_rings(c, ms);
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
    if (poll(fds, (nfds_t)n, 0) > 0) {
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

int ht_coll_run(struct ht_collector *c, volatile const int *stop, bool standing)
{
    int nap = NAP_BUSY_MS;
    for (;;) {
        take_registrations(c);
        int64_t now = mono_ns();
        size_t moved = 0;
        for (size_t i = 0; i < c->nprocs; i++)
            ht_ring_heartbeat(&c->procs[i].ring, (uint64_t)now);
        for (size_t i = 0; i < c->nprocs; i++)
            moved += drain(c, &c->procs[i]);
        for (size_t i = 0; i < c->nsources; i++)
            moved += c->sources[i].drain(c->sources[i].ctx);
        /* A gone process is forgotten once everything it wrote is read:
         * its records come before its exit in every sense. */
        for (size_t i = c->nprocs; i-- > 0;)
            if (c->procs[i].gone && drained(&c->procs[i]))
                forget(c, i);
        if (c->ops.tick && now - c->last_tick >= 1000000000LL) {
            c->last_tick = now;
            c->ops.tick(c->ops.ctx);
        }
        bool stopping = stop && *stop;
        if (moved && !stopping) {
            nap = NAP_BUSY_MS;
            continue;                   /* more may be waiting */
        }
        if ((!standing && c->wait_pidfd < 0 && c->nprocs == 0) || stopping) {
            take_registrations(c);
            if (c->nprocs == 0 || stopping)
                break;
        }
        wait_events(c, nap);
        nap = nap * 2 > NAP_IDLE_MS ? NAP_IDLE_MS : nap * 2;
    }
    /* Stopping: what is in the rings still goes out, those registered
     * just now included. */
    take_registrations(c);
    for (size_t i = 0; i < c->nprocs; i++)
        while (drain(c, &c->procs[i]) > 0)
            ;
    return 0;
}

void ht_coll_counts(struct ht_collector *c, struct ht_coll_counts *out)
{
    pthread_mutex_lock(&c->lock);
    *out = c->counts;
    pthread_mutex_unlock(&c->lock);
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
    if (c->watching) {
        (void)!write(c->stop_pipe[1], "x", 1);
        pthread_join(c->watcher, NULL);
        take_registrations(c);
        for (size_t i = 0; i < c->nprocs; i++)
            while (drain(c, &c->procs[i]) > 0)
                ;
    }
    if (c->stop_pipe[0] >= 0) {
        close(c->stop_pipe[0]);
        close(c->stop_pipe[1]);
    }
    while (c->nprocs)
        forget(c, c->nprocs - 1);
    free(c->procs);
    free(c->pending);
    pthread_mutex_destroy(&c->lock);
    if (c->lfd >= 0)
        close(c->lfd);
    if (c->wait_pidfd >= 0)
        close(c->wait_pidfd);
    free(c);
}
