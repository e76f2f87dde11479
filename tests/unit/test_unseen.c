/*
 * test_unseen.c - bytes that reach the socket without passing through a
 * buffer we see (sendfile, splice): bodies counted exactly, excerpts
 * fetched when a fetch function exists, gaps recorded when not.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/conn.h"
#include "core/event.h"
#include "tap.h"

struct mem {
    const uint8_t *p;
    size_t n;
};

static size_t fetch_mem(void *ctx, uint64_t off, uint8_t *buf, size_t len)
{
    struct mem *m = ctx;
    if (off >= m->n)
        return 0;
    if (len > m->n - off)
        len = m->n - off;
    memcpy(buf, m->p + off, len);
    return len;
}

static void emit(void *ctx, struct ht_exchange *ex)
{
    ht_event_format(ex, ctx);
    ht_exchange_free(ex);
}

static json_t *get(json_t *j, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k && j; k = strtok_r(NULL, ".", &save))
        j = json_object_get(j, k);
    return j;
}

/* One GET; the response head is written normally when head_seen, and the
 * rest (or all) of the response goes "unseen". */
static json_t *run(const uint8_t *resp, size_t head_len, size_t total, bool head_seen,
                   bool can_fetch, enum ht_body_source src)
{
    static const struct ht_conn_cfg cfg = { .max_body = 4096, .max_header = 65536, .mode = "test" };
    struct ht_endpoints ep = { .peer_port = -1, .local_port = -1 };
    struct ht_clock now = { .wall_ns = 1, .mono_ns = 1 };
    struct ht_buf out = { 0 };
    struct ht_conn c;
    const char *req = "GET /f HTTP/1.1\r\nHost: h\r\n\r\n";

    ht_conn_init(&c, &cfg, &ep, "t", 0, emit, &out);
    ht_conn_feed(&c, HT_REQ, (const uint8_t *)req, strlen(req), &now, 0);
    size_t start = head_seen ? head_len : 0;
    if (head_seen)
        ht_conn_feed(&c, HT_RESP, resp, head_len, &now, 0);
    struct mem m = { resp + start, total - start };
    ht_conn_feed_unseen(&c, HT_RESP, total - start, src, NULL, can_fetch ? fetch_mem : NULL, &m, &now);
    ht_conn_finish(&c, &now, 0);
    json_t *j = json_loadb(out.p, out.len, JSON_DISABLE_EOF_CHECK, NULL);
    ht_buf_free(&out);
    return j;
}

int main(void)
{
    size_t body = 20000;
    char head[128];
    int hn = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", body);
    uint8_t *resp = malloc((size_t)hn + body);
    memcpy(resp, head, (size_t)hn);
    for (size_t i = 0; i < body; i++)
        resp[hn + i] = (uint8_t)('a' + i % 26);

    json_t *j = run(resp, (size_t)hn, (size_t)hn + body, true, true, HT_SRC_SENDFILE);
    tap_ok(json_integer_value(get(j, "http.response.body.size")) == (json_int_t)body,
           "unseen: a sendfile body is counted to the byte");
    const char *content = json_string_value(get(j, "http.response.body.content"));
    tap_ok(content && strlen(content) == 4096 && !memcmp(content, resp + hn, 4096),
           "unseen: its excerpt is fetched from the file and equals the first 4096 bytes");
    tap_ok(!strcmp(json_string_value(get(j, "http.response.body.source")) ?: "", "sendfile") &&
           json_is_true(get(j, "httptape.complete")),
           "unseen: the body says source sendfile and the exchange is complete");
    json_decref(j);

    j = run(resp, (size_t)hn, (size_t)hn + body, false, true, HT_SRC_SENDFILE);
    tap_ok(json_integer_value(get(j, "http.response.status_code")) == 200 &&
           json_integer_value(get(j, "http.response.body.size")) == (json_int_t)body &&
           json_is_true(get(j, "httptape.complete")),
           "unseen: a head that went unseen is fetched and parsed");
    json_decref(j);

    j = run(resp, (size_t)hn, (size_t)hn + body, true, false, HT_SRC_SPLICE);
    json_t *gaps = get(j, "httptape.gaps");
    tap_ok(json_integer_value(get(j, "http.response.body.size")) == (json_int_t)body &&
           !get(j, "http.response.body.content") &&
           !strcmp(json_string_value(json_array_get(gaps, 0)) ?: "", "body_not_captured") &&
           !strcmp(json_string_value(get(j, "http.response.body.source")) ?: "", "splice"),
           "unseen: a spliced body is counted, its content marked body_not_captured");
    json_decref(j);

    j = run(resp, (size_t)hn, (size_t)hn + body, false, false, HT_SRC_SPLICE);
    gaps = get(j, "httptape.gaps");
    tap_ok(json_is_false(get(j, "httptape.complete")) && json_array_size(gaps) > 0,
           "unseen: an unseen head that cannot be fetched is a gap, not a guess");
    json_decref(j);
    free(resp);
    return tap_done();
}
