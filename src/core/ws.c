/*
 * ws.c - frames of a WebSocket, bytes of any tunnel (ws.h).
 *
 * Each direction is read as frames: a header of 2 to 14 bytes (FIN and
 * opcode, mask bit and length, extended length, masking key), then the
 * payload, whose first bytes are unmasked into the frame record's excerpt
 * (the rules' websocket cap) while the rest is only counted. A frame record
 * goes out when its payload ends; a frame's bytes lost to the capture end
 * the reading of that direction (the next header cannot be found), and the
 * tunnel record says so.
 *
 * permessage-deflate (RFC 7692): a message whose first frame has RSV1 set
 * is raw deflate, and by default the compressor's window carries over
 * from message to message, so every compressed byte of a direction is
 * inflated (one zlib stream per direction, 32 KiB of window), kept or not:
 * the excerpt is the inflated text.
 */
#include "core/ws.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "core/conn_private.h"
#include "core/rules.h"

struct wsdir {
    uint8_t hdr[14];
    uint8_t hlen, need;
    uint64_t left;                  /* payload bytes still to come */
    uint64_t pos;                   /* payload bytes seen */
    uint8_t mask[4];
    bool masked;
    bool stopped;                   /* bytes lost: no more frames in this direction */
    struct ht_exchange *rec;        /* the frame's record, NULL when not logged */
    bool deflating;                 /* this message is compressed */
    bool z_ready, z_broken;
    z_stream z;
};

struct ht_ws {
    struct ht_exchange *sum;        /* the tunnel record, filled as bytes go */
    bool websocket;
    uint8_t verdict;                /* the upgrade exchange's */
    uint64_t up_index;
    int64_t mono_start;
    struct wsdir d[2];
};

const char *ht_ws_opcode_name(uint8_t op)
{
    static const char *const names[16] = { "continuation", "text", "binary", NULL, NULL, NULL,
                                           NULL, NULL, "close", "ping", "pong" };
    return names[op & 15] ? names[op & 15] : "reserved";
}

static struct ht_exchange *new_record(struct ht_conn *c, uint8_t kind, const struct ht_clock *now)
{
    struct ht_ws *w = c->ws;
    struct ht_exchange *ex = ht_conn_new_record(c, now);
    if (!ex)
        return NULL;
    ex->kind = kind;
    ex->request_index = w->up_index;
    ex->verdict = w->verdict;
    ex->ws = ht_exchange_alloc(ex, sizeof(*ex->ws));
    if (!ex->ws) {
        ht_exchange_free(ex);
        return NULL;
    }
    memset(ex->ws, 0, sizeof(*ex->ws));
    ex->ws->close_code = -1;
    return ex;
}

int ht_ws_start(struct ht_conn *c, const struct ht_exchange *up, const char *protocol,
                bool websocket)
{
    struct ht_ws *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    c->ws = w;
    w->websocket = websocket;
    w->up_index = up->request_index;
    w->verdict = up->verdict;
    w->mono_start = up->mono_resp_done ? up->mono_resp_done : up->mono_start;
    struct ht_clock start = { up->wall_ns + (w->mono_start - up->mono_start), w->mono_start };
    w->sum = new_record(c, HT_KIND_TUNNEL, &start);
    if (!w->sum) {
        free(w);
        c->ws = NULL;
        return -ENOMEM;
    }
    size_t n = strlen(protocol);
    if (n >= sizeof(w->sum->ws->protocol))
        n = sizeof(w->sum->ws->protocol) - 1;
    memcpy(w->sum->ws->protocol, protocol, n);
    return 0;
}

/* A frame's header is in: its record, when the rules log it. */
static void frame_begin(struct ht_conn *c, enum ht_dir d, const struct ht_clock *now)
{
    struct ht_ws *w = c->ws;
    struct wsdir *r = &w->d[d];
    const uint8_t *h = r->hdr;
    uint8_t len7 = h[1] & 0x7f, at = 2;
    uint64_t len = len7;
    if (len7 == 126) {
        len = (uint64_t)h[2] << 8 | h[3];
        at = 4;
    } else if (len7 == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | h[2 + i];
        at = 10;
        if (len >> 63) {
            /* RFC 6455 5.2: the top bit must be 0. Not a frame we can
             * follow: no more frames this way (the tunnel says desync). */
            r->stopped = true;
            w->sum->gaps |= HT_GAP_DESYNC;
            return;
        }
    }
    r->masked = h[1] & 0x80;
    if (r->masked)
        memcpy(r->mask, h + at, 4);
    r->left = len;
    r->pos = 0;
    uint8_t op = h[0] & 15;
    if (op == HT_WS_TEXT || op == HT_WS_BINARY)
        r->deflating = h[0] & 0x40;    /* RSV1 on a message's first frame */
    w->sum->ws->frames[d]++;
    uint32_t cap;
    if (!ht_rules_ws_frame(op, c->cfg->max_body, &cap))
        return;
    r->rec = new_record(c, HT_KIND_WS_FRAME, now);
    if (!r->rec)
        return;
    struct ht_wsrec *f = r->rec->ws;
    f->dir = (uint8_t)d;
    f->opcode = op;
    f->compressed = op < 8 && r->deflating;
    f->fin = h[0] & 0x80;
    f->masked = r->masked;
    f->size = len;
    r->rec->excerpt_cap[0] = cap;
}

