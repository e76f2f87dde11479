/*
 * h2.c - HTTP/2 framing, HPACK and streams on one connection (h2.h).
 *
 * Each direction is read as a stream of frames, byte by byte as they come:
 * the 9-byte frame header, then a fixed prefix the frame type has (pad
 * length, priority, promised stream, an RST_STREAM or GOAWAY code), then
 * its content (DATA: body bytes; HEADERS, PUSH_PROMISE and
 * CONTINUATION: a header block fragment, inflated at once), then padding.
 * Nothing is buffered but the prefix and the head being built.
 *
 * A header block's fields are gathered into the direction's block state
 * (pseudo-headers apart, the rest as "name: value" lines); at END_HEADERS
 * they become the stream's request head, response head (or an interim
 * one), or its trailers (checked, not kept). Streams live in a table of
 * cfg->h2_max_streams; one past it is still framed and inflated (HPACK
 * state is shared by all streams) but not kept, and counted in
 * dropped_pipeline.
 */
#include "core/h2.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <nghttp2/nghttp2.h>

#include "core/buf.h"
#include "core/conn_private.h"
#include "core/rules.h"
#include "core/ws.h"
#include "core/stats.h"

#define STREAMS_DEFAULT 128
/* The largest HPACK dynamic table either decoder follows (RFC 7541 4.2):
 * a Dynamic Table Size Update above it is an HPACK error. */
#define HPACK_TABLE_MAX 65536
#define DROPPED_IDS 32

enum { F_DATA, F_HEADERS, F_PRIORITY, F_RST_STREAM, F_SETTINGS, F_PUSH_PROMISE, F_PING, F_GOAWAY,
       F_WINDOW_UPDATE, F_CONTINUATION };
#define FL_END_STREAM 0x1
#define FL_END_HEADERS 0x4
#define FL_PADDED 0x8
#define FL_PRIORITY 0x20

/* Where the reader of one direction is in the current frame. */
enum { S_PREFACE, S_HEAD, S_PREFIX, S_CONTENT, S_PAD, S_DEAD };

/* What the header block being read will be. */
enum { B_REQUEST, B_RESPONSE, B_TRAILERS, B_PUSH, B_IGNORE };

struct stream {
    uint32_t id;
    struct ht_exchange *ex;
    /* gRPC's length-prefixed messages in each direction's DATA: the
     * 5-byte prefix being read, then the message's bytes left. */
    uint8_t gpre[2][5];
    uint8_t gpre_len[2];
    uint32_t gleft[2];
    bool head_seen[2];              /* a head came in direction d: a next block is trailers */
    bool ended[2];                  /* END_STREAM (or reset) in direction d */
    bool has_cl[2];
    uint64_t cl[2];                 /* content-length as declared */
};

struct block {
    uint32_t stream;                /* the stream the head is for */
    uint8_t kind;
    bool end_stream;                /* the HEADERS frame ended the stream */
    bool regular_seen;
    bool too_large;
    uint32_t h2_an;
    struct ht_buf fields;           /* "name: value\r\n" lines */
    struct ht_buf method, path, authority, scheme, status, protocol;
    bool has_host;
    struct ht_buf host;             /* the first Host field's value */
    bool has_cl;
    uint64_t cl;
    bool grpc;                      /* content-type application/grpc* */
    int32_t grpc_status;            /* -1: none */
    struct ht_buf grpc_message;
};

struct dir {
    uint8_t state;
    uint8_t hdr[9];
    uint8_t hdr_len;
    uint8_t type, flags;
    uint32_t stream;
    uint32_t left;                  /* payload bytes of the frame not yet read */
    uint8_t pre[8];
    uint8_t pre_len, pre_need;
    uint8_t pad;                    /* padding bytes at the end of the payload */
    bool in_block;                  /* a header block awaits CONTINUATION */
    uint32_t block_frame_stream;    /* ... on this stream */
    struct block blk;
    nghttp2_hd_inflater *hd;
    bool hd_lost;                   /* HPACK table unknown: header blocks are gaps */
    uint32_t preface_left;          /* the client's preface still to pass */
};

struct ht_h2 {
    struct dir d[2];
    struct stream *streams;
    uint32_t nstreams, max_streams;
    uint32_t last_client_id, last_push_id;
    uint32_t dropped[DROPPED_IDS];
    uint32_t ndropped;
    uint32_t conn_an;               /* anomalies of the connection: every later exchange */
    uint32_t goaway_last;           /* the server's GOAWAY: streams after it were not served */
    bool goaway;
};

static const char *const an_names[HT_H2_AN_COUNT] = {
    "h2_frame_on_closed_stream", "h2_connection_specific_header", "h2_content_length_mismatch",
    "h2_uppercase_field_name",   "h2_pseudo_header_after_regular", "h2_hpack_error",
    "h2_pseudo_header_invalid",  "h2_field_invalid",              "h2_protocol_error",
    "h2_header_too_large",       "h2_host_authority_mismatch",
};

const char *ht_h2_anomaly_name(uint32_t bit)
{
    for (unsigned i = 0; i < HT_H2_AN_COUNT; i++)
        if (bit == 1u << i)
            return an_names[i];
    return NULL;
}

int ht_h2_preface(const uint8_t *buf, size_t len, size_t already)
{
    static const char preface[] = HT_H2_PREFACE;
    size_t want = HT_H2_PREFACE_LEN - already;
    size_t n = len < want ? len : want;
    if (memcmp(buf, &preface[already], n))
        return -1;
    return n == want ? 1 : 0;
}

/* ---- streams ---- */

static struct stream *find(struct ht_h2 *h, uint32_t id)
{
    for (uint32_t i = 0; i < h->nstreams; i++)
        if (h->streams[i].id == id)
            return &h->streams[i];
    return NULL;
}

