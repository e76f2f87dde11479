/*
 * parser.c - incremental HTTP/1.x framing (see parser.h for the contract).
 *
 * Heads are accumulated (bounded) and parsed in one pass once the empty line
 * arrives; bodies, chunk lines and trailers are walked in place without
 * copying. Framing follows RFC 9112 section 6.3 in order; where the bytes
 * are ambiguous the message is read the way the RFC tells a recipient to
 * and the anomaly is recorded, and where no safe reading exists the parser
 * reports HT_PEV_ERROR and consumes everything after silently.
 */
#include "core/parser.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/fields.h"
#include "core/swar.h"
#include "core/text.h"

enum state {
    S_START,            /* between messages */
    S_HEAD,             /* accumulating the head */
    S_END_PENDING,      /* head done, no body: END on the next call */
    S_BODY_LEN,
    S_BODY_CLOSE,
    S_CHUNK_LINE,
    S_CHUNK_DATA,
    S_CHUNK_DATA_END,
    S_TRAILER,
    S_PAUSED,           /* after an Upgrade/CONNECT request */
    S_TUNNEL,
    S_DEAD,             /* after a fatal error */
    S_EOF,              /* after ht_parser_eof */
};

#define CHUNK_LINE_MAX 4096u
#define HEAD_INITIAL_CAP 512u

static const char *const anomaly_names[HT_AN_COUNT] = {
    "content_length_with_transfer_encoding",
    "duplicate_content_length",
    "conflicting_content_length",
    "invalid_content_length",
    "chunked_not_final",
    "unknown_transfer_coding",
    "transfer_encoding_in_http10",
    "obs_fold",
    "bare_lf",
    "bare_cr",
    "whitespace_before_colon",
    "invalid_chunk_size",
    "chunk_size_overflow",
    "invalid_start_line",
    "invalid_header_field",
    "header_too_large",
    "chunk_line_too_long",
    "trailer_too_large",
    "unsolicited_101",
    "whitespace_after_start_line",
    "missing_host",
    "duplicate_host",
    "invalid_target_form",
    "invalid_field_value",
    "framing_field_in_trailer",
    "leading_empty_lines",
    "data_after_close",
    "body_on_bodiless_method",
    "body_on_connect",
    "fragment_in_target",
    "desync_suspected",
};

const char *ht_anomaly_name(uint32_t bit)
{
    for (unsigned i = 0; i < HT_AN_COUNT; i++)
        if (bit == 1u << i)
            return anomaly_names[i];
    return NULL;
}

/* ---- character classes (RFC 9110 section 5.6.2) ---- */

/* tchar: a lookup, since every byte of every method and field name is one. */
static const bool tchar_tab[256] = {
    ['a' ... 'z'] = true, ['A' ... 'Z'] = true, ['0' ... '9'] = true,
    ['!'] = true, ['#'] = true, ['$'] = true, ['%'] = true, ['&'] = true, ['\''] = true,
    ['*'] = true, ['+'] = true, ['-'] = true, ['.'] = true, ['^'] = true, ['_'] = true,
    ['`'] = true, ['|'] = true, ['~'] = true,
};

static bool is_tchar(uint8_t c) { return tchar_tab[c]; }

/* The four bytes at p are all tchars: one branch, not four. */
static inline bool all_tchar4(const uint8_t *p)
{
    return (unsigned)tchar_tab[p[0]] & tchar_tab[p[1]] & tchar_tab[p[2]] & tchar_tab[p[3]];
}

/* RFC 9110 5.5: field values hold no controls but HTAB (CR is flagged as
 * bare_cr elsewhere). Words of eight find the values with none (the last
 * bytes in the word that ends the value, overlapping); the bytes decide
 * from the first word with a control (HTAB is one). */
static bool value_has_ctl(const uint8_t *s, size_t n)
{
    size_t k = 0;
    for (; k + 8 <= n; k += 8) {
        uint64_t v = ht_swar_load(s + k);
        if (ht_swar_lt(v, 0x20) | ht_swar_eq(v, 0x7f))
            break;              /* the bytes from here decide */
    }
    if (k + 8 > n && n >= 8) {
        uint64_t v = ht_swar_load(s + n - 8);
        if (!(ht_swar_lt(v, 0x20) | ht_swar_eq(v, 0x7f)))
            return false;
    }
    for (; k < n; k++)
        if ((s[k] < 0x20 && s[k] != '\t' && s[k] != '\r') || s[k] == 0x7f)
            return true;
    return false;
}

static bool is_ows(uint8_t c) { return c == ' ' || c == '\t'; }

