/*
 * export_har.c - exchanges as one HAR 1.2 document.
 *
 * A HAR is one JSON object, so it is written in three parts: the opening
 * (log, version, creator, pages: [], "entries": [), each entry as its
 * record is read, and the closing; no entry is kept after it is written.
 *
 * Mapping (docs/cli.md has the table): timings from httptape.timing.*
 * (send = request_done, wait = response_start - request_done, receive =
 * response_done - response_start, in ms, negatives and unknowns as 0, as
 * strict validators want send/wait/receive >= 0); base64 response excerpts
 * get content.encoding "base64"; HAR has no encoding for request bodies,
 * so a base64 request excerpt gets the custom field postData._encoding
 * (HAR 1.2: custom fields start with '_'). The event's httptape object is
 * kept as the entry's _httptape. Single-threaded.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/export.h"
#include "cli/select.h"
#include "version.h"                /* generated: $(BUILD)/gen (mk/version.mk) */

/* ---- small pieces ------------------------------------------------------ */

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
           c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Form decoding ('+' is a space, %XX a byte) of s[0..n) into a new string. */
static json_t *form_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '+')
            out[k++] = ' ';
        else if (s[i] == '%' && i + 2 < n && (hi = hexval(s[i + 1])) >= 0 &&
                 (lo = hexval(s[i + 2])) >= 0) {
            out[k++] = (char)(hi << 4 | lo);
            i += 2;
        } else
            out[k++] = s[i];
    }
    json_t *v = json_stringn(out, k);   /* NULL when the bytes are not UTF-8 */
    if (!v)
        v = json_stringn(s, n);
    free(out);
    return v;
}

/* "a=1&b=2" as HAR's [{name, value}, ...] (queryString, postData.params). */
static json_t *pairs(const char *s)
{
    json_t *arr = json_array();
    for (const char *p = s; arr && p && *p;) {
        size_t n = strcspn(p, "&");
        const char *eq = memchr(p, '=', n);
        size_t kn = eq ? (size_t)(eq - p) : n;
        if (n > 0)
            json_array_append_new(arr, json_pack("{s:o*,s:o*}", "name", form_decode(p, kn),
                                                 "value", eq ? form_decode(eq + 1, n - kn - 1)
                                                             : json_string("")));
        p += n + (p[n] == '&');
    }
    return arr;
}

/* The event's {name: [values]} as HAR's [{name, value}, ...]. */
static json_t *headers(json_t *rec, const char *dir)
{
    json_t *fields = json_object_get(json_object_get(ht_json_path(rec, "http"), dir), "header");
    json_t *arr = json_array();
    const char *name;
    json_t *vals, *v;
    size_t i;
    json_object_foreach(fields, name, vals) {
        json_array_foreach(vals, i, v)
            json_array_append_new(arr, json_pack("{s:s,s:O}", "name", name, "value", v));
    }
    return arr;
}

static double ms(long long ns)
{
    return ns > 0 ? (double)ns / 1e6 : 0.0;
}

static long long timing(json_t *rec, const char *name)
{
    json_t *t = json_object_get(ht_json_path(rec, "httptape.timing"), name);
    return json_is_integer(t) ? (long long)json_integer_value(t) : -1;
}

static json_t *timings(json_t *rec, double *total)
{
    long long done = timing(rec, "request_done_ns");
    long long start = timing(rec, "response_start_ns");
    long long end = timing(rec, "response_done_ns");
    double send = ms(done);
    double wait = start >= 0 ? ms(start - (done > 0 ? done : 0)) : 0;
    double recv = start >= 0 && end >= 0 ? ms(end - start) : 0;
    *total = send + wait + recv;
    return json_pack("{s:f,s:f,s:f}", "send", send, "wait", wait, "receive", recv);
}

static const char *version(json_t *rec)
{
    const char *v = json_string_value(ht_json_path(rec, "network.protocol.version"));
    if (!v)
        return "";
    return !strcmp(v, "2") ? "HTTP/2.0" : !strcmp(v, "1.0") ? "HTTP/1.0" : "HTTP/1.1";
}

/* ---- request and response ---------------------------------------------------- */

static bool is_base64(json_t *body)
{
    const char *e = json_string_value(json_object_get(body, "encoding"));
    return e && !strcmp(e, "base64");
}

static json_t *post_data(json_t *rec, json_t *body)
{
    const char *type = ht_export_header(rec, "request", "content-type");
    json_t *text = json_object_get(body, "content");
    json_t *pd = json_pack("{s:s,s:s}", "mimeType", type ? type : "application/octet-stream",
                           "text", "");
    if (pd && text)
        json_object_set(pd, "text", text);
    if (pd && is_base64(body))
        json_object_set_new(pd, "_encoding", json_string("base64"));
    else if (pd && text && type && !strncmp(type, "application/x-www-form-urlencoded", 33))
        json_object_set_new(pd, "params", pairs(json_string_value(text)));
    return pd;
}