static bool was_dropped(const struct ht_h2 *h, uint32_t id)
{
    for (uint32_t i = 0; i < h->ndropped && i < DROPPED_IDS; i++)
        if (h->dropped[i] == id)
            return true;
    return false;
}

static struct stream *open_stream(struct ht_conn *c, uint32_t id, const struct ht_clock *now)
{
    struct ht_h2 *h = c->h2;
    if (h->nstreams == h->max_streams) {
        h->dropped[h->ndropped++ % DROPPED_IDS] = id;
        ht_conn_count_dropped(&ht_stats.dropped_pipeline);
        c->next_index++;                /* the gap shows in request_index */
        return NULL;
    }
    struct ht_exchange *ex = ht_conn_new_exchange(c, now);
    if (!ex) {
        ht_conn_count_dropped(&ht_stats.dropped_no_memory);
        return NULL;
    }
    ex->h2_stream = id;
    struct stream *s = &h->streams[h->nstreams++];
    *s = (struct stream){ .id = id, .ex = ex };
    return s;
}

/* Why an exchange is incomplete, decided when it leaves. */
static void settle(struct ht_conn *c, struct stream *s, uint32_t extra)
{
    struct ht_exchange *ex = s->ex;
    if (!(ex->req_done && ex->resp_done))
        ex->gaps |= extra;
    if (!ex->req_begun)
        ex->gaps |= HT_GAP_NO_REQUEST;
    else if (!ex->req_done)
        ex->gaps |= HT_GAP_REQUEST_INCOMPLETE;
    if (!ex->resp_done)
        ex->gaps |= ex->resp_begun ? HT_GAP_RESPONSE_INCOMPLETE : HT_GAP_NO_RESPONSE;
    ex->h2_anomalies |= c->h2->conn_an;
}

static void close_stream(struct ht_conn *c, struct stream *s, uint32_t extra)
{
    struct ht_h2 *h = c->h2;
    settle(c, s, extra);
    struct ht_exchange *ex = s->ex;
    *s = h->streams[--h->nstreams];
    c->emit(c->emit_ctx, ex);
}

static void maybe_done(struct ht_conn *c, struct stream *s)
{
    if (s->ex->req_done && s->ex->resp_done)
        close_stream(c, s, 0);
}

/* Direction d of stream s ended (END_STREAM): content-length checked. */
static void end_dir(struct ht_conn *c, struct stream *s, enum ht_dir d, const struct ht_clock *now)
{
    struct ht_exchange *ex = s->ex;
    struct ht_body *b = d == HT_REQ ? &ex->req_body : &ex->resp_body;
    unsigned k = d != HT_REQ;
    s->ended[k] = true;
    /* A HEAD's or a 304's content-length is the representation's. */
    bool bodiless = k && ((ex->req_msg.req_flags & HT_REQF_HEAD) || ex->resp_msg.status == 304);
    if (s->has_cl[k] && s->cl[k] != b->size && !bodiless)
        ex->h2_anomalies |= HT_H2_AN_CONTENT_LENGTH;
    if (d == HT_REQ) {
        ex->req_done = ex->req_begun;
        if (!ex->mono_req_done)
            ex->mono_req_done = now->mono_ns;
    } else {
        ex->resp_done = ex->resp_head_done;
        ex->mono_resp_done = now->mono_ns;
        if (!ex->resp_done)
            ex->gaps |= HT_GAP_RESPONSE_INCOMPLETE;
        ex->resp_done = true;           /* nothing more will come */
    }
    maybe_done(c, s);
}

/* ---- header blocks ---- */

static void block_reset(struct block *b)
{
    struct ht_buf keep[9] = { b->fields, b->method, b->path, b->authority, b->scheme, b->status,
                              b->protocol, b->grpc_message, b->host };
    for (int i = 0; i < 9; i++)
        ht_buf_reset(&keep[i]);
    *b = (struct block){ .fields = keep[0], .method = keep[1], .path = keep[2],
                         .authority = keep[3], .scheme = keep[4], .status = keep[5],
                         .protocol = keep[6], .grpc_message = keep[7], .host = keep[8],
                         .grpc_status = -1 };
}

static void block_free(struct block *b)
{
    ht_buf_free(&b->fields);
    ht_buf_free(&b->method);
    ht_buf_free(&b->path);
    ht_buf_free(&b->authority);
    ht_buf_free(&b->scheme);
    ht_buf_free(&b->status);
    ht_buf_free(&b->protocol);
    ht_buf_free(&b->grpc_message);
    ht_buf_free(&b->host);
}

static bool span_is(const uint8_t *p, size_t n, const char *s)
{
    size_t k = strlen(s);
    return n == k && !memcmp(p, s, k);
}

/* Append v to o, CR, LF and NUL written as SP (they would make lines of
 * their own in the head): flagged. */
static void put_clean(struct block *b, struct ht_buf *o, const uint8_t *v, size_t n)
{
    size_t at = o->len;
    if (ht_buf_append(o, v, n))
        return;
    for (size_t i = 0; i < n; i++) {
        char *ch = &o->p[at + i];
        if (*ch == '\r' || *ch == '\n' || *ch == 0) {
            *ch = ' ';
            b->h2_an |= HT_H2_AN_FIELD_INVALID;
        }
    }
}