/* Inflate n compressed payload bytes of direction d (the whole stream
 * goes through, for the window); what comes out joins the excerpt. */
static void inflate_into(struct wsdir *r, const uint8_t *p, size_t n)
{
    if (r->z_broken)
        return;
    if (!r->z_ready) {
        memset(&r->z, 0, sizeof(r->z));
        if (inflateInit2(&r->z, -15) != Z_OK) {
            r->z_broken = true;
            return;
        }
        r->z_ready = true;
    }
    uint8_t out[4096];
    r->z.next_in = (Bytef *)p;
    r->z.avail_in = (uInt)n;
    do {
        r->z.next_out = out;
        r->z.avail_out = sizeof(out);
        int rc = inflate(&r->z, Z_SYNC_FLUSH);
        /* What came out before an error is kept either way: how the input
         * was cut must not decide what is logged. */
        size_t got = sizeof(out) - r->z.avail_out;
        struct ht_exchange *ex = r->rec;
        if (ex && got)
            ht_body_append(ex, &ex->req_body, out, got, ex->excerpt_cap[0]);
        if (rc != Z_OK && rc != Z_BUF_ERROR && rc != Z_STREAM_END) {
            r->z_broken = true;     /* what follows cannot be read: sizes only */
            return;
        }
        if (!got)
            break;
    } while (r->z.avail_in || !r->z.avail_out);
}

static void frame_end(struct ht_conn *c, enum ht_dir d)
{
    struct wsdir *r = &c->ws->d[d];
    if (r->deflating && (r->hdr[0] & 0x80) && (r->hdr[0] & 15) < 8) {
        static const uint8_t tail[4] = { 0, 0, 0xff, 0xff };   /* RFC 7692 7.2.2 */
        inflate_into(r, tail, sizeof(tail));
        r->deflating = false;
    }
    struct ht_exchange *ex = r->rec;
    r->hlen = 0;
    r->need = 2;
    r->rec = NULL;
    if (!ex)
        return;
    struct ht_wsrec *f = ex->ws;
    if (f->opcode == HT_WS_CLOSE && ex->req_body.len >= 2) {
        /* The code is the payload's first two bytes; the reason follows. */
        f->close_code = ex->req_body.buf[0] << 8 | ex->req_body.buf[1];
        memmove(ex->req_body.buf, ex->req_body.buf + 2, ex->req_body.len - 2);
        ex->req_body.len -= 2;
        ex->req_body.size -= 2;
    }
    c->ws->sum->ws->frames_logged++;
    c->emit(c->emit_ctx, ex);
}

/* Payload bytes: unmasked into the excerpt (close frames whole up to
 * 125 bytes: their code and reason). */
static void payload(struct ht_conn *c, enum ht_dir d, const uint8_t *p, size_t n)
{
    struct wsdir *r = &c->ws->d[d];
    struct ht_exchange *ex = r->rec;
    if (r->deflating && (r->hdr[0] & 15) < 8) {
        uint8_t buf[512];
        for (size_t off = 0; off < n; off += sizeof(buf)) {
            size_t m = n - off < sizeof(buf) ? n - off : sizeof(buf);
            for (size_t i = 0; i < m; i++)
                buf[i] = p[off + i] ^ (r->masked ? r->mask[(r->pos + off + i) & 3] : 0);
            inflate_into(r, buf, m);
        }
    } else if (ex) {
        uint8_t buf[512];
        uint32_t cap = ex->ws->opcode == HT_WS_CLOSE ? 127 : ex->excerpt_cap[0];
        size_t want = ex->req_body.len < cap ? cap - ex->req_body.len : 0;
        size_t k = n < want ? n : want;
        for (size_t off = 0; off < k; off += sizeof(buf)) {
            size_t m = k - off < sizeof(buf) ? k - off : sizeof(buf);
            for (size_t i = 0; i < m; i++)
                buf[i] = p[off + i] ^ (r->masked ? r->mask[(r->pos + off + i) & 3] : 0);
            ht_body_append(ex, &ex->req_body, buf, m, cap);
        }
        if (n > k)
            ht_body_append(ex, &ex->req_body, p + k, n - k, 0);  /* counted */
    }
    r->pos += n;
    r->left -= n;
}

