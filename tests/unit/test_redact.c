/*
 * test_redact.c - core/redact.c: secrets out of exchange records.
 *
 * Exchanges are made the way capture makes them (raw bytes through a
 * connection), redacted with an explicit configuration, and checked byte
 * for byte: heads and bodies against the expected text, the rewritten
 * request head parsed again (method, target offsets), the event formatted
 * and read back with jansson (url.path, url.query), JSON bodies compared
 * tree to tree with the original. Single-threaded.
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/conn.h"
#include "core/event.h"
#include "core/parser.h"
#include "core/redact.h"
#include "tap.h"

#define KEY "0123456789abcdef0123"     /* HMAC-SHA-256(KEY, "abc123") = 5f95b434d49566c0... */

static struct ht_redact_cfg plain, keyed, disabled;

static void keep(void *ctx, struct ht_exchange *ex)
{
    struct ht_exchange **slot = ctx;
    if (*slot)
        ht_exchange_free(ex);           /* only the first one is wanted */
    else
        *slot = ex;
}

/* One exchange from a raw request and response (resp may be NULL). */
static struct ht_exchange *capture_n(const char *req, size_t reqlen, const char *resp,
                                     uint32_t max_body)
{
    struct ht_conn_cfg cfg = { .max_body = max_body, .max_header = 65536, .mode = "replay" };
    struct ht_endpoints ep = { .peer_port = -1, .local_port = -1 };
    struct ht_clock now = { .wall_ns = 1, .mono_ns = 1 };
    struct ht_exchange *ex = NULL;
    struct ht_conn c;
    ht_conn_init(&c, &cfg, &ep, "redact", 0, keep, &ex);
    ht_conn_feed(&c, HT_REQ, (const uint8_t *)req, reqlen, &now, 0);
    if (resp)
        ht_conn_feed(&c, HT_RESP, (const uint8_t *)resp, strlen(resp), &now, 0);
    ht_conn_finish(&c, &now, 0);
    return ex;
}

static struct ht_exchange *capture(const char *req, const char *resp)
{
    return capture_n(req, strlen(req), resp, 4096);
}

static const char *const OK = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

static bool same(const uint8_t *got, size_t n, const char *want)
{
    if (n == strlen(want) && !memcmp(got, want, n))
        return true;
    tap_diag("got:  '%.*s'", (int)n, (const char *)got);
    tap_diag("want: '%s'", want);
    return false;
}

static bool listed(const struct ht_exchange *ex, const char *name)
{
    for (const char *p = ht_redact_next(ex, NULL); p; p = ht_redact_next(ex, p))
        if (!strcmp(p, name))
            return true;
    return false;
}

/* The formatted event, read back. */
static json_t *event(struct ht_exchange *ex)
{
    struct ht_buf b = { 0 };
    json_t *j = NULL;
    if (ht_event_format(ex, &b) == 0)
        j = json_loadb(b.p, b.len, 0, NULL);
    ht_buf_free(&b);
    return j;
}

static const char *jstr(json_t *j, const char *a, const char *b)
{
    return json_string_value(json_object_get(json_object_get(j, a), b));
}

/* The request head parsed again: same method, and the parser puts the
 * target where req_msg says it is. */
static bool head_reparses(const struct ht_exchange *ex)
{
    struct ht_parser p;
    struct ht_pev ev;
    bool ok = false;
    ht_parser_init(&p, HT_REQ, 65536);
    size_t off = 0;
    do {
        off += ht_parser_next(&p, ex->req_head + off, ex->req_head_len - off, &ev);
    } while (ev.type != HT_PEV_NONE && ev.type != HT_PEV_HEAD && ev.type != HT_PEV_ERROR);
    if (ev.type == HT_PEV_HEAD)
        ok = p.msg.target_off == ex->req_msg.target_off &&
             p.msg.target_len == ex->req_msg.target_len &&
             p.msg.method_len == ex->req_msg.method_len && p.head_len == ex->req_head_len;
    if (!ok)
        tap_diag("reparse: event %d, target %u+%u vs %u+%u", ev.type, p.msg.target_off,
                 p.msg.target_len, ex->req_msg.target_off, ex->req_msg.target_len);
    ht_parser_free(&p);
    return ok;
}

/* ---- headers ---- */