/* A token character (RFC 9110 5.6.2), as a field name must be made of. */
static bool tchar(uint8_t ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Append the name n to o, every byte that may not be in a field name
 * written as '_' (a ':' or SP would split it in the head): flagged. */
static void put_name(struct block *b, struct ht_buf *o, const uint8_t *n, size_t len)
{
    size_t at = o->len;
    if (ht_buf_append(o, n, len))
        return;
    for (size_t i = 0; i < len; i++)
        if (!tchar((uint8_t)o->p[at + i])) {
            o->p[at + i] = '_';
            b->h2_an |= HT_H2_AN_FIELD_INVALID;
        }
}

static bool parse_u64(const uint8_t *p, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (!n || n > 19)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    *out = v;
    return true;
}

static void pseudo(struct block *b, const uint8_t *name, size_t nl, const uint8_t *v, size_t vl)
{
    struct ht_buf *dst = NULL;
    bool request = b->kind == B_REQUEST || b->kind == B_PUSH;
    if (b->regular_seen)
        b->h2_an |= HT_H2_AN_PSEUDO_AFTER;
    if (b->kind == B_TRAILERS) {
        b->h2_an |= HT_H2_AN_PSEUDO_INVALID;
        return;
    }
    if (request && span_is(name, nl, ":method"))
        dst = &b->method;
    else if (request && span_is(name, nl, ":path"))
        dst = &b->path;
    else if (request && span_is(name, nl, ":authority"))
        dst = &b->authority;
    else if (request && span_is(name, nl, ":scheme"))
        dst = &b->scheme;
    else if (request && span_is(name, nl, ":protocol"))
        dst = &b->protocol;
    else if (!request && span_is(name, nl, ":status"))
        dst = &b->status;
    if (!dst || dst->len) {
        b->h2_an |= HT_H2_AN_PSEUDO_INVALID;     /* unknown, or repeated */
        if (!dst)
            return;
        ht_buf_reset(dst);
    }
    put_clean(b, dst, v, vl);
}

static bool is_connection_specific(const uint8_t *n, size_t l)
{
    static const char *const names[] = { "connection", "keep-alive", "proxy-connection",
                                         "transfer-encoding", "upgrade" };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (span_is(n, l, names[i]))
            return true;
    return false;
}

/* One decoded field of the block. */
static void field(struct ht_conn *c, struct block *b, const uint8_t *name, size_t nl,
                  const uint8_t *v, size_t vl)
{
    if (b->kind == B_IGNORE)
        return;
    if (nl && name[0] == ':') {
        pseudo(b, name, nl, v, vl);
        return;
    }
    b->regular_seen = true;
    for (size_t i = 0; i < nl; i++)
        if (name[i] >= 'A' && name[i] <= 'Z')
            b->h2_an |= HT_H2_AN_UPPERCASE_NAME;
    if (!nl)
        b->h2_an |= HT_H2_AN_FIELD_INVALID;
    if (is_connection_specific(name, nl) &&
        !(span_is(name, nl, "te") && span_is(v, vl, "trailers")))
        b->h2_an |= HT_H2_AN_CONNECTION_HEADER;
    if (span_is(name, nl, "te") && !span_is(v, vl, "trailers"))
        b->h2_an |= HT_H2_AN_CONNECTION_HEADER;
    if (span_is(name, nl, "host") && !b->has_host) {
        b->has_host = true;
        put_clean(b, &b->host, v, vl);
    }
    if (span_is(name, nl, "content-type") && vl >= 16 && !memcmp(v, "application/grpc", 16) &&
        (vl == 16 || v[16] == '+' || v[16] == ';'))
        b->grpc = true;
    if (span_is(name, nl, "grpc-status")) {
        uint64_t st;
        b->grpc_status = parse_u64(v, vl, &st) && st <= 0x7fffffff ? (int32_t)st : -1;
    }
    if (span_is(name, nl, "grpc-message")) {
        ht_buf_reset(&b->grpc_message);
        put_clean(b, &b->grpc_message, v, vl);
    }
    if (span_is(name, nl, "content-length")) {
        uint64_t cl;
        if (parse_u64(v, vl, &cl) && (!b->has_cl || cl == b->cl)) {
            b->has_cl = true;
            b->cl = cl;
        } else {
            b->h2_an |= HT_H2_AN_CONTENT_LENGTH;
        }
    }
    if (b->kind == B_TRAILERS)
        return;                         /* checked, not kept */
    if (b->fields.len + nl + vl + 4 > c->cfg->max_header) {
        b->too_large = true;
        return;
    }
    if (nl)
        put_name(b, &b->fields, name, nl);
    else
        ht_buf_append(&b->fields, "_", 1);
    ht_buf_append(&b->fields, ": ", 2);
    put_clean(b, &b->fields, v, vl);
    ht_buf_append(&b->fields, "\r\n", 2);
}

/* The head of a finished block, HTTP/1-shaped, into *dst of ex. */
static int make_head(struct ht_exchange *ex, struct block *b, bool request, uint8_t **dst,
                     uint32_t *dst_len, struct ht_msg *m)
{
    struct ht_buf h = { 0 };
    memset(m, 0, sizeof(*m));
    /* Room for the whole head first: the offsets below must match it. */
    if (ht_buf_reserve(&h, 64 + b->method.len + b->path.len + 2 * b->authority.len +
                           b->status.len + b->fields.len))
        return -ENOMEM;
    if (request) {
        const char *method = b->method.len ? b->method.p : "-";
        size_t ml = b->method.len ? b->method.len : 1;
        if (ml > 0xffff)
            ml = 0xffff;                /* method_len is 16 bits */
        for (size_t i = 0; i < ml; i++)
            if (!tchar((uint8_t)method[i]))
                b->h2_an |= HT_H2_AN_PSEUDO_INVALID;    /* a method is a token */
        ht_buf_append(&h, method, ml);
        ht_buf_append(&h, " ", 1);
        m->method_len = (uint16_t)ml;
        m->target_off = (uint32_t)h.len;
        /* CONNECT's target is its authority (RFC 9113 8.5). */
        bool connect = span_is((const uint8_t *)method, ml, "CONNECT") && !b->protocol.len;
        const struct ht_buf *t = connect ? &b->authority : &b->path;
        ht_buf_append(&h, t->len ? t->p : "", t->len);
        m->target_len = (uint32_t)t->len;
        ht_buf_append(&h, " HTTP/2\r\n", 9);
        if (connect)
            m->req_flags |= HT_REQF_CONNECT;
        if (span_is((const uint8_t *)method, ml, "HEAD"))
            m->req_flags |= HT_REQF_HEAD;
        if (!b->method.len || (!connect && (!b->path.len || !b->scheme.len)))
            b->h2_an |= HT_H2_AN_PSEUDO_INVALID;
        /* The head keeps the Host field as sent, but a server (or an
         * HTTP/1 hop) may route by :authority instead: a log that showed
         * one of two different hosts must say there were two. */
        if (b->authority.len && b->has_host &&
            (b->host.len != b->authority.len ||
             strncasecmp(b->host.p, b->authority.p, b->host.len)))
            b->h2_an |= HT_H2_AN_HOST_AUTHORITY;
        if (b->authority.len && !b->has_host) {
            ht_buf_append(&h, "host: ", 6);
            ht_buf_append(&h, b->authority.p, b->authority.len);
            ht_buf_append(&h, "\r\n", 2);
        }
    } else {
        ht_buf_append(&h, "HTTP/2 ", 7);
        ht_buf_append(&h, b->status.p ? b->status.p : "", b->status.len);
        ht_buf_append(&h, "\r\n", 2);
    }
    ht_buf_append(&h, b->fields.p ? b->fields.p : "", b->fields.len);
    int rc = ht_buf_append(&h, "\r\n", 2);
    m->framing = b->end_stream ? HT_FRAME_NONE : HT_FRAME_CLOSE;
    m->content_length = b->cl;
    if (b->has_cl)
        m->framing = HT_FRAME_LENGTH;
    if (b->too_large)
        b->h2_an |= HT_H2_AN_HEADER_TOO_LARGE;
    if (!rc)
        rc = ht_head_copy(ex, dst, dst_len, (const uint8_t *)h.p, (uint32_t)h.len);
    ht_buf_free(&h);
    return rc;
}

static uint16_t status_of(const struct block *b)
{
    uint64_t v;
    if (b->status.len != 3 || !parse_u64((const uint8_t *)b->status.p, 3, &v) || v < 100)
        return 0;
    return (uint16_t)v;
}

/* A header block ended (END_HEADERS): it becomes what it was for. */
static void block_done(struct ht_conn *c, enum ht_dir d, const struct ht_clock *now)
{
    struct ht_h2 *h = c->h2;
    struct block *b = &h->d[d].blk;
    struct stream *s = b->kind == B_IGNORE ? NULL : find(h, b->stream);
    if (!s)
        return;
    struct ht_exchange *ex = s->ex;
    ex->h2_anomalies |= b->h2_an;
    if (h->d[d].hd_lost) {
        /* Its fields are unknown: nothing made up, only the end kept. */
        ex->gaps |= HT_GAP_CAPTURE;
        if (b->kind == B_PUSH)
            ex->req_done = true;
        else if (b->end_stream || b->kind == B_TRAILERS)
            end_dir(c, s, d, now);
        return;
    }
    if (ex->grpc && b->grpc_status >= 0 && (b->kind == B_RESPONSE || b->kind == B_TRAILERS)) {
        ex->grpc->status = b->grpc_status;
        size_t n = b->grpc_message.len < sizeof(ex->grpc->message) - 1 ? b->grpc_message.len
                                                                       : sizeof(ex->grpc->message) - 1;
        memcpy(ex->grpc->message, b->grpc_message.p ? b->grpc_message.p : "", n);
        ex->grpc->message[n] = 0;
    }
    switch (b->kind) {
    case B_REQUEST:
    case B_PUSH:
        if (make_head(ex, b, true, &ex->req_head, &ex->req_head_len, &ex->req_msg) == 0)
            ex->req_head_done = true;
        ex->h2_anomalies |= b->h2_an;   /* make_head's too; before end_dir may emit ex */
        ht_rules_request(ex);
        if (b->grpc && b->kind == B_REQUEST && (ex->grpc = ht_exchange_alloc(ex, sizeof(*ex->grpc)))) {
            memset(ex->grpc, 0, sizeof(*ex->grpc));
            ex->grpc->status = -1;
        }
        s->head_seen[HT_REQ] = true;
        s->has_cl[HT_REQ] = b->has_cl;
        s->cl[HT_REQ] = b->cl;
        if (b->kind == B_PUSH) {
            ex->h2_pushed = true;
            ex->req_done = true;        /* a promise has no body */
            ex->mono_req_done = now->mono_ns;
        } else if (b->end_stream) {
            end_dir(c, s, HT_REQ, now);
        }
        return;
    case B_RESPONSE: {
        uint16_t st = status_of(b);
        if (!st)
            ex->h2_anomalies |= HT_H2_AN_PSEUDO_INVALID;
        if (!ex->resp_begun)
            ex->mono_resp_start = now->mono_ns;
        ex->resp_begun = true;
        if (st >= 100 && st < 200) {    /* interim: the final one comes after */
            if (ex->n_interim < sizeof(ex->interim) / sizeof(ex->interim[0]))
                ex->interim[ex->n_interim++] = st;
            if (b->end_stream) {        /* malformed (RFC 9113 8.1): nothing can follow */
                ex->h2_anomalies |= HT_H2_AN_PROTOCOL_ERROR;
                end_dir(c, s, HT_RESP, now);
            }
            return;
        }
        if (make_head(ex, b, false, &ex->resp_head, &ex->resp_head_len, &ex->resp_msg) == 0)
            ex->resp_head_done = true;
        ex->h2_anomalies |= b->h2_an;
        ex->resp_msg.status = st;
        ht_rules_response(ex);
        s->head_seen[HT_RESP] = true;
        s->has_cl[HT_RESP] = b->has_cl;
        s->cl[HT_RESP] = b->cl;
        if (b->end_stream)
            end_dir(c, s, HT_RESP, now);
        return;
    }
    case B_TRAILERS:
        if (!b->end_stream)
            ex->h2_anomalies |= HT_H2_AN_PROTOCOL_ERROR;
        end_dir(c, s, d, now);
        return;
    }
}

/* A HEADERS frame's block begins: what it is for. */
static void block_begin(struct ht_conn *c, enum ht_dir d, uint32_t id, bool end_stream,
                        const struct ht_clock *now)
{
    struct ht_h2 *h = c->h2;
    struct block *b = &h->d[d].blk;
    block_reset(b);
    b->stream = id;
    b->end_stream = end_stream;
    b->kind = B_IGNORE;
    struct stream *s = find(h, id);
    /* Past DROPPED_IDS dropped streams an old one cannot be told from a
     * closed one: not flagged then. */
    if (!s && (was_dropped(h, id) || (h->ndropped > DROPPED_IDS && id <= h->last_client_id)))
        return;
    if (s && s->ended[d]) {
        s->ex->h2_anomalies |= HT_H2_AN_CLOSED_STREAM;   /* half-closed (remote) */
        return;
    }
    if (d == HT_REQ) {
        if (s) {
            b->kind = s->head_seen[HT_REQ] ? B_TRAILERS : B_REQUEST;
            return;
        }
        if (!(id & 1) || id <= h->last_client_id) {
            h->conn_an |= HT_H2_AN_CLOSED_STREAM;
            return;
        }
        h->last_client_id = id;
        s = open_stream(c, id, now);
        if (!s)
            return;
        s->ex->req_begun = true;
        if (h->goaway && id > h->goaway_last)
            s->ex->gaps |= HT_GAP_STREAM_RESET;    /* opened after the server's GOAWAY */
        if (h->d[HT_REQ].hd_lost)
            s->ex->gaps |= HT_GAP_CAPTURE;
        b->kind = B_REQUEST;
        return;
    }
    if (!s) {
        h->conn_an |= HT_H2_AN_CLOSED_STREAM;
        return;
    }
    if (h->d[HT_RESP].hd_lost) {
        s->ex->gaps |= HT_GAP_CAPTURE;
        s->ex->resp_begun = true;
    }
    b->kind = s->head_seen[HT_RESP] ? B_TRAILERS : B_RESPONSE;
}

/* A PUSH_PROMISE's block: the request of the promised stream. */
static void promise_begin(struct ht_conn *c, uint32_t promised, const struct ht_clock *now)
{
    struct ht_h2 *h = c->h2;
    struct block *b = &h->d[HT_RESP].blk;
    block_reset(b);
    b->stream = promised;
    b->kind = B_IGNORE;
    if (promised & 1 || promised <= h->last_push_id) {
        h->conn_an |= HT_H2_AN_PROTOCOL_ERROR;
        return;
    }
    h->last_push_id = promised;
    struct stream *s = open_stream(c, promised, now);
    if (!s)
        return;
    s->ex->req_begun = true;
    s->ended[HT_REQ] = true;
    if (h->d[HT_RESP].hd_lost)
        s->ex->gaps |= HT_GAP_CAPTURE;
    b->kind = B_PUSH;
}

/* A fragment of the block being read. */
static void inflate(struct ht_conn *c, enum ht_dir d, const uint8_t *in, size_t n, bool final)
{
    struct dir *r = &c->h2->d[d];
    struct block *b = &r->blk;
    if (r->hd_lost)
        return;
    for (;;) {
        nghttp2_nv nv;
        int fl = 0;
        ssize_t used = nghttp2_hd_inflate_hd2(r->hd, &nv, &fl, in, n, final);
        if (used < 0) {
            /* The table is past knowing: every block after this is a gap. */
            r->hd_lost = true;
            b->h2_an |= HT_H2_AN_HPACK_ERROR;
            struct stream *s = find(c->h2, b->stream);
            if (s)
                s->ex->gaps |= HT_GAP_CAPTURE;
            return;
        }
        in += used;
        n -= (size_t)used;
        if (fl & NGHTTP2_HD_INFLATE_EMIT)
            field(c, b, nv.name, nv.namelen, nv.value, nv.valuelen);
        if (fl & NGHTTP2_HD_INFLATE_FINAL) {
            nghttp2_hd_inflate_end_headers(r->hd);
            return;
        }
        if (!(fl & NGHTTP2_HD_INFLATE_EMIT) && n == 0)
            return;
    }
}

/* ---- frames ---- */

static void die(struct ht_conn *c, enum ht_dir d)
{
    struct ht_h2 *h = c->h2;
    h->d[d].state = S_DEAD;
    h->conn_an |= HT_H2_AN_PROTOCOL_ERROR;
    for (uint32_t i = 0; i < h->nstreams; i++)
        if (!h->streams[i].ended[d])
            h->streams[i].ex->gaps |= HT_GAP_DESYNC;
    HT_STAT_ADD(parse_errors, 1);
}

/* The frame header is in: check it and say what comes next. */
static void frame_begin(struct ht_conn *c, enum ht_dir d)
{
    struct dir *r = &c->h2->d[d];
    r->left = (uint32_t)r->hdr[0] << 16 | (uint32_t)r->hdr[1] << 8 | r->hdr[2];
    r->type = r->hdr[3];
    r->flags = r->hdr[4];
    r->stream = ((uint32_t)r->hdr[5] << 24 | (uint32_t)r->hdr[6] << 16 | (uint32_t)r->hdr[7] << 8 |
                 r->hdr[8]) & 0x7fffffffu;
    r->pad = 0;
    r->pre_len = 0;
    r->pre_need = 0;
    if (r->in_block != (r->type == F_CONTINUATION) ||
        (r->in_block && r->stream != r->block_frame_stream)) {
        die(c, d);
        return;
    }
    switch (r->type) {
    case F_DATA:
        r->pre_need = r->flags & FL_PADDED ? 1 : 0;
        break;
    case F_HEADERS:
        r->pre_need = (r->flags & FL_PADDED ? 1 : 0) + (r->flags & FL_PRIORITY ? 5 : 0);
        break;
    case F_PUSH_PROMISE:
        r->pre_need = (r->flags & FL_PADDED ? 1 : 0) + 4;
        break;
    case F_RST_STREAM:
        r->pre_need = 4;
        break;
    case F_GOAWAY:
        r->pre_need = 8;
        break;
    default:
        break;
    }
    if (r->pre_need > r->left || ((r->type == F_DATA || r->type == F_HEADERS ||
        r->type == F_PUSH_PROMISE || r->type == F_CONTINUATION || r->type == F_RST_STREAM) &&
        r->stream == 0)) {
        die(c, d);
        return;
    }
    r->state = r->pre_need ? S_PREFIX : S_CONTENT;
}

/* A HEADERS frame's fragment comes next (its prefix, if any, is read). */
static void headers_begin(struct ht_conn *c, enum ht_dir d, const struct ht_clock *now)
{
    struct dir *r = &c->h2->d[d];
    block_begin(c, d, r->stream, r->flags & FL_END_STREAM, now);
    r->in_block = !(r->flags & FL_END_HEADERS);
    r->block_frame_stream = r->stream;
}

/* The prefix is in. */
static void prefix_done(struct ht_conn *c, enum ht_dir d, const struct ht_clock *now)
{
    struct ht_h2 *h = c->h2;
    struct dir *r = &h->d[d];
    const uint8_t *p = r->pre;
    uint8_t at = 0;
    if ((r->type == F_DATA || r->type == F_HEADERS || r->type == F_PUSH_PROMISE) &&
        (r->flags & FL_PADDED)) {
        r->pad = p[at++];
        if (r->pad > r->left) {
            die(c, d);
            return;
        }
    }
    r->state = S_CONTENT;
    switch (r->type) {
    case F_HEADERS:
        break;
    case F_PUSH_PROMISE: {
        uint32_t promised = ((uint32_t)p[at] << 24 | (uint32_t)p[at + 1] << 16 |
                             (uint32_t)p[at + 2] << 8 | p[at + 3]) & 0x7fffffffu;
        if (d != HT_RESP) {
            die(c, d);
            return;
        }
        promise_begin(c, promised, now);
        r->in_block = !(r->flags & FL_END_HEADERS);
        r->block_frame_stream = r->stream;
        break;
    }
    case F_RST_STREAM: {
        struct stream *s = find(h, r->stream);
        if (s) {
            s->ex->gaps |= HT_GAP_STREAM_RESET;
            close_stream(c, s, 0);
        }
        break;
    }
    case F_GOAWAY:
        if (d == HT_RESP) {
            h->goaway = true;
            h->goaway_last = ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
                              p[3]) & 0x7fffffffu;
            /* Streams after the last one the server processed were not. */
            for (uint32_t i = h->nstreams; i-- > 0;) {
                struct stream *s = &h->streams[i];
                if ((s->id & 1) && s->id > h->goaway_last) {
                    s->ex->gaps |= HT_GAP_STREAM_RESET;
                    close_stream(c, s, 0);
                }
            }
        }
        break;
    }
    if (r->type == F_HEADERS)
        headers_begin(c, d, now);
}