static int hex_value(uint8_t c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The first and last four of the n (4 to 7) bytes at s as a word, or the
 * first eight (n >= 8), ASCII capitals made small (swar.h). */
static inline uint64_t lower_word(const uint8_t *s, size_t n)
{
    if (n >= 8)
        return ht_swar_lower(ht_swar_load(s));
    uint32_t lo, hi;
    memcpy(&lo, s, 4);
    memcpy(&hi, s + n - 4, 4);
    return ht_swar_lower((uint64_t)hi << 32 | lo);
}

/* ASCII case-insensitive comparison of a span with a lowercase literal.
 * Inline, so that the literal's length is known: a name of 4 bytes or
 * more is compared as two words that cover it (its first and last eight,
 * or four), not byte by byte; every field name meets several of these. */
static inline __attribute__((always_inline)) bool span_eq(const uint8_t *s, size_t n,
                                                        const char *lit)
{
    size_t m = strlen(lit);
    const uint8_t *l = (const uint8_t *)lit;
    if (n != m)
        return false;
    if (m >= 8)
        return lower_word(s, 8) == lower_word(l, 8) &&
               lower_word(s + m - 8, 8) == lower_word(l + m - 8, 8);
    if (m >= 4)
        return lower_word(s, m) == lower_word(l, m);
    for (size_t i = 0; i < n; i++)
        if (ht_ascii_lower(s[i]) != l[i])
            return false;
    return true;
}

/* Inline: it runs on every value, most of which have one space before. */
static inline void trim_ows(const uint8_t **s, size_t *n)
{
    while (*n && is_ows((*s)[0])) { (*s)++; (*n)--; }
    while (*n && is_ows((*s)[*n - 1])) (*n)--;
}

/* ---- head parsing ---- */

struct span { const uint8_t *p; size_t n; };

/* What the fields said about framing, gathered across the whole head. */
struct fields {
    bool have_cl, cl_bad, cl_conflict, cl_dup;
    uint64_t cl;
    bool te_present, te_last_chunked, te_chunked_early, te_unknown;
    bool conn_close, conn_keep_alive, conn_upgrade, has_upgrade;
    unsigned hosts;
};

#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* Next line of the head starting at *pos (the head always ends in LF).
 * Returns the line without its CR LF and notes bare LF / bare CR. One pass
 * finds the LF and the first CR, sixteen bytes at a time with SSE2 (never
 * past the head), then eight in a word: every head is read this way once
 * more after it was collected. */
static struct span next_line(const uint8_t *h, uint32_t n, uint32_t *pos, uint32_t *an)
{
    uint32_t start = *pos, i = start, cr = UINT32_MAX;
    bool lf_found = false;
#ifdef __SSE2__
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(h + i));
        unsigned lfs = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('\n')));
        unsigned crs = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('\r')));
        if (crs && cr == UINT32_MAX)
            cr = i + (uint32_t)__builtin_ctz(crs);
        if (lfs) {
            i += (uint32_t)__builtin_ctz(lfs);
            lf_found = true;
            break;
        }
    }
#endif
    for (; !lf_found && i + 8 <= n; i += 8) {
        uint64_t v = ht_swar_load(h + i);
        uint64_t crs = ht_swar_eq(v, '\r'), lfs = ht_swar_eq(v, '\n');
        if (crs && cr == UINT32_MAX)
            cr = i + (uint32_t)ht_swar_first(crs);
        if (lfs) {
            i += (uint32_t)ht_swar_first(lfs);
            break;
        }
    }
    for (; i < n && h[i] != '\n'; i++)
        if (h[i] == '\r' && cr == UINT32_MAX)
            cr = i;
    uint32_t end = i;
    *pos = i < n ? i + 1 : n;
    if (end > start && h[end - 1] == '\r')
        end--;
    else
        *an |= HT_AN_BARE_LF;
    if (cr < end)
        *an |= HT_AN_BARE_CR;
    return (struct span){ h + start, end - start };
}

static bool parse_version(const uint8_t *s, size_t n, uint8_t *minor)
{
    if (n != 8 || memcmp(s, "HTTP/1.", 7) || s[7] < '0' || s[7] > '9')
        return false;
    *minor = (uint8_t)(s[7] - '0');
    return true;
}

static bool parse_request_line(struct ht_parser *p, struct span l)
{
    size_t i = 0;
    while (i < l.n && is_tchar(l.p[i]))
        i++;
    if (i == 0 || i >= l.n || l.p[i] != ' ' || i > UINT16_MAX)
        return false;
    p->msg.method_len = (uint16_t)i;
    size_t t0 = ++i;
    while (i < l.n && l.p[i] > 0x20 && l.p[i] != 0x7f)
        i++;
    if (i == t0 || i >= l.n || l.p[i] != ' ')
        return false;
    p->msg.target_off = (uint32_t)(l.p + t0 - p->head);
    p->msg.target_len = (uint32_t)(i - t0);
    i++;
    return parse_version(l.p + i, l.n - i, &p->msg.version_minor);
}

static bool parse_status_line(struct ht_parser *p, struct span l)
{
    if (l.n < 12 || !parse_version(l.p, 8, &p->msg.version_minor) || l.p[8] != ' ')
        return false;
    for (int k = 9; k < 12; k++)
        if (l.p[k] < '0' || l.p[k] > '9')
            return false;
    /* status-line = HTTP-version SP status-code SP [ reason-phrase ];
     * "HTTP/1.1 200" without the second SP is common and harmless. */
    if (l.n > 12 && l.p[12] != ' ')
        return false;
    p->msg.status = (uint16_t)((l.p[9] - '0') * 100 + (l.p[10] - '0') * 10 + (l.p[11] - '0'));
    return p->msg.status >= 100;
}

