/*
 * event.c - exchange and statistics records (event.h), written with the
 * streaming writer in jsonw.c: formatting is the writer thread's main cost,
 * so no intermediate tree is built (jansson took ~10 us per event; this
 * path ~1 us). Output is checked against jansson in the tests and the
 * fuzzer.
 *
 * Heads arrive raw; the fields are split out here, off the app's thread.
 * The parser has already validated the head, so this walk only needs to
 * find lines, names and values (and unfold obs-fold continuations).
 */
#include "core/event.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/fields.h"
#include "core/jsonw.h"
#include "core/redact.h"
#include "core/stats.h"
#include "core/text.h"

/* ---- heads ---- */

static bool ows(uint8_t c) { return c == ' ' || c == '\t'; }

/* A field of the head being written, as fields.h found it. */
struct field {
    const uint8_t *name;
    size_t nlen;
    const uint8_t *val;         /* first line's value */
    size_t vlen;
    size_t fold_from, fold_to;  /* continuation lines, head offsets */
    bool done;
};

static bool name_eq(const struct field *a, const struct field *b)
{
    if (a->nlen != b->nlen)
        return false;
    for (size_t i = 0; i < a->nlen; i++) {
        uint8_t x = a->name[i], y = b->name[i];
        if ((x | 0x20) != (y | 0x20) || ((x ^ y) & ~0x20))
            return false;
    }
    return true;
}

static void trim(const uint8_t **p, size_t *n)
{
    while (*n && ows((*p)[0])) { (*p)++; (*n)--; }
    while (*n && ows((*p)[*n - 1])) (*n)--;
}

/* One value: as is, or joined with its obs-fold continuations by SP. */
static void write_value(struct ht_jw *w, const uint8_t *h, size_t hn, const struct field *f)
{
    if (f->fold_from == f->fold_to) {
        ht_jw_str_bytes(w, NULL, f->val, f->vlen);
        return;
    }
    struct ht_buf j = { 0 };
    ht_buf_append(&j, f->val, f->vlen);
    for (size_t pos = f->fold_from; pos < f->fold_to;) {
        size_t cs, ce;
        ht_fields_line(h, hn, &pos, &cs, &ce);
        const uint8_t *cp = h + cs;
        size_t cn = ce - cs;
        trim(&cp, &cn);
        ht_buf_append(&j, " ", 1);
        ht_buf_append(&j, cp, cn);
    }
    const uint8_t *v = (const uint8_t *)j.p;
    size_t vn = j.len;
    trim(&v, &vn);
    ht_jw_str_bytes(w, NULL, v, vn);
    ht_buf_free(&j);
}

/* `"<lowercase name>":[`, the whole name however long it is (the head cap
 * bounds it): a cut name would make two long names that share a prefix the
 * same key, and JSON readers keep only one of them. */
static void open_name_array(struct ht_jw *w, const struct field *f)
{
    char low[256];
    ht_jw_member(w, NULL);
    ht_jw_putc(w, '"');
    for (size_t at = 0; at < f->nlen; at += sizeof(low)) {
        size_t kn = f->nlen - at < sizeof(low) ? f->nlen - at : sizeof(low);
        for (size_t k = 0; k < kn; k++) {
            char c = (char)f->name[at + k];
            low[k] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
        }
        ht_jw_put(w, low, kn);
    }
    ht_jw_put(w, "\":", 2);
    ht_jw_push(w, '[');
}

/* "header": { "<lowercase name>": [values in arrival order], ... } with
 * names in order of first appearance. */
