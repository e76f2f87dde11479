/*
 * conn.c - pairing requests with responses on one connection (conn.h).
 *
 * Exchanges live in a FIFO in request order. The request parser fills the
 * newest; the response parser fills the oldest without a final response
 * (responses come back in request order, RFC 9112 section 9.3.2). The front
 * of the FIFO is emitted once both of its sides are finished: done, or
 * never going to progress because that direction ended or desynchronised.
 *
 * Desync suspicion. A server that frames a request differently from us
 * (ignores a GET's Content-Length, say) reads requests we never see, and
 * its responses then pair with the wrong requests until one is left over:
 * a response no request explains. That orphan is the only evidence, and it
 * comes after the exchanges it discredits. So after a request that could
 * hide another (it had content, or framing the server may read otherwise)
 * the connection is "in doubt": finished exchanges from that request on
 * are held, not emitted, until a sync point, where both sides are seen to
 * agree: a new request begins after every request we read was answered
 * and no response is under way (the server had nothing left to answer:
 * servers answer what they have read before reading more). An orphan
 * response (other than a 408, servers' idle-timeout notice) marks every
 * held exchange and itself desync_suspected (gap ambiguous_framing), and
 * the doubt goes on. Memory stays bounded: with more than HT_HOLD_MAX
 * exchanges waiting, the oldest finished one is emitted as it was read.
 * The connection's end releases everything. Fed a message at a time
 * (replay), the feeds' order is not the bytes' order, so there is no sync
 * point before the end.
 */
#include "core/conn.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/conn_private.h"
#include "core/fields.h"
#include "core/h2.h"
#include "core/rules.h"
#include "core/stats.h"
#include "core/ws.h"

static struct ht_exchange *fifo_at(struct ht_conn *c, unsigned i)
{
    return c->fifo[(c->fifo_head + i) % HT_PIPELINE_MAX];
}

static void fifo_push(struct ht_conn *c, struct ht_exchange *ex)
{
    c->fifo[(c->fifo_head + c->fifo_len) % HT_PIPELINE_MAX] = ex;
    c->fifo_len++;
}

static struct ht_exchange *fifo_pop(struct ht_conn *c)
{
    struct ht_exchange *ex = c->fifo[c->fifo_head];
    c->fifo_head = (c->fifo_head + 1) % HT_PIPELINE_MAX;
    c->fifo_len--;
    return ex;
}

/* The exchange the next response belongs to: the oldest without a final
 * response. NULL when every held exchange has one. */
static struct ht_exchange *awaiting_response(struct ht_conn *c)
{
    for (unsigned i = 0; i < c->fifo_len; i++) {
        struct ht_exchange *ex = fifo_at(c, i);
        if (!ex->resp_done)
            return ex;
    }
    return NULL;
}

void ht_conn_init(struct ht_conn *c, const struct ht_conn_cfg *cfg,
                  const struct ht_endpoints *ep, const char *id, int pid,
                  ht_emit_fn emit, void *emit_ctx)
{
    memset(c, 0, sizeof(*c));
    c->cfg = cfg;
    c->ep = *ep;
    /* as snprintf "%s" would, without its cost (one call per connection) */
    memcpy(c->id, id, strnlen(id, sizeof(c->id) - 1));
    c->pid = pid;
    c->emit = emit;
    c->emit_ctx = emit_ctx;
    ht_parser_init(&c->p[HT_REQ], HT_REQ, cfg->max_header);
    ht_parser_init(&c->p[HT_RESP], HT_RESP, cfg->max_header);
}

struct ht_exchange *ht_conn_new_exchange(struct ht_conn *c, const struct ht_clock *now)
{
    struct ht_exchange *ex = ht_conn_new_record(c, now);
    if (ex)
        ex->request_index = c->next_index++;
    return ex;
}

struct ht_exchange *ht_conn_new_record(struct ht_conn *c, const struct ht_clock *now)
{
    struct ht_exchange *ex = ht_exchange_new();
    if (!ex)
        return NULL;
    ex->mode = c->cfg->mode;
    ex->service = c->cfg->service;
    ex->max_body = c->cfg->max_body;
    ex->excerpt_cap[HT_REQ] = ex->excerpt_cap[HT_RESP] = c->cfg->max_body;
    ex->pid = c->pid;
    memcpy(ex->exe, c->exe, sizeof(ex->exe));
    memcpy(ex->conn_id, c->id, sizeof(ex->conn_id));
    ex->conn_joined = c->joined;
    ex->ep = c->ep;
    ex->wall_ns = now->wall_ns;
    ex->mono_start = now->mono_ns;
    return ex;
}

