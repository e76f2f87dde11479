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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/decode.h"
#include "core/fields.h"
#include "core/h2.h"
#include "core/jsonw.h"
#include "core/multipart.h"
#include "core/redact.h"
#include "core/rules.h"
#include "core/stats.h"
#include "core/swar.h"
#include "core/ws.h"
#include "core/text.h"

/* ---- heads ---- */

static bool ows(uint8_t c) { return c == ' ' || c == '\t'; }

/* Names equal but for ASCII case. */
static bool name_eq(const uint8_t *h, const struct ht_field_at *a, const struct ht_field_at *b)
{
    if (a->name_len != b->name_len)
        return false;
    for (size_t i = 0; i < a->name_len; i++)
        if (ht_ascii_lower(h[a->name + i]) != ht_ascii_lower(h[b->name + i]))
            return false;
    return true;
}

static void trim(const uint8_t **p, size_t *n)
{
    while (*n && ows((*p)[0])) { (*p)++; (*n)--; }
    while (*n && ows((*p)[*n - 1])) (*n)--;
}

/* One value, the inside of its string: as is, or joined with its obs-fold
 * continuations by SP. */
static void write_value(struct ht_jw *w, const uint8_t *h, size_t hn, const struct ht_field_at *f)
{
    if (f->fold_from == f->fold_to) {
        ht_jw_raw_bytes(w, h + f->value, f->value_end - f->value);
        return;
    }
    struct ht_buf j = { 0 };
    int err = ht_buf_append(&j, h + f->value, f->value_end - f->value);
    for (size_t pos = f->fold_from; pos < f->fold_to && !err;) {
        size_t cs, ce;
        ht_fields_line(h, hn, &pos, &cs, &ce);
        const uint8_t *cp = h + cs;
        size_t cn = ce - cs;
        trim(&cp, &cn);
        err = ht_buf_append(&j, " ", 1) || ht_buf_append(&j, cp, cn);
    }
    if (err) {
        /* A value cut short would be a quiet lie: the record is dropped
         * and counted (dropped_no_memory). */
        w->err = -ENOMEM;
        ht_buf_free(&j);
        return;
    }
    const uint8_t *v = (const uint8_t *)j.p;
    size_t vn = j.len;
    trim(&v, &vn);
    ht_jw_raw_bytes(w, v, vn);
    ht_buf_free(&j);
}

/* The ASCII lowercase of s[0..n) at dst, eight bytes at a time where the
 * head (ending at end) has them; dst has room for n + 8 bytes. */
static void lower_into(char *dst, const uint8_t *s, size_t n, const uint8_t *end)
{
    size_t i = 0;
    for (; i < n && (size_t)(end - s) - i >= 8; i += 8) {
        uint64_t v;
        memcpy(&v, s + i, 8);
        v = ht_swar_lower(v);
        memcpy(dst + i, &v, 8);
    }
    for (; i < n; i++)
        dst[i] = (char)ht_ascii_lower(s[i]);
}

/* `"<lowercase name>":["`, the whole name however long it is (the head cap
 * bounds it): a cut name would make two long names that share a prefix the
 * same key, and JSON readers keep only one of them. Written straight into
 * the buffer; the array is closed by `"]` (write_fields). */
static void open_name_array(struct ht_jw *w, const uint8_t *h, size_t hn,
                            const struct ht_field_at *f)
{
    ht_jw_member(w, NULL);
    char *o = ht_jw_room(w, f->name_len + 16);
    if (!o)
        return;
    o[0] = '"';
    lower_into(o + 1, h + f->name, f->name_len, h + hn);
    memcpy(o + 1 + f->name_len, "\":[\"", 4);
    ht_jw_wrote(w, f->name_len + 5);
}

/* Length, first and last letter of a field's name: equal names (but for
 * case) have equal keys. */
static uint32_t name_key(const uint8_t *h, const struct ht_field_at *f)
{
    const uint8_t *nm = h + f->name;
    uint32_t nl = f->name_len;
    return nl ? nl << 16 | (uint32_t)(nm[0] | 0x20) << 8 | (nm[nl - 1] | 0x20) : 0;
}

/* A field written with an earlier one of its name: no name's key, as
 * names are tokens (no byte 0xff). */
#define KEY_DONE UINT32_MAX

static uint64_t key_bit(uint32_t key) { return 1ULL << ((key * 0x9e3779b1u) >> 26); }

/* "header": { "<lowercase name>": [values in arrival order], ... } with
 * names in order of first appearance, from fields f[0..nf) of head h;
 * keys: room for nf. */
static void write_fields(struct ht_jw *w, const uint8_t *h, size_t n,
                         const struct ht_field_at *f, size_t nf, uint32_t *keys)
{
    /* Keys by a bit each: a name's later fields are looked for only from
     * a field whose bit was seen twice (most heads have none, and one
     * shared bit sends two fields, not all, looking). */
    uint64_t seen = 0, twice = 0;
    for (size_t i = 0; i < nf; i++) {
        keys[i] = name_key(h, &f[i]);
        uint64_t bit = key_bit(keys[i]);
        twice |= seen & bit;
        seen |= bit;
    }

    bool filter = ht_rules_filter_headers();
    ht_jw_open(w, "header");
    for (size_t i = 0; i < nf; i++) {
        if (keys[i] == KEY_DONE ||
            (filter && !ht_rules_header_shown(h + f[i].name, f[i].name_len)))
            continue;
        open_name_array(w, h, n, &f[i]);
        write_value(w, h, n, &f[i]);
        for (size_t j = i + 1; (twice & key_bit(keys[i])) && j < nf; j++) {
            if (keys[j] != keys[i] || !name_eq(h, &f[i], &f[j]))
                continue;
            ht_jw_put(w, "\",\"", 3);
            write_value(w, h, n, &f[j]);
            keys[j] = KEY_DONE;
        }
        ht_jw_put(w, "\"]", 2);
    }
    ht_jw_close(w);
}