/* The whole payload is read. */
static void frame_end(struct ht_conn *c, enum ht_dir d, const struct ht_clock *now)
{
    struct ht_h2 *h = c->h2;
    struct dir *r = &h->d[d];
    r->state = S_HEAD;
    r->hdr_len = 0;
    switch (r->type) {
    case F_HEADERS:
    case F_PUSH_PROMISE:
    case F_CONTINUATION:
        if (r->type == F_CONTINUATION && !r->in_block) {
            die(c, d);
            return;
        }
        if (r->flags & FL_END_HEADERS) {
            r->in_block = false;
            /* Ignored blocks are inflated too: the table is the
             * connection's. */
            inflate(c, d, (const uint8_t *)"", 0, true);
            block_done(c, d, now);
        }
        return;
    case F_DATA: {
        struct stream *s = find(h, r->stream);
        if (!s) {
            if (!was_dropped(h, r->stream))
                h->conn_an |= HT_H2_AN_CLOSED_STREAM;
            return;
        }
        if (s->ended[d])
            s->ex->h2_anomalies |= HT_H2_AN_CLOSED_STREAM;
        else if (r->flags & FL_END_STREAM)
            end_dir(c, s, d, now);
        return;
    }
    default:
        return;
    }
}

/* gRPC's messages in DATA of direction k of s: counted by their 5-byte
 * prefixes (compressed flag, length). */
