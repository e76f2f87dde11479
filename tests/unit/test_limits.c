/*
 * test_limits.c - bodies far larger than memory are counted, not buffered:
 * a 5 GiB Content-Length body and a 5 GiB chunk go through one connection
 * in 1 MiB pieces; the events carry the exact 64-bit sizes and an excerpt
 * no longer than the cap.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/conn.h"
#include "core/event.h"
#include "tap.h"

#define PIECE (1u << 20)
#define FIVE_GIB (5ULL << 30)

struct seen {
    int n;
    json_int_t size;
    size_t content_len;
    bool truncated, complete;
};

static void emit(void *ctx, struct ht_exchange *ex)
{
    struct seen *s = ctx;
    struct ht_buf line = { 0 };
    ht_event_format(ex, &line);
    json_t *j = json_loadb(line.p, line.len, 0, NULL);
    json_t *body = json_object_get(json_object_get(json_object_get(j, "http"), "request"), "body");
    s->n++;
    s->size = json_integer_value(json_object_get(body, "size"));
    s->content_len = json_string_length(json_object_get(body, "content"));
    s->truncated = json_is_true(json_object_get(body, "truncated"));
    s->complete = json_is_true(json_object_get(json_object_get(j, "httptape"), "complete"));
    json_decref(j);
    ht_buf_free(&line);
    ht_exchange_free(ex);
}

static void run(const char *name, const char *head, bool chunked)
{
    static const struct ht_conn_cfg cfg = { .max_body = 4096, .max_header = 65536, .mode = "replay" };
    struct ht_endpoints ep = { .peer_port = -1, .local_port = -1 };
    struct ht_clock now = { .wall_ns = 1, .mono_ns = 1 };
    struct seen s = { 0 };
    struct ht_conn c;
    uint8_t *piece = malloc(PIECE);
    memset(piece, 'x', PIECE);

    ht_conn_init(&c, &cfg, &ep, "limits", 0, emit, &s);
    ht_conn_feed(&c, HT_REQ, (const uint8_t *)head, strlen(head), &now, 0);
    for (unsigned long long left = FIVE_GIB; left; left -= PIECE)
        ht_conn_feed(&c, HT_REQ, piece, PIECE, &now, 0);
    if (chunked)
        ht_conn_feed(&c, HT_REQ, (const uint8_t *)"\r\n0\r\n\r\n", 7, &now, 0);
    const char *resp = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    ht_conn_feed(&c, HT_RESP, (const uint8_t *)resp, strlen(resp), &now, 0);
    ht_conn_finish(&c, &now, 0);
    free(piece);

    tap_ok(s.n == 1 && s.complete, "limits: %s is one complete exchange", name);
    if (!tap_ok(s.size == (json_int_t)FIVE_GIB, "limits: %s is counted to the byte", name))
        tap_diag("size %lld", (long long)s.size);
    tap_ok(s.truncated && s.content_len == 4096, "limits: %s keeps only the 4096-byte excerpt", name);
}

int main(void)
{
    run("a 5 GiB Content-Length body",
        "POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: 5368709120\r\n\r\n", false);
    run("a 5 GiB chunk",
        "POST /big HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n140000000\r\n", true);
    return tap_done();
}