static void write_header(struct ht_jw *w, const uint8_t *h, size_t n)
{
    struct field stack[64], *f = stack;
    size_t nf = 0, cap = sizeof(stack) / sizeof(stack[0]);
    size_t pos = ht_fields_start(h, n);
    struct ht_field hf;

    while (ht_fields_next(h, n, &pos, &hf)) {
        if (nf == cap) {
            struct field *nfp = malloc(2 * cap * sizeof(*nfp));
            if (!nfp)
                break;
            memcpy(nfp, f, nf * sizeof(*f));
            if (f != stack)
                free(f);
            f = nfp;
            cap *= 2;
        }
        f[nf++] = (struct field){ .name = h + hf.name, .nlen = hf.name_len, .val = h + hf.value,
                                  .vlen = hf.value_end - hf.value, .fold_from = hf.fold_from,
                                  .fold_to = hf.fold_to };
    }

    ht_jw_open(w, "header");
    for (size_t i = 0; i < nf; i++) {
        if (f[i].done)
            continue;
        open_name_array(w, &f[i]);
        for (size_t j = i; j < nf; j++) {
            if (j != i && (f[j].done || !name_eq(&f[i], &f[j])))
                continue;
            write_value(w, h, n, &f[j]);
            f[j].done = true;
        }
        ht_jw_close_array(w);
    }
    ht_jw_close(w);
    if (f != stack)
        free(f);
}

/* ---- bodies ---- */

static void write_body(struct ht_jw *w, const struct ht_body *b)
{
    ht_jw_open(w, "body");
    ht_jw_u64(w, "size", b->size);
    if (b->len) {
        size_t n = b->truncated ? ht_utf8_trim_partial(b->buf, b->len) : b->len;
        if (ht_utf8_valid(b->buf, n)) {
            ht_jw_begin_string(w, "content");
            ht_jw_raw_escaped(w, b->buf, n);
            ht_jw_end_string(w);
        } else {
            char *enc = malloc(ht_base64_len(b->len) + 1);
            if (enc) {
                size_t m = ht_base64_encode(b->buf, b->len, enc);
                ht_jw_str(w, "content", enc, m);
                ht_jw_cstr(w, "encoding", "base64");
                free(enc);
            } else {
                w->err = -ENOMEM;
            }
        }
    }
    if (b->truncated)
        ht_jw_bool(w, "truncated", true);
    if (b->source == HT_SRC_SENDFILE)
        ht_jw_cstr(w, "source", "sendfile");
    else if (b->source == HT_SRC_SPLICE)
        ht_jw_cstr(w, "source", "splice");
    ht_jw_close(w);
}

/* ---- url ---- */

/* url.path / url.query from origin-form, absolute-form or asterisk-form;
 * authority-form (CONNECT) has neither. */
static void write_url(struct ht_jw *w, const uint8_t *t, size_t n, bool connect)
{
    const uint8_t *hash = memchr(t, '#', n);
    if (hash)
        n = (size_t)(hash - t);     /* fragment_in_target: not logged (docs/events.md) */
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
    ht_jw_open(w, "url");
    if (plen)
        ht_jw_str_bytes(w, "path", path, plen);
    else
        ht_jw_cstr(w, "path", "/");
    if (q)
        ht_jw_str_bytes(w, "query", q + 1, qlen);
    ht_jw_close(w);
}

/* ---- records ---- */

static void write_names(struct ht_jw *w, const char *key, uint32_t bits,
                        const char *(*name)(uint32_t))
{
    ht_jw_open_array(w, key);
    for (unsigned i = 0; i < 32; i++)
        if (bits & (1u << i)) {
            const char *s = name(1u << i);
            if (s)
                ht_jw_cstr(w, NULL, s);
        }
    ht_jw_close_array(w);
}

static void write_endpoint(struct ht_jw *w, const char *key, const char *addr, int port)
{
    if (!addr[0])
        return;
    ht_jw_open(w, key);
    ht_jw_cstr(w, "address", addr);
    if (port >= 0)
        ht_jw_i64(w, "port", port);
    ht_jw_close(w);
}

static void write_timing(struct ht_jw *w, const struct ht_exchange *ex)
{
    ht_jw_open(w, "timing");
    if (ex->mono_req_done)
        ht_jw_i64(w, "request_done_ns", ex->mono_req_done - ex->mono_start);
    if (ex->mono_resp_start)
        ht_jw_i64(w, "response_start_ns", ex->mono_resp_start - ex->mono_start);
    if (ex->mono_resp_done)
        ht_jw_i64(w, "response_done_ns", ex->mono_resp_done - ex->mono_start);
    ht_jw_close(w);
    if (ex->mono_resp_done)
        ht_jw_i64(w, "duration_ns", ex->mono_resp_done - ex->mono_start);
}