static void grpc_count(struct stream *s, unsigned k, const uint8_t *p, size_t n)
{
    struct ht_grpc *g = s->ex->grpc;
    if (!g || g->framing_lost[k])
        return;
    while (n) {
        if (s->gleft[k]) {
            size_t t = n < s->gleft[k] ? n : s->gleft[k];
            s->gleft[k] -= (uint32_t)t;
            p += t;
            n -= t;
            continue;
        }
        s->gpre[k][s->gpre_len[k]++] = *p++;
        n--;
        if (s->gpre_len[k] == 5) {
            const uint8_t *h = s->gpre[k];
            g->messages[k]++;
            g->compressed[k] += h[0] & 1;
            s->gleft[k] = (uint32_t)h[1] << 24 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 8 | h[4];
            s->gpre_len[k] = 0;
        }
    }
}

/* DATA of direction d passed unseen: gRPC messages in it cannot be
 * counted, and the prefixes after them cannot be found. */
static void grpc_lost(struct stream *s, enum ht_dir d)
{
    if (s && s->ex->grpc)
        s->ex->grpc->framing_lost[d != HT_REQ] = true;
}

/* Content bytes of the current frame. */
static void content(struct ht_conn *c, enum ht_dir d, const uint8_t *p, size_t n,
                    const struct ht_clock *now)
{
    struct ht_h2 *h = c->h2;
    struct dir *r = &h->d[d];
    switch (r->type) {
    case F_DATA: {
        struct stream *s = find(h, r->stream);
        if (!s || !n || s->ended[d])
            return;
        struct ht_exchange *ex = s->ex;
        if (d == HT_RESP && !ex->resp_head_done)
            return;                     /* DATA before a head: counted nowhere */
        struct ht_body *b = d == HT_REQ ? &ex->req_body : &ex->resp_body;
        ht_body_append(ex, b, p, n, ex->excerpt_cap[d != HT_REQ]);
        grpc_count(s, d != HT_REQ, p, n);
        if (d == HT_RESP)
            ht_ws_progress(c, ex, now);     /* a long stream, shown while it runs */
        return;
    }
    case F_HEADERS:
    case F_PUSH_PROMISE:
    case F_CONTINUATION:
        inflate(c, d, p, n, false);
        return;
    default:
        return;
    }
}

