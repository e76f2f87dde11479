/*
 * test_rules.c - the recording rules (core/rules.h): each mistake is one
 * line naming where it is; each decision on exchanges replayed from real
 * bytes (request-time ones at the head, status and duration at the end);
 * sampling's rate over 10,000 exchanges and its agreement by trace id;
 * body caps by media type; header allow and deny lists.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/conn.h"
#include "core/rules.h"
#include "tap.h"

static struct ht_exchange *last;

static void keep_last(void *ctx, struct ht_exchange *ex)
{
    (void)ctx;
    ht_exchange_free(last);
    last = ex;
}

/* One exchange from a request and a response, taking dur_ns. */
static struct ht_exchange *exchange(const char *req, const char *resp, int64_t dur_ns)
{
    static const struct ht_conn_cfg cfg = { .max_body = 4096, .max_header = 8192, .mode = "t" };
    static const struct ht_endpoints ep = { .peer_port = -1, .local_port = -1 };
    static unsigned n;
    char id[32];
    snprintf(id, sizeof(id), "t-%u", ++n);
    struct ht_conn c;
    ht_conn_init(&c, &cfg, &ep, id, 1, keep_last, NULL);
    struct ht_clock t0 = { 1, 1 }, t1 = { 1 + dur_ns, 1 + dur_ns };
    ht_conn_feed(&c, HT_REQ, (const uint8_t *)req, strlen(req), &t0, 0);
    ht_conn_feed(&c, HT_RESP, (const uint8_t *)resp, strlen(resp), &t1, 0);
    ht_conn_finish(&c, &t1, 0);
    struct ht_exchange *ex = last;
    last = NULL;
    return ex;
}

static const char *OK = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
static const char *FAIL = "HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n";

static enum ht_verdict verdict(const char *rules, const char *req, const char *resp, int64_t dur)
{
    char err[256];
    if (ht_rules_parse(rules, "test", err, sizeof(err))) {
        tap_diag("%s", err);
        return HT_KEEP_UNDECIDED;
    }
    struct ht_exchange *ex = exchange(req, resp, dur);
    enum ht_verdict v = ht_rules_final(ex);
    ht_exchange_free(ex);
    ht_rules_reset();
    return v;
}

