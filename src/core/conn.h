/*
 * conn.h - one HTTP/1.x connection: a parser per direction, and the pairing
 * of requests with responses into exchanges (keep-alive, pipelining,
 * interim 1xx, Upgrade/CONNECT tunnels, early responses), or an HTTP/2
 * one (core/h2.h: the client's first bytes are the HTTP/2 preface, or the
 * server accepted an h2c Upgrade), one exchange per stream.
 *
 * A capture front end (preload, attach, replay) reports "direction d saw
 * these bytes at this time" and "direction d ended"; finished exchanges
 * come out, in request order, through the emit callback, which takes
 * ownership of each.
 *
 * Threading: none inside. The front end serialises all calls on one
 * connection (preload holds a per-connection lock).
 */
#ifndef HT_CONN_H
#define HT_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "core/exchange.h"
#include "core/parser.h"

#define HT_PIPELINE_MAX 32      /* exchanges held awaiting responses, per connection */
#define HT_PHANTOM_MAX 4096     /* further requests parsed but not kept (counted) */
#define HT_HOLD_MAX 8           /* finished exchanges held while the framing is in doubt */
#define HT_EARLY_MAX 512        /* server bytes held before the client's first (HTTP/2) */

struct ht_conn_cfg {
    uint32_t max_body;          /* excerpt cap per body, bytes (0: sizes only) */
    uint32_t max_header;        /* head size limit per message */
    const char *mode;           /* httptape.mode of the events */
    const char *service;        /* service.name; NULL or "": the executable's name */
    uint32_t h2_max_streams;    /* HTTP/2 streams kept open at once (0: 128) */
};

/* Clock readings for the bytes being reported. */
struct ht_clock {
    int64_t wall_ns;            /* CLOCK_REALTIME */
    int64_t mono_ns;            /* CLOCK_MONOTONIC */
};

typedef void (*ht_emit_fn)(void *ctx, struct ht_exchange *ex);

struct ht_h2;
struct ht_ws;

struct ht_conn {
    const struct ht_conn_cfg *cfg;
    ht_emit_fn emit;
    void *emit_ctx;
    struct ht_endpoints ep;
    char id[32];
    int pid;
    char exe[16];               /* process.executable.name; "" when unknown */
    uint64_t next_index;

    struct ht_parser p[2];
    struct ht_exchange *fifo[HT_PIPELINE_MAX];  /* oldest first */
    unsigned fifo_head, fifo_len;
    struct ht_exchange *req_cur;    /* request being read */
    struct ht_exchange *resp_cur;   /* exchange the response belongs to */

    /* Requests beyond HT_PIPELINE_MAX are still framed (so the responses
     * after them pair correctly) but not kept: "phantoms", each counted as
     * a dropped exchange. Their request flags wait here for the response. */
    uint8_t *ph_flags;              /* ring of HT_PHANTOM_MAX, allocated on need */
    unsigned ph_head, ph_len;
    bool req_phantom;               /* the request being read is a phantom */
    uint8_t resp_phantom;           /* 0, PH_RING, or PH_UNPAIRED (see conn.c) */
    uint32_t extra_gaps;            /* added to incomplete exchanges (finish) */

    /* Doubt window (conn.c, "desync suspicion"): after a request that
     * could hide another from us (content, doubtful framing), finished
     * exchanges from doubt_from on are held until both sides are seen to
     * agree again; a response no request explains flags them all. */
    bool doubt;
    bool order_unknown;             /* fed HT_FEED_ONE_MESSAGE: no confirmation */
    uint64_t doubt_from;            /* request_index of the first held exchange */

    bool stopped[2];            /* parser dead or stream ended */
    bool desync[2];             /* stopped because of a framing error */
    bool closing[2];            /* the last message said it was the last */
    bool tunnel;
    bool finished;
    bool joined;                /* open before capture began (ht_conn_mark_joined) */
    uint64_t bytes[2];          /* bytes seen per direction */
    uint64_t messages[2];       /* messages ended per direction (1xx too) */
    uint64_t unparsed[2];       /* bytes seen but not parsed (tunnel, dead) */

    /* HTTP/2 (h2.c): the client's first bytes, while they may still be
     * its preface; once decided, sniffed. A server that speaks first with
     * what looks like HTTP/2's SETTINGS (under TLS with ALPN h2 it does
     * not wait for the preface) has those bytes held in early (malloc'd,
     * at most HT_EARLY_MAX) until the client's side decides; early_done
     * once the server's first bytes are known not to be held. */
    struct ht_h2 *h2;
    struct ht_ws *ws;           /* after a 101 or a CONNECT's 2xx (ws.c) */
    uint8_t sniff[24];
    uint8_t sniff_len;
    bool sniffed;
    bool early_done;
    uint8_t *early;
    uint16_t early_len;
};

