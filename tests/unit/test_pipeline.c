/*
 * test_pipeline.c - more pipelined requests than a connection keeps: the
 * first HT_PIPELINE_MAX are logged, the rest are framed but not kept and
 * counted as dropped (request_index skips them), a HEAD among them still
 * frames its response right, and the connection carries on logging once
 * they are answered. Live-style feeding: all requests, then all responses.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/conn.h"
#include "core/event.h"
#include "core/stats.h"
#include "tap.h"

#define N 40

static void emit(void *ctx, struct ht_exchange *ex)
{
    ht_event_format(ex, ctx);
    ht_exchange_free(ex);
}

int main(void)
{
    static const struct ht_conn_cfg cfg = { .max_body = 4096, .max_header = 65536, .mode = "test" };
    struct ht_endpoints ep = { .peer_port = -1, .local_port = -1 };
    struct ht_clock now = { .wall_ns = 1, .mono_ns = 1 };
    struct ht_buf reqs = { 0 }, resps = { 0 }, out = { 0 };
    char line[256];

    for (int i = 0; i < N; i++) {
        const char *m = i == 35 ? "HEAD" : "GET";
        int n = snprintf(line, sizeof(line), "%s /p%d HTTP/1.1\r\nHost: h\r\n\r\n", m, i);
        ht_buf_append(&reqs, line, (size_t)n);
        /* the HEAD response announces a body it does not carry */
        n = i == 35 ? snprintf(line, sizeof(line), "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
                    : snprintf(line, sizeof(line), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%d",
                               i < 10 ? 1 : 2, i);
        ht_buf_append(&resps, line, (size_t)n);
    }
    uint64_t dropped0 = HT_STAT_GET(dropped_pipeline), seen0 = HT_STAT_GET(exchanges_seen);
    struct ht_conn c;
    ht_conn_init(&c, &cfg, &ep, "t", 0, emit, &out);
    ht_conn_feed(&c, HT_REQ, (uint8_t *)reqs.p, reqs.len, &now, 0);
    ht_conn_feed(&c, HT_RESP, (uint8_t *)resps.p, resps.len, &now, 0);
    const char *more_req = "POST /after HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi";
    const char *more_resp = "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
    ht_conn_feed(&c, HT_REQ, (const uint8_t *)more_req, strlen(more_req), &now, 0);
    ht_conn_feed(&c, HT_RESP, (const uint8_t *)more_resp, strlen(more_resp), &now, 0);
    ht_conn_finish(&c, &now, 0);

    int events = 0, complete = 0, last_index = -1, last_status = 0;
    const char *pos = out.p, *end = out.p + out.len;
    while (pos < end) {
        const char *nl = memchr(pos, '\n', (size_t)(end - pos));
        json_t *j = json_loadb(pos, (size_t)(nl - pos), 0, NULL);
        events++;
        complete += json_is_true(json_object_get(json_object_get(j, "httptape"), "complete"));
        last_index = (int)json_integer_value(json_object_get(
            json_object_get(json_object_get(j, "httptape"), "connection"), "request_index"));
        last_status = (int)json_integer_value(json_object_get(
            json_object_get(json_object_get(j, "http"), "response"), "status_code"));
        json_decref(j);
        pos = nl + 1;
    }
    tap_ok(events == HT_PIPELINE_MAX + 1 && complete == events,
           "pipeline: %d kept exchanges and the one after the burst are logged complete (%d, %d)",
           HT_PIPELINE_MAX, events, complete);
    tap_ok(HT_STAT_GET(dropped_pipeline) - dropped0 == N - HT_PIPELINE_MAX,
           "pipeline: the %d requests beyond it are counted as dropped", N - HT_PIPELINE_MAX);
    tap_ok(HT_STAT_GET(exchanges_seen) - seen0 == N - HT_PIPELINE_MAX,
           "pipeline: and as seen, so seen == written + dropped can hold");
    tap_ok(last_index == N && last_status == 201,
           "pipeline: the request after the burst has index %d (the gap shows the drops) and its own response", N);

    /* After a request the parser cannot read, the server still answers it
     * and the requests after it: those answers are counted, not invented. */
    uint64_t unparsed0 = HT_STAT_GET(dropped_unparsed);
    ht_buf_reset(&out);
    ht_conn_init(&c, &cfg, &ep, "t2", 0, emit, &out);
    const char *bad = "GET /a b c HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n"
                      "GET /3 HTTP/1.1\r\nHost: h\r\n\r\n";
    const char *three = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
                        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2"
                        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n3";
    ht_conn_feed(&c, HT_REQ, (const uint8_t *)bad, strlen(bad), &now, 0);
    ht_conn_feed(&c, HT_RESP, (const uint8_t *)three, strlen(three), &now, 0);
    ht_conn_finish(&c, &now, 0);
    int lines = 0;
    for (size_t i = 0; i < out.len; i++)
        lines += out.p[i] == '\n';
    tap_ok(lines == 1 && strstr(out.p, "\"desync\"") && strstr(out.p, "\"status_code\":400"),
           "desync: the unreadable request is logged once, with its 400 and gap desync");
    tap_ok(HT_STAT_GET(dropped_unparsed) - unparsed0 == 2,
           "desync: the two answers after it are counted as dropped, not logged");

    ht_buf_free(&reqs);
    ht_buf_free(&resps);
    ht_buf_free(&out);
    return tap_done();
}
