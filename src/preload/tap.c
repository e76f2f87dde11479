/*
 * tap.c - the fd table and tracked-connection lifecycle (tap.h); what a
 * connection does is recorded through out.c, nothing is parsed here.
 *
 * Connection slots come from a pool and are never returned to malloc: a
 * thread that loaded a slot pointer just before another thread closed the
 * fd still touches valid memory (the app raced its own close; the bytes
 * it moved are recorded under one of the two connections).
 *
 * Several fds may share a slot (dup, dup2, F_DUPFD): nfds counts them and
 * the connection ends when the last one is closed. The slot lock guards
 * only that lifecycle (accept, dup, close), never the data path, which is
 * lock-free (out.h). A close from a signal handler that interrupted the
 * lifecycle code of its own thread is deferred to the next call outside it.
 */
#include "preload/tap.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "preload/out.h"
#include "preload/real.h"

#define FDTAB_MAX (1u << 20)
#define POOL_SLAB 64
/* A ClientHello's first 43 bytes: record header (5), handshake type and
 * length (4), legacy_version (2), random (32). */
#define HELLO_HEAD 43
#define HELLO_RANDOM 11

struct ht_tconn {
    pthread_mutex_t lock;
    bool live;
    unsigned nfds;              /* table entries pointing here */
    _Atomic bool unseen;        /* bytes out of our reach: records stopped */
    _Atomic bool forked;        /* this process forked since it last touched it */
    _Atomic bool tls;           /* its bytes on the socket are TLS records (RAW) */
    _Atomic uint8_t tls_told;   /* a covered library's session was announced: 1, established: 2 */
    _Atomic(const void *) ssl;  /* memory-BIO SSL bound to it (tls.c), or NULL */
    _Atomic uint8_t hello_n;    /* bytes of hello held (HELLO_HEAD: complete) */
    uint8_t hello[HELLO_HEAD];  /* the client's first bytes: record header up to its random */
    struct ht_tconn *next_free;
    struct ht_tconn *next_deferred;
    struct ht_oconn oc;
};

static _Atomic(struct ht_tconn *) deferred;

_Atomic(struct ht_tconn *) *ht_fdtab;
unsigned ht_fdtab_size;

static _Thread_local int in_tap __attribute__((tls_model("initial-exec")));
static unsigned fdtab_cap;
static _Atomic unsigned fd_high;            /* highest fd ever tracked + 1 */
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ht_tconn *pool_free;
static int tap_pid;
static _Atomic bool said[HT_UNSEEN_N];

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

/* ---- lifecycle ---- */

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
    bool end = last && t->live;
    if (end)
        t->live = false;
    pthread_mutex_unlock(&t->lock);
    if (end && !atomic_load(&t->unseen))
        ht_out_close(&t->oc, atomic_load(&t->forked));
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

/* TCP (IPv4/IPv6) and Unix-domain stream sockets carry HTTP here. */
static bool carries_http(int fd, const struct sockaddr_storage *local)
{
    if (local->ss_family == AF_INET || local->ss_family == AF_INET6)
        return true;
    if (local->ss_family == AF_UNIX) {
        int type = 0;
        socklen_t tl = sizeof(type);
        return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 && type == SOCK_STREAM;
    }
    return false;
}