static void test_headers(void)
{
    struct ht_exchange *ex = capture(
        "GET / HTTP/1.1\r\nHost: h\r\nAUTHORIZATION: Bearer eyJhbGciOi.xyz\r\n"
        "Proxy-Authorization: Basic dXNlcjpwYXNz\r\nCookie: sid=abc; theme=dark;flag\r\n"
        "X-Api-Key:  k-123  \r\nX-Auth-Token: t-9\r\nX-Session: s-1\r\n"
        "User-Agent: curl/8\r\nReferer: http://h/cb?code=oauth-code&state=s\r\n\r\n",
        "HTTP/1.1 302 Found\r\nSet-Cookie: sid=new-secret; Path=/; HttpOnly\r\n"
        "Location: /next?access_token=tok&page=2\r\nContent-Length: 0\r\n\r\n");
    int n = ht_redact_exchange_with(&plain, ex);
    tap_ok(same(ex->req_head, ex->req_head_len,
                "GET / HTTP/1.1\r\nHost: h\r\nAUTHORIZATION: Bearer REDACTED\r\n"
                "Proxy-Authorization: Basic REDACTED\r\n"
                "Cookie: sid=REDACTED; theme=REDACTED;REDACTED\r\n"
                "X-Api-Key:  REDACTED  \r\nX-Auth-Token: REDACTED\r\nX-Session: s-1\r\n"
                "User-Agent: curl/8\r\nReferer: http://h/cb?code=REDACTED&state=s\r\n\r\n"),
           "headers: credentials in request headers are replaced, the auth scheme, cookie "
           "names and other headers stay");
    tap_ok(same(ex->resp_head, ex->resp_head_len,
                "HTTP/1.1 302 Found\r\nSet-Cookie: sid=REDACTED; Path=/; HttpOnly\r\n"
                "Location: /next?access_token=REDACTED&page=2\r\nContent-Length: 0\r\n\r\n"),
           "headers: Set-Cookie keeps its attributes; a token in Location is replaced");
    tap_ok(n == 10, "headers: ten values counted (got %d)", n);
    tap_ok(listed(ex, "header:authorization") && listed(ex, "header:cookie") &&
           listed(ex, "header:set-cookie") && listed(ex, "header:x-auth-token") &&
           listed(ex, "header:location") && listed(ex, "header:referer") &&
           !listed(ex, "header:user-agent") && ex->redacted.count == 8,
           "headers: each redacted header is listed once, by its lowercase name");
    tap_ok(head_reparses(ex), "headers: the rewritten head parses the same way");
    ht_exchange_free(ex);

    /* an extra name, any case; obs-fold continuation lines go too */
    struct ht_redact_cfg cfg;
    char err[256];
    tap_ok(ht_redact_cfg_build(&cfg, " x-session , X-Other", NULL, NULL, NULL, true, err,
                               sizeof(err)) == 0, "headers: extra names are accepted");
    ex = capture("GET / HTTP/1.1\r\nHost: h\r\nx-SESSION: s-1\r\nAuthorization: Bearer\r\n"
                 " folded-secret\r\nAccept: */*\r\n\r\n", OK);
    ht_redact_exchange_with(&cfg, ex);
    tap_ok(same(ex->req_head, ex->req_head_len,
                "GET / HTTP/1.1\r\nHost: h\r\nx-SESSION: REDACTED\r\n"
                "Authorization: REDACTED\r\nAccept: */*\r\n\r\n"),
           "headers: HTTPTAPE_REDACT_HEADERS names match any case; a folded value goes whole");
    tap_ok(head_reparses(ex), "headers: a head that lost a folded line parses the same way");
    ht_exchange_free(ex);
}

/* Answers about header names are kept per thread (redact.c): the same
 * bytes under another configuration, even one built in the same memory,
 * must get that configuration's answer. */
static bool session_redacted(const struct ht_redact_cfg *cfg)
{
    struct ht_exchange *ex = capture("GET / HTTP/1.1\r\nHost: h\r\nX-Session: s-1\r\n\r\n", OK);
    ht_redact_exchange_with(cfg, ex);
    bool r = memmem(ex->req_head, ex->req_head_len, "X-Session: REDACTED", 19) &&
             !memmem(ex->req_head, ex->req_head_len, "s-1", 3);
    ht_exchange_free(ex);
    return r;
}

static void test_name_answers(void)
{
    struct ht_redact_cfg cfg;
    char err[256];
    bool before = session_redacted(&plain);
    ht_redact_cfg_build(&cfg, "x-session", NULL, NULL, NULL, true, err, sizeof(err));
    bool with = session_redacted(&cfg);
    ht_redact_cfg_build(&cfg, "x-other", NULL, NULL, NULL, true, err, sizeof(err));
    bool rebuilt = session_redacted(&cfg);
    ht_redact_cfg_build(&cfg, "x-session", NULL, NULL, NULL, true, err, sizeof(err));
    bool again = session_redacted(&cfg);
    tap_ok(!before && with && !rebuilt && again && !session_redacted(&plain),
           "headers: one name's answer follows the configuration, also one rebuilt in the "
           "same memory (%d %d %d %d)", before, with, rebuilt, again);

    /* Many names, more than are kept: each still answered right. */
    char head[16384] = "GET / HTTP/1.1\r\nHost: h\r\n";
    for (int i = 0; i < 200; i++)
        snprintf(head + strlen(head), sizeof(head) - strlen(head), "X-N%d-%s: v%d\r\n", i,
                 i % 7 == 0 ? "Token" : "Plain", i);
    strcat(head, "\r\n");
    bool all = true;
    for (int round = 0; round < 2; round++) {
        struct ht_exchange *ex = capture(head, OK);
        ht_redact_exchange_with(&plain, ex);
        for (int i = 0; i < 200; i++) {
            char want[64];
            if (i % 7 == 0)
                snprintf(want, sizeof(want), "X-N%d-Token: REDACTED\r\n", i);
            else
                snprintf(want, sizeof(want), "X-N%d-Plain: v%d\r\n", i, i);
            all &= memmem(ex->req_head, ex->req_head_len, want, strlen(want)) != NULL;
        }
        all &= ex->redacted.count > 0;
        ht_exchange_free(ex);
    }
    tap_ok(all, "headers: 200 names, twice: those ending in token are redacted, the rest kept");
}