static void test_errors(void)
{
    static const struct { const char *text, *want; } bad[] = {
        { "exclude", "test: rule 1: 'exclude' needs at least one condition" },
        { "exclude path=/a; drop path=/b", "test: rule 2: unknown rule 'drop'" },
        { "include pth=/x", "test: rule 1: unknown condition 'pth=/x'" },
        { "include slower=5min", "test: rule 1: 'slower=5min': expected a duration" },
        { "include status=6xx", "test: rule 1: 'status=6xx': expected status classes" },
        { "sample 120%", "test: rule 1: 'sample' needs a rate from 0% to 100%" },
        { "body image/* shrink", "test: rule 1: 'shrink': expected keep, drop or cap=SIZE" },
        { "header hide cookie", "test: rule 1: expected 'header deny|allow NAME,...'" },
        { "exclude path=", "test: rule 1: 'path=' has no value" },
        { "progress every=soon", "test: rule 1: 'every=soon': expected 'progress every=DURATION'" },
        { "websocket some", "test: rule 1: expected 'websocket all|data|control|none [cap=SIZE]'" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[256] = "";
        int rc = ht_rules_parse(bad[i].text, "test", err, sizeof(err));
        tap_ok(rc && !strncmp(err, bad[i].want, strlen(bad[i].want)) && !strchr(err, '\n'),
               "rules: '%s' is refused with one line: %s", bad[i].text, err);
        ht_rules_reset();
    }
    char err[256];
    tap_ok(!ht_rules_parse("# a comment\n\nexclude path=/health   # trailing\nsample 50%", "f",
                           err, sizeof(err)),
           "rules: comments, blank lines and trailing comments are fine");
    ht_rules_reset();
}

static void test_decisions(void)
{
    const char *health = "GET /health?x=1 HTTP/1.1\r\nHost: api.test:8080\r\n\r\n";
    const char *post = "POST /api/items HTTP/1.1\r\nHost: api.test\r\nX-Debug: on\r\n"
                       "Content-Length: 2\r\n\r\n{}";
    tap_ok(verdict("exclude path=/health", health, OK, 0) == HT_FILTERED &&
           verdict("exclude path=/health", post, OK, 0) == HT_KEEP,
           "rules: exclude by path (the query is not part of it)");
    tap_ok(verdict("exclude path=/api/* method=post", post, OK, 0) == HT_FILTERED &&
           verdict("exclude path=/api/* method=GET", post, OK, 0) == HT_KEEP,
           "rules: every condition of a rule must hold (method in any case)");
    tap_ok(verdict("exclude host=API.test", health, OK, 0) == HT_FILTERED &&
           verdict("exclude host=other.test", health, OK, 0) == HT_KEEP,
           "rules: host from the Host field, port left off, any case");
    tap_ok(verdict("include status=5xx", post, FAIL, 0) == HT_KEEP &&
           verdict("include status=5xx", post, OK, 0) == HT_FILTERED &&
           verdict("include status=404,200", post, OK, 0) == HT_KEEP,
           "rules: include by status class or code");
    tap_ok(verdict("include slower=500ms", post, OK, 600000000) == HT_KEEP &&
           verdict("include slower=500ms", post, OK, 400000000) == HT_FILTERED,
           "rules: include slower than a duration");
    tap_ok(verdict("include status=5xx; include slower=1s", post, OK, 2000000000) == HT_KEEP,
           "rules: with several include rules one is enough");
    tap_ok(verdict("exclude request-header=x-debug", post, OK, 0) == HT_FILTERED &&
           verdict("exclude request-header=x-debug:off", post, OK, 0) == HT_KEEP &&
           verdict("exclude response-header=content-length:2", post, OK, 0) == HT_FILTERED,
           "rules: request and response header present, or with a value");
    tap_ok(verdict("sample 0%", post, OK, 0) == HT_SAMPLED_OUT &&
           verdict("sample 100%", post, OK, 0) == HT_KEEP &&
           verdict("sample 0% path=/health", post, OK, 0) == HT_KEEP,
           "rules: sample 0%%, 100%%, and only where its conditions hold");

    /* Decided at the head when the request says enough: no body kept. */
    char err[256];
    ht_rules_parse("exclude path=/api/*; include status=5xx", "t", err, sizeof(err));
    struct ht_exchange *ex = exchange(post, OK, 0);
    tap_ok(ex->verdict == HT_FILTERED && ex->req_body.len == 0 && ex->req_body.size == 2,
           "rules: an exchange excluded by its request is decided at the head: its body is "
           "counted, not copied");
    ht_exchange_free(ex);
    ht_rules_reset();
}

static void test_sampling(void)
{
    char err[256];
    ht_rules_parse("sample 10%", "t", err, sizeof(err));
    int kept = 0, agree = 0;
    for (int i = 0; i < 10000; i++) {
        char req[256];
        snprintf(req, sizeof(req), "GET /t HTTP/1.1\r\nHost: a\r\ntraceparent: "
                 "00-%032x-00f067aa0ba902b7-01\r\n\r\n", (unsigned)(i * 2654435761u));
        struct ht_exchange *a = exchange(req, OK, 0), *b = exchange(req, FAIL, 5);
        enum ht_verdict va = ht_rules_final(a), vb = ht_rules_final(b);
        kept += va == HT_KEEP;
        agree += va == vb;
        ht_exchange_free(a);
        ht_exchange_free(b);
    }
    tap_ok(kept >= 800 && kept <= 1200, "rules: sample 10%% keeps %d of 10,000 (8%% to 12%%)", kept);
    tap_ok(agree == 10000, "rules: two exchanges of one trace (two legs) are kept or left out "
           "together (%d of 10,000 agree)", agree);
    ht_rules_reset();
}

static void test_bodies_and_headers(void)
{
    const char *img = "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 4\r\n\r\nPNG!";
    const char *bin = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream; x=1\r\n"
                      "Content-Length: 4\r\n\r\n\x01\x02\x03\x04";
    const char *get = "GET / HTTP/1.1\r\nHost: a\r\nCookie: s=1\r\nAccept: */*\r\n\r\n";
    struct ht_exchange *ex = exchange(get, img, 0);
    tap_ok(ex->resp_body.size == 4 && ex->resp_body.len == 0 && ex->resp_body.omitted,
           "rules: by default an image's size is logged, not its content");
    ht_exchange_free(ex);
    char err[256];
    ht_rules_parse("body image/* keep; body application/octet-stream cap=2", "t", err, sizeof(err));
    struct ht_exchange *a = exchange(get, img, 0), *b = exchange(get, bin, 0);
    tap_ok(a->resp_body.len == 4 && !a->resp_body.omitted && b->resp_body.len == 2 &&
           b->resp_body.size == 4 && b->resp_body.truncated,
           "rules: body rules keep a type, or cap it (parameters of the type ignored)");
    ht_exchange_free(a);
    ht_exchange_free(b);
    ht_rules_reset();
    ht_rules_parse("header deny cookie,x-secret", "t", err, sizeof(err));
    tap_ok(ht_rules_filter_headers() && !ht_rules_header_shown((const uint8_t *)"Cookie", 6) &&
           ht_rules_header_shown((const uint8_t *)"accept", 6),
           "rules: header deny hides those names, any case");
    ht_rules_reset();
    ht_rules_parse("header allow host,accept", "t", err, sizeof(err));
    tap_ok(ht_rules_header_shown((const uint8_t *)"Host", 4) &&
           !ht_rules_header_shown((const uint8_t *)"cookie", 6),
           "rules: header allow shows those names only");
    ht_rules_reset();
    tap_ok(!ht_rules_filter_headers(), "rules: without header rules nothing is filtered");
}

static void test_digest(void)
{
    char err[256], hex[65];
    tap_ok(ht_rules_parse("digest md5", "t", err, sizeof(err)) != 0 &&
           !strcmp(err, "t: rule 1: expected 'digest sha256'"), "rules: digest names its algorithm: %s",
           err);
    ht_rules_reset();
    ht_rules_parse("digest sha256", "t", err, sizeof(err));
    struct ht_exchange *ex = exchange("POST /d HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                                      "6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n", OK, 0);
    tap_ok(ht_body_digest_hex(&ex->req_body, hex) &&
           !strcmp(hex, "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"),
           "rules: the request body's SHA-256 is over its bytes without the chunk framing");
    ht_exchange_free(ex);
    ht_rules_reset();
    ex = exchange("GET / HTTP/1.1\r\nHost: a\r\n\r\n", OK, 0);
    tap_ok(!ht_body_digest_hex(&ex->resp_body, hex), "rules: without the rule there is no digest");
    ht_exchange_free(ex);
}

int main(void)
{
    test_digest();
    test_errors();
    test_decisions();
    test_sampling();
    test_bodies_and_headers();
    return tap_done();
}
