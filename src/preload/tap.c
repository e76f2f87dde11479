/*
 * tap.c - the fd table and tracked-connection lifecycle (tap.h).
 *
 * Connection slots come from a pool and are never returned to malloc: a
 * thread that loaded a slot pointer just before another thread closed the
 * fd still dereferences valid memory, takes the slot's lock, and sees that
 * the slot is no longer live or no longer in the table at that fd.
 *
 * Several fds may share a slot (dup, dup2, F_DUPFD): nfds counts them and
 * the connection ends when the last one is closed.
 */
#include "preload/tap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/conn.h"
#include "core/connid.h"
#include "core/sink.h"
#include "core/stats.h"

#define FDTAB_MAX (1u << 20)
#define POOL_SLAB 64

struct ht_tconn {
    pthread_mutex_t lock;
    bool live;
    unsigned nfds;              /* table entries pointing here */
    _Atomic bool missed[2];     /* bytes passed while we could not look */
    struct ht_tconn *next_free;
    struct ht_tconn *next_deferred;
    enum ht_unseen unseen;      /* bytes out of our reach: not recorded */
    bool forked;                /* shared with a process forked since; no I/O here since */
    struct ht_conn conn;
};

/* Releases that arrived re-entrantly (a signal handler closing a socket
 * while its thread was inside the tap, maybe holding that very lock) wait
 * here, lock-free, for the next caller outside the tap. */
static _Atomic(struct ht_tconn *) deferred;

_Atomic(struct ht_tconn *) *ht_fdtab;
unsigned ht_fdtab_size;

static _Thread_local int in_tap __attribute__((tls_model("initial-exec")));
static unsigned fdtab_cap;
static _Atomic unsigned fd_high;            /* highest fd ever tracked + 1 */
static _Atomic uint64_t conn_seq;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ht_tconn *pool_free;
static struct ht_conn_cfg conn_cfg;
static int tap_pid;
static bool child_sink;             /* forked child with inherited connections */
static _Atomic bool uses_io_uring;
static _Atomic bool said[HT_UNSEEN_N];

void ht_tap_configure(const struct ht_conn_cfg *cfg) { conn_cfg = *cfg; }

int ht_tap_init(void)
{
    struct rlimit rl;
    unsigned cap = 65536;
    /* Size by the hard limit: servers often raise their soft limit later. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        cap = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > FDTAB_MAX ? FDTAB_MAX
                                                                     : (unsigned)rl.rlim_max;
    /* Untouched pages of the mapping cost no memory. */
    void *m = mmap(NULL, (size_t)cap * sizeof(*ht_fdtab), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        return -errno;
    ht_fdtab = m;
    fdtab_cap = cap;
    tap_pid = getpid();
    return 0;
}

void ht_tap_activate(void) { ht_fdtab_size = fdtab_cap; }

bool ht_tap_foreign_process(void)
{
    /* A vfork child shares our memory but has its own pid: it must not
     * change the parent's table. */
    return getpid() != tap_pid;
}

/* One clock read per call: the wall clock is the monotonic one plus an
 * offset read again every 100 ms (per thread), so a step of the system
 * clock shows within that time. */
static void clock_now(struct ht_clock *c)
{
    static _Thread_local int64_t wall_off, next_sync
        __attribute__((tls_model("initial-exec")));
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    c->mono_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    if (c->mono_ns >= next_sync) {
        clock_gettime(CLOCK_REALTIME, &ts);
        wall_off = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec - c->mono_ns;
        next_sync = c->mono_ns + 100000000;
    }
    c->wall_ns = c->mono_ns + wall_off;
}

/* ---- pool ---- */

static struct ht_tconn *pool_get(void)
{
    pthread_mutex_lock(&pool_lock);
    if (!pool_free) {
        struct ht_tconn *slab = calloc(POOL_SLAB, sizeof(*slab));
        for (int i = 0; slab && i < POOL_SLAB; i++) {
            pthread_mutex_init(&slab[i].lock, NULL);
            slab[i].next_free = pool_free;
            pool_free = &slab[i];
        }
    }
    struct ht_tconn *t = pool_free;
    if (t)
        pool_free = t->next_free;
    pthread_mutex_unlock(&pool_lock);
    return t;
}

static void pool_put(struct ht_tconn *t)
{
    pthread_mutex_lock(&pool_lock);
    t->next_free = pool_free;
    pool_free = t;
    pthread_mutex_unlock(&pool_lock);
}

/* ---- endpoints ---- */

static void format_addr(const struct sockaddr *sa, socklen_t len, char *addr, size_t alen, int *port)
{
    *port = -1;
    addr[0] = 0;
    if (!sa || len < sizeof(sa_family_t))
        return;
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const void *)sa;
        inet_ntop(AF_INET, &in->sin_addr, addr, (socklen_t)alen);
        *port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, addr, (socklen_t)alen);
        *port = ntohs(in6->sin6_port);
    } else if (sa->sa_family == AF_UNIX && len > offsetof(struct sockaddr_un, sun_path)) {
        /* Pathname sockets only; unnamed peers and abstract names ('\0'
         * first) are left empty. */
        const struct sockaddr_un *un = (const void *)sa;
        size_t n = len - offsetof(struct sockaddr_un, sun_path);
        if (un->sun_path[0])
            snprintf(addr, alen, "%.*s", (int)strnlen(un->sun_path, n), un->sun_path);
    }
}