static void field_content_length(struct fields *f, struct span v)
{
    /* Content-Length = 1*DIGIT; a list of identical values is tolerated
     * (RFC 9110 section 8.6) but flagged. */
    size_t i = 0;
    do {
        size_t j = i;
        while (j < v.n && v.p[j] != ',')
            j++;
        const uint8_t *e = v.p + i;
        size_t en = j - i;
        trim_ows(&e, &en);
        uint64_t x = 0;
        bool ok = en > 0 && en <= 18;   /* 18 digits cannot overflow */
        for (size_t k = 0; ok && k < en; k++) {
            if (e[k] < '0' || e[k] > '9')
                ok = false;
            else
                x = x * 10 + (uint64_t)(e[k] - '0');
        }
        if (!ok)
            f->cl_bad = true;
        else if (f->have_cl && x != f->cl)
            f->cl_conflict = true;
        else if (f->have_cl)
            f->cl_dup = true;
        f->have_cl = true;
        f->cl = ok ? x : f->cl;
        i = j + 1;
    } while (i <= v.n);
}

static bool known_coding(const uint8_t *s, size_t n)
{
    return span_eq(s, n, "gzip") || span_eq(s, n, "x-gzip") || span_eq(s, n, "deflate") ||
           span_eq(s, n, "compress") || span_eq(s, n, "x-compress");
}

static void field_transfer_encoding(struct fields *f, struct span v)
{
    f->te_present = true;
    size_t i = 0;
    while (i <= v.n) {
        size_t j = i;
        while (j < v.n && v.p[j] != ',')
            j++;
        const uint8_t *e = v.p + i;
        size_t en = j - i;
        /* transfer-coding = token *( OWS ";" OWS transfer-parameter ) */
        size_t k = 0;
        while (k < en && e[k] != ';')
            k++;
        en = k;
        trim_ows(&e, &en);
        if (en) {
            if (f->te_last_chunked)
                f->te_chunked_early = true;     /* something after chunked */
            f->te_last_chunked = span_eq(e, en, "chunked");
            if (!f->te_last_chunked && !known_coding(e, en))
                f->te_unknown = true;
        }
        i = j + 1;
    }
}

static void field_connection(struct fields *f, struct span v)
{
    size_t i = 0;
    while (i <= v.n) {
        size_t j = i;
        while (j < v.n && v.p[j] != ',')
            j++;
        const uint8_t *e = v.p + i;
        size_t en = j - i;
        trim_ows(&e, &en);
        if (span_eq(e, en, "close"))
            f->conn_close = true;
        else if (span_eq(e, en, "keep-alive"))
            f->conn_keep_alive = true;
        else if (span_eq(e, en, "upgrade"))
            f->conn_upgrade = true;
        i = j + 1;
    }
}

/* A framing-relevant field: returns its handler, or NULL. */
typedef void (*field_fn)(struct fields *, struct span);

static field_fn framing_field(const uint8_t *name, size_t n)
{
    if (span_eq(name, n, "content-length"))
        return field_content_length;
    if (span_eq(name, n, "transfer-encoding"))
        return field_transfer_encoding;
    if (span_eq(name, n, "connection"))
        return field_connection;
    return NULL;
}

/* field-line = field-name ":" OWS field-value OWS. Finds the name's length
 * and the colon; 0, or the fatal HT_AN_HEADER_INVALID. Inline: once per
 * field line, a call cost as much as its work. */
static inline uint32_t field_name(struct span l, size_t *name_len, size_t *colon,
                                  uint32_t *anomalies)
{
    size_t i = 0;
    /* four at a time while they are all tchars: most of a name */
    while (i + 4 <= l.n && all_tchar4(l.p + i))
        i += 4;
    while (i < l.n && is_tchar(l.p[i]))
        i++;
    *name_len = i;
    while (i < l.n && is_ows(l.p[i]))
        i++;
    if (*name_len == 0 || i >= l.n || l.p[i] != ':')
        return HT_AN_HEADER_INVALID;
    if (i > *name_len)
        *anomalies |= HT_AN_WS_BEFORE_COLON;
    *colon = i;
    return 0;
}

/* The fields of the head being parsed on this thread, for HT_PEV_HEAD
 * (fields.h's rules: the parser reads each line once, and hands on where
 * the names and values are). n > HT_FIELDS_LIST_MAX: too many to list. */
static _Thread_local struct {
    struct ht_field_at f[HT_FIELDS_LIST_MAX];
    uint32_t n;
} found;

/* Parse one field line plus its obs-fold continuations. Returns a fatal
 * anomaly bit or 0. */
