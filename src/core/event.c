/*
 * event.c - exchange and statistics records, built with jansson (event.h).
 *
 * Heads arrive raw; the fields are split out here, off the app's thread.
 * The parser has already validated the head, so this walk only needs to
 * find lines, names and values (and unfold obs-fold continuations).
 */
#include "core/event.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/stats.h"
#include "core/text.h"

/* A JSON string from arbitrary bytes: as is when valid UTF-8, otherwise
 * read as Latin-1 (header values may carry obs-text). */
static json_t *bytes_string(const uint8_t *s, size_t n)
{
    if (ht_utf8_valid(s, n))
        return json_stringn((const char *)s, n);
    char *tmp = malloc(2 * n + 1);
    if (!tmp)
        return NULL;
    size_t m = ht_latin1_to_utf8(s, n, tmp);
    json_t *j = json_stringn(tmp, m);
    free(tmp);
    return j;
}

/* Get (or create) the object at key inside parent. */
static json_t *obj(json_t *parent, const char *key)
{
    json_t *o = json_object_get(parent, key);
    if (!o) {
        o = json_object();
        json_object_set_new(parent, key, o);
    }
    return o;
}

static void set_u64(json_t *o, const char *key, uint64_t v)
{
    json_object_set_new(o, key, json_integer((json_int_t)v));
}

/* ---- heads ---- */

struct line { const uint8_t *p; size_t n; };

static struct line head_line(const uint8_t *h, size_t n, size_t *pos)
{
    size_t start = *pos;
    const uint8_t *lf = memchr(h + start, '\n', n - start);
    size_t end = lf ? (size_t)(lf - h) : n;
    *pos = end + 1;
    if (end > start && h[end - 1] == '\r')
        end--;
    return (struct line){ h + start, end - start };
}

static bool ows(uint8_t c) { return c == ' ' || c == '\t'; }