/* TCP (IPv4/IPv6) and Unix-domain stream sockets carry HTTP here. */
static const char *transport_of(int fd, const struct sockaddr_storage *local)
{
    if (local->ss_family == AF_INET || local->ss_family == AF_INET6)
        return "tcp";
    if (local->ss_family == AF_UNIX) {
        int type = 0;
        socklen_t tl = sizeof(type);
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 && type == SOCK_STREAM)
            return "unix";
    }
    return NULL;
}

/* ---- lifecycle ---- */

static void mark_unseen(struct ht_tconn *t, enum ht_unseen why);

/* In a process using io_uring, a connection that saw bytes one way only
 * most likely moved the others through the ring: logging it would invent
 * no_response or orphan responses. With t's lock held. */
static void check_one_way(struct ht_tconn *t)
{
    if (atomic_load_explicit(&uses_io_uring, memory_order_relaxed) && !t->unseen &&
        !t->forked && (t->conn.bytes[HT_REQ] == 0) != (t->conn.bytes[HT_RESP] == 0))
        mark_unseen(t, HT_UNSEEN_IO_URING);
}

static void finish_locked(struct ht_tconn *t, uint32_t extra_gaps)
{
    struct ht_clock now;
    clock_now(&now);
    check_one_way(t);
    ht_conn_finish(&t->conn, &now, extra_gaps);
    HT_STAT_ADD(bytes_received, t->conn.bytes[HT_REQ]);
    HT_STAT_ADD(bytes_sent, t->conn.bytes[HT_RESP]);
    t->live = false;
}

/* One fd of t went away; the last one ends the connection. Must not be
 * called with a slot lock or the pool lock held by this thread. */
static void release_now(struct ht_tconn *t)
{
    bool last;
    int saved = errno;
    in_tap++;
    pthread_mutex_lock(&t->lock);
    last = t->nfds <= 1;
    if (t->nfds)
        t->nfds--;
    if (last && t->live)
        finish_locked(t, 0);
    pthread_mutex_unlock(&t->lock);
    if (last)
        pool_put(t);
    in_tap--;
    errno = saved;
}

static void release(struct ht_tconn *t)
{
    if (!in_tap) {
        release_now(t);
        return;
    }
    struct ht_tconn *head = atomic_load(&deferred);
    do
        t->next_deferred = head;
    while (!atomic_compare_exchange_weak(&deferred, &head, t));
}

static void run_deferred(void)
{
    if (in_tap || !atomic_load_explicit(&deferred, memory_order_relaxed))
        return;
    struct ht_tconn *t = atomic_exchange(&deferred, NULL);
    while (t) {
        struct ht_tconn *next = t->next_deferred;
        release_now(t);
        t = next;
    }
}

void ht_tap_finish(struct ht_tconn *t) { release(t); }

struct ht_tconn *ht_tap_detach(int fd)
{
    if ((unsigned)fd >= ht_fdtab_size)
        return NULL;
    return atomic_exchange_explicit(&ht_fdtab[fd], NULL, memory_order_acq_rel);
}