static void write_exchange(struct ht_jw *w, const struct ht_exchange *ex)
{
    char ts[HT_RFC3339_LEN];
    const struct ht_msg *rq = &ex->req_msg;

    ht_jw_open(w, NULL);
    ht_rfc3339_ns(ex->wall_ns, ts);
    ht_jw_cstr(w, "timestamp", ts);

    ht_jw_open(w, "http");
    if (ex->req_head_done) {
        ht_jw_open(w, "request");
        ht_jw_str_bytes(w, "method", ex->req_head, rq->method_len);
        write_header(w, ex->req_head, ex->req_head_len);
        write_body(w, &ex->req_body);
        ht_jw_close(w);
    }
    if (ex->resp_head_done) {
        ht_jw_open(w, "response");
        ht_jw_u64(w, "status_code", ex->resp_msg.status);
        write_header(w, ex->resp_head, ex->resp_head_len);
        write_body(w, &ex->resp_body);
        ht_jw_close(w);
    }
    ht_jw_close(w);

    if (ex->req_head_done)
        write_url(w, ex->req_head + rq->target_off, rq->target_len, rq->req_flags & HT_REQF_CONNECT);

    ht_jw_open(w, "network");
    if (ex->ep.transport)
        ht_jw_cstr(w, "transport", ex->ep.transport);
    if (ex->req_head_done || ex->resp_head_done) {
        char ver[4] = { '1', '.', (char)('0' + (ex->req_head_done ? rq : &ex->resp_msg)->version_minor), 0 };
        ht_jw_open(w, "protocol");
        ht_jw_cstr(w, "version", ver);
        ht_jw_close(w);
    }
    write_endpoint(w, "peer", ex->ep.peer_addr, ex->ep.peer_port);
    write_endpoint(w, "local", ex->ep.local_addr, ex->ep.local_port);
    ht_jw_close(w);

    if (ex->pid > 0) {
        ht_jw_open(w, "process");
        ht_jw_i64(w, "pid", ex->pid);
        ht_jw_close(w);
    }

    ht_jw_open(w, "httptape");
    ht_jw_cstr(w, "type", "exchange");
    ht_jw_cstr(w, "mode", ex->mode ? ex->mode : "unknown");
    ht_jw_open(w, "connection");
    ht_jw_cstr(w, "id", ex->conn_id);
    ht_jw_u64(w, "request_index", ex->request_index);
    if (ex->conn_joined)
        ht_jw_bool(w, "joined", true);
    ht_jw_close(w);
    write_timing(w, ex);
    ht_jw_bool(w, "complete", ht_exchange_complete(ex));
    if (ex->gaps)
        write_names(w, "gaps", ex->gaps, ht_gap_name);
    uint32_t an = ex->req_msg.anomalies | ex->resp_msg.anomalies;
    if (an)
        write_names(w, "anomalies", an, ht_anomaly_name);
    if (ex->n_interim) {
        ht_jw_open_array(w, "interim_status_codes");
        for (unsigned i = 0; i < ex->n_interim; i++)
            ht_jw_u64(w, NULL, ex->interim[i]);
        ht_jw_close_array(w);
    }
    if (ex->redacted.count) {
        ht_jw_open_array(w, "redacted");
        for (const char *p = ht_redact_next(ex, NULL); p; p = ht_redact_next(ex, p))
            ht_jw_cstr(w, NULL, p);
        ht_jw_close_array(w);
    }
    ht_jw_close(w);
    ht_jw_close(w);
}

/* Finish a record: newline, or roll back to mark so no half line stays. */
static int finish_line(struct ht_jw *w, struct ht_buf *out, size_t mark)
{
    if (!w->err && ht_buf_append(out, "\n", 1))
        w->err = -ENOMEM;
    if (w->err)
        out->len = mark;
    return w->err;
}

