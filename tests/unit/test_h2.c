/*
 * test_h2.c - HTTP/2 on a connection where the golden cases cannot go:
 * bytes lost to the capture (inside a header block, inside DATA, across a
 * frame boundary), more streams open than are kept, and a server that
 * speaks first (its SETTINGS before the client's preface, as under TLS
 * with ALPN h2). Header blocks are encoded with libnghttp2's deflater.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "core/buf.h"
#include "core/conn.h"
#include "core/exchange.h"
#include "core/h2.h"
#include "core/stats.h"
#include "tap.h"

static struct ht_exchange *got[16];
static int ngot;

static void emit(void *ctx, struct ht_exchange *ex)
{
    (void)ctx;
    if (ngot < 16)
        got[ngot++] = ex;
    else
        ht_exchange_free(ex);
}

static void reset_got(void)
{
    for (int i = 0; i < ngot; i++)
        ht_exchange_free(got[i]);
    ngot = 0;
}

static void frame(struct ht_buf *b, uint8_t type, uint8_t flags, uint32_t stream,
                  const void *p, size_t n)
{
    uint8_t h[9] = { (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n, type, flags,
                     (uint8_t)(stream >> 24), (uint8_t)(stream >> 16), (uint8_t)(stream >> 8),
                     (uint8_t)stream };
    ht_buf_append(b, h, 9);
    ht_buf_append(b, p, n);
}

/* HEADERS (END_HEADERS, and END_STREAM when end) with fields name=value
 * pairs, NULL-ended. */
static void headers(struct ht_buf *b, nghttp2_hd_deflater *def, uint32_t stream, int end, ...)
{
    nghttp2_nv nv[16];
    size_t n = 0;
    va_list ap;
    va_start(ap, end);
    for (const char *k; n < 16 && (k = va_arg(ap, const char *));) {
        const char *v = va_arg(ap, const char *);
        nv[n++] = (nghttp2_nv){ (uint8_t *)k, (uint8_t *)v, strlen(k), strlen(v), 0 };
    }
    va_end(ap);
    uint8_t out[1024];
    ssize_t len = nghttp2_hd_deflate_hd(def, out, sizeof(out), nv, n);
    frame(b, 1, 4 | (end ? 1 : 0), stream, out, len > 0 ? (size_t)len : 0);
}

static void get(struct ht_buf *b, nghttp2_hd_deflater *def, uint32_t stream, const char *path)
{
    headers(b, def, stream, true, ":method", "GET", ":scheme", "http", ":authority", "t.test",
            ":path", path, "x-secret-free", "the same long value every time, indexed", NULL);
}

static void status(struct ht_buf *b, nghttp2_hd_deflater *def, uint32_t stream, const char *st,
                   bool end)
{
    headers(b, def, stream, end, ":status", st, "server", "unit", NULL);
}

struct pair { struct ht_buf c, s; nghttp2_hd_deflater *cd, *sd; };

static void pair_init(struct pair *p)
{
    memset(p, 0, sizeof(*p));
    nghttp2_hd_deflate_new(&p->cd, 4096);
    nghttp2_hd_deflate_new(&p->sd, 4096);
    ht_buf_append(&p->c, HT_H2_PREFACE, HT_H2_PREFACE_LEN);
    frame(&p->c, 4, 0, 0, NULL, 0);
    frame(&p->s, 4, 0, 0, NULL, 0);
}

static void pair_free(struct pair *p)
{
    ht_buf_free(&p->c);
    ht_buf_free(&p->s);
    nghttp2_hd_deflate_del(p->cd);
    nghttp2_hd_deflate_del(p->sd);
}

static const struct ht_clock now = { .wall_ns = 1, .mono_ns = 1 };

static void open_conn(struct ht_conn *c, const struct ht_conn_cfg *cfg)
{
    static const struct ht_endpoints ep = { .peer_port = -1, .local_port = -1 };
    ht_conn_init(c, cfg, &ep, "h2", 1, emit, NULL);
}

static void feed(struct ht_conn *c, enum ht_dir d, const struct ht_buf *b, size_t from, size_t to)
{
    ht_conn_feed(c, d, (const uint8_t *)b->p + from, to - from, &now, 0);
}

/* Bytes lost inside a request's header block: that stream and every later
 * block of the client are gaps; their responses still pair by stream. */
