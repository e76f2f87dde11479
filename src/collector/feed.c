/*
 * feed.c - capture records become calls on the core (feed.h).
 *
 * A connection is a struct ht_conn, found by its process and the capture
 * side's id (and by process and fd, to notice a close record that was
 * lost). Its bytes are fed in stream-offset order: a jump in the offsets
 * is bytes lost to a full ring, fed as unseen and marked as a gap, never
 * passed over. This file also tells the capture side which body bytes it
 * need not copy any more, and finds the first message boundary of
 * connections joined mid-way.
 *
 * One thread only.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "capture/record.h"
#include "collector/feed.h"
#include "collector/files.h"
#include "collector/hello.h"
#include "core/connid.h"
#include "core/sink.h"
#include "core/stats.h"

/* A connection that was open before we attached is joined at a message
 * boundary: all its exchanges say joined (ht_conn_mark_joined) and are
 * complete when seen whole. Only the one we came in inside has this gap:
 * the response to a request sent before we attached (no_request too). */
#define JOINED_GAP HT_GAP_JOINED

#define SKIP_MIN (32u << 10)        /* tell the kernel to skip only this much or more */
#define ID_BUCKETS (1u << 16)

struct aconn {
    uint64_t id;                    /* kernel id (HT_ID_JOINED set when joined) */
    uint32_t tgid;
    int fd;
    uint64_t off[2];                /* next stream offset expected, per direction */
    uint64_t skip_to[2];            /* what we last told the kernel */
    bool joined;
    bool discard;                   /* out of reach: nothing of it is logged */
    int64_t handed_at;              /* closed by a parent that forked: a child's to go on with */
    bool waiting[2];                /* joined: no message boundary found yet */
    bool adopt[2];                  /* start the stream at the next record's offset */
    struct tls_state *tls;          /* RAW records came: its socket speaks TLS */
    struct aconn *next_id, *next_fd;
    struct ht_conn conn;
};

/* A TLS connection (docs/tls.md): the session as the library told it
 * (TLS record) or the ClientHello showed it; the ciphertext counted per
 * direction, each exchange getting what came since the one before. */
struct tls_state {
    struct ht_tls info;             /* raw_bytes: totals */
    uint64_t reported[2];           /* raw bytes given to earlier exchanges */
    bool library;                   /* a covered library serves it */
    bool hello_done;
    uint32_t hello_len;
    char hello_sni[256], hello_alpn[64];
    struct ht_clock start;          /* its first ciphertext */
    uint8_t hello[HT_REC_HELLO_MAX];
};

static struct aconn *by_id[ID_BUCKETS];
static struct aconn *by_fd[ID_BUCKETS];
static uint64_t seq;                /* connection ids (core/connid.h) */

static struct {
    const struct ht_conn_cfg *ccfg;
    int64_t wall_minus_mono;
    struct ht_feed_ops ops;
    struct ht_feed_counts n;
} feed;

void ht_feed_init(const struct ht_conn_cfg *ccfg, int64_t wall_minus_mono, const struct ht_feed_ops *ops)
{
    feed.ccfg = ccfg;
    feed.wall_minus_mono = wall_minus_mono;
    feed.ops = *ops;
}

void ht_feed_counts(struct ht_feed_counts *out) { *out = feed.n; }

/* ---- small helpers ---- */

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct ht_clock rec_clock(const struct ht_rec *h)
{
    struct ht_clock c = { .mono_ns = (int64_t)h->ts_ns };
    c.wall_ns = c.mono_ns + feed.wall_minus_mono;
    return c;
}

static struct ht_clock now_clock(void)
{
    struct ht_clock c = { .mono_ns = clock_ns(CLOCK_MONOTONIC) };
    c.wall_ns = c.mono_ns + feed.wall_minus_mono;
    return c;
}

static unsigned hash_id(uint64_t id) { return (unsigned)((id * 0x9e3779b97f4a7c15ull) >> 48); }
/* Preload ids count per process, attach's kernel-wide: (tgid, id) names
 * a connection either way. */
static unsigned hash_key(uint32_t tgid, uint64_t id) { return hash_id(id ^ ((uint64_t)tgid << 40)); }
static unsigned hash_fd(uint32_t tgid, int fd)
{
    return hash_id(((uint64_t)tgid << 32) | (uint32_t)fd);
}

/* ---- endpoints ---- */

void ht_feed_ep_inet(struct ht_endpoints *ep, int family, const uint8_t *laddr, int lport,
                       const uint8_t *paddr, int pport)
{
    ep->transport = "tcp";
    inet_ntop(family, laddr, ep->local_addr, sizeof(ep->local_addr));
    inet_ntop(family, paddr, ep->peer_addr, sizeof(ep->peer_addr));
    ep->local_port = lport;
    ep->peer_port = pport;
    /* An IPv4 peer on an IPv6 socket reads as ::ffff:a.b.c.d, as getpeername says. */
}