int ht_event_format(struct ht_exchange *ex, struct ht_buf *out)
{
    struct ht_jw w;
    size_t mark = out->len;
    /* Secrets are replaced before a single byte of the record exists, on
     * whichever thread formats it, for every front end. */
    ht_redact_exchange(ex);
    ht_jw_init(&w, out);
    write_exchange(&w, ex);
    return finish_line(&w, out, mark);
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
    r->connections_unseen_stdio = HT_STAT_GET(connections_unseen_stdio);
    r->connections_unseen_io_uring = HT_STAT_GET(connections_unseen_io_uring);
    r->exchanges_seen = HT_STAT_GET(exchanges_seen);
    r->exchanges_written = HT_STAT_GET(exchanges_written);
    r->dropped_queue_full = HT_STAT_GET(dropped_queue_full);
    r->dropped_write_error = HT_STAT_GET(dropped_write_error);
    r->dropped_no_memory = HT_STAT_GET(dropped_no_memory);
    r->dropped_pipeline = HT_STAT_GET(dropped_pipeline);
    r->dropped_unparsed = HT_STAT_GET(dropped_unparsed);
    r->dropped = r->dropped_queue_full + r->dropped_write_error + r->dropped_no_memory +
                 r->dropped_pipeline + r->dropped_unparsed;
    r->parse_errors = HT_STAT_GET(parse_errors);
    r->capture_gaps = HT_STAT_GET(capture_gaps);
    r->bytes_received = HT_STAT_GET(bytes_received);
    r->bytes_sent = HT_STAT_GET(bytes_sent);
    r->records_lost = HT_STAT_GET(records_lost);
    r->record_bytes_lost = HT_STAT_GET(record_bytes_lost);
}

int ht_event_format_stats(const struct ht_stats_record *r, struct ht_buf *out)
{
    struct ht_jw w;
    size_t mark = out->len;
    char ts[HT_RFC3339_LEN];

    ht_jw_init(&w, out);
    ht_jw_open(&w, NULL);
    ht_rfc3339_ns(r->wall_ns, ts);
    ht_jw_cstr(&w, "timestamp", ts);
    ht_jw_open(&w, "process");
    ht_jw_i64(&w, "pid", r->pid);
    ht_jw_close(&w);
    ht_jw_open(&w, "httptape");
    ht_jw_cstr(&w, "type", "stats");
    ht_jw_cstr(&w, "mode", r->mode ? r->mode : "unknown");
    ht_jw_bool(&w, "final", r->final);
    ht_jw_open(&w, "stats");
    ht_jw_u64(&w, "connections", r->connections);
    ht_jw_u64(&w, "connections_unseen",
              r->connections_unseen_stdio + r->connections_unseen_io_uring);
    ht_jw_u64(&w, "connections_unseen_stdio", r->connections_unseen_stdio);
    ht_jw_u64(&w, "connections_unseen_io_uring", r->connections_unseen_io_uring);
    ht_jw_u64(&w, "exchanges_seen", r->exchanges_seen);
    ht_jw_u64(&w, "exchanges_written", r->exchanges_written);
    ht_jw_u64(&w, "exchanges_dropped", r->dropped);
    ht_jw_u64(&w, "dropped_queue_full", r->dropped_queue_full);
    ht_jw_u64(&w, "dropped_write_error", r->dropped_write_error);
    ht_jw_u64(&w, "dropped_no_memory", r->dropped_no_memory);
    ht_jw_u64(&w, "dropped_pipeline", r->dropped_pipeline);
    ht_jw_u64(&w, "dropped_unparsed", r->dropped_unparsed);
    ht_jw_u64(&w, "parse_errors", r->parse_errors);
    ht_jw_u64(&w, "capture_gaps", r->capture_gaps);
    ht_jw_u64(&w, "bytes_received", r->bytes_received);
    ht_jw_u64(&w, "bytes_sent", r->bytes_sent);
    ht_jw_u64(&w, "records_lost", r->records_lost);
    ht_jw_u64(&w, "record_bytes_lost", r->record_bytes_lost);
    ht_jw_close(&w);
    ht_jw_close(&w);
    ht_jw_close(&w);
    return finish_line(&w, out, mark);
}
