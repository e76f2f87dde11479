/*
 * redact.c - secrets out of exchange records, in place (redact.h).
 *
 * Every rewrite is a series of replaced spans over the original bytes, in
 * order: a splice copies what lies between them into a new buffer, and the
 * replacement text in place of each span, so everything that is not a
 * secret keeps its exact bytes (JSON numbers, key order, duplicate keys,
 * whitespace). If that buffer cannot be allocated, a head is masked in
 * place ('*' over the secret bytes, same length, offsets unchanged) and a
 * body excerpt is dropped.
 *
 * JSON bodies are walked by a small scanner that only needs to find
 * strings, brackets, commas and colons; it is bounds-safe on any input, so
 * an excerpt cut at the cap is redacted as far as it goes. jansson decides
 * whether a body without a JSON content type is JSON after all.
 *
 * Thread-safety: see redact.h. The configuration is written at start-up
 * only; everything else works on locals and the exchange it is given.
 */
#include "core/redact.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/fields.h"
#include "core/text.h"

static struct ht_redact_cfg active = { .enabled = true };

/* ---- names ---- */

/* Default lists, normalised (lowercase, no '-' or '_'). */
struct word { const char *s; size_t n; };
#define W(s) { s, sizeof(s) - 1 }
static const struct word default_headers[] = {
    W("authorization"), W("proxyauthorization"), W("cookie"), W("setcookie"), W("xapikey"),
    { NULL, 0 },
};
static const struct word default_query[] = {
    W("token"), W("accesstoken"), W("refreshtoken"), W("idtoken"), W("password"),
    W("passwd"), W("pwd"), W("secret"), W("clientsecret"), W("apikey"), W("key"), W("sig"),
    W("signature"), W("auth"), W("code"), { NULL, 0 },
};
static const struct word default_fields[] = {
    W("password"), W("passwd"), W("pwd"), W("passphrase"), W("secret"), W("clientsecret"),
    W("token"), W("accesstoken"), W("refreshtoken"), W("idtoken"), W("apikey"),
    W("privatekey"), W("authorization"), { NULL, 0 },
};
static const struct word *const defaults[3] = { default_headers, default_query, default_fields };

/* A name ending in one of these is sensitive in every list
 * ("x-auth-token", "db_password", "clientSecret", "X-Amz-Signature").
 * sensitive() knows their last letters, for a quick no. */
static const struct word suffixes[] = {
    W("password"), W("passwd"), W("secret"), W("token"), W("apikey"), W("privatekey"),
    W("signature"), { NULL, 0 },
};

#define NORM_MAX 128
#define SHOWN_MAX 48

struct name {
    char norm[NORM_MAX];        /* normalised; its tail when too long */
    size_t len;
    bool whole;                 /* norm is the whole name */
    const uint8_t *shown;       /* its first bytes, as sent (unescaped): the */
    size_t shown_len;           /* bytes given to name_set, or shown_buf */
    uint8_t shown_buf[SHOWN_MAX];
};


/* Fill nm from already-unescaped name bytes, which must outlive it (they
 * are shown from where they are). */
static void name_set(struct name *nm, const uint8_t *s, size_t n)
{
    nm->shown_len = n < SHOWN_MAX ? n : SHOWN_MAX;
    nm->shown = s;
    if (n < NORM_MAX) {                         /* the usual case: all of it fits */
        size_t j = 0;
        for (size_t i = 0; i < n; i++)
            if (s[i] != '-' && s[i] != '_')
                nm->norm[j++] = (char)ht_ascii_lower(s[i]);
        nm->norm[j] = 0;
        nm->len = j;
        nm->whole = true;
        return;
    }
    size_t j = NORM_MAX - 1;                    /* keep the tail, for suffixes */
    nm->norm[j] = 0;
    nm->whole = true;
    for (size_t i = n; i > 0; i--) {
        uint8_t c = s[i - 1];
        if (c == '-' || c == '_')
            continue;
        if (j == 0) {
            nm->whole = false;
            break;
        }
        nm->norm[--j] = (char)ht_ascii_lower(c);
    }
    nm->len = NORM_MAX - 1 - j;
    memmove(nm->norm, nm->norm + j, nm->len + 1);
}

static bool in_list(const struct word *list, const char *s, size_t n)
{
    for (; list->s; list++)
        if (list->n == n && list->s[0] == s[0] && !memcmp(list->s, s, n))
            return true;
    return false;
}

static bool sensitive(const struct ht_redact_cfg *cfg, enum ht_redact_list which,
                      const struct name *nm)
{
    if (!nm->len)
        return false;
    if (nm->whole) {
        if (in_list(defaults[which], nm->norm, nm->len))
            return true;
        for (unsigned i = 0; i < cfg->n_extra[which]; i++)
            if (!strcmp(cfg->extra[which][i], nm->norm))
                return true;
    }
    switch (nm->norm[nm->len - 1]) {
    case 'd': case 't': case 'n': case 'y': case 'e':
        break;
    default:
        return false;                           /* no suffix ends so */
    }
    char last = nm->norm[nm->len - 1];
    for (const struct word *w = suffixes; w->s; w++)
        if (w->s[w->n - 1] == last && nm->len >= w->n &&
            !memcmp(nm->norm + nm->len - w->n, w->s, w->n))
            return true;
    return false;
}

/* Whether the normalised name is exactly the literal word (lengths first:
 * every header passes through several of these). */
#define name_is(nm, word) \
    ((nm)->whole && (nm)->len == sizeof(word) - 1 && !memcmp((nm)->norm, word, sizeof(word) - 1))