void ht_feed_ep_unix(struct ht_endpoints *ep, const char *path)
{
    ep->transport = "unix";
    snprintf(ep->local_addr, sizeof(ep->local_addr), "%s", path);
    ep->peer_addr[0] = 0;
    ep->local_port = ep->peer_port = -1;
}

/* ---- the connection table ---- */

static struct aconn *find_id(uint32_t tgid, uint64_t id)
{
    struct aconn *c = by_id[hash_key(tgid, id) % ID_BUCKETS];
    while (c && !(c->id == id && c->tgid == tgid))
        c = c->next_id;
    return c;
}

/* attach's INHERIT names the parent's connection by its (kernel-wide) id
 * alone. */
static struct aconn *find_any(uint64_t id)
{
    for (unsigned b = 0; b < ID_BUCKETS; b++)
        for (struct aconn *c = by_id[b]; c; c = c->next_id)
            if (c->id == id)
                return c;
    return NULL;
}

static struct aconn *find_fd(uint32_t tgid, int fd)
{
    struct aconn *c = by_fd[hash_fd(tgid, fd) % ID_BUCKETS];
    while (c && !(c->tgid == tgid && c->fd == fd))
        c = c->next_fd;
    return c;
}

static void one_way_unseen(struct aconn *c);

/* ex was carried over TLS: its session, and the ciphertext since the
 * connection's previous exchange (the handshake counts in the first). */
static void tls_mark(struct tls_state *t, struct ht_exchange *ex)
{
    struct ht_tls info = t->info;
    if (!info.server_name[0])
        memcpy(info.server_name, t->hello_sni, sizeof(info.server_name));
    memcpy(info.alpn_offered, t->hello_alpn, sizeof(info.alpn_offered));
    info.established = t->library;
    for (int d = 0; d < 2; d++) {
        info.raw_bytes[d] = t->info.raw_bytes[d] - t->reported[d];
        t->reported[d] = t->info.raw_bytes[d];
    }
    if (ht_exchange_set_tls(ex, &info))
        HT_STAT_ADD(dropped_no_memory, 1);
}

static void emit(void *ctx, struct ht_exchange *ex)
{
    struct aconn *c = ctx;
    one_way_unseen(c);
    if (c->discard) {
        ht_exchange_free(ex);
        return;
    }
    if (c->joined && (ex->gaps & HT_GAP_NO_REQUEST))
        ex->gaps |= JOINED_GAP;
    if (c->tls)
        tls_mark(c->tls, ex);
    ht_sink_push(ex);
}

static void link_conn(struct aconn *c)
{
    unsigned h = hash_key(c->tgid, c->id) % ID_BUCKETS;
    c->next_id = by_id[h];
    by_id[h] = c;
    h = hash_fd(c->tgid, c->fd) % ID_BUCKETS;
    c->next_fd = by_fd[h];
    by_fd[h] = c;
}

static void unlink_conn(struct aconn *c)
{
    struct aconn **pp = &by_id[hash_key(c->tgid, c->id) % ID_BUCKETS];
    while (*pp && *pp != c)
        pp = &(*pp)->next_id;
    if (*pp)
        *pp = c->next_id;
    pp = &by_fd[hash_fd(c->tgid, c->fd) % ID_BUCKETS];
    while (*pp && *pp != c)
        pp = &(*pp)->next_fd;
    if (*pp)
        *pp = c->next_fd;
}

/* Processes that move bytes through io_uring (preload: UNREACHABLE with
 * conn_id 0): a connection of theirs seen one way only most likely moved
 * the other way through the ring; logging it would invent no_response or
 * an orphan response. */
#define URING_MAX 64
static uint32_t uring_tgids[URING_MAX];
static unsigned n_uring;

static bool uses_io_uring(uint32_t tgid)
{
    for (unsigned i = 0; i < n_uring; i++)
        if (uring_tgids[i] == tgid)
            return true;
    return false;
}

static unsigned n_handed;           /* connections held for a child (on_close) */

/* A connection of an io_uring process seen one way only: discarded,
 * counted once. */
static void one_way_unseen(struct aconn *c)
{
    if (!c->discard && n_uring && uses_io_uring(c->tgid) &&
        (c->conn.bytes[HT_REQ] == 0) != (c->conn.bytes[HT_RESP] == 0)) {
        c->discard = true;
        HT_STAT_ADD(connections_unseen_io_uring, 1);
    }
}