static uint32_t parse_field(struct ht_parser *p, struct fields *f, struct span l, uint32_t *pos)
{
    struct ht_msg *m = &p->msg;
    size_t name_len, i;
    if (field_name(l, &name_len, &i, &m->anomalies))
        return HT_AN_HEADER_INVALID;
    struct span v = { l.p + i + 1, l.n - i - 1 };
    trim_ows(&v.p, &v.n);

    field_fn fn = framing_field(l.p, name_len);
    if (span_eq(l.p, name_len, "upgrade"))
        f->has_upgrade = true;
    else if (span_eq(l.p, name_len, "host"))
        f->hosts++;
    if (value_has_ctl(v.p, v.n))
        m->anomalies |= HT_AN_FIELD_VALUE_INVALID;

    /* obs-fold: a recipient may replace each fold with SP (RFC 9112 5.2);
     * framing fields are re-assembled that way before they are read. */
    char joined[1024];
    size_t jn = 0;
    bool folded = false;
    struct ht_field_at at = {
        .name = (uint32_t)(l.p - p->head), .name_len = (uint32_t)name_len,
        .value = (uint32_t)(v.p - p->head), .value_end = (uint32_t)(v.p + v.n - p->head),
        .fold_from = *pos,
    };
    at.span_end = at.value_end;
    while (*pos < p->head_len && is_ows(p->head[*pos])) {
        struct span c = next_line(p->head, p->head_len, pos, &m->anomalies);
        m->anomalies |= HT_AN_OBS_FOLD;
        size_t ce = c.n;
        while (ce && is_ows(c.p[ce - 1]))
            ce--;
        if (ce)
            at.span_end = (uint32_t)(c.p + ce - p->head);
        if (!fn)
            continue;
        if (!folded) {
            if (v.n >= sizeof(joined))
                return HT_AN_HEADER_INVALID;
            memcpy(joined, v.p, v.n);
            jn = v.n;
            folded = true;
        }
        trim_ows(&c.p, &c.n);
        if (jn + 1 + c.n >= sizeof(joined))
            return HT_AN_HEADER_INVALID;
        joined[jn++] = ' ';
        memcpy(joined + jn, c.p, c.n);
        jn += c.n;
    }
    at.fold_to = *pos;
    if (found.n < HT_FIELDS_LIST_MAX)
        found.f[found.n] = at;
    if (found.n <= HT_FIELDS_LIST_MAX)
        found.n++;
    if (fn)
        fn(f, folded ? (struct span){ (const uint8_t *)joined, jn } : v);
    return 0;
}

/* Which form the request target has (RFC 9112 3.2) and whether it fits
 * the method; Host presence (3.2); what the request asks of the response. */
static void request_checks(struct ht_parser *p, const struct fields *f)
{
    struct ht_msg *m = &p->msg;
    const uint8_t *meth = p->head, *t = p->head + m->target_off;
    size_t tn = m->target_len;
    bool connect = m->method_len == 7 && !memcmp(meth, "CONNECT", 7);
    bool options = m->method_len == 7 && !memcmp(meth, "OPTIONS", 7);
    bool origin = t[0] == '/';
    bool asterisk = tn == 1 && t[0] == '*';
    const uint8_t *colon = memchr(t, ':', tn);
    bool absolute = !origin && colon && colon > t && (size_t)(colon - t) + 2 < tn &&
                    colon[1] == '/' && colon[2] == '/';
    bool authority = !origin && !absolute && !asterisk && colon && !memchr(t, '/', tn);

    if (connect ? !authority : !(origin || absolute || (asterisk && options)))
        m->anomalies |= HT_AN_TARGET_FORM;
    if (memchr(t, '#', tn))
        m->anomalies |= HT_AN_FRAGMENT_IN_TARGET;  /* no form allows one */
    if (f->hosts > 1)
        m->anomalies |= HT_AN_DUPLICATE_HOST;
    else if (f->hosts == 0 && m->version_minor >= 1)
        m->anomalies |= HT_AN_MISSING_HOST;

    if (m->method_len == 4 && !memcmp(meth, "HEAD", 4))
        m->req_flags |= HT_REQF_HEAD;
    if (connect)
        m->req_flags |= HT_REQF_CONNECT;
    if (f->has_upgrade && f->conn_upgrade)
        m->req_flags |= HT_REQF_UPGRADE;
}