void ht_conn_emit_opaque(struct ht_conn *c, uint32_t gaps, const struct ht_clock *start)
{
    struct ht_exchange *ex = ht_conn_new_exchange(c, start);
    if (!ex) {
        ht_conn_count_dropped(&ht_stats.dropped_no_memory);
        return;
    }
    ex->gaps = gaps;
    c->emit(c->emit_ctx, ex);
}

/* Why a held exchange is incomplete, decided when it leaves. */
static void settle_gaps(struct ht_conn *c, struct ht_exchange *ex)
{
    if ((ex->req_msg.anomalies | ex->resp_msg.anomalies) & HT_AN_DOUBT)
        ex->gaps |= HT_GAP_AMBIGUOUS_FRAMING;
    if (!(ex->req_done && ex->resp_done))
        ex->gaps |= c->extra_gaps;
    if (!ex->req_begun)
        ex->gaps |= HT_GAP_NO_REQUEST;
    else if (!ex->req_done)
        ex->gaps |= c->desync[HT_REQ] ? HT_GAP_DESYNC : HT_GAP_REQUEST_INCOMPLETE;
    if (!ex->resp_done) {
        if (c->desync[HT_RESP])
            ex->gaps |= HT_GAP_DESYNC;
        else if (ex->resp_begun && (ex->resp_head_done || !ex->n_interim))
            ex->gaps |= HT_GAP_RESPONSE_INCOMPLETE;
        else
            ex->gaps |= HT_GAP_NO_RESPONSE;
    }
}

static void emit_front(struct ht_conn *c)
{
    struct ht_exchange *ex = fifo_pop(c);
    if (c->req_cur == ex)
        c->req_cur = NULL;
    if (c->resp_cur == ex)
        c->resp_cur = NULL;
    settle_gaps(c, ex);
    c->emit(c->emit_ctx, ex);
}

/* Held for a verdict on the doubt window (see the top of this file)? Not
 * once the response side stopped: no orphan can follow. */
static bool held(const struct ht_conn *c, const struct ht_exchange *ex)
{
    return c->doubt && ex->request_index >= c->doubt_from && !c->stopped[HT_RESP] &&
           c->fifo_len <= HT_HOLD_MAX;
}

/* Emit, in order, every exchange at the front whose sides are finished. */
static void emit_ready(struct ht_conn *c)
{
    while (c->fifo_len) {
        struct ht_exchange *ex = fifo_at(c, 0);
        bool req_fin = ex->req_done || !ex->req_begun || c->stopped[HT_REQ];
        bool resp_fin = ex->resp_done || c->stopped[HT_RESP];
        if (!req_fin || !resp_fin || held(c, ex))
            return;
        emit_front(c);
    }
}

/* ---- desync suspicion ---- */

/* Request anomalies under which a server may see a message boundary where
 * we see none (or the reverse). */
#define AN_MAY_HIDE (HT_AN_DOUBT | HT_AN_CL_WITH_TE | HT_AN_CL_DUPLICATE | HT_AN_TE_UNKNOWN | \
                     HT_AN_TE_HTTP10 | HT_AN_OBS_FOLD | HT_AN_BARE_LF | HT_AN_BARE_CR | \
                     HT_AN_WS_BEFORE_COLON | HT_AN_WS_AFTER_START_LINE | \
                     HT_AN_FIELD_VALUE_INVALID | HT_AN_TRAILER_FRAMING)

/* A request ended: could its bytes hold a request the server read? */
static void maybe_doubt(struct ht_conn *c, const struct ht_exchange *ex, const struct ht_parser *p)
{
    bool hide = p->body_size > 0 || ex->req_msg.framing == HT_FRAME_CHUNKED ||
                (ex->req_msg.anomalies & AN_MAY_HIDE);
    if (hide && !c->doubt) {
        c->doubt = true;
        c->doubt_from = ex->request_index;
    }
}

/* A request begins: if the server has answered every request we read and
 * is not answering one now, both sides agree here (a sync point). */
static void maybe_sync(struct ht_conn *c)
{
    if (!c->doubt || c->order_unknown || c->resp_cur || c->resp_phantom || c->ph_len ||
        awaiting_response(c))
        return;
    c->doubt = false;
    emit_ready(c);
}

/* The final head of a response no request explains: the server read a
 * request we did not, somewhere since the doubt began. A 408 is a server
 * giving up on an idle connection (RFC 9110 15.5.9), and a response
 * before any request discredits nothing. */
static void orphan_response(struct ht_conn *c, struct ht_exchange *orphan)
{
    if (orphan->resp_msg.status == 408 || orphan->request_index == 0)
        return;
    for (unsigned i = 0; c->doubt && i < c->fifo_len; i++) {
        struct ht_exchange *ex = fifo_at(c, i);
        if (ex != orphan && ex->request_index >= c->doubt_from)
            ex->resp_msg.anomalies |= HT_AN_DESYNC_SUSPECTED;
    }
    orphan->resp_msg.anomalies |= HT_AN_DESYNC_SUSPECTED;
    c->doubt = true;                    /* what comes next is in doubt too */
    c->doubt_from = orphan->request_index + 1;
}