/* The header object of head h: from l when it has all the fields, else
 * from the head's fields gathered here (a head with very many). */
static void write_header(struct ht_jw *w, const uint8_t *h, size_t n,
                         const struct ht_fields_list *l)
{
    if (l && l->all) {
        uint32_t keys[HT_FIELDS_LIST_MAX];
        write_fields(w, h, n, l->f, l->n, keys);
        return;
    }
    struct ht_field_at *f = NULL;
    size_t nf = 0, cap = 0;
    struct ht_fields_walk fw = { 0 };
    const struct ht_field_at *hf;
    while ((hf = ht_fields_walk(h, n, NULL, &fw))) {
        if (nf == cap) {
            struct ht_field_at *nfp = realloc(f, (cap = cap ? 2 * cap : 128) * sizeof(*f));
            if (!nfp)
                break;
            f = nfp;
        }
        f[nf++] = *hf;
    }
    uint32_t *keys = malloc(nf * sizeof(*keys) + 1);
    if (hf || !keys)
        w->err = -ENOMEM;   /* not a record short of fields */
    else
        write_fields(w, h, n, f, nf, keys);
    free(keys);
    free(f);
}

/* ---- bodies ---- */

/* Binary excerpts are written in base64. A static file is sent again and
 * again, and encoding its excerpt was a sixth of the collector's time for
 * it: each formatting thread keeps the text of its last few excerpts, found
 * by comparing the raw bytes whole (equal bytes, or it is encoded anew).
 * Excerpts over B64_KEEP_MAX bytes are encoded each time. */
#define B64_SLOTS 4
#define B64_KEEP_MAX 65536

struct b64_text {
    uint8_t *raw;
    char *enc;
    size_t len, enc_len;
};
static _Thread_local struct b64_text b64_kept[B64_SLOTS];
static _Thread_local unsigned b64_turn;

/* The base64 of s[0..n): kept text, or made into a slot (or, for a big
 * excerpt, into *spare, which the caller frees). NULL without memory. */
static const char *base64_of(const uint8_t *s, size_t n, size_t *m, char **spare)
{
    if (n > B64_KEEP_MAX) {
        if (!(*spare = malloc(ht_base64_len(n) + 1)))
            return NULL;
        *m = ht_base64_encode(s, n, *spare);
        return *spare;
    }
    for (unsigned i = 0; i < B64_SLOTS; i++) {
        struct b64_text *k = &b64_kept[i];
        if (k->len == n && k->raw && !memcmp(k->raw, s, n)) {
            *m = k->enc_len;
            return k->enc;
        }
    }
    struct b64_text *k = &b64_kept[b64_turn++ % B64_SLOTS];
    uint8_t *raw = realloc(k->raw, n);
    if (raw)
        k->raw = raw;
    char *enc = raw ? realloc(k->enc, ht_base64_len(n) + 1) : NULL;
    if (enc)
        k->enc = enc;
    if (!raw || !enc) {
        k->len = 0;
        return NULL;
    }
    memcpy(k->raw, s, n);
    k->len = n;
    k->enc_len = ht_base64_encode(s, n, k->enc);
    *m = k->enc_len;
    return k->enc;
}

/* body.file: the file sendfile sent it from, with OpenTelemetry's file.*
 * names (docs/events.md). */
static void write_file(struct ht_jw *w, const struct ht_file_id *f)
{
    ht_jw_open(w, "file");
    if (f->path)
        ht_jw_str_bytes(w, "path", (const uint8_t *)f->path, strlen(f->path));
    if (f->ino) {
        char dev[24];
        int n = snprintf(dev, sizeof(dev), "%u:%u", f->dev >> 20, f->dev & 0xfffff);
        ht_jw_u64(w, "size", f->size);
        ht_jw_u64(w, "inode", f->ino);
        ht_jw_str(w, "device", dev, (size_t)n);
    }
    if (f->mtime_ns > 0) {
        char ts[HT_RFC3339_LEN];
        ht_rfc3339_ns(f->mtime_ns, ts);
        ht_jw_cstr(w, "modified", ts);
    }
    ht_jw_close(w);
}

/* A multipart body's parts (core/multipart.h). */
static void write_parts(struct ht_jw *w, const struct ht_multipart *m)
{
    ht_jw_open_array(w, "parts");
    for (unsigned i = 0; i < m->nparts; i++) {
        const struct ht_mp_part *p = &m->parts[i];
        ht_jw_open(w, NULL);
        /* As the body said them: any bytes (ht_jw_str_bytes keeps the
         * line valid UTF-8 JSON). */
        ht_jw_str_bytes(w, "name", (const uint8_t *)p->name, strlen(p->name));
        if (p->filename[0])
            ht_jw_str_bytes(w, "filename", (const uint8_t *)p->filename, strlen(p->filename));
        if (p->content_type[0])
            ht_jw_str_bytes(w, "content_type", (const uint8_t *)p->content_type,
                            strlen(p->content_type));
        ht_jw_u64(w, "size", p->size);
        size_t n = p->text_cut ? ht_utf8_trim_partial(p->text, p->text_len) : p->text_len;
        if (p->text_len && ht_utf8_valid(p->text, n)) {
            ht_jw_begin_string(w, "content");
            ht_jw_raw_escaped(w, p->text, n);
            ht_jw_end_string(w);
            if (p->text_cut)
                ht_jw_bool(w, "truncated", true);
        }
        ht_jw_close(w);
    }
    ht_jw_close_array(w);
    if (m->more)
        ht_jw_u64(w, "parts_more", m->more);
    if (m->broken || !m->ended)
        ht_jw_bool(w, "parts_incomplete", true);
}

