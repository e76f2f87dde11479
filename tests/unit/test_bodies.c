/*
 * test_bodies.c - binary body excerpts in base64: the writer keeps the text
 * of its last few (event.c) and finds them by their bytes. Bodies of one
 * length with different bytes, more of them than it keeps, taken in turns,
 * and bodies larger than it keeps: every event must carry its own body,
 * decoded exactly.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/conn.h"
#include "core/event.h"
#include "tap.h"

static void emit(void *ctx, struct ht_exchange *ex)
{
    ht_event_format(ex, ctx);
    ht_exchange_free(ex);
}

/* RFC 4648 base64, as a reader of the log decodes it; -1 on a bad byte. */
static long unbase64(const char *s, size_t n, uint8_t *out)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    long o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n && s[i] != '='; i++) {
        const char *p = strchr(abc, s[i]);
        if (!p || !s[i])
            return -1;
        acc = acc << 6 | (uint32_t)(p - abc);
        if ((bits += 6) >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return o;
}

/* Body k of length n: starts with 0xff (never UTF-8), then k's pattern. */
static void body(uint8_t *b, size_t n, int k)
{
    b[0] = 0xff;
    for (size_t i = 1; i < n; i++)
        b[i] = (uint8_t)(i * 7 + (size_t)k * 131 + (i >> 8));
}

int main(void)
{
    static const struct ht_conn_cfg cfg = { .max_body = 100000, .max_header = 65536, .mode = "test" };
    struct ht_endpoints ep = { .peer_port = -1, .local_port = -1 };
    struct ht_clock now = { .wall_ns = 1, .mono_ns = 1 };
    /* Seven contents of one length (more than the writer keeps), asked for
     * in an order that comes back to each; then two over its size limit. */
    static const int order[] = { 0, 1, 2, 0, 3, 4, 5, 6, 1, 6, 0, 2, 2 };
    const size_t norder = sizeof(order) / sizeof(order[0]);
    static const size_t sizes[] = { 64, 5000, 70000 };
    uint8_t *b = malloc(70000), *dec = malloc(70000);
    char head[128];

    for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
        size_t n = sizes[si];
        struct ht_buf out = { 0 };
        struct ht_conn c;
        ht_conn_init(&c, &cfg, &ep, "t", 0, emit, &out);
        for (size_t i = 0; i < norder; i++) {
            const char *req = "GET /f HTTP/1.1\r\nHost: h\r\n\r\n";
            ht_conn_feed(&c, HT_REQ, (const uint8_t *)req, strlen(req), &now, 0);
            int hn = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", n);
            ht_conn_feed(&c, HT_RESP, (const uint8_t *)head, (size_t)hn, &now, 0);
            body(b, n, order[i]);
            ht_conn_feed(&c, HT_RESP, b, n, &now, 0);
        }
        ht_conn_finish(&c, &now, 0);

        size_t events = 0, right = 0;
        for (const char *pos = out.p, *end = out.p + out.len; pos < end; events++) {
            const char *nl = memchr(pos, '\n', (size_t)(end - pos));
            json_t *j = json_loadb(pos, (size_t)(nl - pos), 0, NULL);
            json_t *bj = json_object_get(json_object_get(json_object_get(j, "http"), "response"), "body");
            json_t *content = json_object_get(bj, "content");
            const char *enc = json_string_value(json_object_get(bj, "encoding"));
            if (events < norder && content && enc && !strcmp(enc, "base64")) {
                long got = unbase64(json_string_value(content), json_string_length(content), dec);
                body(b, n, order[events]);
                right += got == (long)n && !memcmp(dec, b, n);
            }
            json_decref(j);
            pos = nl + 1;
        }
        tap_ok(events == norder && right == norder,
               "bodies: %zu binary bodies of %zu bytes, %d different in turns: each event carries "
               "its own, in base64 (%zu events, %zu right)", norder, n, 7, events, right);
        ht_buf_free(&out);
    }
    free(b);
    free(dec);
    return tap_done();
}