/* The TLS libraries process tgid has mapped (basenames, comma-separated),
 * to say which one kept its plaintext from us. */
static void tls_libraries(uint32_t tgid, char *out, size_t cap)
{
    static const char *const known[] = { "libssl", "libgnutls", "libwolfssl", "libmbedtls",
                                         "libnss3", "libboringssl", "libs2n", "librustls" };
    char path[64], line[1024];
    size_t used = 0;
    out[0] = 0;
    snprintf(path, sizeof(path), "/proc/%u/maps", tgid);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    while (fgets(line, sizeof(line), f)) {
        char *name = strrchr(line, '/');
        if (!name)
            continue;
        name++;
        name[strcspn(name, "\n")] = 0;
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
            if (!strncmp(name, known[i], strlen(known[i])) && !strstr(out, name) &&
                used + strlen(name) + 3 < cap)
                used += (size_t)snprintf(out + used, cap - used, "%s%s", used ? ", " : "", name);
    }
    fclose(f);
}

/* A TLS connection no covered library gave us the plaintext of: one
 * exchange with gap tls_not_decrypted (what the ClientHello said, the
 * bytes counted), counted; said once per process on stderr. */
static void tls_not_decrypted(struct aconn *c)
{
    static uint32_t said[64];
    static unsigned n_said;
    HT_STAT_ADD(connections_tls_not_decrypted, 1);
    ht_conn_emit_opaque(&c->conn, HT_GAP_TLS_NOT_DECRYPTED, &c->tls->start);
    for (unsigned i = 0; i < n_said; i++)
        if (said[i] == c->tgid)
            return;
    if (n_said < sizeof(said) / sizeof(said[0]))
        said[n_said++] = c->tgid;
    char libs[256];
    tls_libraries(c->tgid, libs, sizeof(libs));
    fprintf(stderr, "httptape: pid %u has TLS connections whose plaintext no library httptape "
            "covers handed over (covered: OpenSSL 3's libssl, linked dynamically; TLS libraries "
            "in the process: %s; or a memory-BIO SSL whose ClientHello matched no one connection; "
            "or a TLS client on a cleartext port): each is logged once with "
            "gap tls_not_decrypted and counted (connections_tls_not_decrypted)\n", c->tgid,
            libs[0] ? libs : "none mapped, so one linked in statically");
}

/* End a connection: emit what it holds, forget it. */
static void finish_conn(struct aconn *c, const struct ht_clock *now, uint32_t extra_gaps)
{
    if (c->handed_at)
        n_handed--;
    one_way_unseen(c);
    if (c->tls && !c->tls->library && !c->discard && !c->conn.bytes[HT_REQ] &&
        !c->conn.bytes[HT_RESP])
        tls_not_decrypted(c);
    ht_conn_finish(&c->conn, now, extra_gaps);
    HT_STAT_ADD(bytes_received, c->conn.bytes[HT_REQ]);
    HT_STAT_ADD(bytes_sent, c->conn.bytes[HT_RESP]);
    unlink_conn(c);
    free(c->tls);
    free(c);
}

/* ---- process.executable.name ----
 *
 * A recorded process's comm (what /proc/TGID/status calls Name), read once
 * per process: the feed's loop is single-threaded, the slot is cleared when
 * the process is gone, and a tgid reused after that reads it again. */
#define EXE_SLOTS 256
static struct exe_slot { uint32_t tgid; char name[16]; } exe_slots[EXE_SLOTS];

static const char *exe_of(uint32_t tgid)
{
    struct exe_slot *sl = &exe_slots[tgid % EXE_SLOTS];
    if (sl->tgid == tgid && tgid)
        return sl->name;
    char path[32], name[16] = "";
    snprintf(path, sizeof(path), "/proc/%u/comm", tgid);
    FILE *f = fopen(path, "re");
    if (f) {
        if (fgets(name, sizeof(name), f))
            name[strcspn(name, "\n")] = 0;
        fclose(f);
    }
    sl->tgid = tgid;
    memcpy(sl->name, name, sizeof(name));
    return sl->name;
}

static void exe_forget(uint32_t tgid)
{
    struct exe_slot *sl = &exe_slots[tgid % EXE_SLOTS];
    if (sl->tgid == tgid)
        sl->tgid = 0;
}