/* Secret parts (HTTPTAPE_REDACT_FIELDS names) show no text. */
static void redact_parts(struct ht_exchange *ex, struct ht_body *b)
{
    struct ht_multipart *m = b->mp;
    for (unsigned i = 0; m && i < m->nparts; i++) {
        struct ht_mp_part *p = &m->parts[i];
        if (p->text_len && ht_redact_body_field(ex, p->name)) {
            memcpy(p->text, "REDACTED", 8);
            p->text_len = 8;
            p->text_cut = false;
        }
    }
}

static void write_body(struct ht_jw *w, const struct ht_body *b)
{
    ht_jw_open(w, "body");
    ht_jw_u64(w, "size", b->size);
    char hex[65];
    if (ht_body_digest_hex((struct ht_body *)b, hex))     /* finalised here, once */
        ht_jw_cstr(w, "sha256", hex);
    /* A multipart body read whole is shown by its parts (secret ones
     * without their text), not by its raw excerpt. */
    bool by_parts = b->mp && !b->mp->broken;
    if (b->len && !by_parts) {
        size_t n = b->truncated ? ht_utf8_trim_partial(b->buf, b->len) : b->len;
        if (ht_utf8_valid(b->buf, n)) {
            ht_jw_begin_string(w, "content");
            ht_jw_raw_escaped(w, b->buf, n);
            ht_jw_end_string(w);
        } else {
            char *spare = NULL;
            size_t m;
            const char *enc = base64_of(b->buf, b->len, &m, &spare);
            if (enc) {
                /* The base64 alphabet needs no escaping. */
                ht_jw_begin_string(w, "content");
                ht_jw_put(w, enc, m);
                ht_jw_end_string(w);
                ht_jw_cstr(w, "encoding", "base64");
            } else {
                w->err = -ENOMEM;
            }
            free(spare);
        }
    }
    if (b->truncated && !by_parts)
        ht_jw_bool(w, "truncated", true);
    if (b->omitted)
        ht_jw_cstr(w, "omitted", "body_rule");
    if (b->mp)
        write_parts(w, b->mp);
    if (b->coding) {
        /* content is decoded: from the first coded_len bytes as sent */
        ht_jw_cstr(w, "content_encoding", ht_coding_name(b->coding));
        if (b->decoded_size)
            ht_jw_u64(w, "decoded_size", b->decoded_size);
    }
    if (b->source == HT_SRC_SENDFILE)
        ht_jw_cstr(w, "source", "sendfile");
    else if (b->source == HT_SRC_SPLICE)
        ht_jw_cstr(w, "source", "splice");
    if (b->file)
        write_file(w, b->file);
    ht_jw_close(w);
}

/* ---- Content-Encoding ---- */

/* Is the field named (any case) word? */
static bool field_is(const uint8_t *h, const struct ht_field_at *f, const char *word)
{
    return ht_ascii_is(h + f->name, f->name_len, word);
}

/* The coding the head's Content-Encoding fields name (several fields are
 * a list: HT_CODING_OTHER). */
static enum ht_coding head_coding(const uint8_t *h, size_t n, const struct ht_fields_list *l)
{
    enum ht_coding c = HT_CODING_NONE;
    struct ht_fields_walk fw = { 0 };
    const struct ht_field_at *f;
    while ((f = ht_fields_walk(h, n, l, &fw))) {
        if (!field_is(h, f, "content-encoding"))
            continue;
        enum ht_coding fc = ht_coding_of(h + f->value, f->value_end - f->value);
        if (fc == HT_CODING_NONE)
            continue;
        c = c == HT_CODING_NONE ? fc : HT_CODING_OTHER;
    }
    return c;
}

/* A body excerpt in gzip, deflate or br becomes its decoded bytes, up to
 * the excerpt cap; one that does not decode stays as it came. */
static void decode_body(struct ht_exchange *ex, struct ht_body *b, const uint8_t *h, size_t hn,
                        const struct ht_fields_list *l)
{
    if (!b->buf || !b->len || b->coding || !h || !ex->max_body)
        return;
    enum ht_coding c = head_coding(h, hn, l);
    if (c == HT_CODING_NONE || c == HT_CODING_OTHER)
        return;
    struct ht_decoded d;
    if (ht_decode(c, b->buf, b->len, ex->max_body, &d) || !d.len) {
        free(d.buf);
        return;
    }
    bool whole = !b->truncated && b->len == b->size;    /* the excerpt held all of it */
    b->coded_len = b->len;
    ht_exchange_release(ex, b->buf);
    b->buf = d.buf;
    b->len = b->cap = (uint32_t)d.len;
    b->coding = (uint8_t)c;
    b->truncated = !(whole && d.ended);
    b->decoded_size = whole && d.ended ? d.len : 0;
}

/* ---- url ---- */

/* url.path / url.query from origin-form, absolute-form or asterisk-form;
 * authority-form (CONNECT) has neither. */