void ht_h2_feed(struct ht_conn *c, enum ht_dir d, const uint8_t *buf, size_t len,
                const struct ht_clock *now)
{
    struct ht_h2 *h = c->h2;
    struct dir *r = &h->d[d];
    size_t pos = 0;
    while (pos < len && c->h2) {
        size_t n;
        switch (r->state) {
        case S_PREFACE:
            n = r->preface_left < len - pos ? r->preface_left : len - pos;
            if (ht_h2_preface(buf + pos, n, HT_H2_PREFACE_LEN - r->preface_left) < 0) {
                die(c, d);
                return;
            }
            r->preface_left -= (uint32_t)n;
            pos += n;
            if (!r->preface_left)
                r->state = S_HEAD;
            break;
        case S_HEAD:
            n = 9u - r->hdr_len < len - pos ? 9u - r->hdr_len : len - pos;
            memcpy(r->hdr + r->hdr_len, buf + pos, n);
            r->hdr_len += (uint8_t)n;
            pos += n;
            if (r->hdr_len == 9) {
                frame_begin(c, d);
                if (r->state == S_CONTENT && r->type == F_HEADERS)
                    headers_begin(c, d, now);
                if (r->state == S_CONTENT && r->left == 0)
                    frame_end(c, d, now);
            }
            break;
        case S_PREFIX:
            n = (size_t)(r->pre_need - r->pre_len) < len - pos ? (size_t)(r->pre_need - r->pre_len)
                                                               : len - pos;
            memcpy(r->pre + r->pre_len, buf + pos, n);
            r->pre_len += (uint8_t)n;
            r->left -= (uint32_t)n;
            pos += n;
            if (r->pre_len == r->pre_need) {
                prefix_done(c, d, now);
                if (r->state == S_CONTENT && r->left == 0)
                    frame_end(c, d, now);
            }
            break;
        case S_CONTENT: {
            uint32_t body = r->left - r->pad;
            if (r->type == F_SETTINGS || r->type == F_GOAWAY || r->type == F_RST_STREAM ||
                r->type == F_PING || r->type == F_WINDOW_UPDATE || r->type == F_PRIORITY ||
                r->type > F_CONTINUATION)
                body = r->left;         /* the rest is passed over */
            n = body < len - pos ? body : len - pos;
            content(c, d, buf + pos, n, now);
            r->left -= (uint32_t)n;
            pos += n;
            if (n == body)
                r->state = S_PAD;
            if (r->state == S_PAD && r->left == 0)
                frame_end(c, d, now);
            break;
        }
        case S_PAD:
            n = r->left < len - pos ? r->left : len - pos;
            r->left -= (uint32_t)n;
            pos += n;
            if (!r->left)
                frame_end(c, d, now);
            break;
        default:                        /* S_DEAD */
            c->unparsed[d] += len - pos;
            return;
        }
    }
}