/* ---- query parameters ---- */

struct qcase {
    const char *target, *want;
};

static void test_query(void)
{
    static const struct qcase cases[] = {
        { "/p?token=abc&x=1", "/p?token=REDACTED&x=1" },                       /* first */
        { "/p?a=1&password=hunter2&b=2", "/p?a=1&password=REDACTED&b=2" },     /* middle */
        { "/p?a=1&api_key=0123456789abcdef0123456789", "/p?a=1&api_key=REDACTED" }, /* last */
        { "/p?sig=1&sig=2&sig=3", "/p?sig=REDACTED&sig=REDACTED&sig=REDACTED" },   /* repeated */
        { "/p?acc%65ss_token=a&Access-Token=b&ACCESSTOKEN=c&access+token=d",
          "/p?acc%65ss_token=REDACTED&Access-Token=REDACTED&ACCESSTOKEN=REDACTED"
          "&access+token=REDACTED" },                                           /* encoded */
        { "/p?x_amz_security_token=t&db_password=p&tokens=3",
          "/p?x_amz_security_token=REDACTED&db_password=REDACTED&tokens=3" },   /* suffixes */
        { "/p?token=&token&=v&&key=k", "/p?token=&token&=v&&key=REDACTED" },    /* empty */
        { "/p?monkey=1&keys=2&session=s", "/p?monkey=1&keys=2&session=REDACTED" }, /* exact */
        { "/a/b", "/a/b" },
        { "http://h:8080/p?code=c1&q=1", "http://h:8080/p?code=REDACTED&q=1" },  /* absolute */
        { "/p?secret=s#frag", "/p?secret=REDACTED#frag" },
    };
    struct ht_redact_cfg cfg;
    char err[256];
    ht_redact_cfg_build(&cfg, NULL, "session", NULL, NULL, true, err, sizeof(err));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char req[512];
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: h\r\n\r\n", cases[i].target);
        struct ht_exchange *ex = capture(req, OK);
        ht_redact_exchange_with(&cfg, ex);
        const uint8_t *t = ex->req_head + ex->req_msg.target_off;
        bool ok = same(t, ex->req_msg.target_len, cases[i].want);
        tap_ok(ok && head_reparses(ex), "query: %s", cases[i].target);
        ht_exchange_free(ex);
    }

    /* the event still splits the rewritten target right */
    struct ht_exchange *ex = capture("POST /a/b?user=bob&refresh_token=a-much-longer-secret"
                                     "-than-the-replacement&z=%7E HTTP/1.1\r\nHost: h\r\n"
                                     "Content-Length: 0\r\n\r\n", OK);
    ht_redact_exchange_with(&plain, ex);
    json_t *j = event(ex);
    const char *method = json_string_value(
        json_object_get(json_object_get(json_object_get(j, "http"), "request"), "method"));
    tap_ok(method && !strcmp(method, "POST") && !strcmp(jstr(j, "url", "path"), "/a/b") &&
           !strcmp(jstr(j, "url", "query"), "user=bob&refresh_token=REDACTED&z=%7E"),
           "query: method, url.path and url.query come out right after a shorter rewrite");
    tap_ok(listed(ex, "query:refresh_token") && ex->redacted.count == 1,
           "query: listed as query:refresh_token");
    json_decref(j);
    ht_exchange_free(ex);

    ex = capture("GET /?k=v&pwd=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", OK);
    ht_redact_exchange_with(&plain, ex);
    j = event(ex);
    tap_ok(!strcmp(jstr(j, "url", "query"), "k=v&pwd=REDACTED") && head_reparses(ex),
           "query: a longer rewrite keeps the target and the fields after it in place");
    json_t *host = json_object_get(json_object_get(json_object_get(json_object_get(j, "http"),
                                   "request"), "header"), "host");
    tap_ok(host && !strcmp(json_string_value(json_array_get(host, 0)), "h"),
           "query: the headers after the request line are intact");
    json_decref(j);
    ht_exchange_free(ex);

    ex = capture("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n",
                 "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
    tap_ok(ht_redact_exchange_with(&plain, ex) == 0 && head_reparses(ex),
           "query: a CONNECT target is left alone");
    ht_exchange_free(ex);
}

/* ---- JSON bodies ---- */

static const char *const sensitive_keys[] = {
    "password", "token", "access_token", "client_secret", "apiKey", "private-key",
    "db_password", "authorization", "custom", NULL,
};

static bool is_sensitive(const char *k)
{
    for (const char *const *s = sensitive_keys; *s; s++)
        if (!strcmp(*s, k))
            return true;
    return false;
}

/* got == want except that each sensitive key's string/number/object/array
 * value is "REDACTED" in got. */