/* Decide the message body length: RFC 9112 section 6.3, rules in order. */
static uint32_t decide_framing(struct ht_parser *p, const struct fields *f)
{
    struct ht_msg *m = &p->msg;
    bool req = p->dir == HT_REQ;

    /* HTTP/1.0 closes unless asked to keep alive (RFC 9112 9.3). */
    m->conn_close = f->conn_close || (m->version_minor == 0 && !f->conn_keep_alive);
    if (f->cl_dup)
        m->anomalies |= HT_AN_CL_DUPLICATE;
    if (f->te_unknown)
        m->anomalies |= HT_AN_TE_UNKNOWN;
    /* A bad Content-Length is an unrecoverable error only when it would be
     * used: Transfer-Encoding overrides it (RFC 9112 6.3 rules 3 and 5). */
    if (f->cl_bad) {
        if (!f->te_present)
            return HT_AN_CL_INVALID;
        m->anomalies |= HT_AN_CL_INVALID;
    }
    if (f->cl_conflict) {
        if (!f->te_present)
            return HT_AN_CL_CONFLICT;
        m->anomalies |= HT_AN_CL_CONFLICT;
    }

    if (req) {
        request_checks(p, f);
    } else {
        uint16_t s = m->status;
        if (p->req_flags & HT_REQF_HEAD) {
            m->framing = HT_FRAME_NONE;
            return 0;
        }
        if (s == 101) {
            if (!(p->req_flags & HT_REQF_UPGRADE))
                m->anomalies |= HT_AN_UNSOLICITED_101;
            m->framing = HT_FRAME_TUNNEL;
            return 0;
        }
        if (s < 200 || s == 204 || s == 304) {
            m->framing = HT_FRAME_NONE;
            return 0;
        }
        if ((p->req_flags & HT_REQF_CONNECT) && s < 300) {
            m->framing = HT_FRAME_TUNNEL;
            return 0;
        }
    }

    if (f->te_present) {
        if (f->have_cl)
            m->anomalies |= HT_AN_CL_WITH_TE;
        if (m->version_minor == 0)
            m->anomalies |= HT_AN_TE_HTTP10;
        if (f->te_last_chunked && !f->te_chunked_early) {
            m->framing = HT_FRAME_CHUNKED;
            return 0;
        }
        if (f->te_chunked_early || req)
            m->anomalies |= HT_AN_TE_CHUNKED_NOT_LAST;
        if (req)
            return HT_AN_TE_CHUNKED_NOT_LAST;   /* 400: length unknowable */
        m->framing = HT_FRAME_CLOSE;
        return 0;
    }
    if (f->have_cl) {
        m->framing = HT_FRAME_LENGTH;
        m->content_length = f->cl;
        return 0;
    }
    m->framing = req ? HT_FRAME_NONE : HT_FRAME_CLOSE;
    return 0;
}

/* Methods whose content has no defined semantics (RFC 9110 9.3.1, 9.3.2,
 * 9.3.5, 9.3.7, 9.3.8): many servers ignore such a body and read it as the
 * next request, a known smuggling shape. */
static bool bodiless_method(const uint8_t *m, size_t n)
{
    static const char *const names[] = { "GET", "HEAD", "DELETE", "OPTIONS", "TRACE" };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (n == strlen(names[i]) && !memcmp(m, names[i], n))
            return true;
    return false;
}

/* A request framed with content where the method says there is none.
 * CONNECT has no content (RFC 9110 9.3.6) though RFC 9112 6 frames by the
 * fields: read as no body (what follows the head is the tunnel's, or the
 * next request), flagged either way. */
static void request_content_checks(struct ht_parser *p)
{
    struct ht_msg *m = &p->msg;
    bool content = m->framing == HT_FRAME_CHUNKED ||
                   (m->framing == HT_FRAME_LENGTH && m->content_length > 0);
    if (!content)
        return;
    if (m->req_flags & HT_REQF_CONNECT) {
        m->anomalies |= HT_AN_BODY_ON_CONNECT;
        m->framing = HT_FRAME_NONE;
        m->content_length = 0;
    } else if (bodiless_method(p->head, m->method_len)) {
        m->anomalies |= HT_AN_BODY_ON_BODILESS_METHOD;
    }
}

static uint32_t parse_head(struct ht_parser *p)
{
    uint32_t pos = 0;
    struct span l = next_line(p->head, p->head_len, &pos, &p->msg.anomalies);
    bool ok = p->dir == HT_REQ ? parse_request_line(p, l) : parse_status_line(p, l);
    if (!ok)
        return HT_AN_START_LINE_INVALID;

    struct fields f = { 0 };
    found.n = 0;
    /* Whitespace-preceded lines right after the start line are consumed
     * without further processing (RFC 9112 2.2). */
    while (pos < p->head_len && is_ows(p->head[pos])) {
        next_line(p->head, p->head_len, &pos, &p->msg.anomalies);
        p->msg.anomalies |= HT_AN_WS_AFTER_START_LINE;
    }
    for (;;) {
        l = next_line(p->head, p->head_len, &pos, &p->msg.anomalies);
        if (l.n == 0)
            break;
        uint32_t fatal = parse_field(p, &f, l, &pos);
        if (fatal)
            return fatal;
    }
    uint32_t fatal = decide_framing(p, &f);
    if (!fatal && p->dir == HT_REQ)
        request_content_checks(p);
    return fatal;
}

/* ---- the state machine ---- */

static size_t fail(struct ht_parser *p, struct ht_pev *ev, uint32_t anomaly, size_t consumed)
{
    p->msg.anomalies |= anomaly;
    p->state = S_DEAD;
    ev->type = HT_PEV_ERROR;
    ev->anomaly = anomaly;
    return consumed;
}