static void write_url(struct ht_jw *w, const uint8_t *t, size_t n, bool connect, const char *scheme)
{
    const uint8_t *hash = n ? memchr(t, '#', n) : NULL;
    if (hash)
        n = (size_t)(hash - t);     /* fragment_in_target: not logged (docs/events.md) */
    if (connect || n == 0) {
        if (scheme) {
            ht_jw_open(w, "url");
            ht_jw_cstr(w, "scheme", scheme);
            ht_jw_close(w);
        }
        return;
    }
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
    ht_jw_cstr(w, "scheme", scheme);
    if (plen)
        ht_jw_str_bytes(w, "path", path, plen);
    else
        ht_jw_cstr(w, "path", "/");
    if (q)
        ht_jw_str_bytes(w, "query", q + 1, qlen);
    ht_jw_close(w);
}

/* ---- what the request's fields say about the request as a whole ----
 *
 * OpenTelemetry's HTTP server attributes that come from the head
 * (docs/events.md): the first value of each field counts. */

struct req_facts {
    struct ht_span { const uint8_t *p; size_t n; } host, user_agent, forwarded, xff,
        traceparent, request_id;
};

static void take_fact(const uint8_t *h, const struct ht_field_at *f, struct req_facts *r)
{
#define FACT(word, slot)                                                          \
    if (!r->slot.p && field_is(h, f, word)) {                    \
        r->slot = (struct ht_span){ h + f->value, f->value_end - f->value };      \
        return;                                                                   \
    }
    switch (f->name_len) {
    case 4: FACT("host", host) break;
    case 9: FACT("forwarded", forwarded) break;
    case 10: FACT("user-agent", user_agent) break;
    case 11: FACT("traceparent", traceparent) break;
    case 12: FACT("x-request-id", request_id) break;
    case 15: FACT("x-forwarded-for", xff) break;
    default: break;
    }
#undef FACT
}

static void req_facts(const uint8_t *h, size_t n, const struct ht_fields_list *l,
                      struct req_facts *r)
{
    memset(r, 0, sizeof(*r));
    struct ht_fields_walk fw = { 0 };
    const struct ht_field_at *f;
    while ((f = ht_fields_walk(h, n, l, &fw)))
        take_fact(h, f, r);
}

static bool is_lower_hex(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static bool all_zero(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != '0')
            return false;
    return true;
}

/* W3C traceparent "VV-<32 hex trace-id>-<16 hex parent-id>-<2 hex flags>"
 * (version 00 exactly so; a later version may append "-..."): trace_id,
 * span_id (the caller's span, the one the request came from) and
 * trace_flags at the top level, as OpenTelemetry's JSON log records have
 * them. Anything else is left out. */
static void write_trace(struct ht_jw *w, struct ht_span t)
{
    if (t.n < 55 || t.p[2] != '-' || t.p[35] != '-' || t.p[52] != '-' ||
        !is_lower_hex(t.p, 2) || !memcmp(t.p, "ff", 2) ||
        (!memcmp(t.p, "00", 2) ? t.n != 55 : t.n > 55 && t.p[55] != '-'))
        return;
    if (!is_lower_hex(t.p + 3, 32) || all_zero(t.p + 3, 32) || !is_lower_hex(t.p + 36, 16) ||
        all_zero(t.p + 36, 16) || !is_lower_hex(t.p + 53, 2))
        return;
    ht_jw_str(w, "trace_id", (const char *)t.p + 3, 32);
    ht_jw_str(w, "span_id", (const char *)t.p + 36, 16);
    ht_jw_str(w, "trace_flags", (const char *)t.p + 53, 2);
}

/* The first element of a comma-separated list, trimmed. */
static struct ht_span first_element(struct ht_span v)
{
    const uint8_t *c = memchr(v.p, ',', v.n);
    struct ht_span e = { v.p, c ? (size_t)(c - v.p) : v.n };
    trim(&e.p, &e.n);
    return e;
}

/* "host", "host:port", "[v6]", "[v6]:port": the address and the port (-1
 * when none or not a number). */
static struct ht_span split_host_port(struct ht_span v, long *port)
{
    *port = -1;
    struct ht_span a = v;
    const uint8_t *colon = NULL;
    if (v.n && v.p[0] == '[') {
        const uint8_t *rb = memchr(v.p, ']', v.n);
        if (!rb)
            return (struct ht_span){ v.p, 0 };
        a = (struct ht_span){ v.p + 1, (size_t)(rb - v.p) - 1 };
        if ((size_t)(rb - v.p) + 1 < v.n && rb[1] == ':')
            colon = rb + 1;
    } else {
        colon = memchr(v.p, ':', v.n);
        if (colon && memchr(colon + 1, ':', v.n - (size_t)(colon + 1 - v.p)))
            return v;                   /* a bare IPv6 address: no port */
        if (colon)
            a.n = (size_t)(colon - v.p);
    }
    if (colon) {
        size_t k = (size_t)(colon + 1 - v.p);
        long p = 0;
        if (k >= v.n || v.n - k > 5)
            return a;
        for (; k < v.n; k++) {
            if (v.p[k] < '0' || v.p[k] > '9')
                return a;
            p = p * 10 + (v.p[k] - '0');
        }
        if (p <= 65535)
            *port = p;
    }
    return a;
}

/* Forwarded: for=...: the first element's "for" (quotes and an IPv6's
 * brackets off; "unknown" and obfuscated "_..." identifiers kept out). */