static void note_fd(int fd)
{
    unsigned hi = atomic_load(&fd_high);
    while ((unsigned)fd >= hi && !atomic_compare_exchange_weak(&fd_high, &hi, (unsigned)fd + 1))
        ;
}

/* Put t at fd; whatever was there (a close we did not see) is released. */
static void install(int fd, struct ht_tconn *t)
{
    struct ht_tconn *old = atomic_exchange_explicit(&ht_fdtab[fd], t, memory_order_acq_rel);
    note_fd(fd);
    if (old)
        release(old);
}

/* Exchanges of a connection out of our reach, or still held at a fork by
 * the process that did not go on with the connection, are not ours to
 * log. A forked child starts its writer with its first exchange. */
static void emit(void *ctx, struct ht_exchange *ex)
{
    struct ht_tconn *t = ctx;
    check_one_way(t);
    if (t->unseen || t->forked) {
        ht_exchange_free(ex);
        return;
    }
    if (__builtin_expect(child_sink, 0)) {
        child_sink = false;
        ht_sink_start();
    }
    ht_sink_push(ex);
}

void ht_tap_accepted(int fd, const struct sockaddr *peer, socklen_t peer_len)
{
    if ((unsigned)fd >= ht_fdtab_size || in_tap)
        return;
    int saved = errno;
    int pid = getpid();
    if (pid != tap_pid)
        return;             /* a vfork child: our memory is its parent's */
    struct sockaddr_storage local, pa;
    socklen_t llen = sizeof(local), plen = sizeof(pa);
    struct ht_endpoints ep;

    in_tap++;
    if (getsockname(fd, (struct sockaddr *)&local, &llen))
        goto out;
    ep.transport = transport_of(fd, &local);
    if (!ep.transport)
        goto out;
    if (!peer || peer_len < sizeof(sa_family_t) || peer->sa_family != local.ss_family) {
        if (getpeername(fd, (struct sockaddr *)&pa, &plen))
            plen = 0;
        peer = (struct sockaddr *)&pa;
        peer_len = plen;
    }
    format_addr(peer, peer_len, ep.peer_addr, sizeof(ep.peer_addr), &ep.peer_port);
    format_addr((struct sockaddr *)&local, llen, ep.local_addr, sizeof(ep.local_addr), &ep.local_port);

    if (ht_sink_start())
        goto out;           /* no writer: nothing could be logged */
    struct ht_tconn *t = pool_get();
    if (!t)
        goto out;
    char id[32];
    ht_connid_format(id, sizeof(id), pid, atomic_fetch_add(&conn_seq, 1) + 1);
    pthread_mutex_lock(&t->lock);
    ht_conn_init(&t->conn, &conn_cfg, &ep, id, pid, emit, t);
    t->unseen = HT_UNSEEN_NONE;
    t->forked = false;
    atomic_store(&t->missed[0], false);
    atomic_store(&t->missed[1], false);
    t->nfds = 1;
    t->live = true;
    pthread_mutex_unlock(&t->lock);
    HT_STAT_ADD(connections, 1);
    in_tap--;
    install(fd, t);
    errno = saved;
    return;
out:
    in_tap--;
    errno = saved;
}

void ht_tap_received(int fd)
{
    struct sockaddr_storage local, peer;
    socklen_t llen = sizeof(local), plen = sizeof(peer);
    int saved = errno, listening = 1;
    socklen_t ol = sizeof(listening);
    if ((unsigned)fd >= ht_fdtab_size || in_tap)
        return;
    if (getsockname(fd, (struct sockaddr *)&local, &llen) == 0 &&
        (local.ss_family == AF_INET || local.ss_family == AF_INET6) &&
        getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ol) == 0 && !listening &&
        getpeername(fd, (struct sockaddr *)&peer, &plen) == 0)
        ht_tap_accepted(fd, (struct sockaddr *)&peer, plen);
    errno = saved;
}