static bool tree_ok(json_t *got, json_t *want)
{
    if (json_is_object(want)) {
        const char *k;
        json_t *v;
        if (!json_is_object(got) || json_object_size(got) != json_object_size(want))
            return false;
        json_object_foreach(want, k, v) {
            json_t *g = json_object_get(got, k);
            if (is_sensitive(k) && !json_is_boolean(v) && !json_is_null(v)) {
                if (!json_is_string(g) || strcmp(json_string_value(g), "REDACTED"))
                    return false;
            } else if (!tree_ok(g, v)) {
                return false;
            }
        }
        return true;
    }
    if (json_is_array(want)) {
        if (!json_is_array(got) || json_array_size(got) != json_array_size(want))
            return false;
        for (size_t i = 0; i < json_array_size(want); i++)
            if (!tree_ok(json_array_get(got, i), json_array_get(want, i)))
                return false;
        return true;
    }
    return json_equal(got, want);
}

static struct ht_exchange *with_body(const char *ctype, const char *body, uint32_t max_body)
{
    char req[8192];
    int n = snprintf(req, sizeof(req), "POST /b HTTP/1.1\r\nHost: h\r\n%s%s%sContent-Length: "
                     "%zu\r\n\r\n%s", ctype ? "Content-Type: " : "", ctype ? ctype : "",
                     ctype ? "\r\n" : "", strlen(body), body);
    return capture_n(req, (size_t)n, OK, max_body);
}

static bool body_is(const struct ht_exchange *ex, const char *want)
{
    return same(ex->req_body.buf, ex->req_body.len, want);
}

