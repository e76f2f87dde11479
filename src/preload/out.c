/*
 * out.c - records into this process's ring (out.h).
 *
 * Offsets: each direction of a connection counts its bytes (one atomic
 * add per call), and every record says which range it covers. A record
 * the ring had no room for is simply not there: the collector sees the
 * jump in the offsets and marks the exchange, so a full ring never blocks
 * an app thread and never loses bytes silently.
 */
#include "preload/out.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "capture/register.h"
#include "capture/ring.h"
#include "preload/real.h"
#include "preload/spawn.h"

#define DATA_CHUNK (64u << 10)      /* payload bytes per DATA record at most */

enum { ST_NONE, ST_STARTING, ST_READY, ST_FAILED };

static struct {
    struct ht_out_cfg cfg;
    struct ht_reg_addr addr;        /* the collector we registered with (or started) */
    bool have_addr;
    _Atomic int state;
    /* The ring records go to: one of two, so that a new one (a collector
     * that died was replaced) can be put in place while threads still
     * finish records in the old one, whose mapping is kept. */
    struct out_ring {
        struct ht_ring ring;
        void *map;
        struct ht_skip_slot *skips; /* written by the collector */
    } slots[2];
    _Atomic(struct out_ring *) cur;
    _Atomic uint32_t gen;           /* rings made in this process so far */
    _Atomic uint64_t next_check;    /* when to look at the collector next (CLOCK_MONOTONIC ns) */
    uint64_t registered_at;         /* when the current ring was handed over */
    _Atomic uint64_t retry_at;      /* no registration before this (backlog full) */
    _Atomic uint64_t pre_lost;      /* records dropped while no ring was ready */
    int32_t pid;
    _Atomic uint64_t seq;           /* connection ids */
    uint32_t chunk;                 /* payload bytes per DATA record at most */
    size_t keep_front, keep_back;   /* of a call over cut_over bytes, what is copied */
    size_t cut_over;
} o;