void ht_tap_dup(int oldfd, int newfd)
{
    if ((unsigned)newfd >= ht_fdtab_size || oldfd == newfd || in_tap)
        return;
    int saved = errno;
    struct ht_tconn *t = (unsigned)oldfd < ht_fdtab_size ?
        atomic_load_explicit(&ht_fdtab[oldfd], memory_order_acquire) : NULL;
    if (t) {
        struct ht_tconn *slot = t;
        pthread_mutex_lock(&slot->lock);
        if (slot->live)
            slot->nfds++;
        else
            t = NULL;
        pthread_mutex_unlock(&slot->lock);
    }
    if (t) {
        install(newfd, t);      /* releases what newfd held before */
    } else {
        struct ht_tconn *old = ht_tap_detach(newfd);
        if (old)
            release(old);       /* dup2 closed it silently */
    }
    errno = saved;
}

/* Lock the live slot of fd, or NULL (untracked, re-entered, or stale). */
static struct ht_tconn *enter(int fd, enum ht_dir d)
{
    run_deferred();
    struct ht_tconn *t = atomic_load_explicit(&ht_fdtab[fd], memory_order_acquire);
    if (!t)
        return NULL;
    if (in_tap) {
        /* A signal handler did I/O while this thread was inside the tap:
         * we cannot take the lock we may hold. Flag it lock-free; the next
         * caller turns it into a capture gap. */
        atomic_store(&t->missed[d], true);
        return NULL;
    }
    in_tap++;
    pthread_mutex_lock(&t->lock);
    if (!t->live || t->unseen || atomic_load_explicit(&ht_fdtab[fd], memory_order_acquire) != t) {
        pthread_mutex_unlock(&t->lock);
        in_tap--;
        return NULL;
    }
    for (int k = 0; k < 2; k++)
        if (atomic_load_explicit(&t->missed[k], memory_order_relaxed) &&
            atomic_exchange(&t->missed[k], false))
            ht_conn_lost(&t->conn, (enum ht_dir)k);
    t->forked = false;          /* this process goes on with it */
    return t;
}

static void leave(struct ht_tconn *t)
{
    pthread_mutex_unlock(&t->lock);
    in_tap--;
    run_deferred();
}

void ht_tap_data(int fd, enum ht_dir d, const struct iovec *iov, int iovcnt, size_t n)
{
    int saved = errno;
    struct ht_tconn *t = enter(fd, d);
    if (t) {
        struct ht_clock now;
        clock_now(&now);
        for (int i = 0; i < iovcnt && n > 0; i++) {
            size_t take = iov[i].iov_len < n ? iov[i].iov_len : n;
            if (take)
                ht_conn_feed(&t->conn, d, iov[i].iov_base, take, &now, 0);
            n -= take;
        }
        leave(t);
    }
    errno = saved;
}

void ht_tap_unseen(int fd, enum ht_dir d, uint64_t n, enum ht_body_source src,
                   ht_fetch_fn fetch, void *ctx)
{
    int saved = errno;
    struct ht_tconn *t = enter(fd, d);
    if (t) {
        struct ht_clock now;
        clock_now(&now);
        ht_conn_feed_unseen(&t->conn, d, n, src, fetch, ctx, &now);
        leave(t);
    }
    errno = saved;
}

void ht_tap_eof(int fd, enum ht_dir d)
{
    int saved = errno;
    struct ht_tconn *t = enter(fd, d);
    if (t) {
        struct ht_clock now;
        clock_now(&now);
        ht_conn_eof(&t->conn, d, &now);
        leave(t);
    }
    errno = saved;
}

void ht_tap_lost(int fd, enum ht_dir d)
{
    int saved = errno;
    struct ht_tconn *t = enter(fd, d);
    if (t) {
        ht_conn_lost(&t->conn, d);
        leave(t);
    }
    errno = saved;
}

void ht_tap_close_range(unsigned first, unsigned last)
{
    unsigned hi = atomic_load(&fd_high);
    for (unsigned fd = first; fd < hi && fd <= last; fd++) {
        struct ht_tconn *t = ht_tap_detach((int)fd);
        if (t)
            release(t);
    }
}

bool ht_tap_any_tracked(unsigned first)
{
    return first < atomic_load_explicit(&fd_high, memory_order_relaxed);
}