/* Add value to headers[lowercase(name)] (an array, in arrival order). */
static void add_header(json_t *headers, const uint8_t *name, size_t nlen,
                       const uint8_t *val, size_t vlen)
{
    char key[256];
    if (nlen >= sizeof(key))
        nlen = sizeof(key) - 1;
    for (size_t i = 0; i < nlen; i++) {
        char c = (char)name[i];
        key[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    key[nlen] = 0;
    json_t *arr = json_object_get(headers, key);
    if (!arr) {
        arr = json_array();
        json_object_set_new(headers, key, arr);
    }
    json_t *v = bytes_string(val, vlen);
    if (v)
        json_array_append_new(arr, v);
}

/* Walk the field lines of a raw head into a header object. */
static json_t *head_fields(const uint8_t *h, size_t n)
{
    json_t *headers = json_object();
    size_t pos = 0;
    head_line(h, n, &pos);                      /* start line */
    while (pos < n) {
        struct line l = head_line(h, n, &pos);
        if (l.n == 0)
            break;
        const uint8_t *colon = memchr(l.p, ':', l.n);
        if (!colon)
            continue;
        size_t nlen = (size_t)(colon - l.p);
        while (nlen && ows(l.p[nlen - 1]))
            nlen--;                             /* "Name :" (flagged already) */
        const uint8_t *v = colon + 1;
        size_t vlen = l.n - (size_t)(v - l.p);

        /* Unfold continuation lines into one value joined by SP. */
        uint8_t *joined = NULL;
        size_t jlen = 0;
        while (pos < n && ows(h[pos])) {
            struct line c = head_line(h, n, &pos);
            uint8_t *nj = realloc(joined, (joined ? jlen : vlen) + c.n + 1);
            if (!nj)
                break;
            if (!joined) {
                memcpy(nj, v, vlen);
                jlen = vlen;
            }
            joined = nj;
            joined[jlen++] = ' ';
            memcpy(joined + jlen, c.p, c.n);
            jlen += c.n;
        }
        if (joined) {
            v = joined;
            vlen = jlen;
        }
        while (vlen && ows(v[0])) { v++; vlen--; }
        while (vlen && ows(v[vlen - 1])) vlen--;
        add_header(headers, l.p, nlen, v, vlen);
        free(joined);
    }
    return headers;
}

/* ---- bodies ---- */

static json_t *body_object(const struct ht_body *b)
{
    json_t *o = json_object();
    set_u64(o, "size", b->size);
    if (b->len) {
        size_t n = b->truncated ? ht_utf8_trim_partial(b->buf, b->len) : b->len;
        if (ht_utf8_valid(b->buf, n)) {
            json_object_set_new(o, "content", json_stringn((const char *)b->buf, n));
        } else {
            char *enc = malloc(ht_base64_len(b->len) + 1);
            if (enc) {
                size_t m = ht_base64_encode(b->buf, b->len, enc);
                json_object_set_new(o, "content", json_stringn(enc, m));
                json_object_set_new(o, "encoding", json_string("base64"));
                free(enc);
            }
        }
    }
    if (b->truncated)
        json_object_set_new(o, "truncated", json_true());
    if (b->source == HT_SRC_SENDFILE)
        json_object_set_new(o, "source", json_string("sendfile"));
    else if (b->source == HT_SRC_SPLICE)
        json_object_set_new(o, "source", json_string("splice"));
    return o;
}

/* ---- url ---- */

/* url.path / url.query from origin-form, absolute-form or asterisk-form;
 * authority-form (CONNECT) has neither. */
static void url_fields(json_t *root, const uint8_t *t, size_t n, bool connect)
{
    if (connect || n == 0)
        return;
    const uint8_t *path = t;
    size_t plen = n;
    const uint8_t *scheme_end = n > 3 ? memchr(t, ':', n) : NULL;
    if (t[0] != '/' && t[0] != '*' && scheme_end && (size_t)(scheme_end - t) + 3 <= n &&
        scheme_end[1] == '/' && scheme_end[2] == '/') {
        const uint8_t *auth = scheme_end + 3;
        size_t rest = n - (size_t)(auth - t);
        size_t k = 0;
        while (k < rest && auth[k] != '/' && auth[k] != '?')
            k++;
        path = auth + k;
        plen = rest - k;
    }
    const uint8_t *q = memchr(path, '?', plen);
    size_t qlen = 0;
    if (q) {
        qlen = plen - (size_t)(q - path) - 1;
        plen = (size_t)(q - path);
    }
    json_t *url = obj(root, "url");
    json_object_set_new(url, "path", plen ? bytes_string(path, plen) : json_string("/"));
    if (q)
        json_object_set_new(url, "query", bytes_string(q + 1, qlen));
}

/* ---- records ---- */

static json_t *string_list(uint32_t bits, const char *(*name)(uint32_t))
{
    json_t *a = json_array();
    for (unsigned i = 0; i < 32; i++)
        if (bits & (1u << i)) {
            const char *s = name(1u << i);
            if (s)
                json_array_append_new(a, json_string(s));
        }
    return a;
}

static void set_endpoint(json_t *net, const char *key, const char *addr, int port)
{
    if (!addr[0])
        return;
    json_t *o = obj(net, key);
    json_object_set_new(o, "address", json_string(addr));
    if (port >= 0)
        json_object_set_new(o, "port", json_integer(port));
}

static void request_fields(json_t *root, json_t *http, const struct ht_exchange *ex)
{
    const struct ht_msg *m = &ex->req_msg;
    json_t *req = obj(http, "request");
    json_object_set_new(req, "method", bytes_string(ex->req_head, m->method_len));
    url_fields(root, ex->req_head + m->target_off, m->target_len,
               m->req_flags & HT_REQF_CONNECT);
    json_object_set_new(req, "header", head_fields(ex->req_head, ex->req_head_len));
    json_object_set_new(req, "body", body_object(&ex->req_body));
}

static void response_fields(json_t *http, const struct ht_exchange *ex)
{
    json_t *resp = obj(http, "response");
    json_object_set_new(resp, "status_code", json_integer(ex->resp_msg.status));
    json_object_set_new(resp, "header", head_fields(ex->resp_head, ex->resp_head_len));
    json_object_set_new(resp, "body", body_object(&ex->resp_body));
}

static void timing_fields(json_t *tape, const struct ht_exchange *ex)
{
    json_t *t = obj(tape, "timing");
    if (ex->mono_req_done)
        set_u64(t, "request_done_ns", (uint64_t)(ex->mono_req_done - ex->mono_start));
    if (ex->mono_resp_start)
        set_u64(t, "response_start_ns", (uint64_t)(ex->mono_resp_start - ex->mono_start));
    if (ex->mono_resp_done) {
        uint64_t d = (uint64_t)(ex->mono_resp_done - ex->mono_start);
        set_u64(t, "response_done_ns", d);
        set_u64(tape, "duration_ns", d);
    }
}

static json_t *exchange_json(const struct ht_exchange *ex)
{
    json_t *root = json_object();
    char ts[HT_RFC3339_LEN];
    ht_rfc3339_ns(ex->wall_ns, ts);
    json_object_set_new(root, "timestamp", json_string(ts));

    json_t *http = obj(root, "http");
    if (ex->req_head_done)
        request_fields(root, http, ex);
    if (ex->resp_head_done)
        response_fields(http, ex);

    json_t *net = obj(root, "network");
    if (ex->ep.transport)
        json_object_set_new(net, "transport", json_string(ex->ep.transport));
    const struct ht_msg *vm = ex->req_head_done ? &ex->req_msg : &ex->resp_msg;
    if (ex->req_head_done || ex->resp_head_done) {
        char ver[8];
        snprintf(ver, sizeof(ver), "1.%u", vm->version_minor);
        json_object_set_new(obj(net, "protocol"), "version", json_string(ver));
    }
    set_endpoint(net, "peer", ex->ep.peer_addr, ex->ep.peer_port);
    set_endpoint(net, "local", ex->ep.local_addr, ex->ep.local_port);

    if (ex->pid > 0)
        json_object_set_new(obj(root, "process"), "pid", json_integer(ex->pid));

    json_t *tape = obj(root, "httptape");
    json_object_set_new(tape, "type", json_string("exchange"));
    json_object_set_new(tape, "mode", json_string(ex->mode ? ex->mode : "unknown"));
    json_t *c = obj(tape, "connection");
    json_object_set_new(c, "id", json_string(ex->conn_id));
    set_u64(c, "request_index", ex->request_index);
    timing_fields(tape, ex);
    json_object_set_new(tape, "complete", json_boolean(ht_exchange_complete(ex)));
    if (ex->gaps)
        json_object_set_new(tape, "gaps", string_list(ex->gaps, ht_gap_name));
    uint32_t an = ex->req_msg.anomalies | ex->resp_msg.anomalies;
    if (an)
        json_object_set_new(tape, "anomalies", string_list(an, ht_anomaly_name));
    if (ex->n_interim) {
        json_t *a = json_array();
        for (unsigned i = 0; i < ex->n_interim; i++)
            json_array_append_new(a, json_integer(ex->interim[i]));
        json_object_set_new(tape, "interim_status_codes", a);
    }
    return root;
}

static int dump_cb(const char *buffer, size_t size, void *data)
{
    return ht_buf_append(data, buffer, size) ? -1 : 0;
}

static int dump_line(json_t *root, struct ht_buf *out)
{
    size_t mark = out->len;
    int rc = 0;
    if (!root)
        return -ENOMEM;
    if (json_dump_callback(root, dump_cb, out, JSON_COMPACT) || ht_buf_append(out, "\n", 1)) {
        out->len = mark;            /* never leave half a line */
        rc = -ENOMEM;
    }
    json_decref(root);
    return rc;
}

int ht_event_format(const struct ht_exchange *ex, struct ht_buf *out)
{
    return dump_line(exchange_json(ex), out);
}

void ht_stats_record_take(struct ht_stats_record *r, int64_t wall_ns, int pid,
                          const char *mode, bool final)
{
    memset(r, 0, sizeof(*r));
    r->wall_ns = wall_ns;
    r->pid = pid;
    r->mode = mode;
    r->final = final;
    r->connections = HT_STAT_GET(connections);
    r->exchanges_seen = HT_STAT_GET(exchanges_seen);
    r->exchanges_written = HT_STAT_GET(exchanges_written);
    r->dropped_queue_full = HT_STAT_GET(dropped_queue_full);
    r->dropped_write_error = HT_STAT_GET(dropped_write_error);
    r->dropped_no_memory = HT_STAT_GET(dropped_no_memory);
    r->dropped_pipeline = HT_STAT_GET(dropped_pipeline);
    r->dropped_unparsed = HT_STAT_GET(dropped_unparsed);
    r->parse_errors = HT_STAT_GET(parse_errors);
    r->capture_gaps = HT_STAT_GET(capture_gaps);
    r->bytes_received = HT_STAT_GET(bytes_received);
    r->bytes_sent = HT_STAT_GET(bytes_sent);
}

int ht_event_format_stats(const struct ht_stats_record *r, struct ht_buf *out)
{
    json_t *root = json_object();
    char ts[HT_RFC3339_LEN];
    ht_rfc3339_ns(r->wall_ns, ts);
    json_object_set_new(root, "timestamp", json_string(ts));
    json_object_set_new(obj(root, "process"), "pid", json_integer(r->pid));
    json_t *tape = obj(root, "httptape");
    json_object_set_new(tape, "type", json_string("stats"));
    json_object_set_new(tape, "mode", json_string(r->mode ? r->mode : "unknown"));
    json_object_set_new(tape, "final", json_boolean(r->final));
    json_t *s = obj(tape, "stats");
    uint64_t dropped = r->dropped_queue_full + r->dropped_write_error + r->dropped_no_memory +
                       r->dropped_pipeline + r->dropped_unparsed;
    set_u64(s, "connections", r->connections);
    set_u64(s, "exchanges_seen", r->exchanges_seen);
    set_u64(s, "exchanges_written", r->exchanges_written);
    set_u64(s, "exchanges_dropped", dropped);
    set_u64(s, "dropped_queue_full", r->dropped_queue_full);
    set_u64(s, "dropped_write_error", r->dropped_write_error);
    set_u64(s, "dropped_no_memory", r->dropped_no_memory);
    set_u64(s, "dropped_pipeline", r->dropped_pipeline);
    set_u64(s, "dropped_unparsed", r->dropped_unparsed);
    set_u64(s, "parse_errors", r->parse_errors);
    set_u64(s, "capture_gaps", r->capture_gaps);
    set_u64(s, "bytes_received", r->bytes_received);
    set_u64(s, "bytes_sent", r->bytes_sent);
    return dump_line(root, out);
}