static void say(const char *fmt, const char *a, long b)
{
    char line[512];
    int n = snprintf(line, sizeof(line), fmt, a, b);
    if (n > 0)
        (void)!REAL(write)(STDERR_FILENO, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

void ht_out_configure(const struct ht_out_cfg *cfg)
{
    o.cfg = *cfg;
    o.have_addr = cfg->collector && ht_reg_parse(cfg->collector, &o.addr) == 0;
    o.chunk = HT_RING_MAX_REC(cfg->ring_size) - (uint32_t)sizeof(struct ht_rec);
    if (o.chunk > DATA_CHUNK)
        o.chunk = DATA_CHUNK;
    /* A head (HTTPTAPE_MAX_HEADER) and an excerpt fit in the front. */
    o.keep_front = (size_t)cfg->max_header + cfg->max_body;
    o.keep_back = 64u << 10;
    /* Only calls that would take a quarter of the ring are cut: the
     * collector then still reads whole what most reads and writes move,
     * chunk lines included. */
    o.cut_over = o.keep_front + o.keep_back + (64u << 10);
    if (o.cut_over < cfg->ring_size / 4)
        o.cut_over = cfg->ring_size / 4;
    o.pid = getpid();
}

/* ---- the ring ---- */

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}


/* Make a ring in slot s and hand it to a collector: the one we know of
 * (unless it is gone), else one we start. */
static int start_slow(struct out_ring *s, bool known_gone)
{
    int fd, rc;
    void *map;
    int32_t pid = (int32_t)getpid();
    if ((rc = ht_reg_ring_new(o.cfg.ring_size, pid, &s->ring, &map, &fd)))
        return rc;
    rc = o.have_addr && !known_gone ? ht_reg_send(&o.addr, fd, o.cfg.ring_size) : -ECONNREFUSED;
    if (rc == -ECONNREFUSED || rc == -ENOENT) {
        struct ht_reg_addr a;
        rc = ht_reg_new(&a, pid);
        if (!rc)
            rc = ht_spawn_collector(o.cfg.collector_bin, o.cfg.collector_env, &a, fd);
        if (!rc) {
            o.addr = a;
            o.have_addr = true;
        }
    }
    syscall(SYS_close, fd);
    if (rc) {
        syscall(SYS_munmap, map, ht_reg_map_size(o.cfg.ring_size));
        return rc;
    }
    s->map = map;
    s->skips = ht_reg_skips(map, o.cfg.ring_size);
    o.pid = pid;
    o.registered_at = now_ns();
    /* What was dropped while this ring was being made counts in it. */
    uint64_t pre = atomic_exchange(&o.pre_lost, 0);
    if (pre)
        ht_ring_add_lost(&s->ring, pre, 0);
    atomic_fetch_add(&o.gen, 1);
    atomic_store_explicit(&o.cur, s, memory_order_release);
    return 0;
}

int ht_out_start(void)
{
    int st = atomic_load_explicit(&o.state, memory_order_acquire);
    if (st == ST_READY)
        return 0;
    if (st == ST_FAILED)
        return -EIO;
    if (now_ns() < atomic_load_explicit(&o.retry_at, memory_order_relaxed))
        return -EAGAIN;                 /* the collector's backlog was full: later */
    int expected = ST_NONE;
    if (!atomic_compare_exchange_strong(&o.state, &expected, ST_STARTING))
        return expected == ST_READY ? 0 : -EAGAIN;  /* another thread is at it */
    int saved = errno;
    int rc = start_slow(&o.slots[0], false);
    if (rc == -EAGAIN) {
        /* Its backlog is full (a burst of registrations, or someone
         * holding it): try again in a second, counting what is dropped
         * meanwhile, rather than give up for good. */
        atomic_store(&o.retry_at, now_ns() + 1000000000u);
        atomic_store_explicit(&o.state, ST_NONE, memory_order_release);
        errno = saved;
        return rc;
    }
    if (rc)
        say("httptape: cannot hand this process's records to a collector (%s); not recording "
            "in it (pid %ld)\n", strerror(-rc), (long)getpid());
    atomic_store_explicit(&o.state, rc ? ST_FAILED : ST_READY, memory_order_release);
    errno = saved;
    return rc;
}

static inline bool ready(void)
{
    return atomic_load_explicit(&o.state, memory_order_acquire) == ST_READY;
}

void ht_out_after_fork_child(void)
{
    for (int i = 0; i < 2; i++) {
        if (o.slots[i].map)
            syscall(SYS_munmap, o.slots[i].map, ht_reg_map_size(o.cfg.ring_size));
        o.slots[i].map = NULL;
        o.slots[i].skips = NULL;
    }
    atomic_store(&o.cur, NULL);
    o.pid = getpid();
    atomic_store(&o.next_check, 0);
    atomic_store(&o.state, ST_NONE);
}

/* ---- a collector that is gone ---- */

/* Once a second at most (and when the ring is full), see whether the
 * collector still lives: one kill(pid, 0). If it is gone, records go to a
 * new ring with a collector of our own from now on; what the old ring
 * held unread is lost, and said once. */
static void check_collector(uint64_t now)
{
    uint64_t next = atomic_load_explicit(&o.next_check, memory_order_relaxed);
    if (now < next || !atomic_compare_exchange_strong(&o.next_check, &next, now + 1000000000u))
        return;
    struct out_ring *s = atomic_load_explicit(&o.cur, memory_order_acquire);
    if (!s)
        return;
    /* Gone: no heartbeat for 3 s, or none at all 3 s after we handed the
     * ring over (a collector that refused it, or died with it queued). */
    uint64_t beat = ht_ring_last_beat(&s->ring);
    uint64_t since = beat ? beat : o.registered_at;
    if (now < since + 3000000000ull)
        return;
    int32_t who = ht_ring_consumer(&s->ring);
    int st = ST_READY;
    if (!atomic_compare_exchange_strong(&o.state, &st, ST_STARTING))
        return;
    int saved = errno;
    struct ht_ring_counts k;
    ht_ring_counts(&s->ring, &k);
    unsigned long long unread = k.queued, lost = k.lost_records;
    struct out_ring *next_slot = s == &o.slots[0] ? &o.slots[1] : &o.slots[0];
    /* That slot's old mapping (two takeovers ago) stays mapped: a thread
     * may still be finishing a record in it. */
    int rc = start_slow(next_slot, true);
    char line[256];
    int n = snprintf(line, sizeof(line),
                     "httptape: the collector (pid %d) is gone; pid %ld lost %llu bytes of "
                     "records unread and %llu records that did not fit; %s\n", (int)who,
                     (long)getpid(), unread, lost,
                     rc ? "no collector could be started: not recording any more"
                        : "a new collector takes over (connections open now are joined at their next message)");
    if (n > 0)
        (void)!REAL(write)(STDERR_FILENO, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
    atomic_store(&o.state, rc ? ST_FAILED : ST_READY);
    errno = saved;
}

/* Room for a record in the current ring; on false it was counted lost. */
static bool reserve(uint16_t type, uint32_t len, struct ht_ring_res *res, struct ht_ring **r)
{
    struct out_ring *s = atomic_load_explicit(&o.cur, memory_order_acquire);
    if (!s)
        return false;
    if (ht_ring_reserve(&s->ring, type, len, res)) {
        *r = &s->ring;
        return true;
    }
    check_collector(now_ns());
    return false;
}

/* ---- records ---- */

static inline void head(struct ht_rec *h, uint8_t type, int d, const struct ht_oconn *c, int fd,
                        uint64_t off, uint64_t span, uint32_t len)
{
    h->type = type;
    h->dir = (uint8_t)d;
    h->reason = 0;
    h->pad = 0;
    h->tgid = (uint32_t)o.pid;
    h->tid = 0;
    h->fd = fd;
    h->conn_id = c->id;
    h->ts_ns = now_ns();
    if (__builtin_expect(h->ts_ns >= atomic_load_explicit(&o.next_check, memory_order_relaxed), 0))
        check_collector(h->ts_ns);
    h->off = off;
    h->span = span > UINT32_MAX ? UINT32_MAX : (uint32_t)span;
    h->len = len;
}

static void put_open(const struct ht_oconn *c, const uint64_t start[2], int32_t parent)
{
    struct ht_ring_res res;
    struct ht_ring *rr;
    if (!reserve(HT_REC_OPEN, sizeof(struct ht_rec_open), &res, &rr))
        return;
    struct ht_rec_open *r = res.payload;
    r->a = c->open;
    r->a.h.tgid = (uint32_t)o.pid;
    r->a.h.ts_ns = now_ns();
    r->start[0] = start[0];
    r->start[1] = start[1];
    r->inherited = parent != 0;
    r->parent_tgid = (uint32_t)parent;
    ht_ring_commit(rr, &res);
}

/* May records of c go out from this process? In a forked child, the
 * first one makes the child's ring and announces the inherited copy. */
static bool usable(struct ht_oconn *c)
{
    int32_t mine = o.pid, owner = atomic_load_explicit(&c->pid, memory_order_relaxed);
    uint32_t gen = atomic_load_explicit(&o.gen, memory_order_relaxed);
    if (__builtin_expect(owner == mine && atomic_load_explicit(&c->gen, memory_order_relaxed) == gen &&
                         ready(), 1))
        return true;
    if (ht_out_start()) {
        atomic_fetch_add_explicit(&o.pre_lost, 1, memory_order_relaxed);
        return false;
    }
    gen = atomic_load(&o.gen);
    uint64_t start[2] = { atomic_load(&c->off[0]), atomic_load(&c->off[1]) };
    if (owner != mine) {
        /* A forked child's first record on its parent's connection. */
        if (atomic_compare_exchange_strong(&c->pid, &owner, mine)) {
            atomic_store(&c->gen, gen);
            put_open(c, start, owner);
        }
    } else {
        /* A new collector (the old one died) does not know it yet: it is
         * joined at its next message. */
        uint32_t had = atomic_load(&c->gen);
        if (had != gen && atomic_compare_exchange_strong(&c->gen, &had, gen))
            put_open(c, start, 0);
    }
    return true;
}

static void fill_addr(const struct sockaddr *sa, socklen_t len, uint8_t out[16], uint16_t *port)
{
    if (sa && sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const void *)sa;
        memcpy(out, &in->sin_addr, 4);
        *port = ntohs(in->sin_port);
    } else if (sa && sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        memcpy(out, &in6->sin6_addr, 16);
        *port = ntohs(in6->sin6_port);
    }
}

void ht_out_open(struct ht_oconn *c, int fd, const struct sockaddr *local, socklen_t llen,
                 const struct sockaddr *peer, socklen_t plen)
{
    memset(c, 0, sizeof(*c));
    c->id = atomic_fetch_add(&o.seq, 1) + 1;
    /* pid 0 until announced: a connection accepted while another thread
     * is still making the ring is announced with its first record. */
    atomic_store(&c->pid, ready() ? o.pid : 0);
    atomic_store(&c->gen, atomic_load(&o.gen));
    struct ht_rec_accept *a = &c->open;
    head(&a->h, HT_REC_OPEN, 0, c, fd, 0, 0, 0);
    a->family = local ? local->sa_family : 0;
    if (a->family == AF_UNIX && llen > offsetof(struct sockaddr_un, sun_path)) {
        const struct sockaddr_un *un = (const void *)local;
        size_t n = llen - offsetof(struct sockaddr_un, sun_path);
        memcpy(a->path, un->sun_path, n < HT_REC_PATH_MAX ? n : HT_REC_PATH_MAX);
    } else {
        fill_addr(local, llen, a->local_addr, &a->local_port);
        fill_addr(peer, plen, a->peer_addr, &a->peer_port);
    }
    if (ready()) {
        uint64_t zero[2] = { 0, 0 };
        put_open(c, zero, 0);
    }
}

static void put_plain(struct ht_oconn *c, int fd, uint8_t type, int d, uint64_t off, uint64_t span,
                      uint8_t reason);

/* Where the collector says direction d of c need not be copied up to
 * (body past the excerpt cap); 0 when it said nothing. */
static uint64_t skip_to(const struct ht_oconn *c, int d)
{
    const struct ht_skip_slot *sl = &atomic_load_explicit(&o.cur, memory_order_acquire)
                                          ->skips[c->id % HT_SKIP_SLOTS];
    uint64_t id = atomic_load_explicit(&sl->id, memory_order_acquire);
    if (id != c->id)
        return 0;
    uint64_t to = atomic_load_explicit(&sl->to[d], memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    return atomic_load_explicit(&sl->id, memory_order_relaxed) == id ? to : 0;
}

/* A read position in the app's iovec. */
struct cursor {
    const struct iovec *iov;
    int cnt, i;
    size_t in;                      /* bytes of iov[i] already taken */
};

/* Take len bytes at the cursor: copied to p, or passed over (p NULL). */
static void take(struct cursor *k, uint8_t *p, size_t len)
{
    while (len > 0 && k->i < k->cnt) {
        size_t avail = k->iov[k->i].iov_len - k->in;
        size_t n = avail < len ? avail : len;
        if (p) {
            memcpy(p, (const uint8_t *)k->iov[k->i].iov_base + k->in, n);
            p += n;
        }
        k->in += n;
        len -= n;
        if (k->in == k->iov[k->i].iov_len) {
            k->i++;
            k->in = 0;
        }
    }
}

/* len bytes at the cursor as DATA records of direction d from stream
 * offset off. A record the ring has no room for is passed over (the
 * collector sees the jump). */
static void put_data(struct ht_oconn *c, int fd, int d, uint64_t off, struct cursor *k, size_t len)
{
    while (len > 0) {
        uint32_t part = len < o.chunk ? (uint32_t)len : o.chunk;
        struct ht_ring_res res;
        struct ht_ring *rr;
        if (reserve(HT_REC_DATA, (uint32_t)sizeof(struct ht_rec) + part, &res, &rr)) {
            head(res.payload, HT_REC_DATA, d, c, fd, off, part, part);
            take(k, (uint8_t *)res.payload + sizeof(struct ht_rec), part);
            ht_ring_commit(rr, &res);
        } else {
            take(k, NULL, part);
        }
        off += part;
        len -= part;
    }
}

void ht_out_data(struct ht_oconn *c, int fd, int d, const struct iovec *iov, int iovcnt, size_t n)
{
    /* Announced (in a forked child) before the offset moves: the copy
     * starts where the parent's stream stood. */
    bool ok_ring = usable(c);
    uint64_t off = atomic_fetch_add_explicit(&c->off[d], n, memory_order_relaxed);
    if (!ok_ring)
        return;
    struct cursor k = { iov, iovcnt, 0, 0 };
    uint64_t to = skip_to(c, d);
    if (to > off) {
        /* Body past the excerpt cap: counted, not copied. */
        uint64_t skip = to - off < n ? to - off : n;
        put_plain(c, fd, HT_REC_UNSEEN, d, off, skip, HT_UNSEEN_SKIP);
        take(&k, NULL, (size_t)skip);
        off += skip;
        n -= (size_t)skip;
    }
    if (n > o.cut_over) {
        /* One call bigger than a ring can take in a burst: its front (a
         * head and the excerpt) and its back (the next head, pipelined)
         * are copied, the middle counted (UNSEEN, reason BIG). */
        size_t mid = n - o.keep_front - o.keep_back;
        put_data(c, fd, d, off, &k, o.keep_front);
        off += o.keep_front;
        put_plain(c, fd, HT_REC_UNSEEN, d, off, mid, HT_UNSEEN_BIG);
        take(&k, NULL, mid);
        off += mid;
        n = o.keep_back;
    }
    put_data(c, fd, d, off, &k, n);
}

void ht_out_raw(struct ht_oconn *c, int fd, int d, const struct iovec *iov, int iovcnt, size_t n)
{
    bool ok_ring = usable(c);
    uint64_t off = atomic_fetch_add_explicit(&c->raw_off[d], n, memory_order_relaxed);
    if (!ok_ring)
        return;
    uint32_t keep = 0;
    if (d == 0 && off < HT_REC_HELLO_MAX && iovcnt > 0)
        keep = HT_REC_HELLO_MAX - off < n ? (uint32_t)(HT_REC_HELLO_MAX - off) : (uint32_t)n;
    uint64_t span = n;
    while (span > 0) {
        /* span is 32 bits wide: a huge write is several records. */
        uint32_t part = span > UINT32_MAX ? UINT32_MAX : (uint32_t)span;
        struct ht_ring_res res;
        struct ht_ring *rr;
        if (reserve(HT_REC_RAW, (uint32_t)sizeof(struct ht_rec) + keep, &res, &rr)) {
            head(res.payload, HT_REC_RAW, d, c, fd, off, part, keep);
            struct cursor k = { iov, iovcnt, 0, 0 };
            take(&k, (uint8_t *)res.payload + sizeof(struct ht_rec), keep);
            ht_ring_commit(rr, &res);
        }
        keep = 0;
        off += part;
        span -= part;
    }
}

void ht_out_tls(struct ht_oconn *c, int fd, const struct ht_rec_tls *rec)
{
    struct ht_ring_res res;
    struct ht_ring *rr;
    if (!usable(c) || !reserve(HT_REC_TLS, sizeof(*rec), &res, &rr))
        return;
    struct ht_rec_tls *r = res.payload;
    *r = *rec;
    head(&r->h, HT_REC_TLS, 0, c, fd, atomic_load(&c->off[0]), 0, 0);
    ht_ring_commit(rr, &res);
}

static void put_plain(struct ht_oconn *c, int fd, uint8_t type, int d, uint64_t off, uint64_t span,
                      uint8_t reason)
{
    struct ht_ring_res res;
    struct ht_ring *rr;
    if (!reserve(type, sizeof(struct ht_rec), &res, &rr))
        return;
    head(res.payload, type, d, c, fd, off, span, 0);
    ((struct ht_rec *)res.payload)->reason = reason;
    ht_ring_commit(rr, &res);
}

void ht_out_unseen(struct ht_oconn *c, int fd, int d, uint64_t n, int reason)
{
    while (n > 0) {
        /* span is 32 bits wide: a huge splice is several records. */
        uint64_t part = n > UINT32_MAX ? UINT32_MAX : n;
        bool ok_ring = usable(c);
        uint64_t off = atomic_fetch_add_explicit(&c->off[d], part, memory_order_relaxed);
        if (ok_ring)
            put_plain(c, fd, HT_REC_UNSEEN, d, off, part, (uint8_t)reason);
        n -= part;
    }
}

void ht_out_stale(int fd, uint64_t old_id, int d, uint64_t n)
{
    if (!ready())
        return;                         /* no ring yet: nothing recorded of it either */
    struct ht_oconn old = { .id = old_id };
    put_plain(&old, fd, HT_REC_UNSEEN, d, 0, n, HT_UNSEEN_STALE);
}

/* ---- sendfile ----
 *
 * A static file is sent again and again: its excerpt is read back and
 * copied into the ring once per file, offset and length, and later
 * records say KEPT (record.h). sent[] is what this process sent whole,
 * slot for slot as the collector keeps it; an entry is good only in the
 * process and ring it was made for, and while that ring has lost no record
 * since (the one with the bytes may be among them). A seqlock per slot:
 * a writer that finds the slot busy leaves it; a reader that sees it
 * change takes it as a miss. */
static struct sent_file {
    _Atomic uint32_t seq;           /* odd while written */
    _Atomic uint64_t used;          /* when last hit or marked (sent_tick): the victim is the oldest */
    int32_t pid;
    uint32_t gen, len, dev;
    uint64_t lost, ino, fsize, file_off;
    int64_t mtime_ns, ctime_ns;
} sent[HT_FILEDATA_SLOTS];
static _Atomic uint64_t sent_tick;

struct file_key {
    uint64_t ino, fsize, file_off, lost;
    int64_t mtime_ns, ctime_ns;
    uint32_t dev, len, gen;
};

static bool sent_before(unsigned slot, const struct file_key *k)
{
    struct sent_file *e = &sent[slot];
    uint32_t s1 = atomic_load_explicit(&e->seq, memory_order_acquire);
    if (s1 & 1)
        return false;
    bool same = e->pid == o.pid && e->gen == k->gen && e->lost == k->lost && e->ino == k->ino &&
                e->dev == k->dev && e->fsize == k->fsize && e->mtime_ns == k->mtime_ns &&
                e->ctime_ns == k->ctime_ns && e->file_off == k->file_off && e->len == k->len;
    atomic_thread_fence(memory_order_acquire);
    return same && atomic_load_explicit(&e->seq, memory_order_relaxed) == s1;
}

/* The slot holding k, or -1. Every slot is looked at (16): a table where
 * two hot files could share one slot would read both again and again. */
static int find_sent(const struct file_key *k)
{
    for (unsigned i = 0; i < HT_FILEDATA_SLOTS; i++)
        if (sent_before(i, k)) {
            atomic_store_explicit(&sent[i].used, atomic_fetch_add(&sent_tick, 1) + 1,
                                  memory_order_relaxed);
            return (int)i;
        }
    return -1;
}

/* The slot to keep a new excerpt in: the one hit or marked longest ago. */
static unsigned victim(void)
{
    unsigned v = 0;
    uint64_t oldest = UINT64_MAX;
    for (unsigned i = 0; i < HT_FILEDATA_SLOTS; i++) {
        uint64_t u = atomic_load_explicit(&sent[i].used, memory_order_relaxed);
        if (u < oldest) {
            oldest = u;
            v = i;
        }
    }
    return v;
}

static void mark_sent(unsigned slot, const struct file_key *k)
{
    struct sent_file *e = &sent[slot];
    uint32_t s = atomic_load_explicit(&e->seq, memory_order_relaxed);
    if ((s & 1) || !atomic_compare_exchange_strong_explicit(&e->seq, &s, s + 1,
                                                            memory_order_acquire,
                                                            memory_order_relaxed))
        return;
    e->pid = o.pid;
    e->gen = k->gen;
    e->lost = k->lost;
    e->ino = k->ino;
    e->dev = k->dev;
    e->fsize = k->fsize;
    e->mtime_ns = k->mtime_ns;
    e->ctime_ns = k->ctime_ns;
    e->file_off = k->file_off;
    e->len = k->len;
    atomic_store_explicit(&e->used, atomic_fetch_add(&sent_tick, 1) + 1, memory_order_relaxed);
    atomic_store_explicit(&e->seq, s + 2, memory_order_release);
}

static uint64_t ring_lost(struct ht_ring *r)
{
    struct ht_ring_counts k;
    ht_ring_counts(r, &k);
    return k.lost_records;
}

/* The file's identity (left 0 when fstat fails or it is no regular file). */
static void file_identity(int in_fd, struct file_key *k)
{
    struct stat st;
    if (syscall(SYS_fstat, in_fd, &st) || !S_ISREG(st.st_mode))
        return;
    k->ino = st.st_ino;
    k->dev = (uint32_t)(major(st.st_dev) << 20 | (minor(st.st_dev) & 0xfffff));
    k->fsize = (uint64_t)st.st_size;
    k->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    k->ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
}

/* Has the file stayed unchanged long enough (record.h) that a change after
 * our read must show in its times? Else its excerpt is read every time. */
static bool settled(const struct file_key *k)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    int64_t last = k->ctime_ns > k->mtime_ns ? k->ctime_ns : k->mtime_ns;
    return now - last >= HT_FILEDATA_SETTLED_NS;
}

/* "/proc/self/fd/N" in buf (32 bytes), without stdio: this is a hook. */
static const char *fd_link(char buf[32], int fd)
{
    static const char pre[] = "/proc/self/fd/";
    char d[12];
    int n = 0;
    unsigned v = (unsigned)fd;
    do {
        d[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    memcpy(buf, pre, sizeof(pre) - 1);
    for (int i = 0; i < n; i++)
        buf[sizeof(pre) - 1 + i] = d[n - 1 - i];
    buf[sizeof(pre) - 1 + n] = 0;
    return buf;
}

static void file_head(struct ht_rec_filedata *r, const struct file_key *k, uint64_t file_off,
                      uint32_t excerpt, uint16_t path_len, uint8_t flags, unsigned slot)
{
    r->slot = (uint8_t)slot;
    r->file_off = file_off;
    r->ino = k->ino;                /* the rest 0 too when file_identity could not say */
    r->fsize = k->fsize;
    r->mtime_ns = k->mtime_ns;
    r->ctime_ns = k->ctime_ns;
    r->dev = k->dev;
    r->excerpt = excerpt;
    r->path_len = path_len;
    r->flags = flags;
    memset(r->pad, 0, sizeof(r->pad));
}

void ht_out_file(struct ht_oconn *c, int fd, int in_fd, int64_t file_off, uint64_t n)
{
    if (n > UINT32_MAX) {
        /* Rare enough: the excerpt from the first part, the rest counted. */
        ht_out_file(c, fd, in_fd, file_off, UINT32_MAX);
        ht_out_unseen(c, fd, 1, n - UINT32_MAX, HT_UNSEEN_CUT);
        return;
    }
    bool ok_ring = usable(c);
    uint64_t off = atomic_fetch_add_explicit(&c->off[1], n, memory_order_relaxed);
    if (!ok_ring)
        return;
    uint32_t want = n < o.cfg.max_body ? (uint32_t)n : o.cfg.max_body;
    if (want > o.chunk)
        want = o.chunk;
    if (file_off < 0)
        want = 0;
    struct out_ring *s = atomic_load_explicit(&o.cur, memory_order_acquire);
    if (!s)
        return;
    struct file_key k = { .file_off = (uint64_t)(file_off < 0 ? 0 : file_off), .len = want,
                          .gen = atomic_load_explicit(&o.gen, memory_order_relaxed) };
    file_identity(in_fd, &k);
    k.lost = ring_lost(&s->ring);
    int hit = k.ino && want ? find_sent(&k) : -1;
    struct ht_ring_res res;
    struct ht_ring *rr;
    if (hit >= 0) {
        if (!reserve(HT_REC_FILEDATA, (uint32_t)sizeof(struct ht_rec_filedata), &res, &rr))
            return;
        struct ht_rec_filedata *r = res.payload;
        head(&r->h, HT_REC_FILEDATA, 1, c, fd, off, n, 0);
        file_head(r, &k, k.file_off, want, 0, HT_FILEDATA_KEPT, (unsigned)hit);
        ht_ring_commit(rr, &res);
        return;
    }
    /* First time: the file's name (under our root) and the bytes. */
    char path[HT_REC_FILE_PATH], proc[32];
    long pn = k.ino ? syscall(SYS_readlink, fd_link(proc, in_fd), path, sizeof(path)) : -1;
    if (pn < 0 || pn >= (long)sizeof(path))
        pn = 0;
    if (!reserve(HT_REC_FILEDATA, (uint32_t)(sizeof(struct ht_rec_filedata) + (size_t)pn + want),
                 &res, &rr))
        return;
    struct ht_rec_filedata *r = res.payload;
    uint8_t *tail = (uint8_t *)(r + 1);
    memcpy(tail, path, (size_t)pn);
    long got = 0;
    if (want) {
        /* The system call itself: pread() is a cancellation point. */
        got = syscall(SYS_pread64, in_fd, tail + pn, (size_t)want, (long)file_off);
        if (got < 0)
            got = 0;
    }
    bool whole = k.ino && want && (uint32_t)got == want && settled(&k);
    unsigned slot = whole ? victim() : 0;
    head(&r->h, HT_REC_FILEDATA, 1, c, fd, off, n, (uint32_t)got);
    file_head(r, &k, k.file_off, (uint32_t)got, (uint16_t)pn, whole ? HT_FILEDATA_WHOLE : 0, slot);
    /* Marked after the reservation: a thread that then says KEPT reserves
     * after this record, so the collector has the bytes first. */
    if (whole)
        mark_sent(slot, &k);
    ht_ring_commit(rr, &res);
}

void ht_out_eof(struct ht_oconn *c, int fd, int d)
{
    uint64_t off = atomic_load_explicit(&c->off[d], memory_order_relaxed);
    if (usable(c))
        put_plain(c, fd, HT_REC_EOF, d, off, 0, 0);
}

void ht_out_close(struct ht_oconn *c, bool handed_over)
{
    int fd = c->open.h.fd;
    if (atomic_load_explicit(&c->pid, memory_order_relaxed) != o.pid ||
        atomic_load_explicit(&c->gen, memory_order_relaxed) != atomic_load(&o.gen) || !ready())
        return;
    struct ht_ring_res res;
    struct ht_ring *rr;
    if (!reserve(HT_REC_CLOSE, sizeof(struct ht_rec_close), &res, &rr))
        return;
    struct ht_rec_close *r = res.payload;
    head(&r->h, HT_REC_CLOSE, 0, c, fd, 0, 0, 0);
    r->h.reason = handed_over ? HT_CLOSE_HANDED_OVER : 0;
    r->end[0] = atomic_load(&c->off[0]);
    r->end[1] = atomic_load(&c->off[1]);
    ht_ring_commit(rr, &res);
}

void ht_out_unreachable(struct ht_oconn *c, int fd, int reason)
{
    uint64_t off = atomic_load_explicit(&c->off[0], memory_order_relaxed);
    if (usable(c))
        put_plain(c, fd, HT_REC_UNREACHABLE, 0, off, 0, (uint8_t)reason);
}

void ht_out_process_uses_io_uring(void)
{
    struct ht_oconn none = { .id = 0 };
    if (ready())
        put_plain(&none, -1, HT_REC_UNREACHABLE, 0, 0, 0, HT_UNREACH_IO_URING);
}