static struct aconn *new_conn(uint64_t id, uint32_t tgid, int fd, const struct ht_endpoints *ep,
                              bool joined, const struct ht_clock *now)
{
    /* A connection still at this fd lost its close record: it is over. */
    struct aconn *old = find_fd(tgid, fd);
    if (old)
        finish_conn(old, now, HT_GAP_CAPTURE);
    struct aconn *c = calloc(1, sizeof(*c));
    if (!c) {
        HT_STAT_ADD(dropped_no_memory, 1);
        return NULL;
    }
    c->id = id;
    c->tgid = tgid;
    c->fd = fd;
    c->joined = joined;
    c->waiting[HT_REQ] = c->waiting[HT_RESP] = joined;
    char sid[32];
    ht_connid_format(sid, sizeof(sid), (int)tgid, ++seq);
    ht_conn_init(&c->conn, feed.ccfg, ep, sid, (int)tgid, emit, c);
    ht_conn_set_exe(&c->conn, exe_of(tgid));
    if (joined)
        ht_conn_mark_joined(&c->conn);
    link_conn(c);
    HT_STAT_ADD(connections, 1);
    return c;
}

bool ht_feed_join(uint64_t id, uint32_t tgid, int fd, const struct ht_endpoints *ep)
{
    struct ht_clock now = now_clock();
    if (!new_conn(id, tgid, fd, ep, true, &now))
        return false;
    feed.n.joined++;
    return true;
}

void ht_feed_finish_all(uint32_t extra_gaps)
{
    struct ht_clock now = now_clock();
    for (unsigned b = 0; b < ID_BUCKETS; b++)
        while (by_id[b])
            finish_conn(by_id[b], &now, extra_gaps);
}

/* ---- losses ---- */

/* n bytes of direction d went by unseen (ring buffer full, or not copied).
 * The exchange they belong to gets gap capture_gap, whatever they were:
 * the core then counts them (inside a body, its size stays exact; wanted
 * body bytes add body_not_captured) or, if they had to be parsed (a head,
 * chunk lines), stops reading that direction. Always counted. */
static void resync(struct aconn *c, const struct ht_clock *now);

static void lose(struct aconn *c, enum ht_dir d, uint64_t n, const struct ht_clock *now)
{
    feed.n.lost_bytes += n;
    if (!c->waiting[d]) {
        bool was_stopped = c->conn.stopped[d];  /* a desync of its own stays one */
        ht_conn_feed_lost(&c->conn, d, n, now);
        if (!was_stopped && c->conn.stopped[d] && !c->conn.finished)
            resync(c, now);
    } else {
        HT_STAT_ADD(capture_gaps, 1);
    }
}

/* Bytes that had to be parsed were lost: the framing after them cannot be
 * trusted, but the connection goes on (a keep-alive connection can carry
 * thousands of exchanges more). What it holds is ended here (marked
 * capture_gap), and it is picked up again as a joined connection is: each
 * direction at its next message boundary, the exchanges from then on
 * marked httptape.connection.joined, their request_index going on. */
static void resync(struct aconn *c, const struct ht_clock *now)
{
    struct ht_endpoints ep = c->conn.ep;
    char sid[sizeof(c->conn.id)];
    memcpy(sid, c->conn.id, sizeof(sid));
    uint64_t next = c->conn.next_index;
    int pid = c->conn.pid;
    char exe[sizeof(c->conn.exe)];
    memcpy(exe, c->conn.exe, sizeof(exe));
    ht_conn_finish(&c->conn, now, HT_GAP_CAPTURE);
    ht_conn_init(&c->conn, feed.ccfg, &ep, sid, pid, emit, c);
    c->conn.next_index = next;
    ht_conn_set_exe(&c->conn, exe);
    ht_conn_mark_joined(&c->conn);
    c->joined = true;
    c->waiting[HT_REQ] = c->waiting[HT_RESP] = true;
    feed.n.resynced++;
}

/* Bring direction d up to stream offset off; anything between was lost. */
static void catch_up(struct aconn *c, enum ht_dir d, uint64_t off, const struct ht_clock *now)
{
    if (off > c->off[d]) {
        feed.n.lost_events++;
        lose(c, d, off - c->off[d], now);
        c->off[d] = off;
    }
}

/* ---- skipping what the excerpt no longer wants ---- */

static void update_skip(struct aconn *c, enum ht_dir d)
{
    struct ht_conn *k = &c->conn;
    if (!feed.ops.skip || k->finished || k->stopped[d] || c->waiting[d])
        return;
    struct ht_exchange *ex = d == HT_REQ ? k->req_cur : k->resp_cur;
    if (!ex)
        return;
    const struct ht_body *b = d == HT_REQ ? &ex->req_body : &ex->resp_body;
    if (!b->truncated && b->len < ex->excerpt_cap[d != HT_REQ])
        return;                     /* the excerpt still wants bytes */
    if (ht_body_wants_all(b))
        return;                     /* a digest or a multipart summary wants every byte */
    uint64_t room = ht_parser_body_room(&k->p[d]);
    if (room < SKIP_MIN)
        return;
    uint64_t to = room > UINT64_MAX - c->off[d] ? UINT64_MAX : c->off[d] + room;
    if (to <= c->skip_to[d])
        return;
    c->skip_to[d] = to;
    feed.ops.skip(feed.ops.ctx, c->tgid, c->fd, c->id, c->skip_to);
}