void ht_ws_feed(struct ht_conn *c, enum ht_dir d, const uint8_t *buf, size_t len,
                const struct ht_clock *now)
{
    struct ht_ws *w = c->ws;
    struct wsdir *r = &w->d[d];
    w->sum->ws->bytes[d] += len;
    w->sum->mono_resp_done = now->mono_ns;
    if (!w->websocket || r->stopped)
        return;
    if (!r->need)
        r->need = 2;
    size_t pos = 0;
    while (pos < len) {
        if (r->hlen < r->need) {
            r->hdr[r->hlen++] = buf[pos++];
            if (r->hlen == 2) {
                uint8_t l7 = r->hdr[1] & 0x7f;
                r->need = (uint8_t)(2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0) +
                                    (r->hdr[1] & 0x80 ? 4 : 0));
            }
            if (r->hlen == r->need) {
                frame_begin(c, d, now);
                if (r->stopped)
                    return;
                if (!r->left)
                    frame_end(c, d);
            }
            continue;
        }
        size_t n = len - pos < r->left ? len - pos : (size_t)r->left;
        payload(c, d, buf + pos, n);
        pos += n;
        if (!r->left)
            frame_end(c, d);
    }
}

void ht_ws_lost(struct ht_conn *c, enum ht_dir d, uint64_t n)
{
    struct ht_ws *w = c->ws;
    w->sum->ws->bytes[d] += n;
    w->sum->ws->cut = true;
    struct wsdir *r = &w->d[d];
    if (r->rec) {
        r->rec->gaps |= HT_GAP_CAPTURE;
        c->emit(c->emit_ctx, r->rec);
        r->rec = NULL;
    }
    r->stopped = true;
}

void ht_ws_progress(struct ht_conn *c, struct ht_exchange *ex, const struct ht_clock *now)
{
    uint64_t every_ns, every_bytes;
    if (!ht_rules_progress(&every_ns, &every_bytes) || !ex->resp_head_done)
        return;
    int64_t since = ex->progress_ns ? ex->progress_ns : ex->mono_resp_start;
    uint64_t bytes = ex->resp_body.size - ex->progress_bytes;
    if (!((every_ns && now->mono_ns - since >= (int64_t)every_ns) ||
          (every_bytes && bytes >= every_bytes)))
        return;
    ex->progress_ns = now->mono_ns;
    ex->progress_bytes = ex->resp_body.size;
    struct ht_exchange *r = ht_conn_new_record(c, now);
    if (!r)
        return;
    r->kind = HT_KIND_PROGRESS;
    r->request_index = ex->request_index;
    r->h2_stream = ex->h2_stream;
    r->verdict = ex->verdict;
    r->mono_start = ex->mono_start;     /* elapsed: since the exchange began */
    r->mono_resp_done = now->mono_ns;
    r->resp_msg.status = ex->resp_msg.status;
    r->ws = ht_exchange_alloc(r, sizeof(*r->ws));
    if (!r->ws) {
        ht_exchange_free(r);
        return;
    }
    memset(r->ws, 0, sizeof(*r->ws));
    r->ws->bytes[HT_RESP] = ex->resp_body.size;
    r->ws->bytes[HT_REQ] = ex->req_body.size;
    c->emit(c->emit_ctx, r);
}

void ht_ws_finish(struct ht_conn *c, const struct ht_clock *now)
{
    struct ht_ws *w = c->ws;
    for (int d = 0; d < 2; d++) {
        if (w->d[d].rec) {
            /* A frame cut by the end of the connection. */
            w->d[d].rec->gaps |= HT_GAP_RESPONSE_INCOMPLETE;
            c->emit(c->emit_ctx, w->d[d].rec);
        }
        if (w->d[d].z_ready)
            inflateEnd(&w->d[d].z);
    }
    if (!w->sum->mono_resp_done)
        w->sum->mono_resp_done = now->mono_ns;
    if (w->sum->ws->cut)
        w->sum->gaps |= HT_GAP_CAPTURE;
    c->emit(c->emit_ctx, w->sum);
    free(w);
    c->ws = NULL;
}