static void stop_dir(struct ht_conn *c, enum ht_dir d, bool desync)
{
    if (desync && !c->desync[d]) {
        c->desync[d] = true;
        HT_STAT_ADD(parse_errors, 1);
    }
    c->stopped[d] = true;
    ht_parser_kill(&c->p[d]);
}

/* ---- phantoms: requests beyond the pipelining depth ---- */

enum { PH_RING = 1, PH_UNPAIRED = 2 };

static bool phantom_push(struct ht_conn *c, uint8_t flags)
{
    if (!c->ph_flags && !(c->ph_flags = malloc(HT_PHANTOM_MAX)))
        return false;
    if (c->ph_len == HT_PHANTOM_MAX)
        return false;
    c->ph_flags[(c->ph_head + c->ph_len) % HT_PHANTOM_MAX] = flags;
    c->ph_len++;
    return true;
}

void ht_conn_count_dropped(_Atomic uint64_t *counter)
{
    HT_STAT_ADD(exchanges_seen, 1);
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

/* ---- request direction ---- */

static bool request_begins(struct ht_conn *c, struct ht_parser *p, const struct ht_clock *now)
{
    /* Once a phantom is waiting, later requests must wait behind it too. */
    if (c->fifo_len == HT_PIPELINE_MAX || c->ph_len || c->req_phantom) {
        ht_conn_count_dropped(&ht_stats.dropped_pipeline);
        c->next_index++;            /* the gap in request_index shows it */
        c->req_phantom = true;
        c->req_cur = NULL;
        return false;
    }
    struct ht_exchange *ex = ht_conn_new_exchange(c, now);
    if (!ex) {
        ht_conn_count_dropped(&ht_stats.dropped_no_memory);
        stop_dir(c, HT_REQ, false);
        return false;
    }
    ex->req_begun = true;
    fifo_push(c, ex);
    c->req_cur = ex;
    if (c->closing[HT_REQ])
        p->msg.anomalies |= HT_AN_DATA_AFTER_CLOSE;
    return true;
}

static bool on_request(struct ht_conn *c, const struct ht_pev *ev, const struct ht_clock *now)
{
    struct ht_parser *p = &c->p[HT_REQ];
    struct ht_exchange *ex = c->req_cur;

    if (ev->type == HT_PEV_BEGIN) {
        maybe_sync(c);
        request_begins(c, p, now);
        return false;
    }
    if (c->req_phantom) {
        if (ev->type == HT_PEV_END) {
            c->req_phantom = false;
            c->closing[HT_REQ] = p->msg.conn_close;
            if (!phantom_push(c, p->msg.req_flags))
                stop_dir(c, HT_REQ, true);      /* 4096 unanswered: give up */
            return true;
        }
        if (ev->type == HT_PEV_ERROR)
            stop_dir(c, HT_REQ, true);
        return false;
    }
    switch (ev->type) {
    case HT_PEV_HEAD:
        if (ht_head_copy(ex, &ex->req_head, &ex->req_head_len, p->head, p->head_len)) {
            ex->gaps |= HT_GAP_CAPTURE;
        } else {
            ex->req_head_done = true;
            ht_head_fields(ex, &ex->req_fields, &ex->req_nfields, ev->fields, ev->nfields);
        }
        ex->req_msg = p->msg;
        ht_rules_request(ex);
        return false;
    case HT_PEV_BODY:
        ht_body_append(ex, &ex->req_body, ev->data, ev->len, ex->excerpt_cap[HT_REQ]);
        return false;
    case HT_PEV_END:
        ex->req_msg.anomalies |= p->msg.anomalies;
        c->closing[HT_REQ] = p->msg.conn_close;
        maybe_doubt(c, ex, p);
        ex->req_done = true;
        ex->mono_req_done = now->mono_ns;
        c->req_cur = NULL;
        emit_ready(c);
        return true;
    case HT_PEV_TUNNEL:
        c->unparsed[HT_REQ] += ev->len;
        if (c->ws)
            ht_ws_feed(c, HT_REQ, ev->data, ev->len, now);
        return false;
    case HT_PEV_ERROR:
        if (ex)
            ex->req_msg.anomalies |= p->msg.anomalies | ev->anomaly;
        stop_dir(c, HT_REQ, true);
        emit_ready(c);
        return false;
    default:
        return false;
    }
}

/* ---- response direction ---- */

/* A response begins: find its exchange. With none held it answers a
 * phantom (counted already), or, after the request side desynchronised,
 * a request we could not read (counted now, not logged: we cannot tell
 * what it answers). With no request at all it is logged on its own. */
static bool response_begins(struct ht_conn *c, const struct ht_clock *now)
{
    struct ht_parser *p = &c->p[HT_RESP];
    struct ht_exchange *ex = awaiting_response(c);
    if (!ex && c->ph_len) {
        c->resp_phantom = PH_RING;
        p->req_flags = c->ph_flags[c->ph_head];
        return false;
    }
    if (!ex && (c->desync[HT_REQ] || c->fifo_len == HT_PIPELINE_MAX)) {
        ht_conn_count_dropped(&ht_stats.dropped_unparsed);
        c->resp_phantom = PH_UNPAIRED;
        p->req_flags = 0;
        return false;
    }
    if (!ex) {
        ex = ht_conn_new_exchange(c, now);
        if (!ex) {
            ht_conn_count_dropped(&ht_stats.dropped_no_memory);
            c->resp_phantom = PH_UNPAIRED;
            return false;
        }
        fifo_push(c, ex);
    }
    if (!ex->resp_begun) {
        ex->resp_begun = true;
        ex->mono_resp_start = now->mono_ns;
    }
    c->resp_cur = ex;
    p->req_flags = ex->req_head_done ? ex->req_msg.req_flags : 0;
    return true;
}

/* Did the request of ex ask for h2c in its Upgrade field? */
static bool asks_h2c(const struct ht_exchange *ex)
{
    struct ht_fields_walk w = { 0 };
    const struct ht_field_at *f;
    while ((f = ht_fields_walk_head(ex->req_head, ex->req_head_len, &w))) {
        if (f->name_len != 7 || strncasecmp((const char *)ex->req_head + f->name, "upgrade", 7))
            continue;
        const char *v = (const char *)ex->req_head + f->value;
        size_t n = f->span_end - f->value;
        for (size_t i = 0; i + 3 <= n; i++)
            if (!strncasecmp(v + i, "h2c", 3) && (i == 0 || v[i - 1] == ' ' || v[i - 1] == ',') &&
                (i + 3 == n || v[i + 3] == ' ' || v[i + 3] == ','))
                return true;
    }
    return false;
}

/* A 101 to an h2c Upgrade (RFC 7540 3.2): the request becomes HTTP/2's
 * stream 1, the 101 an interim status of it, and the connection HTTP/2.
 * false when it cannot be (the request side already passed over bytes it
 * held, or no memory): then it is a tunnel as any 101. */
static bool upgrade_h2c(struct ht_conn *c, struct ht_exchange *ex)
{
    if (!ex->req_head_done || !ex->req_done || c->fifo_len != 1 || fifo_at(c, 0) != ex ||
        !asks_h2c(ex))
        return false;
    fifo_pop(c);
    if (ht_h2_start(c, ex)) {
        fifo_push(c, ex);
        return false;
    }
    if (ex->n_interim < sizeof(ex->interim) / sizeof(ex->interim[0]))
        ex->interim[ex->n_interim++] = 101;
    ht_exchange_release(ex, ex->resp_head);
    ht_exchange_release(ex, ex->resp_fields);
    ex->resp_head = NULL;
    ex->resp_head_len = 0;
    ex->resp_fields = NULL;
    ex->resp_nfields = 0;
    ex->mono_resp_done = 0;
    uint32_t an = ex->resp_msg.anomalies;
    memset(&ex->resp_msg, 0, sizeof(ex->resp_msg));
    ex->resp_msg.anomalies = an;
    ex->resp_begun = true;
    c->req_cur = c->resp_cur = NULL;
    c->sniffed = true;
    if (c->unparsed[HT_REQ])            /* its preface went by unparsed: lost */
        ht_h2_lost(c, HT_REQ, UINT64_MAX, NULL);
    return true;
}

/* What the connection became after up (its request's Upgrade token, or
 * "connect"): into ws.c, frames read when it is a WebSocket. */
static void start_tunnel(struct ht_conn *c, const struct ht_exchange *up)
{
    char proto[24] = "connect";
    if (!(up->req_msg.req_flags & HT_REQF_CONNECT)) {
        struct ht_fields_walk w = { 0 };
        const struct ht_field_at *f;
        snprintf(proto, sizeof(proto), "upgrade");
        while ((f = ht_fields_walk_head(up->req_head, up->req_head_len, &w)))
            if (f->name_len == 7 && !strncasecmp((const char *)up->req_head + f->name, "upgrade", 7)) {
                size_t n = f->value_end - f->value;
                n = n < sizeof(proto) - 1 ? n : sizeof(proto) - 1;
                for (size_t i = 0; i < n; i++)
                    proto[i] = (char)tolower(up->req_head[f->value + i]);
                proto[n] = 0;
                break;
            }
    }
    bool websocket = up->resp_msg.status == 101 && !strcmp(proto, "websocket");
    ht_ws_start(c, up, proto, websocket);
}

/* The answered request asked to leave HTTP; the response decides. */
static void settle_upgrade(struct ht_conn *c, const struct ht_msg *resp)
{
    struct ht_parser *req = &c->p[HT_REQ];
    if (resp->framing == HT_FRAME_TUNNEL) {
        c->tunnel = true;
        ht_parser_tunnel(req);
    } else if (ht_parser_paused(req)) {
        if (c->unparsed[HT_REQ])
            stop_dir(c, HT_REQ, true);  /* we skipped what may be requests */
        else
            ht_parser_resume(req);
    }
}

static bool is_interim(uint16_t status) { return status >= 100 && status < 200 && status != 101; }

/* A response we do not keep ended (interim ones leave it pending). */
static bool phantom_response_ends(struct ht_conn *c, struct ht_parser *p)
{
    if (is_interim(p->msg.status))
        return true;
    if (c->resp_phantom == PH_RING) {
        c->ph_head = (c->ph_head + 1) % HT_PHANTOM_MAX;
        c->ph_len--;
    }
    c->resp_phantom = 0;
    c->closing[HT_RESP] = p->msg.conn_close;
    if (p->req_flags & (HT_REQF_UPGRADE | HT_REQF_CONNECT) || p->msg.framing == HT_FRAME_TUNNEL)
        settle_upgrade(c, &p->msg);
    emit_ready(c);
    return true;
}

static bool on_response(struct ht_conn *c, const struct ht_pev *ev, const struct ht_clock *now)
{
    struct ht_parser *p = &c->p[HT_RESP];
    struct ht_exchange *ex = c->resp_cur;

    if (ev->type == HT_PEV_BEGIN) {
        if (response_begins(c, now) && c->closing[HT_RESP])
            p->msg.anomalies |= HT_AN_DATA_AFTER_CLOSE;
        return false;
    }
    if (c->resp_phantom) {
        if (ev->type == HT_PEV_END)
            return phantom_response_ends(c, p);
        if (ev->type == HT_PEV_ERROR) {
            stop_dir(c, HT_RESP, true);
            emit_ready(c);
        }
        return false;
    }
    switch (ev->type) {
    case HT_PEV_HEAD:
        if (is_interim(p->msg.status)) {
            if (ex->n_interim < sizeof(ex->interim) / sizeof(ex->interim[0]))
                ex->interim[ex->n_interim++] = p->msg.status;
            ex->resp_msg.anomalies |= p->msg.anomalies;
            return false;
        }
        {
            uint32_t an = ex->resp_msg.anomalies | p->msg.anomalies;  /* keep interim ones */
            ex->resp_msg = p->msg;
            ex->resp_msg.anomalies = an;
        }
        if (ht_head_copy(ex, &ex->resp_head, &ex->resp_head_len, p->head, p->head_len)) {
            ex->gaps |= HT_GAP_CAPTURE;
        } else {
            ex->resp_head_done = true;
            ht_head_fields(ex, &ex->resp_fields, &ex->resp_nfields, ev->fields, ev->nfields);
            ht_rules_response(ex);
        }
        if (!ex->req_begun)
            orphan_response(c, ex);
        return false;
    case HT_PEV_BODY:
        ht_body_append(ex, &ex->resp_body, ev->data, ev->len, ex->excerpt_cap[HT_RESP]);
        ht_ws_progress(c, ex, now);
        return false;
    case HT_PEV_END:
        ex->resp_msg.anomalies |= p->msg.anomalies;
        if (is_interim(p->msg.status))
            return true;                /* an interim response ended */
        ex->resp_done = true;
        c->closing[HT_RESP] = p->msg.conn_close;
        ex->mono_resp_done = now->mono_ns;
        c->resp_cur = NULL;
        if (ex->resp_msg.status == 101 && (ex->req_msg.req_flags & HT_REQF_UPGRADE) &&
            upgrade_h2c(c, ex))
            return true;
        if (ex->req_msg.req_flags & (HT_REQF_UPGRADE | HT_REQF_CONNECT) ||
            ex->resp_msg.framing == HT_FRAME_TUNNEL) {
            settle_upgrade(c, &ex->resp_msg);
            if (c->tunnel && !c->ws && ex->req_head_done)
                start_tunnel(c, ex);
        }
        emit_ready(c);
        return true;
    case HT_PEV_TUNNEL:
        c->unparsed[HT_RESP] += ev->len;
        if (c->ws)
            ht_ws_feed(c, HT_RESP, ev->data, ev->len, now);
        return false;
    case HT_PEV_ERROR:
        if (!ex)
            ex = awaiting_response(c);
        if (ex) {
            ex->resp_msg.anomalies |= p->msg.anomalies | ev->anomaly;
            ex->gaps |= HT_GAP_DESYNC;
        }
        stop_dir(c, HT_RESP, true);
        emit_ready(c);
        return false;
    default:
        return false;
    }
}

/* Does the server's first data look like an HTTP/2 SETTINGS frame (type
 * 4 on stream 0, not an ACK)? Then it may be HTTP/2 before the client's
 * preface shows it. */
static bool looks_like_settings(const uint8_t *b, size_t n)
{
    return n >= 9 && b[3] == 4 && !(b[4] & 1) && !b[5] && !b[6] && !b[7] && !b[8] && !b[0] &&
           b[2] % 6 == 0;
}

/* The server bytes held before the client spoke go where they belong now
 * (the connection's kind is decided, or they cannot be held). */
static void flush_early(struct ht_conn *c, const struct ht_clock *now)
{
    uint8_t *e = c->early;
    size_t n = c->early_len;
    if (!e)
        return;
    c->early = NULL;
    c->early_len = 0;
    c->bytes[HT_RESP] -= n;
    ht_conn_feed(c, HT_RESP, e, n, now, 0);
    free(e);
}

/* Could b[0..n) be the start of what looks_like_settings wants? A
 * server's first write may come in pieces shorter than a frame header. */
static bool may_be_settings(const uint8_t *b, size_t n)
{
    uint8_t h[9] = { 0, 0, 0, 4, 0, 0, 0, 0, 0 };  /* bytes not come yet: ones that fit */
    if (n >= sizeof(h))
        return looks_like_settings(b, n);
    memcpy(h, b, n);
    return looks_like_settings(h, sizeof(h));
}

/* Hold server bytes that came before the client's side was decided (none
 * of its bytes yet, or the start of a preface): true when held. */
static bool hold_early(struct ht_conn *c, const uint8_t *buf, size_t len, const struct ht_clock *now)
{
    if (c->sniffed || c->h2 || c->early_done)
        return false;
    if (!c->early && (!may_be_settings(buf, len) || !(c->early = malloc(HT_EARLY_MAX)))) {
        c->early_done = true;           /* an HTTP/1 server speaking first */
        return false;
    }
    if (c->early_len + len > HT_EARLY_MAX) {
        c->sniffed = true;              /* no HTTP/2 server talks this long alone */
        flush_early(c, now);
        return false;
    }
    memcpy(c->early + c->early_len, buf, len);
    c->early_len += (uint16_t)len;
    if (!may_be_settings(c->early, c->early_len)) {
        c->early_done = true;           /* its frame header, now whole, is not SETTINGS */
        flush_early(c, now);
    }
    return true;
}

/* Not HTTP/2 (or no longer worth waiting for): what was held of both
 * sides goes to the HTTP/1 parsers, the client's first. */
static void sniff_give_up(struct ht_conn *c, const struct ht_clock *now)
{
    uint8_t held[sizeof(c->sniff)];
    size_t n = c->sniff_len;
    c->sniffed = true;
    if (n) {
        memcpy(held, c->sniff, n);
        c->sniff_len = 0;
        c->bytes[HT_REQ] -= n;
        ht_conn_feed(c, HT_REQ, held, n, now, 0);
    }
    flush_early(c, now);
}

/* The client's first bytes: the HTTP/2 preface? Held until it is
 * decided (at most 24 bytes); returns how many of buf were taken, having
 * fed what was held to the side it belongs to. */
static size_t sniff(struct ht_conn *c, const uint8_t *buf, size_t len, const struct ht_clock *now)
{
    int m = ht_h2_preface(buf, len, c->sniff_len);
    if (m == 0) {                       /* all of buf is more preface */
        memcpy(c->sniff + c->sniff_len, buf, len);
        c->sniff_len += (uint8_t)len;
        return len;
    }
    c->sniffed = true;
    if (m > 0 && ht_h2_start(c, NULL) == 0) {
        ht_h2_feed(c, HT_REQ, c->sniff, c->sniff_len, now);
        flush_early(c, now);
        return 0;
    }
    sniff_give_up(c, now);
    return 0;
}

size_t ht_conn_feed(struct ht_conn *c, enum ht_dir d, const uint8_t *buf, size_t len,
                    const struct ht_clock *now, unsigned flags)
{
    struct ht_parser *p = &c->p[d];
    size_t pos = 0;

    if (c->finished)
        return len;
    if (flags & HT_FEED_ONE_MESSAGE)
        c->order_unknown = true;
    c->bytes[d] += len;
    if (d == HT_REQ && !c->sniffed && !c->h2 && len) {
        if (sniff(c, buf, len, now) == len)
            return len;
    }
    if (d == HT_RESP && !c->sniffed && len && hold_early(c, buf, len, now))
        return len;
    if (c->h2) {
        ht_h2_feed(c, d, buf, len, now);
        return len;
    }
    for (;;) {
        struct ht_pev ev;
        pos += ht_parser_next(p, buf + pos, len - pos, &ev);
        if (ev.type == HT_PEV_NONE)
            break;
        bool ended = d == HT_REQ ? on_request(c, &ev, now) : on_response(c, &ev, now);
        c->messages[d] += ended;
        if (c->h2) {                    /* an h2c Upgrade was accepted: the rest is HTTP/2 */
            if (flags & HT_FEED_ONE_MESSAGE)
                return pos;             /* replay: the client's frames first */
            ht_h2_feed(c, d, buf + pos, len - pos, now);
            return len;
        }
        if (ended && (flags & HT_FEED_ONE_MESSAGE))
            return pos;
    }
    if (pos < len) {
        if (ht_parser_paused(p) && (flags & HT_FEED_ONE_MESSAGE))
            return pos;         /* replay: let the other side decide first */
        c->unparsed[d] += len - pos;
    }
    return len;
}

static void flush_events(struct ht_conn *c, enum ht_dir d, const struct ht_clock *now)
{
    static const uint8_t none;
    ht_conn_feed(c, d, &none, 0, now, 0);
}

/* b (a body of ex) came from file f: a copy goes with it, path included;
 * without memory the body just does not name its file. */
static void body_file(struct ht_exchange *ex, struct ht_body *b, const struct ht_file_id *f)
{
    size_t pn = f->path ? strlen(f->path) + 1 : 0;
    struct ht_file_id *k = ht_exchange_alloc(ex, sizeof(*k) + pn);
    if (!k)
        return;
    *k = *f;
    if (pn) {
        k->path = memcpy(k + 1, f->path, pn);
    }
    b->file = k;
}

void ht_conn_feed_unseen(struct ht_conn *c, enum ht_dir d, uint64_t n, enum ht_body_source src,
                         const struct ht_file_id *file, ht_fetch_fn fetch, void *ctx,
                         const struct ht_clock *now)
{
    uint8_t bounce[4096];
    uint64_t off = 0;

    if (!c->sniffed && !c->h2 && !c->finished && now)
        sniff_give_up(c, now);          /* what was held came first */

    while (off < n && !c->finished) {
        struct ht_parser *p = &c->p[d];
        struct ht_exchange *ex;
        uint64_t room;
        if (c->h2 ? ht_h2_dead(c, d) : c->stopped[d] || c->tunnel || ht_parser_dead(p)) {
            if (c->ws)
                ht_ws_lost(c, d, n - off);
            c->bytes[d] += n - off;         /* nothing more to parse */
            c->unparsed[d] += n - off;
            return;
        }
        if (c->h2) {
            room = ht_h2_body_room(c, d, &ex);
        } else {
            ex = d == HT_REQ ? c->req_cur : c->resp_cur;
            room = ht_parser_body_room(p);
        }
        uint64_t k = n - off;
        if (room && ex) {
            struct ht_body *b = d == HT_REQ ? &ex->req_body : &ex->resp_body;
            uint32_t cap = ex->excerpt_cap[d != HT_REQ];
            size_t want = b->truncated || b->len >= cap ? 0 : cap - b->len;
            b->source = (uint8_t)src;
            if (file && !b->file)
                body_file(ex, b, file);
            if (k > room)
                k = room;
            if (want && fetch) {
                size_t ask = want < sizeof(bounce) ? want : sizeof(bounce);
                size_t got = fetch(ctx, off, bounce, ask < k ? ask : (size_t)k);
                if (got) {
                    ht_conn_feed(c, d, bounce, got, now, 0);
                    off += got;
                    continue;
                }
            }
            if (want)
                ex->gaps |= HT_GAP_BODY_NOT_CAPTURED;
            b->size += k;
            b->truncated = true;
            ht_body_unseen(b);
            c->bytes[d] += k;
            off += k;
            if (c->h2) {
                ht_h2_skip_body(c, d, k, now);
            } else {
                ht_parser_skip_body(p, k);
                flush_events(c, d, now);
            }
            continue;
        }
        /* Framing bytes (a head, chunk lines, HTTP/2 frame headers): they
         * must be read. */
        size_t got = fetch ? fetch(ctx, off, bounce, k < sizeof(bounce) ? (size_t)k : sizeof(bounce)) : 0;
        if (!got && c->h2) {
            c->bytes[d] += n - off;
            ht_h2_lost(c, d, n - off, now);
            return;
        }
        if (!got) {
            ht_conn_lost(c, d);
            c->bytes[d] += n - off;
            return;
        }
        ht_conn_feed(c, d, bounce, got, now, 0);
        off += got;
    }
}

void ht_conn_eof(struct ht_conn *c, enum ht_dir d, const struct ht_clock *now)
{
    struct ht_pev ev;
    if (c->finished || c->stopped[d])
        return;
    if (!c->sniffed && !c->h2)          /* the stream ended undecided: as it came */
        sniff_give_up(c, now);
    if (c->h2) {
        ht_h2_eof(c, d, now);
        c->stopped[d] = true;
        return;
    }
    ht_parser_eof(&c->p[d], &ev);
    if (ev.type == HT_PEV_END)
        (void)(d == HT_REQ ? on_request(c, &ev, now) : on_response(c, &ev, now));
    c->stopped[d] = true;
    emit_ready(c);
}

void ht_conn_lost(struct ht_conn *c, enum ht_dir d)
{
    static const struct ht_clock unknown;
    if (c->finished || c->stopped[d])
        return;
    if (!c->sniffed && !c->h2)
        sniff_give_up(c, &unknown);
    if (c->h2) {
        ht_h2_lost(c, d, UINT64_MAX, NULL);
        return;
    }
    struct ht_exchange *ex = d == HT_REQ ? c->req_cur : c->resp_cur;
    if (!ex && c->fifo_len)
        ex = fifo_at(c, c->fifo_len - 1);
    if (ex)
        ex->gaps |= HT_GAP_CAPTURE;
    HT_STAT_ADD(capture_gaps, 1);
    stop_dir(c, d, true);
    emit_ready(c);
}

void ht_conn_feed_lost(struct ht_conn *c, enum ht_dir d, uint64_t n, const struct ht_clock *now)
{
    uint64_t before = HT_STAT_GET(capture_gaps);
    if (c->h2 && !c->finished) {
        c->bytes[d] += n;
        ht_h2_lost(c, d, n, now);
    } else if (!c->finished && !c->stopped[d]) {
        /* Marked before feeding: the feed may finish and emit it. */
        struct ht_exchange *ex = d == HT_REQ ? c->req_cur : c->resp_cur;
        if (ex)
            ex->gaps |= HT_GAP_CAPTURE;
        ht_conn_feed_unseen(c, d, n, HT_SRC_IO, NULL, NULL, NULL, now);
    }
    if (HT_STAT_GET(capture_gaps) == before)
        HT_STAT_ADD(capture_gaps, 1);
}

void ht_conn_set_exe(struct ht_conn *c, const char *exe)
{
    snprintf(c->exe, sizeof(c->exe), "%s", exe);
    for (unsigned i = 0; i < c->fifo_len; i++)
        memcpy(fifo_at(c, i)->exe, c->exe, sizeof(c->exe));
    if (c->req_cur)
        memcpy(c->req_cur->exe, c->exe, sizeof(c->exe));
    if (c->resp_cur)
        memcpy(c->resp_cur->exe, c->exe, sizeof(c->exe));
    if (c->h2)
        ht_h2_owner_changed(c);
}

void ht_conn_mark_joined(struct ht_conn *c)
{
    c->joined = true;
}

void ht_conn_set_pid(struct ht_conn *c, int pid)
{
    c->pid = pid;
    /* What is in flight is the new owner's too: it will finish it. */
    for (unsigned i = 0; i < c->fifo_len; i++)
        fifo_at(c, i)->pid = pid;
    if (c->req_cur)
        c->req_cur->pid = pid;
    if (c->resp_cur)
        c->resp_cur->pid = pid;
    if (c->h2)
        ht_h2_owner_changed(c);
}

void ht_conn_finish(struct ht_conn *c, const struct ht_clock *now, uint32_t extra_gaps)
{
    if (c->finished)
        return;
    c->extra_gaps = extra_gaps;
    if (extra_gaps & HT_GAP_CAPTURE_ENDED) {
        /* Capture stopped, the connection did not end: no end-of-stream
         * (which would complete a close-delimited body). At process exit
         * the kernel does close the socket, so there it is an end. */
        c->stopped[HT_REQ] = c->stopped[HT_RESP] = true;
    }
    ht_conn_eof(c, HT_REQ, now);
    ht_conn_eof(c, HT_RESP, now);
    if (c->h2)
        ht_h2_finish(c, now, extra_gaps);
    while (c->fifo_len)
        emit_front(c);
    if (c->ws)
        ht_ws_finish(c, now);
    ht_parser_free(&c->p[HT_REQ]);
    ht_parser_free(&c->p[HT_RESP]);
    free(c->ph_flags);
    c->ph_flags = NULL;
    free(c->early);
    c->early = NULL;
    c->finished = true;
}