/* ---- joined connections: find a message boundary ---- */

static bool tchar(uint8_t ch)
{
    return isalnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Does p start a request line ("METHOD target HTTP/1.x")? */
static bool starts_request(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n && i < 32 && tchar(p[i]))
        i++;
    if (i == 0 || i >= n || p[i] != ' ')
        return false;
    const uint8_t *lf = memchr(p, '\n', n);
    if (!lf)
        return true;                /* a long target: the method is enough */
    size_t e = (size_t)(lf - p);
    if (e && p[e - 1] == '\r')
        e--;
    return e >= i + 10 && !memcmp(p + e - 8, "HTTP/1.", 7);
}

static bool starts_response(const uint8_t *p, size_t n)
{
    return n >= 7 && !memcmp(p, "HTTP/1.", 7);
}

/* A joined connection's bytes before its first whole message are dropped;
 * a response that starts before any request we saw is the answer to one
 * sent before we came: it is fed, and logged without its request.
 * True when this piece is to be fed. */
static bool joined_ready(struct aconn *c, enum ht_dir d, const uint8_t *p, size_t n)
{
    if (!c->waiting[d])
        return true;
    if (d == HT_REQ ? starts_request(p, n) : starts_response(p, n)) {
        c->waiting[d] = false;
        return true;
    }
    feed.n.dropped_early += n;
    return false;
}

/* ---- records ---- */

static struct aconn *conn_of(const struct ht_rec *h, const struct ht_clock *now)
{
    struct aconn *c = find_id(h->tgid, h->conn_id);
    if (c || (h->conn_id & HT_ID_JOINED))
        return c;
    /* Its opening record was lost (a full ring, or it went to a collector
     * that died): the addresses are unknown. From the stream's start the
     * bytes are whole; from further in, it is joined at the next message,
     * each direction from the first offset it shows. */
    struct ht_endpoints ep = { .peer_port = -1, .local_port = -1 };
    feed.n.no_accept++;
    c = new_conn(h->conn_id, h->tgid, h->fd, &ep, h->off > 0, now);
    if (c && h->off > 0) {
        c->adopt[0] = c->adopt[1] = true;
        feed.n.joined++;
    }
    return c;
}

/* A joined connection's direction d starts where its first record is. */
static inline void adopt(struct aconn *c, enum ht_dir d, uint64_t off)
{
    if (c->adopt[d]) {
        c->off[d] = off;
        c->adopt[d] = false;
    }
}

/* The endpoints an ACCEPT (or OPEN) record carries. */
static struct ht_endpoints endpoints_of(const struct ht_rec_accept *r)
{
    struct ht_endpoints ep = { .peer_port = -1, .local_port = -1 };
    if (r->family == AF_UNIX) {
        char path[HT_REC_PATH_MAX + 1];
        memcpy(path, r->path, HT_REC_PATH_MAX);
        path[HT_REC_PATH_MAX] = 0;
        ht_feed_ep_unix(&ep, path);
    } else if (r->family == AF_INET || r->family == AF_INET6) {
        ht_feed_ep_inet(&ep, r->family, r->local_addr, r->local_port, r->peer_addr, r->peer_port);
    }
    return ep;
}

static void on_accept(const struct ht_rec_accept *r)
{
    struct ht_clock now = rec_clock(&r->h);
    if (find_id(r->h.tgid, r->h.conn_id))
        return;
    struct ht_endpoints ep = endpoints_of(r);
    new_conn(r->h.conn_id, r->h.tgid, r->h.fd, &ep, false, &now);
}

/* The bytes of a SENDFILE record, read back by the capture side's op. */
struct sendfile_fetch {
    const struct ht_rec *h;
    size_t size;
};

static size_t fetch_sendfile(void *ctx, uint64_t off, uint8_t *buf, size_t len)
{
    const struct sendfile_fetch *f = ctx;
    return feed.ops.fetch_sendfile(feed.ops.ctx, f->h, f->size, off, buf, len);
}

/* A FILEDATA record carries the first bytes sent; the rest cannot be had. */
struct filedata_fetch {
    const uint8_t *p;
    size_t len;
};

static size_t fetch_filedata(void *ctx, uint64_t off, uint8_t *buf, size_t len)
{
    const struct filedata_fetch *f = ctx;
    if (off >= f->len)
        return 0;
    size_t n = f->len - off < len ? f->len - (size_t)off : len;
    memcpy(buf, f->p + off, n);
    return n;
}