static struct ht_span forwarded_for(struct ht_span v)
{
    struct ht_span e = first_element(v);
    size_t i = 0;
    while (i < e.n) {
        const uint8_t *semi = memchr(e.p + i, ';', e.n - i);
        size_t end = semi ? (size_t)(semi - e.p) : e.n;
        struct ht_span pr = { e.p + i, end - i };
        trim(&pr.p, &pr.n);
        if (pr.n > 4 && ht_ascii_is(pr.p, 4, "for=")) {
            struct ht_span x = { pr.p + 4, pr.n - 4 };
            if (x.n >= 2 && x.p[0] == '"' && x.p[x.n - 1] == '"') {
                x.p++;
                x.n -= 2;
            }
            long port;
            x = split_host_port(x, &port);
            if (!x.n || x.p[0] == '_' || (x.n == 7 && !memcmp(x.p, "unknown", 7)))
                return (struct ht_span){ NULL, 0 };
            return x;
        }
        i = end + 1;
    }
    return (struct ht_span){ NULL, 0 };
}

/* key: { "address": addr, "port": port } (no port when it is negative). */
static void write_endpoint(struct ht_jw *w, const char *key, const char *addr, int port)
{
    if (!addr[0])
        return;
    ht_jw_open(w, key);
    ht_jw_literal(w, "\"address\":\"", 0);
    ht_jw_raw_escaped(w, (const uint8_t *)addr, strlen(addr));
    if (port >= 0) {
        ht_jw_literal(w, "\",\"port\":", 0);
        ht_jw_digits(w, (uint64_t)port);
    } else {
        ht_jw_end_string(w);
    }
    ht_jw_close(w);
}

/* client.* (who sent the request: what a proxy's Forwarded or
 * X-Forwarded-For says, else the peer) and server.* (from Host). */
static void write_client_server(struct ht_jw *w, const struct ht_exchange *ex,
                                const struct req_facts *r, bool https)
{
    struct ht_span c = { NULL, 0 };
    if (r->forwarded.p)
        c = forwarded_for(r->forwarded);
    if (!c.n && r->xff.p)
        c = first_element(r->xff);
    if (c.n) {
        ht_jw_open(w, "client");
        ht_jw_str_bytes(w, "address", c.p, c.n);
        ht_jw_close(w);
    } else {
        write_endpoint(w, "client", ex->ep.peer_addr, ex->ep.peer_port);
    }
    if (r->host.n) {
        long port;
        struct ht_span a = split_host_port(r->host, &port);
        if (a.n) {
            ht_jw_open(w, "server");
            ht_jw_str_bytes(w, "address", a.p, a.n);
            ht_jw_i64(w, "port", port >= 0 ? port : https ? 443 : 80);
            ht_jw_close(w);
        }
    }
    if (r->user_agent.n) {
        ht_jw_open(w, "user_agent");
        ht_jw_str_bytes(w, "original", r->user_agent.p, r->user_agent.n);
        ht_jw_close(w);
    }
}

/* ---- records ---- */

static void write_name_list(struct ht_jw *w, uint32_t bits, const char *(*name)(uint32_t))
{
    for (unsigned i = 0; i < 32; i++)
        if (bits & (1u << i)) {
            const char *s = name(1u << i);
            if (s)
                ht_jw_cstr(w, NULL, s);
        }
}