/* ---- unescaping (the result is never longer than the input) ---- */

enum vkind { V_RAW, V_PCT, V_JSON };

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = ht_ascii_lower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* application/x-www-form-urlencoded: "+" is a space, %XX a byte. */
static size_t pct_decode(const uint8_t *s, size_t n, uint8_t *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int h, l;
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%' && i + 2 < n && (h = hexval(s[i + 1])) >= 0 &&
                   (l = hexval(s[i + 2])) >= 0) {
            out[o++] = (uint8_t)(h << 4 | l);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    return o;
}

static size_t utf8_put(uint32_t cp, uint8_t *out)
{
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xc0 | cp >> 6);
        out[1] = (uint8_t)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xe0 | cp >> 12);
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (uint8_t)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (uint8_t)(0xf0 | cp >> 18);
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (uint8_t)(0x80 | (cp & 0x3f));
    return 4;
}

/* Four hex digits at s (n available), or -1. */
static long hex4(const uint8_t *s, size_t n)
{
    long v = 0;
    if (n < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        int h = hexval(s[i]);
        if (h < 0)
            return -1;
        v = v << 4 | h;
    }
    return v;
}

/* The inside of a JSON string (no quotes). Bad escapes are kept as is. */
static size_t json_unescape(const uint8_t *s, size_t n, uint8_t *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\' || i + 1 >= n) {
            out[o++] = s[i];
            continue;
        }
        uint8_t e = s[++i];
        const char *simple = strchr("\"\\/bfnrt", e);
        if (simple && e) {
            out[o++] = (uint8_t)("\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"]);
            continue;
        }
        long cp = e == 'u' ? hex4(s + i + 1, n - i - 1) : -1;
        if (cp < 0) {
            out[o++] = '\\';
            out[o++] = e;
            continue;
        }
        i += 4;
        if (cp >= 0xd800 && cp < 0xdc00 && i + 2 < n && s[i + 1] == '\\' && s[i + 2] == 'u') {
            long lo = hex4(s + i + 3, n - i - 3);
            if (lo >= 0xdc00 && lo < 0xe000) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                i += 6;
            }
        }
        if (cp >= 0xd800 && cp < 0xe000)
            cp = 0xfffd;                        /* lone surrogate */
        o += utf8_put((uint32_t)cp, out + o);
    }
    return o;
}

/* Unescape s into *out: buf (cap bytes) when it fits, else malloc'd (the
 * caller frees *out when it is not buf); on no memory *out = s, raw. */
static size_t unescape(enum vkind k, const uint8_t *s, size_t n, uint8_t *buf, size_t cap,
                       const uint8_t **out)
{
    if (k == V_RAW) {
        *out = s;
        return n;
    }
    uint8_t *dst = n <= cap ? buf : malloc(n);
    if (!dst) {
        *out = s;
        return n;
    }
    *out = dst;
    return k == V_PCT ? pct_decode(s, n, dst) : json_unescape(s, n, dst);
}

static void name_from(struct name *nm, enum vkind k, const uint8_t *s, size_t n)
{
    uint8_t buf[512];
    const uint8_t *u;
    if (!memchr(s, k == V_JSON ? '\\' : '%', n) && (k != V_PCT || !memchr(s, '+', n)))
        k = V_RAW;                              /* nothing to unescape */
    size_t m = unescape(k, s, n, buf, sizeof(buf), &u);
    name_set(nm, u, m);
    if (u != s) {                               /* its bytes go with the buffer */
        memcpy(nm->shown_buf, u, nm->shown_len);
        nm->shown = nm->shown_buf;
    }
    if (u != s && u != buf)
        free((void *)u);
}

/* ---- replacement values ---- */

#define REP_MAX 32

/* "REDACTED", or "hmac:" + the first 8 bytes of HMAC-SHA-256(key, value)
 * in hex, over the unescaped value so that a secret sent in a query, a
 * form and a JSON body gets one pseudonym. */
static size_t replacement(const struct ht_redact_cfg *cfg, enum vkind k, const uint8_t *v,
                          size_t n, char out[REP_MAX])
{
    if (!cfg->key_len) {
        memcpy(out, "REDACTED", 9);
        return 8;
    }
    uint8_t buf[512], mac[crypto_auth_hmacsha256_BYTES];
    const uint8_t *u;
    size_t m = unescape(k, v, n, buf, sizeof(buf), &u);
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, cfg->key, cfg->key_len);
    crypto_auth_hmacsha256_update(&st, u, m);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(&st, sizeof(st));
    if (u != v && u != buf)
        free((void *)u);
    sodium_memzero(buf, sizeof(buf));
    memcpy(out, "hmac:", 5);
    sodium_bin2hex(out + 5, REP_MAX - 5, mac, 8);
    return 5 + 16;
}

/* ---- what was redacted ---- */

/* Add "kind:name" to ex->redacted (printable ASCII; header names
 * lowercase), once. */