/* DATA, UNSEEN, SENDFILE and FILEDATA records. size: for DATA the payload bytes at
 * data, for SENDFILE the size of the whole record. */
/* Bytes a call moved on a connection whose fd another thread closed and
 * reused meanwhile (preload's HT_UNSEEN_STALE): the old connection's, seen
 * after its end. Counted; a gap in it if it is still here; never fed to
 * whichever connection holds the number now. */
static void stale(const struct ht_rec *h)
{
    HT_STAT_ADD(bytes_unattributed, h->span);
    struct aconn *c = find_id(h->tgid, h->conn_id);
    if (c && !c->conn.finished) {
        struct ht_clock now = rec_clock(h);
        lose(c, h->dir ? HT_RESP : HT_REQ, h->span, &now);
    }
}

static void on_bytes(const struct ht_rec *h, const uint8_t *data, size_t size,
                     const struct ht_file_excerpt *fx)
{
    if (h->type == HT_REC_UNSEEN && h->reason == HT_UNSEEN_STALE) {
        stale(h);
        return;
    }
    struct ht_clock now = rec_clock(h);
    struct aconn *c = conn_of(h, &now);
    enum ht_dir d = h->dir ? HT_RESP : HT_REQ;
    if (!c)
        return;
    adopt(c, d, h->off);
    if (h->off + h->span <= c->off[d] && h->span)
        return;                     /* already had these (cannot happen; be safe) */
    catch_up(c, d, h->off, &now);
    c->off[d] = h->off + h->span;

    switch (h->type) {
    case HT_REC_DATA:
        if (h->len > size)
            return;
        if (joined_ready(c, d, data, h->len))
            ht_conn_feed(&c->conn, d, data, h->len, &now, 0);
        break;
    case HT_REC_UNSEEN:
        if (h->reason == HT_UNSEEN_SKIP)
            feed.n.skipped_bytes += h->span;
        if (h->reason == HT_UNSEEN_SKIP || h->reason == HT_UNSEEN_SPLICE ||
            h->reason == HT_UNSEEN_BIG) {
            if (!c->waiting[d])
                ht_conn_feed_unseen(&c->conn, d, h->span,
                                    h->reason == HT_UNSEEN_SPLICE ? HT_SRC_SPLICE : HT_SRC_IO,
                                    NULL, NULL, NULL, &now);
        } else {
            feed.n.cut_events++;
            lose(c, d, h->span, &now);
        }
        break;
    case HT_REC_SENDFILE: {
        if (c->waiting[d]) {
            feed.n.dropped_early += h->span;
            break;
        }
        struct sendfile_fetch f = { h, size };
        struct ht_file_id id;
        bool named = feed.ops.sendfile_id && feed.ops.sendfile_id(feed.ops.ctx, h, size, &id);
        ht_conn_feed_unseen(&c->conn, d, h->span, HT_SRC_SENDFILE, named ? &id : NULL,
                            feed.ops.fetch_sendfile ? fetch_sendfile : NULL, &f, &now);
        break;
    }
    case HT_REC_FILEDATA: {
        if (c->waiting[d]) {
            feed.n.dropped_early += h->span;
            break;
        }
        struct filedata_fetch f = { fx->bytes, fx->len };
        ht_conn_feed_unseen(&c->conn, d, h->span, HT_SRC_SENDFILE, &fx->id, fetch_filedata, &f,
                            &now);
        break;
    }
    }
    update_skip(c, d);
}

/* A sendfile the library saw: its file, and the excerpt it carries or one
 * it sent before (files.h). A KEPT one whose excerpt is not here (a lost
 * record, two threads racing for a slot) is counted, and its body gets
 * body_not_captured. */
static void on_filedata(const struct ht_rec_filedata *r, size_t size)
{
    struct ht_file_excerpt fx;
    if (!ht_files_take(r->h.tgid, r, size, &fx))
        HT_STAT_ADD(files_unmatched, 1);
    on_bytes(&r->h, NULL, 0, &fx);
}

static void on_eof(const struct ht_rec *h)
{
    struct ht_clock now = rec_clock(h);
    struct aconn *c = conn_of(h, &now);
    enum ht_dir d = h->dir ? HT_RESP : HT_REQ;
    if (!c)
        return;
    adopt(c, d, h->off);
    catch_up(c, d, h->off, &now);
    ht_conn_eof(&c->conn, d, &now);
}

/* A process that forked closed its copy without touching it since:
 * (fork-per-connection) a child goes on with it and will say so (OPEN,
 * inherited); until then, or HANDED_WAIT, it is held, not ended. */