void ht_h2_lost(struct ht_conn *c, enum ht_dir d, uint64_t n, const struct ht_clock *now)
{
    struct ht_h2 *h = c->h2;
    struct dir *r = &h->d[d];
    if (r->state == S_DEAD)
        return;
    /* Inside a frame's content the framing survives: skip to its end. */
    if ((r->state == S_CONTENT || r->state == S_PAD) && n <= r->left) {
        struct stream *s = find(h, r->stream);
        bool block = r->type == F_HEADERS || r->type == F_PUSH_PROMISE || r->type == F_CONTINUATION;
        if (block && r->state == S_CONTENT) {
            r->hd_lost = true;
            s = find(h, r->blk.stream);
        }
        uint32_t body = r->left - r->pad;
        if (r->type == F_DATA && s && r->state == S_CONTENT) {
            grpc_lost(s, d);
            struct ht_body *b = d == HT_REQ ? &s->ex->req_body : &s->ex->resp_body;
            uint64_t k = n < body ? n : body;
            b->size += k;
            b->truncated = true;
            ht_body_unseen(b);
        }
        if (s)
            s->ex->gaps |= HT_GAP_CAPTURE;
        if (r->state == S_CONTENT && n >= body)
            r->state = S_PAD;
        r->left -= (uint32_t)n;
        HT_STAT_ADD(capture_gaps, 1);
        if (r->left == 0)
            frame_end(c, d, now);
        return;
    }
    HT_STAT_ADD(capture_gaps, 1);
    for (uint32_t i = 0; i < h->nstreams; i++)
        if (!h->streams[i].ended[d]) {
            h->streams[i].ex->gaps |= HT_GAP_CAPTURE;
            grpc_lost(&h->streams[i], d);
        }
    r->state = S_DEAD;
}