/* ---- head buffers ----
 *
 * Between messages a parser holds no head buffer: when a message ends its
 * buffer goes to a small per-thread stash, and the next message read on
 * this thread, on any connection, takes one from there. An idle keep-alive
 * connection then costs no head memory, and a busy thread no malloc per
 * message. Buffers over STASH_BUF_MAX are freed instead; a thread's stash
 * is freed when the thread exits. */

#define STASH_MAX 8
#define STASH_BUF_MAX 4096u

static _Thread_local struct {
    uint8_t *buf[STASH_MAX];
    uint32_t cap[STASH_MAX];
    unsigned n;
    bool registered;
} stash __attribute__((tls_model("initial-exec")));
static pthread_key_t stash_key;
static pthread_once_t stash_once = PTHREAD_ONCE_INIT;

static void stash_free(void *unused)
{
    (void)unused;
    while (stash.n)
        free(stash.buf[--stash.n]);
}

static void stash_key_create(void)
{
    if (pthread_key_create(&stash_key, stash_free))
        stash_key = (pthread_key_t)-1;
}

static void head_release(struct ht_parser *p)
{
    if (!p->head)
        return;
    if (p->head_cap <= STASH_BUF_MAX && stash.n < STASH_MAX) {
        if (!stash.registered) {
            stash.registered = true;
            pthread_once(&stash_once, stash_key_create);
            if (stash_key != (pthread_key_t)-1)
                pthread_setspecific(stash_key, &stash);
        }
        stash.buf[stash.n] = p->head;
        stash.cap[stash.n++] = p->head_cap;
    } else {
        free(p->head);
    }
    p->head = NULL;
    p->head_cap = 0;
}

static bool head_append(struct ht_parser *p, const uint8_t *s, size_t n)
{
    if (!p->head && stash.n) {
        p->head = stash.buf[--stash.n];
        p->head_cap = stash.cap[stash.n];
    }
    if (p->head_len + n > p->head_cap) {
        uint32_t cap = p->head_cap ? p->head_cap : HEAD_INITIAL_CAP;
        while (cap < p->head_len + n)
            cap *= 2;
        if (cap > p->head_max)
            cap = p->head_max;
        uint8_t *nh = realloc(p->head, cap);
        if (!nh)
            return false;
        p->head = nh;
        p->head_cap = cap;
    }
    memcpy(p->head + p->head_len, s, n);
    p->head_len += (uint32_t)n;
    return true;
}

static void after_end(struct ht_parser *p)
{
    head_release(p);        /* the head (and trailers) were handed out */
    if (p->msg.framing == HT_FRAME_TUNNEL)
        p->state = S_TUNNEL;
    else if (p->dir == HT_REQ && (p->msg.req_flags & (HT_REQF_UPGRADE | HT_REQF_CONNECT)))
        p->state = S_PAUSED;
    else
        p->state = S_START;
}

static void head_done(struct ht_parser *p)
{
    switch (p->msg.framing) {
    case HT_FRAME_LENGTH:
        p->remaining = p->msg.content_length;
        p->state = p->remaining ? S_BODY_LEN : S_END_PENDING;
        break;
    case HT_FRAME_CHUNKED:
        p->state = S_CHUNK_LINE;
        p->sub = 0;
        p->aux_len = 0;
        p->chunk_size = 0;
        break;
    case HT_FRAME_CLOSE:
        p->state = S_BODY_CLOSE;
        break;
    default:
        p->state = S_END_PENDING;
        break;
    }
}

/* Accumulate lines into p->head until an empty line; *complete then. A
 * section over head_max is the fatal anomaly too_large. What this call
 * takes is appended in one piece. */
static size_t collect_lines(struct ht_parser *p, const uint8_t *buf, size_t len,
                            struct ht_pev *ev, uint32_t too_large, bool *complete)
{
    size_t pos = 0;
    size_t base = p->head_len;          /* buf[0]'s offset in the head */
    size_t line_start = p->line_start;  /* head offsets, as if appended */
    while (pos < len) {
        const uint8_t *nl = memchr(buf + pos, '\n', len - pos);
        size_t take = nl ? (size_t)(nl - (buf + pos)) + 1 : len - pos;
        if (base + pos + take > p->head_max) {
            if (pos && !head_append(p, buf, pos))   /* the lines before it */
                return fail(p, ev, 0, 0);
            p->line_start = (uint32_t)line_start;
            return fail(p, ev, too_large, pos);
        }
        pos += take;
        if (!nl)
            break;
        size_t line_len = base + pos - 1 - line_start;
        uint8_t first = line_len ? (line_start < base ? p->head[line_start] : buf[line_start - base]) : 0;
        bool empty = line_len == 0 || (line_len == 1 && first == '\r');
        line_start = base + pos;
        if (empty) {
            *complete = true;
            break;
        }
    }
    if (pos && !head_append(p, buf, pos))
        return fail(p, ev, 0, 0);
    p->line_start = (uint32_t)line_start;
    return pos;
}