/* Feed flags. HT_FEED_ONE_MESSAGE: stop after one message ends (or
 * pauses). The caller then chooses the order of the two directions (replay
 * alternates by message), so the order of feeds says nothing about the
 * order of the bytes: a connection fed this way never takes a new request
 * as proof that the server had answered everything (see conn.c), and holds
 * doubtful exchanges until it finishes (at most HT_HOLD_MAX). */
#define HT_FEED_ONE_MESSAGE 1u

/* Set up a connection. id is copied; cfg must outlive the connection. */
void ht_conn_init(struct ht_conn *c, const struct ht_conn_cfg *cfg,
                  const struct ht_endpoints *ep, const char *id, int pid,
                  ht_emit_fn emit, void *emit_ctx);

/* Bytes seen in direction d. Returns the number consumed: always len,
 * unless HT_FEED_ONE_MESSAGE stopped early. */
size_t ht_conn_feed(struct ht_conn *c, enum ht_dir d, const uint8_t *buf, size_t len,
                    const struct ht_clock *now, unsigned flags);

/* Fetch up to len bytes at offset off of an unseen range into buf (e.g.
 * pread on the file given to sendfile). Returns the bytes fetched; 0 when
 * they cannot be had. */
typedef size_t (*ht_fetch_fn)(void *ctx, uint64_t off, uint8_t *buf, size_t len);

/* n bytes moved in direction d without passing through a buffer we saw
 * (sendfile, splice). Inside a body they are counted without reading
 * them, except what the excerpt wants, which is fetched; anything that
 * must be parsed (a head, chunk lines) is fetched too. Without fetch, or
 * when fetching fails, body content becomes gap body_not_captured and
 * unparsable bytes a capture gap. src says where the body came from, file
 * (or NULL) which file: a body takes the first it is given (copied). */
void ht_conn_feed_unseen(struct ht_conn *c, enum ht_dir d, uint64_t n, enum ht_body_source src,
                         const struct ht_file_id *file,
                         ht_fetch_fn fetch, void *ctx, const struct ht_clock *now);

/* Direction d ended (peer half-close, or our side shut down writing). */
void ht_conn_eof(struct ht_conn *c, enum ht_dir d, const struct ht_clock *now);

/* Bytes in direction d were lost to us: stop parsing it (capture gap). */
void ht_conn_lost(struct ht_conn *c, enum ht_dir d);

/* n bytes of direction d were lost to us, but their number is known (a
 * record a full ring had no room for): the exchange they belong to gets
 * gap capture_gap, and they are fed as unseen (inside a body its size
 * stays exact; a head or chunk line among them stops that direction).
 * Counted in capture_gaps once. */
void ht_conn_feed_lost(struct ht_conn *c, enum ht_dir d, uint64_t n, const struct ht_clock *now);

/* A connection none of whose bytes could be read as HTTP (TLS without
 * plaintext): one exchange, carrying only who and when (start) and gaps,
 * is emitted. */
void ht_conn_emit_opaque(struct ht_conn *c, uint32_t gaps, const struct ht_clock *start);

/* The process now owning the connection (a forked child that goes on
 * with it): exchanges in flight and from here on carry its pid. */
void ht_conn_set_pid(struct ht_conn *c, int pid);

/* The name of the process's executable (its comm, up to 15 bytes), for
 * the exchanges from now on and those in flight. */
void ht_conn_set_exe(struct ht_conn *c, const char *exe);

/* Capture began while the connection was already open: its exchanges
 * say so (httptape.connection.joined), from the next one made on. */
void ht_conn_mark_joined(struct ht_conn *c);

/* The connection is over: end both directions, emit every exchange still
 * held (incomplete ones carry their gaps plus extra_gaps), free buffers.
 * The streams are taken to have ended (a close-delimited response is then
 * complete), except with HT_GAP_CAPTURE_ENDED in extra_gaps: capture
 * stopped while the connection went on (detach), so nothing in flight
 * counts as finished.
 * Idempotent. */
void ht_conn_finish(struct ht_conn *c, const struct ht_clock *now, uint32_t extra_gaps);

#endif