void ht_tap_accepted(int fd, const struct sockaddr *peer, socklen_t peer_len)
{
    if ((unsigned)fd >= ht_fdtab_size || in_tap)
        return;
    int saved = errno;
    if (getpid() != tap_pid)
        return;             /* a vfork child: our memory is its parent's */
    struct sockaddr_storage local, pa;
    socklen_t llen = sizeof(local), plen = sizeof(pa);

    in_tap++;
    if (getsockname(fd, (struct sockaddr *)&local, &llen) || !carries_http(fd, &local))
        goto out;
    if (!peer || peer_len < sizeof(sa_family_t) || peer->sa_family != local.ss_family) {
        if (getpeername(fd, (struct sockaddr *)&pa, &plen))
            plen = 0;
        peer = (struct sockaddr *)&pa;
        peer_len = plen;
    }
    int started = ht_out_start();
    if (started && started != -EAGAIN)
        goto out;           /* no collector: nothing could be recorded */
    struct ht_tconn *t = pool_get();
    if (!t)
        goto out;
    pthread_mutex_lock(&t->lock);
    ht_out_open(&t->oc, fd, (struct sockaddr *)&local, llen, peer, peer_len);
    atomic_store(&t->unseen, false);
    atomic_store(&t->forked, false);
    atomic_store(&t->tls, false);
    atomic_store(&t->tls_told, 0);
    atomic_store(&t->ssl, NULL);
    atomic_store(&t->hello_n, 0);
    t->nfds = 1;
    t->live = true;
    pthread_mutex_unlock(&t->lock);
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
        in_tap++;
        pthread_mutex_lock(&slot->lock);
        if (slot->live)
            slot->nfds++;
        else
            t = NULL;
        pthread_mutex_unlock(&slot->lock);
        in_tap--;
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

/* The live slot of fd, or NULL (untracked, or out of reach). Lock-free. */
uint64_t ht_tap_id(int fd)
{
    /* Slots are never freed: a concurrent close leaves this readable. */
    struct ht_tconn *t = atomic_load_explicit(&ht_fdtab[fd], memory_order_acquire);
    return t ? t->oc.id : 0;
}

bool ht_tap_same(int fd, uint64_t tok, enum ht_dir d, uint64_t n)
{
    uint64_t now = ht_tap_token(fd);
    if (__builtin_expect(now == tok, 1))
        return true;
    if (tok) {
        int saved = errno;
        ht_out_stale(fd, tok, d, n);
        errno = saved;
    }
    return false;
}

static inline struct ht_tconn *slot_of(int fd)
{
    run_deferred();
    struct ht_tconn *t = atomic_load_explicit(&ht_fdtab[fd], memory_order_acquire);
    if (!t || atomic_load_explicit(&t->unseen, memory_order_relaxed))
        return NULL;
    if (__builtin_expect(atomic_load_explicit(&t->forked, memory_order_relaxed), 0))
        atomic_store(&t->forked, false);        /* this process goes on with it */
    return t;
}

/* The client's first bytes are a TLS handshake record: 0x16 (handshake),
 * then 0x03 (the major version of every TLS and SSLv3). No HTTP/1.x
 * request starts with 0x16. */
static bool starts_tls(const struct iovec *iov, int iovcnt, size_t n)
{
    uint8_t b[2];
    size_t got = 0;
    for (int i = 0; i < iovcnt && got < 2 && got < n; i++)
        for (size_t j = 0; j < iov[i].iov_len && got < 2 && got < n; j++)
            b[got++] = ((const uint8_t *)iov[i].iov_base)[j];
    return got >= 1 && b[0] == 0x16 && (got < 2 || b[1] == 0x03);
}

/* Keep the head of the client's first TLS record (up to the ClientHello's
 * random), which binds a memory-BIO SSL to its connection
 * (ht_tap_tls_find). Only the thread reading the socket writes it;
 * hello_n, stored last, publishes it. */
static void keep_hello(struct ht_tconn *t, const struct iovec *iov, int iovcnt, size_t n)
{
    unsigned at = atomic_load_explicit(&t->hello_n, memory_order_relaxed);
    for (int i = 0; i < iovcnt && at < HELLO_HEAD && n > 0; i++) {
        size_t k = iov[i].iov_len < n ? iov[i].iov_len : n;
        if (k > HELLO_HEAD - at)
            k = HELLO_HEAD - at;
        memcpy(t->hello + at, iov[i].iov_base, k);
        at += (unsigned)k;
        n -= k;
    }
    atomic_store_explicit(&t->hello_n, (uint8_t)at, memory_order_release);
}

void ht_tap_data(int fd, enum ht_dir d, const struct iovec *iov, int iovcnt, size_t n)
{
    int saved = errno;
    struct ht_tconn *t = slot_of(fd);
    if (t) {
        bool tls = atomic_load_explicit(&t->tls, memory_order_relaxed);
        if (!tls && d == HT_REQ && atomic_load_explicit(&t->oc.off[HT_REQ], memory_order_relaxed) == 0 &&
            starts_tls(iov, iovcnt, n)) {
            atomic_store(&t->tls, true);
            tls = true;
        }
        if (tls) {
            if (d == HT_REQ && atomic_load_explicit(&t->hello_n, memory_order_relaxed) < HELLO_HEAD)
                keep_hello(t, iov, iovcnt, n);
            ht_out_raw(&t->oc, fd, d, iov, iovcnt, n);
        } else {
            ht_out_data(&t->oc, fd, d, iov, iovcnt, n);
        }
    }
    errno = saved;
}

void ht_tap_tls_plain(int fd, enum ht_dir d, const void *buf, size_t n)
{
    int saved = errno;
    struct ht_tconn *t = slot_of(fd);
    if (t) {
        struct iovec v = { (void *)buf, n };
        atomic_store_explicit(&t->tls, true, memory_order_relaxed);
        ht_out_data(&t->oc, fd, d, &v, 1, n);
    }
    errno = saved;
}

void ht_tap_tls_used(int fd, void (*fill)(const void *ssl, struct ht_rec_tls *r), const void *ssl,
                     bool established)
{
    struct ht_tconn *t = slot_of(fd);
    uint8_t want = established ? 2 : 1;
    if (!t || atomic_load_explicit(&t->tls_told, memory_order_relaxed) >= want)
        return;
    uint8_t had = atomic_exchange(&t->tls_told, want);
    if (had >= want) {
        atomic_store(&t->tls_told, had);
        return;
    }
    int saved = errno;
    struct ht_rec_tls r;
    memset(&r, 0, sizeof(r));
    fill(ssl, &r);
    atomic_store(&t->tls, true);
    ht_out_tls(&t->oc, fd, &r);
    errno = saved;
}

/* Does t's first record hold a ClientHello whose random is r? */
static bool hello_is(struct ht_tconn *t, const uint8_t r[32])
{
    if (atomic_load_explicit(&t->hello_n, memory_order_acquire) < HELLO_HEAD)
        return false;
    const uint8_t *h = t->hello;
    unsigned rec = (unsigned)h[3] << 8 | h[4];
    /* A record too short to hold the random whole (a ClientHello split in
     * tiny records) binds nothing. */
    return h[0] == 0x16 && h[5] == 1 && rec >= HELLO_HEAD - 5 &&
           memcmp(h + HELLO_RANDOM, r, 32) == 0;
}

int ht_tap_tls_find(const void *ssl, const uint8_t random[32])
{
    struct ht_tconn *found = NULL;
    int fd = -1;
    unsigned high = atomic_load_explicit(&fd_high, memory_order_relaxed);
    if (high > ht_fdtab_size)
        high = ht_fdtab_size;
    for (unsigned i = 0; i < high; i++) {
        struct ht_tconn *t = atomic_load_explicit(&ht_fdtab[i], memory_order_acquire);
        if (!t || t == found || atomic_load_explicit(&t->unseen, memory_order_relaxed) ||
            !atomic_load_explicit(&t->tls, memory_order_relaxed) ||
            atomic_load_explicit(&t->ssl, memory_order_relaxed) || !hello_is(t, random))
            continue;
        if (found)
            return -1;      /* two connections carried it: neither is sure */
        found = t;
        fd = (int)i;
    }
    const void *none = NULL;
    if (!found || !atomic_compare_exchange_strong(&found->ssl, &none, ssl))
        return -1;
    return fd;
}

bool ht_tap_tls_bound(int fd, const void *ssl)
{
    if (!ht_tracked(fd))
        return false;
    struct ht_tconn *t = atomic_load_explicit(&ht_fdtab[fd], memory_order_acquire);
    return t && atomic_load_explicit(&t->ssl, memory_order_relaxed) == ssl;
}

/* Socket bytes moved unseen on a TLS connection are ciphertext: counted
 * in its raw stream, never fed as plaintext. */
static bool raw_unseen(struct ht_tconn *t, int fd, enum ht_dir d, uint64_t n)
{
    if (!atomic_load_explicit(&t->tls, memory_order_relaxed))
        return false;
    struct iovec none = { NULL, 0 };
    if (n <= SIZE_MAX)
        ht_out_raw(&t->oc, fd, d, &none, 0, (size_t)n);
    return true;
}

void ht_tap_unseen(int fd, enum ht_dir d, uint64_t n)
{
    int saved = errno;
    struct ht_tconn *t = slot_of(fd);
    if (t && !raw_unseen(t, fd, d, n))
        ht_out_unseen(&t->oc, fd, d, n, HT_UNSEEN_SPLICE);
    errno = saved;
}

void ht_tap_sent_file(int fd, int in_fd, int64_t file_off, uint64_t n)
{
    int saved = errno;
    struct ht_tconn *t = slot_of(fd);
    if (t)
        ht_out_file(&t->oc, fd, in_fd, file_off, n);
    errno = saved;
}

void ht_tap_eof(int fd, enum ht_dir d)
{
    int saved = errno;
    struct ht_tconn *t = slot_of(fd);
    if (t)
        ht_out_eof(&t->oc, fd, d);
    errno = saved;
}

void ht_tap_lost(int fd, enum ht_dir d, uint64_t n)
{
    int saved = errno;
    struct ht_tconn *t = slot_of(fd);
    if (t && !raw_unseen(t, fd, d, n))
        ht_out_unseen(&t->oc, fd, d, n, HT_UNSEEN_CUT);
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

void ht_tap_after_fork_child(void)
{
    /* The child owns copies of the parent's connections (a forking server
     * accepts in the parent and serves in the child): it records them in
     * a ring of its own from its first call on them (out.c). Only slots
     * whose lock was free at the fork are consistent; the others are
     * forgotten (their memory leaks, by design). Every lock is new. */
    unsigned hi = atomic_load(&fd_high);
    tap_pid = getpid();
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
        atomic_store(&t->forked, false);
    }
    pthread_mutex_init(&pool_lock, NULL);
    in_tap = 0;
    for (int i = 0; i < HT_UNSEEN_N; i++)
        atomic_store(&said[i], false);
    ht_out_after_fork_child();
}

void ht_tap_after_fork_parent(void)
{
    /* Until this process touches a connection again, a child may be the
     * one going on with it (fork-per-connection: the parent only closes
     * its copy). */
    unsigned hi = atomic_load(&fd_high);
    for (unsigned fd = 0; fd < hi && fd < ht_fdtab_size; fd++) {
        struct ht_tconn *t = atomic_load(&ht_fdtab[fd]);
        if (t)
            atomic_store(&t->forked, true);
    }
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
        (void)!REAL(write)(STDERR_FILENO, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

void ht_tap_out_of_reach(int fd, enum ht_unseen why)
{
    int saved = errno;
    struct ht_tconn *t = slot_of(fd);
    if (t && !atomic_exchange(&t->unseen, true)) {
        ht_out_unreachable(&t->oc, fd, why == HT_UNSEEN_STDIO ? HT_UNREACH_STDIO : HT_UNREACH_IO_URING);
        say_once(why);
    }
    errno = saved;
}

void ht_tap_uses_io_uring(void)
{
    int saved = errno;
    if (!ht_out_start())
        ht_out_process_uses_io_uring();
    say_once(HT_UNSEEN_IO_URING);
    errno = saved;
}