static void test_lost_in_block(void)
{
    static const struct ht_conn_cfg cfg = { .max_body = 64, .max_header = 8192, .mode = "t" };
    struct pair p;
    pair_init(&p);
    size_t a = p.c.len;
    get(&p.c, p.cd, 1, "/one");
    get(&p.c, p.cd, 3, "/two");
    status(&p.s, p.sd, 1, "200", true);
    status(&p.s, p.sd, 3, "204", true);
    struct ht_conn c;
    open_conn(&c, &cfg);
    feed(&c, HT_REQ, &p.c, 0, a + 12);
    ht_conn_feed_lost(&c, HT_REQ, 5, &now);         /* 5 bytes of stream 1's block */
    feed(&c, HT_REQ, &p.c, a + 17, p.c.len);
    feed(&c, HT_RESP, &p.s, 0, p.s.len);
    ht_conn_finish(&c, &now, 0);
    bool ok = ngot == 2;
    for (int i = 0; ok && i < 2; i++)
        ok = (got[i]->gaps & HT_GAP_CAPTURE) && !got[i]->req_head_done && got[i]->resp_head_done;
    tap_ok(ok && got[0]->h2_stream == 1 && got[1]->h2_stream == 3 && got[0]->resp_msg.status == 200 &&
           got[1]->resp_msg.status == 204,
           "h2: bytes lost in a header block: that request and the next one (HPACK state unknown) "
           "are capture gaps with no head made up, their responses still paired (%d events)", ngot);
    reset_got();
    pair_free(&p);
}

/* Bytes lost inside DATA: the framing survives, the body size is exact. */
static void test_lost_in_data(void)
{
    static const struct ht_conn_cfg cfg = { .max_body = 64, .max_header = 8192, .mode = "t" };
    struct pair p;
    pair_init(&p);
    get(&p.c, p.cd, 1, "/one");
    get(&p.c, p.cd, 3, "/two");
    status(&p.s, p.sd, 1, "200", false);
    size_t d = p.s.len;
    frame(&p.s, 0, 1, 1, "0123456789abcdefghij", 20);
    status(&p.s, p.sd, 3, "200", true);
    struct ht_conn c;
    open_conn(&c, &cfg);
    feed(&c, HT_REQ, &p.c, 0, p.c.len);
    feed(&c, HT_RESP, &p.s, 0, d + 9 + 4);
    ht_conn_feed_lost(&c, HT_RESP, 10, &now);
    feed(&c, HT_RESP, &p.s, d + 9 + 14, p.s.len);
    ht_conn_finish(&c, &now, 0);
    tap_ok(ngot == 2 && got[0]->h2_stream == 1 && got[0]->resp_body.size == 20 &&
           (got[0]->gaps & HT_GAP_CAPTURE) && got[1]->h2_stream == 3 && got[1]->gaps == 0,
           "h2: bytes lost inside DATA: that body's size is exact and it is a capture gap; the "
           "next stream is complete (%d events)", ngot);
    reset_got();
    pair_free(&p);
}

/* Bytes lost across a frame boundary: the direction is given up. */
static void test_lost_across_frames(void)
{
    static const struct ht_conn_cfg cfg = { .max_body = 64, .max_header = 8192, .mode = "t" };
    struct pair p;
    pair_init(&p);
    get(&p.c, p.cd, 1, "/one");
    size_t a = p.c.len;
    get(&p.c, p.cd, 3, "/two");
    get(&p.c, p.cd, 5, "/three");
    struct ht_conn c;
    open_conn(&c, &cfg);
    feed(&c, HT_REQ, &p.c, 0, a - 2);
    ht_conn_feed_lost(&c, HT_REQ, 6, &now);         /* the end of one frame, the start of the next */
    feed(&c, HT_REQ, &p.c, a + 4, p.c.len);
    ht_conn_finish(&c, &now, 0);
    tap_ok(ngot == 1 && (got[0]->gaps & HT_GAP_CAPTURE) && got[0]->h2_stream == 1 &&
           (got[0]->h2_anomalies & HT_H2_AN_PROTOCOL_ERROR) == 0,
           "h2: bytes lost across a frame boundary end that direction: no stream is made up from "
           "what follows (%d events)", ngot);
    reset_got();
    pair_free(&p);
}

/* More streams at once than are kept: counted, the rest logged. */
static void test_stream_limit(void)
{
    static const struct ht_conn_cfg cfg = { .max_body = 64, .max_header = 8192, .mode = "t",
                                            .h2_max_streams = 2 };
    struct pair p;
    pair_init(&p);
    for (uint32_t id = 1; id <= 7; id += 2)
        get(&p.c, p.cd, id, "/x");
    for (uint32_t id = 1; id <= 7; id += 2)
        status(&p.s, p.sd, id, "200", true);
    uint64_t dropped0 = HT_STAT_GET(dropped_pipeline), seen0 = HT_STAT_GET(exchanges_seen);
    struct ht_conn c;
    open_conn(&c, &cfg);
    feed(&c, HT_REQ, &p.c, 0, p.c.len);
    feed(&c, HT_RESP, &p.s, 0, p.s.len);
    ht_conn_finish(&c, &now, 0);
    tap_ok(ngot == 2 && got[0]->gaps == 0 && got[1]->gaps == 0 && got[0]->h2_stream == 1 &&
           got[1]->h2_stream == 3 && HT_STAT_GET(dropped_pipeline) - dropped0 == 2 &&
           HT_STAT_GET(exchanges_seen) - seen0 == 2,
           "h2: with 2 streams kept, 4 open at once: 2 logged whole, 2 counted in dropped_pipeline "
           "(%d events)", ngot);
    reset_got();
    pair_free(&p);
}