static void write_names(struct ht_jw *w, const char *key, uint32_t bits,
                        const char *(*name)(uint32_t))
{
    ht_jw_open_array(w, key);
    write_name_list(w, bits, name);
    ht_jw_close_array(w);
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

/* ---- rpc (docs/http2.md): a gRPC call, OpenTelemetry's rpc.* names ---- */

/* rpc.service and rpc.method from a path "/package.Service/Method". */
static void write_rpc(struct ht_jw *w, const struct ht_exchange *ex)
{
    const struct ht_grpc *g = ex->grpc;
    ht_jw_open(w, "rpc");
    ht_jw_cstr(w, "system", "grpc");
    if (ex->req_head_done) {
        const uint8_t *t = ex->req_head + ex->req_msg.target_off;
        size_t n = ex->req_msg.target_len;
        const uint8_t *slash = n > 1 ? memrchr(t + 1, '/', n - 1) : NULL;
        if (t[0] == '/' && slash && slash > t + 1 && slash < t + n - 1) {
            ht_jw_str_bytes(w, "service", t + 1, (size_t)(slash - t) - 1);
            ht_jw_str_bytes(w, "method", slash + 1, n - (size_t)(slash - t) - 1);
        }
    }
    if (g->status >= 0) {
        ht_jw_open(w, "grpc");
        ht_jw_u64(w, "status_code", (uint64_t)g->status);
        ht_jw_close(w);
    }
    ht_jw_close(w);
}

/* httptape.grpc: the messages counted, and grpc-message. */
static void write_grpc_counts(struct ht_jw *w, const struct ht_grpc *g)
{
    ht_jw_open(w, "grpc");
    ht_jw_u64(w, "request_messages", g->messages[HT_REQ]);
    ht_jw_u64(w, "response_messages", g->messages[HT_RESP]);
    ht_jw_u64(w, "compressed_messages", g->compressed[HT_REQ] + g->compressed[HT_RESP]);
    if (g->framing_lost[HT_REQ] || g->framing_lost[HT_RESP])
        ht_jw_bool(w, "counts_incomplete", true);
    if (g->message[0])
        ht_jw_str_bytes(w, "status_message", (const uint8_t *)g->message, strlen(g->message));
    ht_jw_close(w);
}

/* ---- tls (docs/tls.md): OpenTelemetry's tls.* names ---- */

static void write_tls(struct ht_jw *w, const struct ht_tls *t)
{
    ht_jw_open(w, "tls");
    if (t->version[0]) {
        /* OpenSSL says "TLSv1.3", "TLSv1" (1.0), "SSLv3". */
        const char *v = t->version;
        const char *name = !strncmp(v, "TLSv", 4) ? "tls" : !strncmp(v, "SSLv", 4) ? "ssl" : NULL;
        char ver[24];
        snprintf(ver, sizeof(ver), "%s%s", name ? v + 4 : v, name && !strcmp(v, "TLSv1") ? ".0" : "");
        ht_jw_open(w, "protocol");
        if (name)
            ht_jw_cstr(w, "name", name);
        ht_jw_cstr(w, "version", ver);
        ht_jw_close(w);
    }
    if (t->cipher[0])
        ht_jw_cstr(w, "cipher", t->cipher);
    if (t->server_name[0] || t->alpn_offered[0]) {
        ht_jw_open(w, "client");
        if (t->server_name[0])
            ht_jw_cstr(w, "server_name", t->server_name);
        if (t->alpn_offered[0]) {
            ht_jw_open_array(w, "supported_protocols");
            for (const char *p = t->alpn_offered; *p;) {
                size_t n = strcspn(p, ",");
                ht_jw_str(w, NULL, p, n);
                p += n + (p[n] == ',');
            }
            ht_jw_close_array(w);
        }
        ht_jw_close(w);
    }
    if (t->alpn[0])
        ht_jw_cstr(w, "next_protocol", t->alpn);
    ht_jw_bool(w, "established", t->established);
    ht_jw_close(w);
}

/* httptape.redacted: what redaction replaced, by name. */
static void write_redacted(struct ht_jw *w, const struct ht_exchange *ex)
{
    if (!ex->redacted.count)
        return;
    ht_jw_open_array(w, "redacted");
    for (const char *p = ht_redact_next(ex, NULL); p; p = ht_redact_next(ex, p))
        ht_jw_cstr(w, NULL, p);
    ht_jw_close_array(w);
}

/* process.* and service.name. */
static void write_process(struct ht_jw *w, const struct ht_exchange *ex)
{
    if (ex->pid > 0) {
        ht_jw_open(w, "process");
        ht_jw_i64(w, "pid", ex->pid);
        if (ex->exe[0]) {
            ht_jw_open(w, "executable");
            ht_jw_str_bytes(w, "name", (const uint8_t *)ex->exe, strlen(ex->exe));
            ht_jw_close(w);
        }
        ht_jw_close(w);
    }
    const char *service = ex->service && ex->service[0] ? ex->service : ex->exe;
    if (service[0]) {
        ht_jw_open(w, "service");
        ht_jw_str_bytes(w, "name", (const uint8_t *)service, strlen(service));
        ht_jw_close(w);
    }
}

/* A WebSocket frame's or a tunnel's record (core/ws.h). */
static void write_ws_record(struct ht_jw *w, const struct ht_exchange *ex)
{
    const struct ht_wsrec *r = ex->ws;
    bool frame = ex->kind == HT_KIND_WS_FRAME, progress = ex->kind == HT_KIND_PROGRESS;
    const char *type = frame ? "websocket_frame" : progress ? "progress" : "tunnel";
    char ts[HT_RFC3339_LEN];
    ht_jw_open(w, NULL);
    ht_rfc3339_ns(ex->wall_ns, ts);
    ht_jw_str(w, "timestamp", ts, HT_RFC3339_LEN - 1);
    ht_jw_open(w, frame ? "websocket" : progress ? "progress" : "tunnel");
    if (progress) {
        ht_jw_u64(w, "status_code", ex->resp_msg.status);
        ht_jw_u64(w, "response_bytes", r->bytes[HT_RESP]);
        ht_jw_u64(w, "request_bytes", r->bytes[HT_REQ]);
        ht_jw_i64(w, "elapsed_ns", ex->mono_resp_done - ex->mono_start);
    } else if (frame) {
        ht_jw_cstr(w, "direction", r->dir == HT_REQ ? "client" : "server");
        ht_jw_cstr(w, "opcode", ht_ws_opcode_name(r->opcode));
        ht_jw_bool(w, "fin", r->fin);
        ht_jw_u64(w, "size", r->size);
        if (r->compressed)
            ht_jw_bool(w, "compressed", true);
        if (r->close_code >= 0)
            ht_jw_u64(w, "close_code", (uint64_t)r->close_code);
        const struct ht_body *b = &ex->req_body;
        size_t n = b->truncated ? ht_utf8_trim_partial(b->buf, b->len) : b->len;
        if (b->len && r->opcode != HT_WS_BINARY && ht_utf8_valid(b->buf, n)) {
            ht_jw_begin_string(w, r->close_code >= 0 ? "close_reason" : "content");
            ht_jw_raw_escaped(w, b->buf, n);
            ht_jw_end_string(w);
            if (b->truncated)
                ht_jw_bool(w, "truncated", true);
        } else if (b->len || r->compressed) {
            write_body(w, b);       /* binary (base64), and a compressed one's inflated size */
        }
    } else {
        ht_jw_str_bytes(w, "protocol", (const uint8_t *)r->protocol, strlen(r->protocol));
        ht_jw_open(w, "bytes");
        ht_jw_u64(w, "client", r->bytes[HT_REQ]);
        ht_jw_u64(w, "server", r->bytes[HT_RESP]);
        ht_jw_close(w);
        if (!strcmp(r->protocol, "websocket")) {
            ht_jw_open(w, "frames");
            ht_jw_u64(w, "client", r->frames[HT_REQ]);
            ht_jw_u64(w, "server", r->frames[HT_RESP]);
            ht_jw_u64(w, "logged", r->frames_logged);
            ht_jw_close(w);
        }
        if (ex->mono_resp_done)
            ht_jw_i64(w, "duration_ns", ex->mono_resp_done - ex->mono_start);
    }
    ht_jw_close(w);
    ht_jw_open(w, "network");
    if (ex->ep.transport)
        ht_jw_cstr(w, "transport", ex->ep.transport);
    write_endpoint(w, "peer", ex->ep.peer_addr, ex->ep.peer_port);
    write_endpoint(w, "local", ex->ep.local_addr, ex->ep.local_port);
    ht_jw_close(w);
    write_process(w, ex);
    ht_jw_open(w, "httptape");
    ht_jw_cstr(w, "type", type);
    ht_jw_cstr(w, "mode", ex->mode ? ex->mode : "unknown");
    ht_jw_open(w, "connection");
    ht_jw_cstr(w, "id", ex->conn_id);
    ht_jw_u64(w, "request_index", ex->request_index);
    ht_jw_close(w);
    if (ex->h2_stream) {
        ht_jw_open(w, "http2");
        ht_jw_u64(w, "stream_id", ex->h2_stream);
        ht_jw_close(w);
    }
    ht_jw_bool(w, "complete", ex->gaps == 0);
    if (ex->gaps)
        write_names(w, "gaps", ex->gaps, ht_gap_name);
    write_redacted(w, ex);
    ht_jw_close(w);
    ht_jw_close(w);
}

static void write_exchange(struct ht_jw *w, const struct ht_exchange *ex,
                           const struct ht_fields_list *lrq, const struct ht_fields_list *lrs)
{
    char ts[HT_RFC3339_LEN];
    const struct ht_msg *rq = &ex->req_msg;

    ht_jw_open(w, NULL);
    ht_rfc3339_ns(ex->wall_ns, ts);
    ht_jw_str(w, "timestamp", ts, HT_RFC3339_LEN - 1);

    ht_jw_open(w, "http");
    if (ex->req_head_done) {
        ht_jw_open(w, "request");
        ht_jw_str_bytes(w, "method", ex->req_head, rq->method_len);
        write_header(w, ex->req_head, ex->req_head_len, lrq);
        write_body(w, &ex->req_body);
        ht_jw_close(w);
    }
    if (ex->resp_head_done) {
        ht_jw_open(w, "response");
        ht_jw_u64(w, "status_code", ex->resp_msg.status);
        write_header(w, ex->resp_head, ex->resp_head_len, lrs);
        write_body(w, &ex->resp_body);
        ht_jw_close(w);
    }
    ht_jw_close(w);

    bool https = ex->tls != NULL;   /* docs/tls.md */
    const char *scheme = https ? "https" : "http";
    struct req_facts rf = { 0 };
    if (ex->req_head_done) {
        bool connect = rq->req_flags & HT_REQF_CONNECT;
        /* A CONNECT in the clear has no URL of its own (authority-form). */
        write_url(w, ex->req_head + rq->target_off, rq->target_len, connect,
                  connect && !https ? NULL : scheme);
        req_facts(ex->req_head, ex->req_head_len, lrq, &rf);
        write_client_server(w, ex, &rf, https);
        if (rf.traceparent.n)
            write_trace(w, rf.traceparent);
    } else if (https) {
        write_url(w, NULL, 0, false, scheme);
    }
    if (ex->tls)
        write_tls(w, ex->tls);
    if (ex->grpc)
        write_rpc(w, ex);

    ht_jw_open(w, "network");
    if (ex->ep.transport)
        ht_jw_cstr(w, "transport", ex->ep.transport);
    if (ex->h2_stream) {
        static const char ver[] = "\"protocol\":{\"version\":\"2\"}";
        ht_jw_member(w, NULL);
        ht_jw_put(w, ver, sizeof(ver) - 1);
    } else if (ex->req_head_done || ex->resp_head_done) {
        char ver[] = "\"protocol\":{\"version\":\"1.x\"}";
        ver[sizeof(ver) - 4] = (char)('0' + (ex->req_head_done ? rq : &ex->resp_msg)->version_minor);
        ht_jw_member(w, NULL);
        ht_jw_put(w, ver, sizeof(ver) - 1);
    }
    write_endpoint(w, "peer", ex->ep.peer_addr, ex->ep.peer_port);
    write_endpoint(w, "local", ex->ep.local_addr, ex->ep.local_port);
    ht_jw_close(w);

    write_process(w, ex);

    /* network came before, always */
    const char *mode = ex->mode ? ex->mode : "unknown";
    ht_jw_literal(w, ",\"httptape\":{\"type\":\"exchange\",\"mode\":\"", 1);
    ht_jw_raw_escaped(w, (const uint8_t *)mode, strlen(mode));
    ht_jw_literal(w, "\",\"connection\":{\"id\":\"", 1);
    ht_jw_raw_escaped(w, (const uint8_t *)ex->conn_id, strlen(ex->conn_id));
    ht_jw_literal(w, "\",\"request_index\":", 0);
    ht_jw_digits(w, ex->request_index);
    if (ex->conn_joined)
        ht_jw_bool(w, "joined", true);
    ht_jw_close(w);
    if (ex->h2_stream) {
        ht_jw_open(w, "http2");
        ht_jw_u64(w, "stream_id", ex->h2_stream);
        if (ex->h2_pushed)
            ht_jw_bool(w, "pushed", true);
        ht_jw_close(w);
    }
    if (ex->grpc)
        write_grpc_counts(w, ex->grpc);
    if (rf.request_id.n)
        ht_jw_str_bytes(w, "request_id", rf.request_id.p, rf.request_id.n);
    write_timing(w, ex);
    ht_jw_bool(w, "complete", ht_exchange_complete(ex));
    if (ex->gaps)
        write_names(w, "gaps", ex->gaps, ht_gap_name);
    uint32_t an = ex->req_msg.anomalies | ex->resp_msg.anomalies;
    if (an || ex->h2_anomalies) {
        ht_jw_open_array(w, "anomalies");
        write_name_list(w, an, ht_anomaly_name);
        write_name_list(w, ex->h2_anomalies, ht_h2_anomaly_name);
        ht_jw_close_array(w);
    }
    if (ex->n_interim) {
        ht_jw_open_array(w, "interim_status_codes");
        for (unsigned i = 0; i < ex->n_interim; i++)
            ht_jw_u64(w, NULL, ex->interim[i]);
        ht_jw_close_array(w);
    }
    if (ex->tls) {
        ht_jw_open(w, "tls_raw_bytes");
        ht_jw_u64(w, "received", ex->tls->raw_bytes[HT_REQ]);
        ht_jw_u64(w, "sent", ex->tls->raw_bytes[HT_RESP]);
        ht_jw_close(w);
    }
    write_redacted(w, ex);
    ht_jw_close(w);
    ht_jw_close(w);
}

/* A head's fields: as the parser found them when they were kept, else read
 * from the head. HT_CHECK_FIELDS (the test and fuzz builds) checks that
 * both ways agree. */
static void head_fields(const uint8_t *h, uint32_t n, const struct ht_field_at *kept,
                        uint32_t nkept, struct ht_fields_list *l)
{
    if (!h) {
        ht_fields_list(NULL, 0, l);
        return;
    }
    if (!kept) {
        ht_fields_list(h, n, l);
        return;
    }
    ht_fields_list_from(kept, nkept, l);
#ifdef HT_CHECK_FIELDS
    struct ht_fields_list read;
    ht_fields_list(h, n, &read);
    if (!read.all || read.n != l->n || memcmp(read.own, l->f, l->n * sizeof(l->f[0]))) {
        fprintf(stderr, "event.c: the parser's fields differ from the head's (%zu, %zu)\n",
                l->n, read.n);
        abort();
    }
#endif
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
    if (ex->kind != HT_KIND_EXCHANGE && ex->ws) {
        /* A frame's payload is a body with no head: JSON or form text in
         * it is redacted as a body's would be. */
        if (ex->kind == HT_KIND_WS_FRAME && ex->ws->opcode != HT_WS_BINARY)
            ht_redact_exchange(ex);
        ht_jw_init(&w, out);
        write_ws_record(&w, ex);
        return finish_line(&w, out, mark);
    }
    /* Each head's fields are found once, for redaction and for writing. */
    struct ht_fields_list lrq, lrs;
    head_fields(ex->req_head, ex->req_head_len, ex->req_fields, ex->req_nfields, &lrq);
    head_fields(ex->resp_head, ex->resp_head_len, ex->resp_fields, ex->resp_nfields, &lrs);
    /* Coded excerpts are decoded first, so that redaction reads them. */
    decode_body(ex, &ex->req_body, ex->req_head, ex->req_head ? ex->req_head_len : 0, &lrq);
    decode_body(ex, &ex->resp_body, ex->resp_head, ex->resp_head ? ex->resp_head_len : 0, &lrs);
    /* Secrets are replaced before a single byte of the record exists, on
     * whichever thread formats it, for every front end. */
    ht_redact_exchange_listed(ex, &lrq, &lrs);
    redact_parts(ex, &ex->req_body);
    redact_parts(ex, &ex->resp_body);
    ht_jw_init(&w, out);
    write_exchange(&w, ex, &lrq, &lrs);
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
    r->connections_tls_not_decrypted = HT_STAT_GET(connections_tls_not_decrypted);
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
    r->registrations_refused = HT_STAT_GET(registrations_refused);
    r->rings_broken = HT_STAT_GET(rings_broken);
    r->bytes_unattributed = HT_STAT_GET(bytes_unattributed);
    r->files_unmatched = HT_STAT_GET(files_unmatched);
    r->filtered = HT_STAT_GET(filtered);
    r->sampled_out = HT_STAT_GET(sampled_out);
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
    ht_jw_u64(&w, "connections_tls_not_decrypted", r->connections_tls_not_decrypted);
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
    ht_jw_u64(&w, "bytes_unattributed", r->bytes_unattributed);
    ht_jw_u64(&w, "records_lost", r->records_lost);
    ht_jw_u64(&w, "record_bytes_lost", r->record_bytes_lost);
    ht_jw_u64(&w, "registrations_refused", r->registrations_refused);
    ht_jw_u64(&w, "rings_broken", r->rings_broken);
    ht_jw_u64(&w, "files_unmatched", r->files_unmatched);
    ht_jw_u64(&w, "filtered", r->filtered);
    ht_jw_u64(&w, "sampled_out", r->sampled_out);
    ht_jw_close(&w);
    ht_jw_close(&w);
    ht_jw_close(&w);
    return finish_line(&w, out, mark);
}