#define HANDED_WAIT_NS 5000000000LL

static void on_close(const struct ht_rec_close *r)
{
    struct ht_clock now = rec_clock(&r->h);
    struct aconn *c = find_id(r->h.tgid, r->h.conn_id);
    if (!c)
        return;
    catch_up(c, HT_REQ, r->end[0], &now);
    catch_up(c, HT_RESP, r->end[1], &now);
    if (r->h.reason == HT_CLOSE_HANDED_OVER) {
        c->handed_at = now.mono_ns ? now.mono_ns : 1;
        n_handed++;
        return;
    }
    finish_conn(c, &now, 0);
}

void ht_feed_tick(void)
{
    if (!n_handed)
        return;
    struct ht_clock now = now_clock();
    for (unsigned b = 0; b < ID_BUCKETS; b++)
        for (struct aconn *c = by_id[b], *next; c; c = next) {
            next = c->next_id;
            if (c->handed_at && now.mono_ns - c->handed_at > HANDED_WAIT_NS)
                finish_conn(c, &now, 0);
        }
}

/* A followed process forked: the child has its own copy of a connection
 * (joined at the next message if the parent had begun on it). */
static void on_inherit(const struct ht_rec_inherit *r)
{
    struct ht_clock now = rec_clock(&r->h);
    struct aconn *p = find_any(r->parent_id);
    struct ht_endpoints ep = { .peer_port = -1, .local_port = -1 };
    bool begun = r->parent_off[0] || r->parent_off[1] || !p || p->joined;
    if (p)
        ep = p->conn.ep;
    struct aconn *c = new_conn(r->h.conn_id, r->h.tgid, r->h.fd, &ep, begun, &now);
    if (c && begun)
        feed.n.joined++;
}

/* Every connection of a process that is gone (its fds closed without a
 * close record). */
void ht_feed_process_gone(uint32_t tgid, uint32_t extra_gaps)
{
    struct ht_clock now = now_clock();
    exe_forget(tgid);
    ht_files_forget(tgid);
    for (unsigned b = 0; b < ID_BUCKETS; b++) {
        struct aconn *c = by_id[b];
        while (c) {
            struct aconn *next = c->next_id;
            if (c->tgid == tgid) {
                int fd = c->fd;
                finish_conn(c, &now, extra_gaps);
                if (feed.ops.process_exited)
                    feed.ops.process_exited(feed.ops.ctx, tgid, fd);
            }
            c = next;
        }
    }
    /* Its pid may be reused by a process that does not use io_uring. */
    for (unsigned i = 0; i < n_uring; i++)
        if (uring_tgids[i] == tgid)
            uring_tgids[i--] = uring_tgids[--n_uring];
}

static void on_exit_rec(const struct ht_rec *h)
{
    ht_feed_process_gone(h->tgid, HT_GAP_PROCESS_EXIT);
    if (feed.ops.process_exited)
        feed.ops.process_exited(feed.ops.ctx, h->tgid, -1);
}

/* A preloaded process's new connection, or its forked child's copy of
 * one: a copy whose streams had begun is joined at the next message. */
static void on_open(const struct ht_rec_open *r)
{
    const struct ht_rec_accept *a = &r->a;
    struct ht_clock now = rec_clock(&a->h);
    if (find_id(a->h.tgid, a->h.conn_id))
        return;
    struct ht_endpoints ep = endpoints_of(a);
    /* The child goes on with its parent's connection from where the
     * parent's records ended: the same struct ht_conn, under the child. */
    struct aconn *p = r->inherited ? find_id(r->parent_tgid, a->h.conn_id) : NULL;
    if (p && p->off[0] == r->start[0] && p->off[1] == r->start[1]) {
        if (p->handed_at)
            n_handed--;
        p->handed_at = 0;
        unlink_conn(p);
        p->tgid = a->h.tgid;
        p->fd = a->h.fd;
        ht_conn_set_pid(&p->conn, (int)a->h.tgid);
        ht_conn_set_exe(&p->conn, exe_of(a->h.tgid));
        link_conn(p);
        return;
    }
    bool begun = r->start[0] || r->start[1];
    struct aconn *c = new_conn(a->h.conn_id, a->h.tgid, a->h.fd, &ep, begun, &now);
    if (!c)
        return;
    c->off[0] = r->start[0];
    c->off[1] = r->start[1];
    if (begun)
        feed.n.joined++;
}

static struct tls_state *tls_of(struct aconn *c, const struct ht_clock *now)
{
    if (!c->tls) {
        c->tls = calloc(1, sizeof(*c->tls));
        if (!c->tls) {
            HT_STAT_ADD(dropped_no_memory, 1);
            return NULL;
        }
        c->tls->start = *now;
    }
    return c->tls;
}