uint64_t ht_h2_body_room(struct ht_conn *c, enum ht_dir d, struct ht_exchange **ex)
{
    struct ht_h2 *h = c->h2;
    struct dir *r = &h->d[d];
    *ex = NULL;
    if (r->state != S_CONTENT || r->type != F_DATA)
        return 0;
    struct stream *s = find(h, r->stream);
    if (s && !s->ended[d] && (d == HT_REQ || s->ex->resp_head_done))
        *ex = s->ex;
    return r->left - r->pad;
}

void ht_h2_skip_body(struct ht_conn *c, enum ht_dir d, uint64_t n, const struct ht_clock *now)
{
    struct dir *r = &c->h2->d[d];
    grpc_lost(find(c->h2, r->stream), d);
    r->left -= (uint32_t)n;
    if (r->left == r->pad)
        r->state = S_PAD;
    if (r->left == 0)
        frame_end(c, d, now);
}

bool ht_h2_dead(const struct ht_conn *c, enum ht_dir d)
{
    return c->h2->d[d].state == S_DEAD;
}

void ht_h2_eof(struct ht_conn *c, enum ht_dir d, const struct ht_clock *now)
{
    (void)now;
    struct ht_h2 *h = c->h2;
    h->d[d].state = S_DEAD;
}

void ht_h2_owner_changed(struct ht_conn *c)
{
    struct ht_h2 *h = c->h2;
    for (uint32_t i = 0; i < h->nstreams; i++) {
        h->streams[i].ex->pid = c->pid;
        memcpy(h->streams[i].ex->exe, c->exe, sizeof(c->exe));
    }
}

void ht_h2_finish(struct ht_conn *c, const struct ht_clock *now, uint32_t extra_gaps)
{
    struct ht_h2 *h = c->h2;
    (void)now;
    /* In stream order, as they were opened. */
    while (h->nstreams) {
        uint32_t lo = 0;
        for (uint32_t i = 1; i < h->nstreams; i++)
            if (h->streams[i].ex->request_index < h->streams[lo].ex->request_index)
                lo = i;
        close_stream(c, &h->streams[lo], extra_gaps);
    }
    for (int d = 0; d < 2; d++) {
        block_free(&h->d[d].blk);
        nghttp2_hd_inflate_del(h->d[d].hd);
    }
    free(h->streams);
    free(h);
    c->h2 = NULL;
}

int ht_h2_start(struct ht_conn *c, struct ht_exchange *upgraded)
{
    struct ht_h2 *h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    h->max_streams = c->cfg->h2_max_streams ? c->cfg->h2_max_streams : STREAMS_DEFAULT;
    h->streams = calloc(h->max_streams, sizeof(*h->streams));
    if (!h->streams || nghttp2_hd_inflate_new(&h->d[0].hd) ||
        nghttp2_hd_inflate_new(&h->d[1].hd)) {
        if (h->d[0].hd)
            nghttp2_hd_inflate_del(h->d[0].hd);
        free(h->streams);
        free(h);
        return -ENOMEM;
    }
    /* SETTINGS_HEADER_TABLE_SIZE is not followed: it only bounds what the
     * encoder may announce, and takes effect when the encoder acknowledges
     * it (RFC 9113 4.3.1), a point in the other direction's bytes that
     * capture need not order (replay feeds one side, then the other). The
     * table's size itself is in-band: the encoder must announce a smaller
     * table with a Dynamic Table Size Update, and a decoder whose table is
     * larger than the encoder's still decodes exactly (entries are indexed
     * from the newest, and the encoder never names one it evicted). So
     * both decoders accept any size up to HPACK_TABLE_MAX, which also
     * bounds their memory. (libnghttp2 >= 1.47: raising the bound does not
     * make it expect an update.) */
    for (int d = 0; d < 2; d++)
        nghttp2_hd_inflate_change_table_size(h->d[d].hd, HPACK_TABLE_MAX);
    h->d[HT_REQ].state = S_PREFACE;
    h->d[HT_REQ].preface_left = HT_H2_PREFACE_LEN;
    h->d[HT_RESP].state = S_HEAD;
    c->h2 = h;
    if (upgraded) {
        /* The h2c Upgrade's request is stream 1 (RFC 7540 3.2): its
         * answer comes as HTTP/2. */
        h->last_client_id = 1;
        upgraded->h2_stream = 1;
        struct stream *s = &h->streams[h->nstreams++];
        *s = (struct stream){ .id = 1, .ex = upgraded, .head_seen = { true, false },
                              .ended = { true, false } };
        upgraded->resp_begun = upgraded->resp_head_done = upgraded->resp_done = false;
    }
    return 0;
}