void ht_tap_finish_all(void)
{
    unsigned hi = atomic_load(&fd_high);
    in_tap++;
    for (unsigned fd = 0; fd < hi && fd < ht_fdtab_size; fd++) {
        struct ht_tconn *t = atomic_load(&ht_fdtab[fd]);
        /* trylock: a thread stopped mid-hook at exit must not hang us. */
        if (!t || pthread_mutex_trylock(&t->lock))
            continue;
        if (t->live)
            finish_locked(t, HT_GAP_PROCESS_EXIT);
        pthread_mutex_unlock(&t->lock);
    }
    in_tap--;
}

void ht_tap_after_fork_child(void)
{
    /* The child owns copies of the parent's connections (a forking server
     * accepts in the parent and serves in the child). Only slots whose lock
     * was free at the fork are consistent; the others are forgotten (their
     * memory leaks, by design). Every slot gets a fresh lock. */
    unsigned hi = atomic_load(&fd_high);
    int pid = getpid();
    uint64_t kept = 0;
    bool live = false;
    tap_pid = pid;
    for (unsigned fd = 0; fd < hi && fd < ht_fdtab_size; fd++) {
        struct ht_tconn *t = atomic_load(&ht_fdtab[fd]);
        if (!t)
            continue;
        if (pthread_mutex_trylock(&t->lock)) {
            atomic_store(&ht_fdtab[fd], NULL);
            continue;
        }
        pthread_mutex_unlock(&t->lock);
        pthread_mutex_init(&t->lock, NULL);
        t->conn.pid = pid;
        if (t->live) {
            live = true;
            if (!t->forked)
                kept++;     /* once per slot, however many fds share it */
            t->forked = true;
        }
    }
    /* The child's own accounting (stats were reset) counts what it holds;
     * its writer starts with its first exchange. */
    HT_STAT_ADD(connections, kept);
    child_sink = live;
    atomic_store(&conn_seq, 0);
    pthread_mutex_init(&pool_lock, NULL);
    in_tap = 0;
}

void ht_tap_after_fork_parent(void)
{
    /* Until this process does I/O on a connection again, what it holds is
     * the child's to finish (fork-per-connection: the parent just closes
     * its copy). */
    unsigned hi = atomic_load(&fd_high);
    in_tap++;
    for (unsigned fd = 0; fd < hi && fd < ht_fdtab_size; fd++) {
        struct ht_tconn *t = atomic_load(&ht_fdtab[fd]);
        if (!t)
            continue;
        pthread_mutex_lock(&t->lock);
        if (t->live)
            t->forked = true;
        pthread_mutex_unlock(&t->lock);
    }
    in_tap--;
}

/* ---- bytes out of reach ---- */

static const char *const unseen_say[HT_UNSEEN_N] = {
    [HT_UNSEEN_STDIO] = "httptape: pid %d reads or writes a connection through stdio (fdopen): "
                        "its bytes are out of reach; such connections are not recorded, only "
                        "counted (connections_unseen_stdio)\n",
    [HT_UNSEEN_IO_URING] = "httptape: pid %d uses io_uring (liburing): bytes it moves through "
                           "the ring are out of reach; connections seen one way only are not "
                           "recorded, only counted (connections_unseen_io_uring)\n",
};

static void say_once(enum ht_unseen why)
{
    if (atomic_exchange(&said[why], true))
        return;
    char line[256];
    int n = snprintf(line, sizeof(line), unseen_say[why], getpid());
    if (n > 0)
        (void)!write(STDERR_FILENO, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

/* With t's lock held. */
static void mark_unseen(struct ht_tconn *t, enum ht_unseen why)
{
    if (t->unseen)
        return;
    t->unseen = why;
    if (why == HT_UNSEEN_STDIO)
        HT_STAT_ADD(connections_unseen_stdio, 1);
    else
        HT_STAT_ADD(connections_unseen_io_uring, 1);
    say_once(why);
}

void ht_tap_out_of_reach(int fd, enum ht_unseen why)
{
    int saved = errno;
    struct ht_tconn *t = enter(fd, HT_REQ);
    if (t) {
        mark_unseen(t, why);
        leave(t);
    }
    errno = saved;
}

void ht_tap_uses_io_uring(void)
{
    int saved = errno;
    atomic_store(&uses_io_uring, true);
    say_once(HT_UNSEEN_IO_URING);
    errno = saved;
}