static void note(struct ht_exchange *ex, const char *kind, const struct name *nm)
{
    char item[SHOWN_MAX + 16];
    size_t n = strlen(kind);
    memcpy(item, kind, n);
    item[n++] = ':';
    bool header = !strcmp(kind, "header");
    for (size_t i = 0; i < nm->shown_len; i++) {
        uint8_t c = header ? ht_ascii_lower(nm->shown[i]) : nm->shown[i];
        item[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    item[n] = 0;
    size_t used = 0;
    const char *p = ex->redacted.names;
    while (*p) {
        if (!strcmp(p, item))
            return;                             /* already listed */
        size_t l = strlen(p) + 1;
        used += l;
        p += l;
    }
    /* item, its NUL, and the empty name that ends the list */
    if (used + n + 2 > sizeof(ex->redacted.names)) {
        ex->redacted.more = true;
        return;
    }
    memcpy(ex->redacted.names + used, item, n + 1);
    ex->redacted.names[used + n + 1] = 0;
    ex->redacted.count++;
}

bool ht_redact_body_field(struct ht_exchange *ex, const char *name)
{
    struct name nm;
    if (!active.enabled)
        return false;
    name_set(&nm, (const uint8_t *)name, strlen(name));
    if (!sensitive(&active, HT_REDACT_FIELDS, &nm))
        return false;
    note(ex, "body", &nm);
    return true;
}

const char *ht_redact_next(const struct ht_exchange *ex, const char *prev)
{
    const char *p = prev ? prev + strlen(prev) + 1 : ex->redacted.names;
    const char *end = ex->redacted.names + sizeof(ex->redacted.names);
    return p < end && *p ? p : NULL;
}

/* ---- splicing ---- */

struct splice {
    uint8_t *src;
    size_t n;
    size_t done;                /* src bytes already copied or replaced */
    struct ht_buf out;
    bool mask;                  /* no memory: overwrite src in place */
    int err;
    int edits;
};

struct name_slot;

struct ctx {
    const struct ht_redact_cfg *cfg;
    struct ht_exchange *ex;
    struct name_slot *slots;    /* answers about header names, or NULL */
};

/* Replace src[off, off+len) (off >= every earlier span's end). */
static void sp_put(struct splice *sp, size_t off, size_t len, const char *rep, size_t rlen)
{
    sp->edits++;
    if (sp->mask) {
        for (size_t i = off; i < off + len; i++) {
            uint8_t c = sp->src[i];
            if (c != '\r' && c != '\n' && c != ' ' && c != '\t')
                sp->src[i] = '*';
        }
        return;
    }
    if (!sp->err && (ht_buf_append(&sp->out, sp->src + sp->done, off - sp->done) ||
                     ht_buf_append(&sp->out, rep, rlen)))
        sp->err = -ENOMEM;
    sp->done = off + len;
}

/* Where an original offset (not before the last span) ends up. */
static size_t sp_map(const struct splice *sp, size_t off)
{
    return sp->mask ? off : sp->out.len + (off - sp->done);
}

/* Replace one value with its replacement, noting "kind:name". */
static void redact_value(struct ctx *x, struct splice *sp, size_t off, size_t len,
                         enum vkind k, const char *kind, const struct name *name)
{
    char rep[REP_MAX];
    size_t rl = replacement(x->cfg, k, sp->src + off, len, rep);
    sp_put(sp, off, len, rep, rl);
    note(x->ex, kind, name);
}

/* ---- name=value&... (query strings, form bodies) ---- */

/* The first '&' or ';' in s[off, end), or end. */
static size_t param_end(const uint8_t *s, size_t off, size_t end)
{
    while (off < end && s[off] != '&' && s[off] != ';')
        off++;
    return off;
}

/* Query strings use the query list; form bodies, the same syntax, both
 * lists (an OAuth token request posts code=..., client_secret=...).
 * Parameters are separated by '&' or ';' (many servers split on both:
 * "?x=1;api_key=.."); a sensitive value runs to the next '&', so
 * "token=a;b" is covered whichever way the server reads it. */
static void redact_params(struct ctx *x, struct splice *sp, size_t off, size_t end,
                          const char *kind, const struct name *as)
{
    bool form = !strcmp(kind, "body");
    const uint8_t *s = sp->src;
    while (off < end) {
        size_t pend = param_end(s, off, end);
        const uint8_t *eq = memchr(s + off, '=', pend - off);
        if (eq && (size_t)(eq - s) + 1 < pend) {
            struct name nm;
            size_t v = (size_t)(eq - s) + 1;
            name_from(&nm, V_PCT, s + off, (size_t)(eq - s) - off);
            if (sensitive(x->cfg, HT_REDACT_QUERY, &nm) ||
                (form && sensitive(x->cfg, HT_REDACT_FIELDS, &nm))) {
                const uint8_t *amp = memchr(s + v, '&', end - v);
                pend = amp ? (size_t)(amp - s) : end;
                redact_value(x, sp, v, pend - v, V_PCT, kind, as ? as : &nm);
            }
        }
        off = pend + 1;
    }
}

/* "scheme://user:pass@host/..." or "//user:pass@host/..." in src[off, end):
 * the password is replaced; a user part without one is replaced whole
 * (https://TOKEN@host/ is how tokens ride in URLs). */
static void redact_userinfo(struct ctx *x, struct splice *sp, size_t off, size_t end,
                            const char *kind, const struct name *as)
{
    const uint8_t *s = sp->src;
    size_t a = off;
    if (a < end && (s[a] | 0x20) >= 'a' && (s[a] | 0x20) <= 'z')   /* scheme: ALPHA *(...) */
        while (++a < end && (((s[a] | 0x20) >= 'a' && (s[a] | 0x20) <= 'z') ||
                             (s[a] >= '0' && s[a] <= '9') || s[a] == '+' || s[a] == '-' ||
                             s[a] == '.'))
            ;
    if (a > off && a < end && s[a] == ':')
        a++;
    else
        a = off;                                /* no scheme: "//host" or nothing */
    if (end - a < 2 || s[a] != '/' || s[a + 1] != '/')
        return;
    a += 2;
    size_t ae = a;
    while (ae < end && s[ae] != '/' && s[ae] != '?' && s[ae] != '#')
        ae++;
    const uint8_t *at = memrchr(s + a, '@', ae - a);
    if (!at)
        return;
    size_t ue = (size_t)(at - s);
    const uint8_t *colon = memchr(s + a, ':', ue - a);
    size_t v = colon ? (size_t)(colon - s) + 1 : a;
    if (v < ue)
        redact_value(x, sp, v, ue - v, V_PCT, kind, as);
}

/* The query of a request target or URL in src[off, end): after the first
 * '?', up to a '#'. */
static void redact_url_query(struct ctx *x, struct splice *sp, size_t off, size_t end,
                             const char *kind, const struct name *as)
{
    const uint8_t *q = memchr(sp->src + off, '?', end - off);
    if (!q)
        return;
    size_t qs = (size_t)(q - sp->src) + 1;
    const uint8_t *hash = memchr(sp->src + qs, '#', end - qs);
    redact_params(x, sp, qs, hash ? (size_t)(hash - sp->src) : end, kind, as);
}

/* ---- heads ---- */

static bool ows(uint8_t c) { return c == ' ' || c == '\t'; }

/* A field as fields.h reads it; value_end spans its continuation lines. */
struct field {
    size_t name, name_len;      /* offsets in the head */
    size_t value, value_end;    /* trimmed; across obs-fold lines */
    bool folded;
};

static struct field field_of(const struct ht_field_at *hf)
{
    return (struct field){ .name = hf->name, .name_len = hf->name_len, .value = hf->value,
                           .value_end = hf->span_end, .folded = hf->fold_to > hf->fold_from };
}

static size_t start_line_end(const uint8_t *h, size_t n) { return ht_fields_start(h, n); }

/* What a body is (B_OTHER, B_JSON, B_FORM), and B_ENCODED beside it when
 * its Content-Encoding is not identity. */
enum body_kind { B_OTHER = 0, B_JSON = 1, B_FORM = 2, B_TYPE = 3, B_ENCODED = 4 };


/* ---- header names: what redact_field needs to know of one ----
 *
 * The answer depends only on the name's bytes as sent and the extra
 * header names configured, and most heads repeat the same dozen names, so
 * each thread keeps the answers for the names it saw last (the bytes
 * compared whole, the configuration by its headers_gen; 0 is "no extra
 * names", the same answers for every such configuration). */
enum {
    NF_SENSITIVE = 1, NF_COOKIE = 2, NF_SETCOOKIE = 4, NF_AUTH = 8, NF_URL = 16,
    NF_CENC = 32, NF_CTYPE = 64,
};
#define NAME_SLOTS 64               /* a power of two */
#define NAME_SLOT_MAX 40            /* longer names are not kept */

struct name_slot {
    uint64_t gen;
    uint8_t len;                    /* 0: empty */
    uint8_t flags;
    uint8_t name[NAME_SLOT_MAX];
};
static _Atomic uint64_t headers_gens;

/* This thread's slots (NULL without memory: then nothing is kept). Not
 * thread-local storage: libhttptape.so, which links this file, must keep
 * its static TLS block small enough to be dlopen'ed. */
static pthread_key_t slots_key;
static pthread_once_t slots_once = PTHREAD_ONCE_INIT;
static bool slots_ok;

static void slots_init(void) { slots_ok = pthread_key_create(&slots_key, free) == 0; }

static struct name_slot *thread_slots(void)
{
    pthread_once(&slots_once, slots_init);
    if (!slots_ok)
        return NULL;
    struct name_slot *sl = pthread_getspecific(slots_key);
    if (!sl && (sl = calloc(NAME_SLOTS, sizeof(*sl))) && pthread_setspecific(slots_key, sl)) {
        free(sl);
        sl = NULL;
    }
    return sl;
}

static uint8_t name_flags_of(const struct ht_redact_cfg *cfg, const struct name *nm)
{
    uint8_t fl = 0;
    if (sensitive(cfg, HT_REDACT_HEADERS, nm))
        fl |= NF_SENSITIVE;
    if (name_is(nm, "cookie"))
        fl |= NF_COOKIE;
    if (name_is(nm, "setcookie"))
        fl |= NF_SETCOOKIE;
    if (name_is(nm, "authorization") || name_is(nm, "proxyauthorization"))
        fl |= NF_AUTH;
    if (name_is(nm, "referer") || name_is(nm, "location") || name_is(nm, "contentlocation"))
        fl |= NF_URL;
    if (name_is(nm, "contentencoding"))
        fl |= NF_CENC;
    if (name_is(nm, "contenttype"))
        fl |= NF_CTYPE;
    return fl;
}

/* The first and the last eight bytes of s[0..n) (n >= 1), as two words:
 * four and four, or byte by byte, for shorter names. Read only inside s. */
static inline void name_ends(const uint8_t *s, size_t n, uint64_t *a, uint64_t *b)
{
    if (n >= 8) {
        memcpy(a, s, 8);
        memcpy(b, s + n - 8, 8);
    } else if (n >= 4) {
        uint32_t x, y;
        memcpy(&x, s, 4);
        memcpy(&y, s + n - 4, 4);
        *a = x;
        *b = y;
    } else {
        *a = s[0] | (uint64_t)s[n / 2] << 8 | (uint64_t)s[n - 1] << 16;
        *b = 0;
    }
}

/* Equal bytes, n <= NAME_SLOT_MAX: a name of up to 16 bytes is its two
 * ends (they overlap and cover it), so no call for the usual name. */
static bool name_bytes_eq(const uint8_t *x, const uint8_t *y, size_t n)
{
    if (n > 16 || n < 4)
        return !memcmp(x, y, n);
    uint64_t xa, xb, ya, yb;
    name_ends(x, n, &xa, &xb);
    name_ends(y, n, &ya, &yb);
    return xa == ya && xb == yb;
}

static uint8_t header_name_flags(const struct ht_redact_cfg *cfg, struct name_slot *slots,
                                 const uint8_t *s, size_t n)
{
    uint64_t gen = cfg->n_extra[HT_REDACT_HEADERS] ? cfg->headers_gen : 0;
    bool keep = slots && n && n <= NAME_SLOT_MAX && (gen || !cfg->n_extra[HT_REDACT_HEADERS]);
    struct name_slot *sl = NULL;
    if (keep) {
        /* the slot from the name's length and ends: a multiply, not a
         * loop over its bytes (names that share them share a slot) */
        uint64_t a, b;
        name_ends(s, n, &a, &b);
        uint64_t h = (a ^ (b + n) * 0xc2b2ae3d27d4eb4fULL) * 0x9e3779b97f4a7c15ULL;
        sl = &slots[h >> 58 & (NAME_SLOTS - 1)];
        if (sl->len == n && sl->gen == gen && name_bytes_eq(sl->name, s, n))
            return sl->flags;
    }
    struct name nm;
    name_set(&nm, s, n);
    uint8_t fl = name_flags_of(cfg, &nm);
    if (keep) {
        sl->gen = gen;
        sl->len = (uint8_t)n;
        sl->flags = fl;
        memcpy(sl->name, s, n);
    }
    return fl;
}

static void body_kind_field(uint8_t fl, const uint8_t *v, size_t vl, enum body_kind *k)
{
    if (fl & NF_CENC) {
        if (!ht_ascii_is(v, vl, "identity"))
            *k = (enum body_kind)(*k | B_ENCODED);
    } else if ((fl & NF_CTYPE) && (*k & B_TYPE) == B_OTHER) {
        const uint8_t *semi = memchr(v, ';', vl);
        size_t ml = semi ? (size_t)(semi - v) : vl;
        while (ml && ows(v[ml - 1]))
            ml--;
        if (ht_ascii_is(v, ml, "application/json") || ht_ascii_is(v, ml, "text/json") ||
            (ml > 5 && ht_ascii_is(v + ml - 5, 5, "+json")))
            *k = (enum body_kind)(*k | B_JSON);
        else if (ht_ascii_is(v, ml, "application/x-www-form-urlencoded"))
            *k = (enum body_kind)(*k | B_FORM);
    }
}

/* "Cookie: a=1; b=2": each value. */
static void redact_cookie(struct ctx *x, struct splice *sp, const struct field *f,
                          bool first_only, const struct name *nm)
{
    size_t off = f->value;
    while (off < f->value_end) {
        const uint8_t *semi = memchr(sp->src + off, ';', f->value_end - off);
        size_t pend = semi ? (size_t)(semi - sp->src) : f->value_end;
        size_t ps = off, pe = pend;
        while (ps < pe && ows(sp->src[ps]))
            ps++;
        while (pe > ps && ows(sp->src[pe - 1]))
            pe--;
        const uint8_t *eq = memchr(sp->src + ps, '=', pe - ps);
        size_t v = eq ? (size_t)(eq - sp->src) + 1 : ps;   /* no '=': all of it */
        while (v < pe && ows(sp->src[v]))
            v++;
        if (v < pe)
            redact_value(x, sp, v, pe - v, V_RAW, "header", nm);
        if (first_only)
            return;                             /* Set-Cookie: attributes stay */
        off = pend + 1;
    }
}

static void redact_field(struct ctx *x, struct splice *sp, const struct field *f,
                         enum body_kind *kind)
{
    const uint8_t *h = sp->src;
    if (f->value == f->value_end)
        return;
    uint8_t fl = header_name_flags(x->cfg, x->slots, h + f->name, f->name_len);
    if (fl & (NF_CENC | NF_CTYPE))
        body_kind_field(fl, h + f->value, f->value_end - f->value, kind);
    if (!(fl & (NF_SENSITIVE | NF_URL)))
        return;                                 /* most fields */
    struct name nm;
    name_set(&nm, h + f->name, f->name_len);       /* field names are not escaped */
    if (!(fl & NF_SENSITIVE)) {
        redact_userinfo(x, sp, f->value, f->value_end, "header", &nm);
        redact_url_query(x, sp, f->value, f->value_end, "header", &nm);
        return;
    }
    if (!f->folded && (fl & (NF_COOKIE | NF_SETCOOKIE))) {
        redact_cookie(x, sp, f, fl & NF_SETCOOKIE, &nm);
        return;
    }
    size_t v = f->value;
    if (!f->folded && (fl & NF_AUTH)) {
        /* Keep the scheme ("Bearer", "Basic"): credentials follow a space. */
        size_t sp_at = v;
        while (sp_at < f->value_end && !ows(h[sp_at]))
            sp_at++;
        size_t cred = sp_at;
        while (cred < f->value_end && ows(h[cred]))
            cred++;
        if (cred < f->value_end)
            v = cred;
    }
    redact_value(x, sp, v, f->value_end - v, V_RAW, "header", &nm);
}

/* One pass over a head (its fields from l when l has them all); for a
 * request, toff and tlen get the target's new place. Returns what the head
 * says of its body. */
static enum body_kind head_pass(struct ctx *x, struct splice *sp, const struct ht_msg *msg,
                                uint32_t *toff, uint32_t *tlen, const struct ht_fields_list *l)
{
    enum body_kind kind = B_OTHER;
    if (msg) {
        size_t ts = msg->target_off, te = ts + msg->target_len;
        *toff = (uint32_t)sp_map(sp, ts);
        if (!(msg->req_flags & HT_REQF_CONNECT)) {
            struct name ui;
            name_set(&ui, (const uint8_t *)"userinfo", 8);
            redact_userinfo(x, sp, ts, te, "url", &ui);
            redact_url_query(x, sp, ts, te, "query", NULL);
        }
        *tlen = (uint32_t)(sp_map(sp, te) - *toff);
    }
    struct ht_fields_walk fw = { 0 };
    const struct ht_field_at *hf;
    while ((hf = ht_fields_walk(sp->src, sp->n, l, &fw))) {
        struct field f = field_of(hf);
        redact_field(x, sp, &f, &kind);
    }
    return kind;
}

/* Returns the values replaced, or -ENOMEM (then masked in place); *kind
 * says what the head says of its body. l (or NULL): the head's fields,
 * found again when the head changed. */
static int redact_head(struct ctx *x, uint8_t **head, uint32_t *len, struct ht_msg *msg,
                       enum body_kind *kind, struct ht_fields_list *l)
{
    *kind = B_OTHER;
    if (!*head || !*len)
        return 0;
    /* The target must lie inside the start line, or it is not rewritten. */
    size_t first = start_line_end(*head, *len);
    if (msg && (msg->target_len == 0 || (size_t)msg->target_off + msg->target_len > first))
        msg = NULL;
    struct splice sp = { .src = *head, .n = *len };
    uint32_t toff = 0, tlen = 0;
    *kind = head_pass(x, &sp, msg, &toff, &tlen, l);
    if (!sp.edits)
        return 0;
    if (!sp.err && !ht_buf_append(&sp.out, sp.src + sp.done, sp.n - sp.done) &&
        sp.out.len <= UINT32_MAX) {
        ht_exchange_release(x->ex, *head);
        *head = (uint8_t *)sp.out.p;
        *len = (uint32_t)sp.out.len;
        if (msg) {
            msg->target_off = toff;
            msg->target_len = tlen;
        }
        if (l)
            ht_fields_list(*head, *len, l);
        return sp.edits;
    }
    ht_buf_free(&sp.out);
    struct splice mask = { .src = *head, .n = *len, .mask = true };
    head_pass(x, &mask, msg, &toff, &tlen, l);
    if (l)
        ht_fields_list(*head, *len, l);
    return -ENOMEM;
}

/* ---- JSON bodies ---- */

#define JSON_DEPTH 2048

static size_t skip_ws(const uint8_t *s, size_t n, size_t i)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
        i++;
    return i;
}

/* s[i] == '"': the offset after the closing quote, or n if the string is
 * cut off (then *closed is false). */
static size_t string_end(const uint8_t *s, size_t n, size_t i, bool *closed)
{
    for (i++; i < n; i++) {
        if (s[i] == '\\') {
            i++;
        } else if (s[i] == '"') {
            *closed = true;
            return i + 1;
        }
    }
    *closed = false;
    return n;
}

static size_t skip_string(const uint8_t *s, size_t n, size_t i)
{
    bool closed;
    return string_end(s, n, i, &closed);
}

/* The end of the value at s[i] (n if cut off). */
static size_t skip_value(const uint8_t *s, size_t n, size_t i)
{
    if (s[i] == '"')
        return skip_string(s, n, i);
    if (s[i] == '{' || s[i] == '[') {
        size_t depth = 0;
        while (i < n) {
            uint8_t c = s[i];
            if (c == '"') {
                i = skip_string(s, n, i);
                continue;
            }
            if (c == '{' || c == '[')
                depth++;
            else if ((c == '}' || c == ']') && --depth == 0)
                return i + 1;
            i++;
        }
        return n;
    }
    while (i < n && !memchr(",}] \t\r\n", s[i], 8))
        i++;
    return i;
}

/* A member whose key token is s[ks, ke): redact its value when the key is
 * sensitive. Returns where scanning goes on. */
static size_t json_member(struct ctx *x, struct splice *sp, size_t ks, size_t ke)
{
    const uint8_t *s = sp->src;
    size_t n = sp->n;
    size_t k = skip_ws(s, n, ke);
    if (k >= n || s[k] != ':')
        return k;
    k = skip_ws(s, n, k + 1);
    if (k >= n || ke - ks < 2)
        return k;
    struct name nm;
    name_from(&nm, V_JSON, s + ks + 1, ke - ks - 2);
    if (!sensitive(x->cfg, HT_REDACT_FIELDS, &nm) || s[k] == 't' || s[k] == 'f' || s[k] == 'n')
        return k;                               /* true/false/null say nothing */
    size_t ve;
    char rep[REP_MAX + 2];
    size_t rl;
    if (s[k] == '"') {                          /* the pseudonym of the string itself */
        bool closed;
        ve = string_end(s, n, k, &closed);
        rl = replacement(x->cfg, V_JSON, s + k + 1, ve - k - 1 - closed, rep + 1);
    } else {
        ve = skip_value(s, n, k);
        rl = replacement(x->cfg, V_RAW, s + k, ve - k, rep + 1);
    }
    rep[0] = '"';
    rep[rl + 1] = '"';
    sp_put(sp, k, ve - k, rep, rl + 2);
    note(x->ex, "body", &nm);
    return ve;
}

static void json_scan(struct ctx *x, struct splice *sp)
{
    static const uint8_t OBJ = 1;
    uint8_t stack[JSON_DEPTH];
    size_t depth = 0, i = 0;
    bool expect_key = false;
    const uint8_t *s = sp->src;
    while (i < sp->n) {
        uint8_t c = s[i];
        if (c == '{' || c == '[') {
            if (depth < JSON_DEPTH)
                stack[depth] = c == '{' ? OBJ : 0;
            depth++;
            expect_key = c == '{';
            i++;
        } else if (c == '}' || c == ']') {
            if (depth)
                depth--;
            expect_key = false;
            i++;
        } else if (c == ',') {
            /* Deeper than we track: assume an object (redacts more, not less). */
            expect_key = depth > JSON_DEPTH || (depth && stack[depth - 1] == OBJ);
            i++;
        } else if (c == '"') {
            size_t e = skip_string(s, sp->n, i);
            i = expect_key ? json_member(x, sp, i, e) : e;
            expect_key = false;
        } else {
            i++;
        }
    }
}

/* A body without a JSON content type that is JSON all the same (curl -d
 * '{...}' says form-urlencoded): a complete excerpt jansson accepts. Past
 * SNIFF_MAX bytes, parsing would cost too much memory on the writer
 * thread: bracketed text is taken as JSON (the scanner is safe on any
 * input; at worst it replaces a value after a "password": in plain text). */
#define SNIFF_MAX (1u << 20)

/* Where the text of a body starts: past a UTF-8 byte order mark (which
 * RFC 8259 8.1 lets a JSON parser ignore) and whitespace. */
static size_t text_start(const struct ht_body *b, size_t *bom)
{
    *bom = b->len >= 3 && !memcmp(b->buf, "\xef\xbb\xbf", 3) ? 3 : 0;
    return skip_ws(b->buf, b->len, *bom);
}

static bool bracketed(const struct ht_body *b)
{
    size_t bom, i = text_start(b, &bom);
    return i < b->len && (b->buf[i] == '{' || b->buf[i] == '[');
}

static bool sniff_json(const struct ht_body *b)
{
    size_t bom, i = text_start(b, &bom);
    if (b->truncated || i >= b->len || (b->buf[i] != '{' && b->buf[i] != '['))
        return false;
    if (b->len > SNIFF_MAX) {
        size_t e = b->len;
        while (e > i && skip_ws(b->buf, e, e - 1) == e)
            e--;
        return b->buf[e - 1] == (b->buf[i] == '{' ? '}' : ']');
    }
    json_error_t e;
    json_t *j = json_loadb((const char *)b->buf + bom, b->len - bom, JSON_ALLOW_NUL, &e);
    json_decref(j);
    return j || json_error_code(&e) == json_error_numeric_overflow;
}

static int redact_body(struct ctx *x, struct ht_body *b, enum body_kind k)
{
    /* A coded body is read once it was decoded (core/decode.h), never as
     * the coded bytes. */
    if (!b->buf || !b->len || ((k & B_ENCODED) && !b->coding))
        return 0;
    k = (enum body_kind)(k & B_TYPE);
    struct splice sp = { .src = b->buf, .n = b->len };
    /* Labelled JSON but not bracketed ("a=1&password=x" sent as JSON): the
     * JSON scanner would find no member, so read it as a form. */
    if (k == B_JSON && !bracketed(b))
        k = B_FORM;
    if (k == B_JSON || sniff_json(b))
        json_scan(x, &sp);
    else if (k == B_FORM)
        redact_params(x, &sp, 0, sp.n, "body", NULL);
    if (!sp.edits)
        return 0;
    if (!sp.err && !ht_buf_append(&sp.out, sp.src + sp.done, sp.n - sp.done) &&
        sp.out.len <= UINT32_MAX) {
        ht_exchange_release(x->ex, b->buf);
        b->buf = (uint8_t *)sp.out.p;
        b->len = (uint32_t)sp.out.len;
        b->cap = (uint32_t)(sp.out.cap < UINT32_MAX ? sp.out.cap : UINT32_MAX);
        return sp.edits;
    }
    /* No memory for the rewritten excerpt: keep none of it. */
    ht_buf_free(&sp.out);
    ht_exchange_release(x->ex, b->buf);
    b->buf = NULL;
    b->len = b->cap = 0;
    b->truncated = b->size > 0;
    return -ENOMEM;
}

/* ---- exchanges ---- */

static int redact_exchange(const struct ht_redact_cfg *cfg, struct ht_exchange *ex,
                           struct ht_fields_list *lrq, struct ht_fields_list *lrs)
{
    if (!ex || ex->redacted.done)
        return 0;
    ex->redacted.done = true;
    if (!cfg || !cfg->enabled)
        return 0;
    struct ctx x = { cfg, ex, thread_slots() };
    enum body_kind rqk, rsk;        /* read from the heads as they were sent */
    int rc[4];
    const uint8_t *rq = ex->req_head, *rs = ex->resp_head;
    rc[0] = redact_head(&x, &ex->req_head, &ex->req_head_len,
                        ex->req_head_done ? &ex->req_msg : NULL, &rqk, lrq);
    rc[1] = redact_head(&x, &ex->resp_head, &ex->resp_head_len, NULL, &rsk, lrs);
    /* A rewritten head (the new one was made while the old one lived, so
     * the pointers differ) has other offsets: its fields are read anew. */
    if (ex->req_head != rq)
        ht_head_fields(ex, &ex->req_fields, &ex->req_nfields, NULL, 0);
    if (ex->resp_head != rs)
        ht_head_fields(ex, &ex->resp_fields, &ex->resp_nfields, NULL, 0);
    rc[2] = redact_body(&x, &ex->req_body, rqk);
    rc[3] = redact_body(&x, &ex->resp_body, rsk);
    int total = 0;
    for (int i = 0; i < 4; i++) {
        if (rc[i] < 0)
            return rc[i];
        total += rc[i];
    }
    return total;
}

int ht_redact_exchange_with(const struct ht_redact_cfg *cfg, struct ht_exchange *ex)
{
    return redact_exchange(cfg, ex, NULL, NULL);
}

int ht_redact_exchange(struct ht_exchange *ex)
{
    return redact_exchange(&active, ex, NULL, NULL);
}

int ht_redact_exchange_listed(struct ht_exchange *ex, struct ht_fields_list *req,
                              struct ht_fields_list *resp)
{
    return redact_exchange(&active, ex, req, resp);
}

/* ---- configuration ---- */

static const char *const list_what[3] = { "header", "query parameter", "field" };

/* RFC 9110 tchar. */
static bool tchar(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

int ht_redact_parse_names(struct ht_redact_cfg *cfg, enum ht_redact_list which,
                          const char *var, const char *csv, char *err, size_t errlen)
{
    unsigned count = 0;
    const char *p = csv ? csv : "";
    const char *why = NULL;
    while (*p && !why) {
        size_t n = strcspn(p, ",");
        const char *s = p, *e = p + n;
        p = *e ? e + 1 : e;
        while (s < e && ows((uint8_t)*s))
            s++;
        while (e > s && ows((uint8_t)e[-1]))
            e--;
        if (s == e)
            continue;                           /* "a,,b", a trailing comma */
        if ((size_t)(e - s) > HT_REDACT_NAME_MAX) {
            why = "a name is too long";
            break;
        }
        for (const char *c = s; c < e && !why; c++)
            if (which == HT_REDACT_HEADERS ? !tchar((uint8_t)*c) : (*c < 0x20 || *c > 0x7e))
                why = "a name has a character that is not allowed";
        if (why)
            break;
        if (count == HT_REDACT_MAX_NAMES) {
            why = "too many names";
            break;
        }
        struct name nm;
        name_set(&nm, (const uint8_t *)s, (size_t)(e - s));
        if (!nm.len) {
            why = "a name is only '-' or '_'";
            break;
        }
        if (cfg)
            memcpy(cfg->extra[which][count], nm.norm, nm.len + 1);
        count++;
    }
    if (why) {
        snprintf(err, errlen, "%s: invalid value '%.80s%s' (%s); expected comma-separated %s "
                 "names%s, up to %d names of up to %d characters each (e.g. x-session,x-csrf)",
                 var, csv, strlen(csv) > 80 ? "..." : "", why, list_what[which],
                 which == HT_REDACT_HEADERS ? " (letters, digits and !#$%&'*+-.^_`|~)" :
                 " (printable ASCII)", HT_REDACT_MAX_NAMES, HT_REDACT_NAME_MAX);
        return -EINVAL;
    }
    if (cfg) {
        cfg->n_extra[which] = (uint8_t)count;
        if (which == HT_REDACT_HEADERS)
            cfg->headers_gen = atomic_fetch_add(&headers_gens, 1) + 1;
    }
    return 0;
}

int ht_redact_check_key(const char *key, char *err, size_t errlen)
{
    size_t n = key ? strlen(key) : 0;
    if (n == 0 || (n >= HT_REDACT_KEY_MIN && n <= HT_REDACT_KEY_MAX))
        return 0;
    snprintf(err, errlen, "HTTPTAPE_REDACT_KEY: %s (%zu bytes); expected a secret of %d to %d "
             "bytes (e.g. from 'openssl rand -hex 32')", n < HT_REDACT_KEY_MIN ?
             "too short" : "too long", n, HT_REDACT_KEY_MIN, HT_REDACT_KEY_MAX);
    return -EINVAL;
}

int ht_redact_cfg_build(struct ht_redact_cfg *cfg, const char *headers_csv,
                        const char *query_csv, const char *fields_csv,
                        const char *key, bool enabled, char *err, size_t errlen)
{
    static const char *const vars[3] = {
        "HTTPTAPE_REDACT_HEADERS", "HTTPTAPE_REDACT_QUERY", "HTTPTAPE_REDACT_FIELDS",
    };
    const char *csv[3] = { headers_csv, query_csv, fields_csv };
    memset(cfg, 0, sizeof(*cfg));
    cfg->enabled = enabled;
    for (int i = 0; i < 3; i++) {
        int rc = ht_redact_parse_names(cfg, (enum ht_redact_list)i, vars[i], csv[i], err, errlen);
        if (rc)
            return rc;
    }
    int rc = ht_redact_check_key(key, err, errlen);
    if (rc)
        return rc;
    if (key && key[0]) {
        if (sodium_init() < 0) {
            snprintf(err, errlen, "HTTPTAPE_REDACT_KEY: libsodium could not be initialised");
            return -EINVAL;
        }
        cfg->key_len = strlen(key);
        memcpy(cfg->key, key, cfg->key_len);
    }
    return 0;
}

void ht_redact_set(const struct ht_redact_cfg *cfg)
{
    active = *cfg;
}

int ht_redact_configure(const char *headers_csv, const char *query_csv,
                        const char *fields_csv, const char *key, bool enabled,
                        char *err, size_t errlen)
{
    struct ht_redact_cfg cfg;
    int rc = ht_redact_cfg_build(&cfg, headers_csv, query_csv, fields_csv, key, enabled,
                                 err, errlen);
    if (!rc)
        ht_redact_set(&cfg);
    sodium_memzero(&cfg, sizeof(cfg));
    return rc;
}

bool ht_redact_enabled(void)
{
    return active.enabled;
}