static json_t *request(json_t *rec)
{
    json_t *body = ht_json_path(rec, "http.request.body");
    json_t *size = json_object_get(body, "size");
    const char *method = json_string_value(ht_json_path(rec, "http.request.method"));
    const char *query = json_string_value(ht_json_path(rec, "url.query"));
    char *url = ht_export_url(rec);
    json_t *req = json_pack("{s:s,s:s*,s:s,s:[],s:o,s:o,s:i,s:I}",
                            "method", method ? method : "", "url", url,
                            "httpVersion", version(rec), "cookies", "headers",
                            headers(rec, "request"), "queryString", pairs(query),
                            "headersSize", -1,
                            "bodySize", (json_int_t)(json_is_integer(size) ? json_integer_value(size) : -1));
    free(url);
    if (req && (json_integer_value(size) > 0 || json_object_get(body, "content")))
        json_object_set_new(req, "postData", post_data(rec, body));
    return req;
}

static json_t *content(json_t *rec, json_t *body)
{
    const char *type = ht_export_header(rec, "response", "content-type");
    json_t *size = json_object_get(body, "size");
    json_t *decoded = json_object_get(body, "decoded_size");
    json_int_t n = json_integer_value(decoded ? decoded : size);
    json_t *c = json_pack("{s:I,s:s}", "size", n, "mimeType", type ? type : "");
    json_t *text = json_object_get(body, "content");
    if (c && text)
        json_object_set(c, "text", text);
    if (c && text && is_base64(body))
        json_object_set_new(c, "encoding", json_string("base64"));
    if (c && decoded)
        json_object_set_new(c, "compression", json_integer(json_integer_value(size) - n));
    return c;
}

static json_t *response(json_t *rec)
{
    json_t *resp = ht_json_path(rec, "http.response");
    json_t *body = json_object_get(resp, "body");
    json_t *size = json_object_get(body, "size");
    const char *loc = ht_export_header(rec, "response", "location");
    return json_pack("{s:I,s:s,s:s,s:[],s:o,s:o,s:s,s:i,s:I}",
                     "status", json_integer_value(json_object_get(resp, "status_code")),
                     "statusText", "", "httpVersion", resp ? version(rec) : "",
                     "cookies", "headers", headers(rec, "response"),
                     "content", content(rec, body), "redirectURL", loc ? loc : "",
                     "headersSize", -1,
                     "bodySize", (json_int_t)(json_is_integer(size) ? json_integer_value(size) : -1));
}

/* ---- the document ------------------------------------------------------------------ */

static int begin(struct ht_export *x)
{
    /* The version is git describe's: no character JSON must escape. */
    fputs("{\"log\":{\"version\":\"1.2\",\"creator\":{\"name\":\"httptape\",\"version\":\""
          HT_VERSION "\"},\"pages\":[],\"entries\":[", x->out);
    return ferror(x->out) ? -EIO : 0;
}

static void set_optional(json_t *e, json_t *rec)
{
    const char *ip = json_string_value(ht_json_path(rec, "network.local.address"));
    unsigned char addr[16];
    if (ip && (inet_pton(AF_INET, ip, addr) == 1 || inet_pton(AF_INET6, ip, addr) == 1))
        json_object_set_new(e, "serverIPAddress", json_string(ip));
    json_t *conn = ht_json_path(rec, "httptape.connection.id");
    if (json_is_string(conn))
        json_object_set(e, "connection", conn);
    json_t *ht = json_object_get(rec, "httptape");
    if (ht)
        json_object_set(e, "_httptape", ht);
}

static int entry(struct ht_export *x, json_t *rec)
{
    double total;
    json_t *t = timings(rec, &total);
    const char *ts = json_string_value(json_object_get(rec, "timestamp"));
    json_t *e = json_pack("{s:s,s:f,s:o,s:o,s:{},s:o}",
                          "startedDateTime", ts ? ts : "1970-01-01T00:00:00Z", "time", total,
                          "request", request(rec), "response", response(rec),
                          "cache", "timings", t);
    if (e)
        set_optional(e, rec);
    fputs(x->entries ? ",\n" : "\n", x->out);
    int rc = ht_export_dump(x, e);
    json_decref(e);
    return rc;
}

static int end(struct ht_export *x)
{
    fputs("\n]}}\n", x->out);
    return ferror(x->out) ? -EIO : 0;
}

const struct ht_export_format ht_export_har = { "har", begin, entry, end };