static size_t step_head(struct ht_parser *p, const uint8_t *buf, size_t len, struct ht_pev *ev)
{
    bool complete = false;
    size_t pos = collect_lines(p, buf, len, ev, HT_AN_HEADER_TOO_LARGE, &complete);
    if (!complete)
        return pos;
    uint32_t fatal = parse_head(p);
    if (fatal)
        return fail(p, ev, fatal, pos);
    head_done(p);
    ev->type = HT_PEV_HEAD;
    ev->fields = found.n <= HT_FIELDS_LIST_MAX ? found.f : NULL;
    ev->nfields = found.n <= HT_FIELDS_LIST_MAX ? found.n : 0;
    return pos;
}

/* A complete trailer section (in p->head): field lines, checked like the
 * head's (RFC 9112 7.1.2). Framing and routing fields are not allowed in
 * trailers (RFC 9110 6.5.1) and are flagged. Returns a fatal bit or 0. */
static uint32_t check_trailers(struct ht_parser *p)
{
    uint32_t pos = 0;
    for (;;) {
        struct span l = next_line(p->head, p->head_len, &pos, &p->msg.anomalies);
        if (l.n == 0)
            return 0;
        if (is_ows(l.p[0])) {
            p->msg.anomalies |= HT_AN_OBS_FOLD;
            continue;
        }
        size_t name_len, colon;
        if (field_name(l, &name_len, &colon, &p->msg.anomalies))
            return HT_AN_HEADER_INVALID;
        if (span_eq(l.p, name_len, "content-length") || span_eq(l.p, name_len, "transfer-encoding") ||
            span_eq(l.p, name_len, "host"))
            p->msg.anomalies |= HT_AN_TRAILER_FRAMING;
    }
}

/* The chunk-size line: chunk-size [ chunk-ext ] CRLF. sub: 0 before the
 * first digit, 1 in digits, 2 in extensions, 3 after CR. */
static size_t step_chunk_line(struct ht_parser *p, const uint8_t *buf, size_t len,
                              struct ht_pev *ev, bool *line_done)
{
    size_t i = 0;
    for (; i < len; i++) {
        uint8_t c = buf[i];
        if (++p->aux_len > CHUNK_LINE_MAX)
            return fail(p, ev, HT_AN_CHUNK_EXT_TOO_LONG, i);
        int h = hex_value(c);
        switch (p->sub) {
        case 0:
            if (h < 0)
                return fail(p, ev, HT_AN_CHUNK_SIZE_INVALID, i);
            p->chunk_size = (uint64_t)h;
            p->sub = 1;
            break;
        case 1:
            if (h >= 0) {
                if (p->chunk_size >> 59)
                    return fail(p, ev, HT_AN_CHUNK_SIZE_OVERFLOW, i);
                p->chunk_size = p->chunk_size * 16 + (uint64_t)h;
            } else if (c == ';' || is_ows(c)) {
                p->sub = 2;
            } else if (c == '\r') {
                p->sub = 3;
            } else if (c == '\n') {
                p->msg.anomalies |= HT_AN_BARE_LF;
                *line_done = true;
                return i + 1;
            } else {
                return fail(p, ev, HT_AN_CHUNK_SIZE_INVALID, i);
            }
            break;
        case 2:
            if (c == '\r') {
                p->sub = 3;
            } else if (c == '\n') {
                p->msg.anomalies |= HT_AN_BARE_LF;
                *line_done = true;
                return i + 1;
            }
            break;
        default:
            if (c != '\n')
                return fail(p, ev, HT_AN_CHUNK_SIZE_INVALID, i);
            *line_done = true;
            return i + 1;
        }
    }
    return i;
}

static size_t emit_body(struct ht_parser *p, const uint8_t *buf, size_t n, struct ht_pev *ev)
{
    p->body_size += n;
    ev->type = HT_PEV_BODY;
    ev->data = buf;
    ev->len = n;
    return n;
}