/* Ciphertext on the socket: counted; the start of the client's stream is
 * its ClientHello. Never parsed as HTTP. */
static void on_raw(const struct ht_rec *h, const uint8_t *data, size_t size)
{
    struct ht_clock now = rec_clock(h);
    struct aconn *c = conn_of(h, &now);
    struct tls_state *t = c ? tls_of(c, &now) : NULL;
    if (!t)
        return;
    int d = h->dir ? HT_RESP : HT_REQ;
    if (h->off + h->span > t->info.raw_bytes[d])
        t->info.raw_bytes[d] = h->off + h->span;
    if (d != HT_REQ || t->hello_done || h->off != t->hello_len || !h->len || h->len > size)
        return;
    uint32_t n = h->len < HT_REC_HELLO_MAX - t->hello_len ? h->len : HT_REC_HELLO_MAX - t->hello_len;
    memcpy(t->hello + t->hello_len, data, n);
    t->hello_len += n;
    int r = ht_hello_parse(t->hello, t->hello_len, t->hello_sni, sizeof(t->hello_sni),
                           t->hello_alpn, sizeof(t->hello_alpn));
    if (r != 0 || t->hello_len == HT_REC_HELLO_MAX)
        t->hello_done = true;
}

static void copy_field(char *dst, size_t cap, const char *src, size_t src_cap)
{
    size_t n = strnlen(src, src_cap);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = 0;
}

/* A covered TLS library serves the connection: what it says of the session. */
static void on_tls(const struct ht_rec_tls *r)
{
    struct ht_clock now = rec_clock(&r->h);
    struct aconn *c = conn_of(&r->h, &now);
    struct tls_state *t = c ? tls_of(c, &now) : NULL;
    if (!t)
        return;
    t->library = true;
    copy_field(t->info.version, sizeof(t->info.version), r->version, sizeof(r->version));
    copy_field(t->info.cipher, sizeof(t->info.cipher), r->cipher, sizeof(r->cipher));
    copy_field(t->info.server_name, sizeof(t->info.server_name), r->server_name,
               sizeof(r->server_name));
    copy_field(t->info.alpn, sizeof(t->info.alpn), r->alpn, sizeof(r->alpn));
}

/* A connection (or, with conn_id 0, a process) whose bytes went out of
 * reach: its exchanges are not logged, it is counted. */
static void on_unreachable(const struct ht_rec *h)
{
    if (h->conn_id == 0) {
        if (h->reason == HT_UNREACH_IO_URING && !uses_io_uring(h->tgid) && n_uring < URING_MAX)
            uring_tgids[n_uring++] = h->tgid;
        return;
    }
    struct aconn *c = find_id(h->tgid, h->conn_id);
    if (!c || c->discard)
        return;
    c->discard = true;
    if (h->reason == HT_UNREACH_STDIO)
        HT_STAT_ADD(connections_unseen_stdio, 1);
    else
        HT_STAT_ADD(connections_unseen_io_uring, 1);
}

void ht_feed_record(const void *data, size_t size)
{
    const struct ht_rec *h = data;
    if (size < sizeof(*h))
        return;
    switch (h->type) {
    case HT_REC_ACCEPT:
        if (size >= sizeof(struct ht_rec_accept))
            on_accept(data);
        break;
    case HT_REC_DATA:
    case HT_REC_UNSEEN:
        on_bytes(h, (const uint8_t *)data + sizeof(*h), size - sizeof(*h), NULL);
        break;
    case HT_REC_FILEDATA:
        if (size >= sizeof(struct ht_rec_filedata))
            on_filedata(data, size);
        break;
    case HT_REC_OPEN:
        if (size >= sizeof(struct ht_rec_open))
            on_open(data);
        break;
    case HT_REC_UNREACHABLE:
        on_unreachable(h);
        break;
    case HT_REC_RAW:
        on_raw(h, (const uint8_t *)data + sizeof(*h), size - sizeof(*h));
        break;
    case HT_REC_TLS:
        if (size >= sizeof(struct ht_rec_tls))
            on_tls(data);
        break;
    case HT_REC_SENDFILE:
        if (size >= offsetof(struct ht_rec_sendfile, path))
            on_bytes(h, NULL, size, NULL);
        break;
    case HT_REC_EOF:
        on_eof(h);
        break;
    case HT_REC_CLOSE:
        if (size >= sizeof(struct ht_rec_close))
            on_close(data);
        break;
    case HT_REC_EXIT:
        on_exit_rec(h);
        break;
    case HT_REC_INHERIT:
        if (size >= sizeof(struct ht_rec_inherit))
            on_inherit(data);
        break;
    }
}