static void test_json(void)
{
    struct ht_redact_cfg cfg;
    char err[256];
    ht_redact_cfg_build(&cfg, NULL, NULL, "custom", NULL, true, err, sizeof(err));

    static const char nested[] =
        "{\"user\": {\"name\": \"bob\", \"password\": \"hunter2\", \"tags\": [\"a\", \"b\"]},\n"
        " \"items\": [{\"id\": 1, \"token\": \"t\\\"q\\\\\"}, {\"meta\": {\"access_token\": "
        "\"deep\", \"apiKey\": 12345, \"private-key\": {\"pem\": \"x\"}}}],\n"
        " \"amount\": 0.1, \"big\": 123456789012345678901234567890,\n"
        " \"client_secret\": [1, 2], \"db_password\": null, \"authorization\": true,\n"
        " \"custom\": \"c\", \"note\": \"password\", \"list\": [\"token\", {\"x\": \"token\"}]}";
    struct ht_exchange *ex = with_body("application/json", nested, 4096);
    int n = ht_redact_exchange_with(&cfg, ex);
    json_t *want = json_loads(nested, JSON_DECODE_INT_AS_REAL, NULL);
    json_t *got = json_loadb((const char *)ex->req_body.buf, ex->req_body.len,
                             JSON_DECODE_INT_AS_REAL, NULL);
    tap_ok(want && got && tree_ok(got, want),
           "json: sensitive fields at every depth are REDACTED, every other value is equal");
    tap_ok(n == 7, "json: seven values counted (got %d)", n);
    static const char kept[] = "\"amount\": 0.1, \"big\": 123456789012345678901234567890,\n";
    tap_ok(memmem(ex->req_body.buf, ex->req_body.len, kept, sizeof(kept) - 1) != NULL,
           "json: other bytes are kept exactly (numbers, spacing, line breaks)");
    tap_ok(ex->req_body.size == strlen(nested) && !ex->req_body.truncated,
           "json: size still says how long the body was");
    tap_ok(listed(ex, "body:password") && listed(ex, "body:access_token") &&
           listed(ex, "body:custom") && !listed(ex, "body:db_password") &&
           !listed(ex, "body:authorization"), "json: fields listed as body:<name>");
    json_decref(want);
    json_decref(got);
    ht_exchange_free(ex);

    ex = with_body("application/json", "[{\"a\":[{\"b\":{\"pass\\u0077ord\":\"x\",\"k\":\"v\"}}]}]",
                   4096);
    ht_redact_exchange_with(&plain, ex);
    tap_ok(body_is(ex, "[{\"a\":[{\"b\":{\"pass\\u0077ord\":\"REDACTED\",\"k\":\"v\"}}]}]"),
           "json: objects in arrays in objects; an escaped key is matched unescaped");
    ht_exchange_free(ex);

    ex = with_body("application/vnd.api+json; charset=utf-8", "{\"secret\":\"s\"}", 4096);
    ht_redact_exchange_with(&plain, ex);
    tap_ok(body_is(ex, "{\"secret\":\"REDACTED\"}"), "json: +json content types with parameters");
    ht_exchange_free(ex);

    /* curl -d '{...}' sends JSON as form-urlencoded: jansson says it is JSON */
    ex = with_body("application/x-www-form-urlencoded", "{\"password\":\"p\"}", 4096);
    ht_redact_exchange_with(&plain, ex);
    tap_ok(body_is(ex, "{\"password\":\"REDACTED\"}"), "json: JSON under another content type");
    ht_exchange_free(ex);
    ex = with_body(NULL, "  [1, {\"token\": 2}]", 4096);
    ht_redact_exchange_with(&plain, ex);
    tap_ok(body_is(ex, "  [1, {\"token\": \"REDACTED\"}]"), "json: JSON without a content type");
    ht_exchange_free(ex);
    /* past 1 MiB a body is not parsed to decide: bracketed text is scanned */
    size_t big = (1u << 20) + 100;
    char *bigreq = malloc(big + 200), *b;
    int hl = snprintf(bigreq, 200, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %zu\r\n\r\n", big);
    b = bigreq + hl;
    memset(b, ' ', big);
    memcpy(b, "{\"a\":[", 6);
    static const char tail[] = "],\"password\":\"p\"} \n", want_tail[] = "],\"password\":\"REDACTED\"} \n";
    memcpy(b + big - (sizeof(tail) - 1), tail, sizeof(tail) - 1);
    ex = capture_n(bigreq, (size_t)hl + big, OK, 2u << 20);
    tap_ok(ht_redact_exchange_with(&plain, ex) == 1 &&
           !memcmp(ex->req_body.buf + ex->req_body.len - (sizeof(want_tail) - 1), want_tail,
                   sizeof(want_tail) - 1),
           "json: a 1 MiB body without a content type is still redacted");
    ht_exchange_free(ex);
    free(bigreq);

    ex = with_body("text/plain", "{\"password\": not json}", 4096);
    tap_ok(ht_redact_exchange_with(&plain, ex) == 0 && body_is(ex, "{\"password\": not json}"),
           "json: text that is not JSON under a non-JSON type is left alone");
    ht_exchange_free(ex);

    /* an excerpt cut at the cap: redacted as far as it goes */
    ex = with_body("application/json", "{\"a\":\"1\",\"password\":\"a-long-secret\"}", 26);
    ht_redact_exchange_with(&plain, ex);
    tap_ok(ex->req_body.truncated && body_is(ex, "{\"a\":\"1\",\"password\":\"REDACTED\""),
           "json: a value cut by the cap is replaced up to the cut");
    ht_exchange_free(ex);

    static const char gz[] = "{\"password\":\"p\"}";
    char req[256];
    int rn = snprintf(req, sizeof(req), "POST / HTTP/1.1\r\nHost: h\r\nContent-Type: "
                      "application/json\r\nContent-Encoding: gzip\r\nContent-Length: %zu\r\n\r\n%s",
                      strlen(gz), gz);
    ex = capture_n(req, (size_t)rn, OK, 4096);
    tap_ok(ht_redact_exchange_with(&plain, ex) == 0, "json: a content-encoded body is not read");
    ht_exchange_free(ex);

    static const char tok[] = "{\"access_token\":\"at\",\"expires_in\":3600}";
    char resp[256];
    snprintf(resp, sizeof(resp), "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\n\r\n%s", strlen(tok), tok);
    ex = capture("POST /token HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", resp);
    ht_redact_exchange_with(&plain, ex);
    tap_ok(same(ex->resp_body.buf, ex->resp_body.len,
                "{\"access_token\":\"REDACTED\",\"expires_in\":3600}"),
           "json: response bodies are redacted too");
    ht_exchange_free(ex);
}

/* ---- form bodies ---- */

static void test_form(void)
{
    struct ht_redact_cfg cfg;
    char err[256];
    ht_redact_cfg_build(&cfg, NULL, NULL, "pin", NULL, true, err, sizeof(err));
    struct ht_exchange *ex = with_body("application/x-www-form-urlencoded; charset=UTF-8",
        "user=bob&password=hunter2&pass%77ord=x&new+password=y&pin=1234&remember=1&token=", 4096);
    ht_redact_exchange_with(&cfg, ex);
    tap_ok(body_is(ex, "user=bob&password=REDACTED&pass%77ord=REDACTED&new+password=REDACTED"
                   "&pin=REDACTED&remember=1&token="),
           "form: sensitive fields (encoded names, extra names) replaced, others stay");
    tap_ok(listed(ex, "body:password") && listed(ex, "body:pin") && listed(ex, "body:new password"),
           "form: listed as body:<decoded name>");
    ht_exchange_free(ex);

    ex = with_body("multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; "
                   "name=\"password\"\r\n\r\nhunter2\r\n--x--\r\n", 4096);
    tap_ok(ht_redact_exchange_with(&plain, ex) == 0, "form: multipart bodies are not read");
    ht_exchange_free(ex);
}

/* ---- what the independent tests found (issue 11) ---- */

/* "?x=1;api_key=..": ';' separates parameters for many servers (and did
 * for Python's parse_qs); a sensitive value runs to the next '&', so
 * either reading of "token=a;b" is covered. */
static void test_semicolon_query(void)
{
    static const struct qcase cases[] = {
        { "/p?x=1;api_key=k-123", "/p?x=1;api_key=REDACTED" },
        { "/p?a=1;b=2;password=hunter2&c=3", "/p?a=1;b=2;password=REDACTED&c=3" },
        { "/p?token=a;b&x=1", "/p?token=REDACTED&x=1" },
        { "/p?q=a;b", "/p?q=a;b" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char req[512];
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: h\r\n\r\n", cases[i].target);
        struct ht_exchange *ex = capture(req, OK);
        ht_redact_exchange_with(&plain, ex);
        const uint8_t *t = ex->req_head + ex->req_msg.target_off;
        tap_ok(same(t, ex->req_msg.target_len, cases[i].want) && head_reparses(ex),
               "query with ';': %s", cases[i].target);
        ht_exchange_free(ex);
    }
    struct ht_exchange *ex = with_body("application/x-www-form-urlencoded", "a=1;password=x", 4096);
    ht_redact_exchange_with(&plain, ex);
    tap_ok(body_is(ex, "a=1;password=REDACTED"), "form body with ';': the field after it is replaced");
    ht_exchange_free(ex);
}

/* https://user:pass@host/: the password (or a lone user part, often a
 * token) in Referer, Location, Content-Location and an absolute target. */
static void test_userinfo(void)
{
    struct ht_exchange *ex = capture(
        "GET http://bob:tgt-pass@h/p HTTP/1.1\r\nHost: h\r\n"
        "Referer: https://alice:s3cret@example.com/from?x=1\r\n\r\n",
        "HTTP/1.1 302 Found\r\nLocation: https://ghp_tok3n@git.example/r\r\n"
        "Content-Location: //carol:pw@cdn/x\r\nContent-Length: 0\r\n\r\n");
    ht_redact_exchange_with(&plain, ex);
    tap_ok(same(ex->req_head, ex->req_head_len,
                "GET http://bob:REDACTED@h/p HTTP/1.1\r\nHost: h\r\n"
                "Referer: https://alice:REDACTED@example.com/from?x=1\r\n\r\n") &&
           head_reparses(ex),
           "userinfo: the password in Referer and in an absolute target is replaced, the user stays");
    tap_ok(same(ex->resp_head, ex->resp_head_len,
                "HTTP/1.1 302 Found\r\nLocation: https://REDACTED@git.example/r\r\n"
                "Content-Location: //carol:REDACTED@cdn/x\r\nContent-Length: 0\r\n\r\n"),
           "userinfo: a user part without a password is replaced whole (a token)");
    tap_ok(listed(ex, "header:referer") && listed(ex, "header:location") &&
           listed(ex, "url:userinfo"), "userinfo: listed as header:<name> and url:userinfo");
    ht_exchange_free(ex);

    ex = capture("GET / HTTP/1.1\r\nHost: h\r\nReferer: https://example.com/a@b?c=d:e\r\n\r\n", OK);
    tap_ok(ht_redact_exchange_with(&plain, ex) == 0,
           "userinfo: an '@' in the path or query is not userinfo");
    ht_exchange_free(ex);
}

/* Content-Type says JSON but the body is a form: read it as a form. */
static void test_form_labelled_json(void)
{
    struct ht_exchange *ex = with_body("application/json", "a=1&password=x", 4096);
    ht_redact_exchange_with(&plain, ex);
    tap_ok(body_is(ex, "a=1&password=REDACTED") && listed(ex, "body:password"),
           "form body labelled application/json: its password is replaced");
    ht_exchange_free(ex);
    ex = with_body("application/json", "  {\"password\":\"x\"}", 4096);
    ht_redact_exchange_with(&plain, ex);
    tap_ok(body_is(ex, "  {\"password\":\"REDACTED\"}"), "a real JSON body is still read as JSON");
    ht_exchange_free(ex);
}

/* A UTF-8 byte order mark before the JSON (RFC 8259 8.1 lets a parser
 * ignore it), with and without a JSON content type. */
static void test_bom_json(void)
{
    static const char *const ctypes[] = { "application/json", "text/plain", NULL,
                                          "application/x-www-form-urlencoded" };
    for (size_t i = 0; i < sizeof(ctypes) / sizeof(ctypes[0]); i++) {
        struct ht_exchange *ex = with_body(ctypes[i], "\xef\xbb\xbf{\"password\":\"hunter2\"}", 4096);
        ht_redact_exchange_with(&plain, ex);
        tap_ok(body_is(ex, "\xef\xbb\xbf{\"password\":\"REDACTED\"}"),
               "BOM-prefixed JSON body (%s): its password is replaced",
               ctypes[i] ? ctypes[i] : "no content type");
        ht_exchange_free(ex);
    }
}

/* ---- pseudonyms ---- */

static void test_hmac(void)
{
    /* one secret in a header, a query, a form and a JSON string (escaped) */
    struct ht_exchange *ex = capture(
        "POST /p?token=abc%31%323 HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer abc123\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 38\r\n\r\n"
        "password=abc123&secret=abc124&a=abc123", OK);
    ht_redact_exchange_with(&keyed, ex);
    tap_ok(same(ex->req_head, ex->req_head_len,
                "POST /p?token=hmac:5f95b434d49566c0 HTTP/1.1\r\nHost: h\r\n"
                "Authorization: Bearer hmac:5f95b434d49566c0\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 38\r\n\r\n"),
           "hmac: equal secrets get equal pseudonyms (HMAC-SHA-256, first 16 hex digits), "
           "percent-decoded first");
    tap_ok(body_is(ex, "password=hmac:5f95b434d49566c0&secret=hmac:f8df07c3f7472c89&a=abc123"),
           "hmac: a different secret gets a different pseudonym");
    tap_ok(head_reparses(ex), "hmac: the head parses the same way");
    ht_exchange_free(ex);

    ex = with_body("application/json", "{\"password\":\"abc\\u0031\\u00323\"}", 4096);
    ht_redact_exchange_with(&keyed, ex);
    tap_ok(body_is(ex, "{\"password\":\"hmac:5f95b434d49566c0\"}"),
           "hmac: a JSON string is unescaped first");
    int again = ht_redact_exchange_with(&keyed, ex);
    tap_ok(again == 0 && body_is(ex, "{\"password\":\"hmac:5f95b434d49566c0\"}"),
           "hmac: a second call changes nothing");
    ht_exchange_free(ex);

    struct ht_redact_cfg other;
    char err[256];
    ht_redact_cfg_build(&other, NULL, NULL, NULL, "another-key-of-16-bytes", true, err,
                        sizeof(err));
    ex = with_body("application/json", "{\"password\":\"abc123\"}", 4096);
    ht_redact_exchange_with(&other, ex);
    if (!tap_ok(ex->req_body.len == strlen("{\"password\":\"hmac:5f95b434d49566c0\"}") &&
                !memmem(ex->req_body.buf, ex->req_body.len, "5f95b434d49566c0", 16),
                "hmac: another key gives other pseudonyms"))
        tap_diag("%.*s", (int)ex->req_body.len, (const char *)ex->req_body.buf);
    ht_exchange_free(ex);
}

/* ---- off, odd exchanges, configuration ---- */

static void test_off_and_odd(void)
{
    static const char req[] = "GET /?token=t HTTP/1.1\r\nHost: h\r\nCookie: a=b\r\n"
                              "Content-Type: application/json\r\nContent-Length: 16\r\n\r\n"
                              "{\"password\":\"p\"}";
    struct ht_exchange *ex = capture(req, OK);
    tap_ok(ht_redact_exchange_with(&disabled, ex) == 0 &&
           same(ex->req_head, ex->req_head_len, "GET /?token=t HTTP/1.1\r\nHost: h\r\n"
                "Cookie: a=b\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n") &&
           body_is(ex, "{\"password\":\"p\"}") && ht_redact_next(ex, NULL) == NULL,
           "off: a disabled configuration changes nothing and lists nothing");
    ht_exchange_free(ex);

    ex = ht_exchange_new();
    tap_ok(ht_redact_exchange_with(&plain, ex) == 0, "odd: an empty exchange (no heads, no body)");
    ht_exchange_free(ex);
    tap_ok(ht_redact_exchange(NULL) == 0 && ht_redact_exchange_with(&plain, NULL) == 0,
           "odd: NULL is fine");

    ex = capture("GET /?token=t HTTP/1.1\r\nHost: h\r\n\r\n", NULL);      /* no response */
    ht_redact_exchange_with(&plain, ex);
    tap_ok(ex->resp_head == NULL && head_reparses(ex), "odd: an exchange without a response");
    ht_exchange_free(ex);

    ex = ht_exchange_new();                 /* a response nobody asked for, with a body */
    static const char h[] = "HTTP/1.1 200 OK\r\nSet-Cookie: s=1\r\n\r\n";
    ht_head_copy(ex, &ex->resp_head, &ex->resp_head_len, (const uint8_t *)h, sizeof(h) - 1);
    ht_body_append(ex, &ex->resp_body, (const uint8_t *)"token=x", 7, 4096);
    ex->req_msg.target_off = 1000;          /* garbage offsets in a request never seen */
    ex->req_msg.target_len = 5;
    tap_ok(ht_redact_exchange_with(&plain, ex) == 1 &&
           same(ex->resp_head, ex->resp_head_len, "HTTP/1.1 200 OK\r\nSet-Cookie: s=REDACTED\r\n\r\n"),
           "odd: only a response head");
    ht_exchange_free(ex);

    /* more names than fit: the list stays bounded and says so */
    char body[4096];
    size_t o = (size_t)snprintf(body, sizeof(body), "{");
    for (int i = 0; i < 40; i++)
        o += (size_t)snprintf(body + o, sizeof(body) - o, "%s\"field_%02d_with_a_long_name_token\":1",
                              i ? "," : "", i);
    snprintf(body + o, sizeof(body) - o, "}");
    ex = with_body("application/json", body, 4096);
    int n = ht_redact_exchange_with(&plain, ex);
    int listed_n = 0;
    for (const char *p = ht_redact_next(ex, NULL); p; p = ht_redact_next(ex, p))
        listed_n++;
    tap_ok(n == 40 && ex->redacted.more && listed_n == ex->redacted.count && listed_n > 3,
           "odd: 40 fields redacted, %d listed, more set", listed_n);
    ht_exchange_free(ex);
}

/* Random JSON-ish bodies: no crash, no read past the excerpt (ASan). */
static void test_random_bodies(void)
{
    static const char alphabet[] = "{}[]\":,\\ u0apsword=&%tkn";
    unsigned seed = 12345;
    bool ok = true;
    for (int i = 0; i < 20000 && ok; i++) {
        struct ht_exchange *ex = ht_exchange_new();
        static const char h[] = "POST / HTTP/1.1\r\nContent-Type: application/json\r\n\r\n";
        static const char f[] = "POST / HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n";
        const char *head = i & 1 ? h : f;
        ht_head_copy(ex, &ex->req_head, &ex->req_head_len, (const uint8_t *)head, (uint32_t)strlen(head));
        size_t n = (seed = seed * 1103515245u + 12345u) >> 16 & 63;
        uint8_t *b = malloc(n ? n : 1);
        for (size_t k = 0; k < n; k++)
            b[k] = (uint8_t)alphabet[((seed = seed * 1103515245u + 12345u) >> 16) % (sizeof(alphabet) - 1)];
        ht_body_append(ex, &ex->req_body, b, n, (uint32_t)n);
        free(b);
        ok = ht_redact_exchange_with(i % 3 ? &plain : &keyed, ex) >= 0;
        ht_exchange_free(ex);
    }
    tap_ok(ok, "random: 20000 JSON-ish and form-ish bodies");
}

static void test_config(void)
{
    struct ht_config c;
    char err[512];
    ht_config_defaults(&c);
    tap_ok(c.redact && c.log_mode == 0600 && !c.allow_secure && !c.redact_key[0],
           "config: redaction on, log mode 0600, privileged processes not recorded by default");
    tap_ok(ht_config_set(&c, "HTTPTAPE_REDACT_HEADERS", "x y", err, sizeof(err)) == -EINVAL &&
           strstr(err, "HTTPTAPE_REDACT_HEADERS") && strstr(err, "'x y'") && strstr(err, "expected"),
           "config: a header name with a space is refused, naming the variable: %s", err);
    tap_ok(ht_config_set(&c, "HTTPTAPE_REDACT_QUERY", "a,,b ,", err, sizeof(err)) == 0 &&
           !strcmp(c.redact_query, "a,,b ,"), "config: empty entries are ignored");
    char many[512] = "";
    for (int i = 0; i < 33; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "n%d,", i);
    tap_ok(ht_config_set(&c, "HTTPTAPE_REDACT_FIELDS", many, err, sizeof(err)) == -EINVAL &&
           strstr(err, "too many"), "config: more than 32 names is refused");
    tap_ok(ht_config_set(&c, "HTTPTAPE_REDACT_KEY", "short-secret", err, sizeof(err)) == -EINVAL &&
           strstr(err, "HTTPTAPE_REDACT_KEY") && !strstr(err, "short-secret"),
           "config: a short key is refused without being printed: %s", err);
    tap_ok(ht_config_set(&c, "HTTPTAPE_REDACT_KEY", KEY, err, sizeof(err)) == 0 &&
           !strcmp(c.redact_key, KEY), "config: a 20-byte key is accepted");
    tap_ok(ht_config_set(&c, "HTTPTAPE_REDACT", "off", err, sizeof(err)) == 0 && !c.redact &&
           ht_config_set(&c, "HTTPTAPE_REDACT", "maybe", err, sizeof(err)) == -EINVAL &&
           strstr(err, "HTTPTAPE_REDACT:"), "config: HTTPTAPE_REDACT is a boolean");
    static const char *const good[] = { "0600", "600", "0640", "0644", "0660", "0664" };
    static const char *const bad[] = { "0666", "0700", "0400", "4600", "06400", "64", "0x180",
                                       "0689", "", "-600" };
    bool all = true;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        all &= ht_config_set(&c, "HTTPTAPE_LOG_MODE", good[i], err, sizeof(err)) == 0;
    tap_ok(all && c.log_mode == 0664, "config: HTTPTAPE_LOG_MODE accepts 0600 to 0664");
    all = true;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        all &= ht_config_set(&c, "HTTPTAPE_LOG_MODE", bad[i], err, sizeof(err)) == -EINVAL &&
               strstr(err, "HTTPTAPE_LOG_MODE") && strstr(err, "octal");
    tap_ok(all, "config: HTTPTAPE_LOG_MODE refuses modes others could write, execute bits, "
           "non-octal: %s", err);
    tap_ok(ht_config_set(&c, "HTTPTAPE_ALLOW_SECURE", "1", err, sizeof(err)) == 0 &&
           c.allow_secure && ht_config_set(&c, "HTTPTAPE_ALLOW_SECURE", "2", err, sizeof(err)),
           "config: HTTPTAPE_ALLOW_SECURE is a boolean");
    tap_ok(ht_redact_configure("bad name", NULL, NULL, NULL, true, err, sizeof(err)) &&
           ht_redact_enabled(), "config: a bad configuration leaves the one in force");
}

int main(void)
{
    char err[256];
    ht_redact_cfg_build(&plain, NULL, NULL, NULL, NULL, true, err, sizeof(err));
    ht_redact_cfg_build(&disabled, NULL, NULL, NULL, NULL, false, err, sizeof(err));
    if (ht_redact_cfg_build(&keyed, NULL, NULL, NULL, KEY, true, err, sizeof(err)))
        tap_diag("keyed: %s", err);
    test_headers();
    test_name_answers();
    test_query();
    test_json();
    test_form();
    test_semicolon_query();
    test_userinfo();
    test_form_labelled_json();
    test_bom_json();
    test_hmac();
    test_off_and_odd();
    test_random_bodies();
    test_config();
    return tap_done();
}