/* The server's SETTINGS before the client's preface: no stray exchange. */
static void test_server_first(void)
{
    static const struct ht_conn_cfg cfg = { .max_body = 64, .max_header = 8192, .mode = "t" };
    struct pair p;
    pair_init(&p);
    uint8_t settings[6] = { 0, 3, 0, 0, 0, 100 };
    struct ht_buf early = { 0 };
    frame(&early, 4, 0, 0, settings, 6);
    frame(&early, 8, 0, 0, "\0\0\xff\xff", 4);
    get(&p.c, p.cd, 1, "/one");
    status(&p.s, p.sd, 1, "200", true);
    struct ht_conn c;
    open_conn(&c, &cfg);
    feed(&c, HT_RESP, &early, 0, early.len);
    feed(&c, HT_REQ, &p.c, 0, p.c.len);
    feed(&c, HT_RESP, &p.s, 0, p.s.len);
    ht_conn_finish(&c, &now, 0);
    tap_ok(ngot == 1 && got[0]->gaps == 0 && got[0]->h2_stream == 1 && got[0]->resp_msg.status == 200,
           "h2: a server whose SETTINGS come before the client's preface: one exchange, complete "
           "(%d events)", ngot);
    reset_got();

    /* An HTTP/1 server that speaks first is not held for HTTP/2. */
    struct ht_buf h1 = { 0 };
    static const char r408[] = "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n";
    ht_buf_append(&h1, r408, sizeof(r408) - 1);
    open_conn(&c, &cfg);
    feed(&c, HT_RESP, &h1, 0, h1.len);
    ht_conn_finish(&c, &now, 0);
    tap_ok(ngot == 1 && got[0]->resp_msg.status == 408 && !got[0]->h2_stream,
           "h2: an HTTP/1 response before any request is read as HTTP/1 (%d events)", ngot);
    reset_got();
    ht_buf_free(&early);
    ht_buf_free(&h1);
    pair_free(&p);
}

/* The server's SETTINGS while the client's preface is only partly in, or
 * cut shorter than a frame header: still held, no stray exchange. */
static void test_server_first_cut(void)
{
    static const struct ht_conn_cfg cfg = { .max_body = 64, .max_header = 8192, .mode = "t" };
    struct pair p;
    pair_init(&p);
    uint8_t settings[6] = { 0, 3, 0, 0, 0, 100 };
    struct ht_buf early = { 0 };
    frame(&early, 4, 0, 0, settings, 6);
    get(&p.c, p.cd, 1, "/one");
    status(&p.s, p.sd, 1, "200", true);
    /* {client bytes before, server bytes in the first piece} */
    static const size_t cuts[][2] = { { 10, 15 }, { 10, 12 }, { 0, 5 }, { 10, 5 }, { 23, 1 } };
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        size_t cb = cuts[i][0], sb = cuts[i][1];
        struct ht_conn c;
        open_conn(&c, &cfg);
        feed(&c, HT_REQ, &p.c, 0, cb);
        feed(&c, HT_RESP, &early, 0, sb);
        feed(&c, HT_RESP, &early, sb, early.len);
        feed(&c, HT_REQ, &p.c, cb, p.c.len);
        feed(&c, HT_RESP, &p.s, 0, p.s.len);
        ht_conn_finish(&c, &now, 0);
        tap_ok(ngot == 1 && got[0]->gaps == 0 && got[0]->h2_stream == 1 &&
               got[0]->request_index == 0 && got[0]->resp_msg.status == 200,
               "h2: %zu bytes of the preface, then the server's SETTINGS in pieces of %zu and %zu: "
               "one exchange, complete (%d events)", cb, sb, early.len - sb, ngot);
        reset_got();
    }
    ht_buf_free(&early);
    pair_free(&p);
}

int main(void)
{
    test_lost_in_block();
    test_lost_in_data();
    test_lost_across_frames();
    test_stream_limit();
    test_server_first();
    test_server_first_cut();
    return tap_done();
}