size_t ht_parser_next(struct ht_parser *p, const uint8_t *buf, size_t len, struct ht_pev *ev)
{
    size_t pos = 0;
    memset(ev, 0, sizeof(*ev));

    while (ev->type == HT_PEV_NONE) {
        const uint8_t *b = buf + pos;
        size_t n = len - pos;
        switch ((enum state)p->state) {
        case S_START: {
            /* Leading empty lines before a request are ignored (9112 2.2). */
            size_t k = 0;
            while (k < n && (b[k] == '\r' || b[k] == '\n'))
                k++;
            pos += k;
            p->skipped_lines |= k > 0;
            if (k == n)
                return pos;
            memset(&p->msg, 0, sizeof(p->msg));
            /* Allowed before a request (9112 2.2); odd before a response. */
            if (p->skipped_lines && p->dir == HT_RESP)
                p->msg.anomalies |= HT_AN_LEADING_EMPTY_LINES;
            p->skipped_lines = false;
            p->head_len = 0;
            p->line_start = 0;
            p->body_size = 0;
            p->state = S_HEAD;
            ev->type = HT_PEV_BEGIN;
            return pos;
        }
        case S_HEAD:
            if (n == 0)
                return pos;
            return pos + step_head(p, b, n, ev);
        case S_END_PENDING:
            after_end(p);
            ev->type = HT_PEV_END;
            return pos;
        case S_BODY_LEN: {
            if (n == 0)
                return pos;
            size_t take = n < p->remaining ? n : (size_t)p->remaining;
            p->remaining -= take;
            if (!p->remaining)
                p->state = S_END_PENDING;
            return pos + emit_body(p, b, take, ev);
        }
        case S_BODY_CLOSE:
            if (n == 0)
                return pos;
            return pos + emit_body(p, b, n, ev);
        case S_CHUNK_LINE: {
            bool done = false;
            pos += step_chunk_line(p, b, n, ev, &done);
            if (!done)
                return pos;     /* input exhausted, or ERROR */
            if (p->chunk_size == 0) {
                /* The head was handed out at HEAD; its buffer now collects
                 * the trailer section. */
                p->state = S_TRAILER;
                p->head_len = 0;
                p->line_start = 0;
            } else {
                p->state = S_CHUNK_DATA;
                p->remaining = p->chunk_size;
            }
            break;
        }
        case S_CHUNK_DATA: {
            if (n == 0)
                return pos;
            size_t take = n < p->remaining ? n : (size_t)p->remaining;
            p->remaining -= take;
            if (!p->remaining) {
                p->state = S_CHUNK_DATA_END;
                p->sub = 0;
            }
            return pos + emit_body(p, b, take, ev);
        }
        case S_CHUNK_DATA_END:
            if (n == 0)
                return pos;
            if (p->sub == 0 && b[0] == '\r') {
                p->sub = 1;
            } else if (b[0] == '\n') {
                if (p->sub == 0)
                    p->msg.anomalies |= HT_AN_BARE_LF;
                p->state = S_CHUNK_LINE;
                p->sub = 0;
                p->aux_len = 0;
            } else {
                return fail(p, ev, HT_AN_CHUNK_SIZE_INVALID, pos);
            }
            pos++;
            break;
        case S_TRAILER: {
            bool done = false;
            pos += collect_lines(p, b, n, ev, HT_AN_TRAILER_TOO_LARGE, &done);
            if (!done)
                return pos;     /* input exhausted, or ERROR */
            uint32_t fatal = check_trailers(p);
            if (fatal)
                return fail(p, ev, fatal, pos);
            after_end(p);
            ev->type = HT_PEV_END;
            return pos;
        }
        case S_TUNNEL:
            if (n == 0)
                return pos;
            ev->type = HT_PEV_TUNNEL;
            ev->data = b;
            ev->len = n;
            return len;
        case S_PAUSED:
            return pos;
        case S_DEAD:
        case S_EOF:
            return len;
        }
    }
    return pos;
}

void ht_parser_eof(struct ht_parser *p, struct ht_pev *ev)
{
    memset(ev, 0, sizeof(*ev));
    switch ((enum state)p->state) {
    case S_BODY_CLOSE:
    case S_END_PENDING:
        ev->type = HT_PEV_END;
        break;
    case S_HEAD:
    case S_BODY_LEN:
    case S_CHUNK_LINE:
    case S_CHUNK_DATA:
    case S_CHUNK_DATA_END:
    case S_TRAILER:
        ev->type = HT_PEV_TRUNCATED;
        break;
    default:
        break;
    }
    if (p->state != S_DEAD)
        p->state = S_EOF;
}

void ht_parser_init(struct ht_parser *p, enum ht_dir dir, uint32_t head_max)
{
    memset(p, 0, sizeof(*p));
    p->dir = (uint8_t)dir;
    p->head_max = head_max ? head_max : 65536;
    p->state = S_START;
}

void ht_parser_free(struct ht_parser *p)
{
    head_release(p);
    p->head_len = 0;
}

bool ht_parser_paused(const struct ht_parser *p) { return p->state == S_PAUSED; }
bool ht_parser_dead(const struct ht_parser *p) { return p->state == S_DEAD; }

void ht_parser_resume(struct ht_parser *p)
{
    if (p->state == S_PAUSED)
        p->state = S_START;
}

void ht_parser_tunnel(struct ht_parser *p)
{
    if (p->state != S_DEAD && p->state != S_EOF)
        p->state = S_TUNNEL;
}

uint64_t ht_parser_body_room(const struct ht_parser *p)
{
    switch ((enum state)p->state) {
    case S_BODY_LEN:
    case S_CHUNK_DATA:
        return p->remaining;
    case S_BODY_CLOSE:
        return UINT64_MAX;
    default:
        return 0;
    }
}

void ht_parser_skip_body(struct ht_parser *p, uint64_t n)
{
    p->body_size += n;
    if (p->state == S_BODY_CLOSE)
        return;
    p->remaining -= n;
    if (p->remaining)
        return;
    if (p->state == S_BODY_LEN) {
        p->state = S_END_PENDING;
    } else {
        p->state = S_CHUNK_DATA_END;
        p->sub = 0;
    }
}

void ht_parser_kill(struct ht_parser *p)
{
    if (p->state != S_EOF)
        p->state = S_DEAD;
}
