/*
 * rules.c - parsing and evaluating the recording rules (rules.h).
 *
 * A condition is true, false, or not yet known (a status before the
 * response): a rule is true when all its conditions are, false when one
 * is, else unknown. At the request head only what is certain is decided;
 * the rest waits for ht_rules_final.
 */
#include "core/rules.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include "core/fields.h"

#define MAX_RULES 64
#define MAX_CONDS 8
#define MAX_NAMES 16
#define TEXT_MAX (64 << 10)

enum act { A_EXCLUDE, A_INCLUDE, A_SAMPLE, A_BODY, A_DENY, A_ALLOW, A_WS, A_DIGEST };
enum ws_which { WS_ALL, WS_DATA, WS_CONTROL, WS_NONE };
enum ck { C_PATH, C_METHOD, C_HOST, C_STATUS, C_SLOWER, C_REQ_HEADER, C_RESP_HEADER };
enum tri { NO, YES, UNKNOWN };

struct cond {
    uint8_t kind;
    char *pat;                      /* glob, or comma-separated names, or a header name */
    char *val;                      /* header: a glob for its value, or NULL */
    uint64_t ns;                    /* slower */
    uint8_t classes;                /* status: bit k for kxx */
    uint16_t codes[8];
    uint8_t ncodes;
};

struct rule {
    uint8_t act;
    struct cond c[MAX_CONDS];
    uint8_t nc;
    uint32_t rate_ppm;              /* sample: kept per million */
    char *type;                     /* body: media type glob */
    uint32_t cap;                   /* body: excerpt cap, UINT32_MAX: as configured */
};

static struct rule rules[MAX_RULES];
static size_t nrules;
static bool any_include, any_header_rule, any_allow;
static uint8_t ws_which = WS_ALL;
static bool digest;
static uint64_t progress_ns, progress_bytes;
static uint32_t ws_cap = UINT32_MAX;
static char origin[256];

/* Bodies nobody reads in an audit log unless asked: media and archives
 * (compared as prefixes and names, not globs: this runs for every body). */
static const char *const default_drop_top[] = { "image/", "video/", "audio/", "font/" };
static const char *const default_drop_app[] = {
    "zip", "gzip", "x-gzip", "x-tar", "x-7z-compressed", "x-rar-compressed", "x-bzip2", "x-xz",
    "zstd",
};

static bool default_drop(const uint8_t *t, size_t n)
{
    for (size_t i = 0; i < sizeof(default_drop_top) / sizeof(default_drop_top[0]); i++) {
        size_t k = strlen(default_drop_top[i]);
        if (n > k && !strncasecmp((const char *)t, default_drop_top[i], k))
            return true;
    }
    if (n <= 12 || strncasecmp((const char *)t, "application/", 12))
        return false;
    for (size_t i = 0; i < sizeof(default_drop_app) / sizeof(default_drop_app[0]); i++) {
        size_t k = strlen(default_drop_app[i]);
        if (n == 12 + k && !strncasecmp((const char *)t + 12, default_drop_app[i], k))
            return true;
    }
    return false;
}

void ht_rules_reset(void)
{
    for (size_t i = 0; i < nrules; i++) {
        for (size_t k = 0; k < rules[i].nc; k++) {
            free(rules[i].c[k].pat);
            free(rules[i].c[k].val);
        }
        free(rules[i].type);
    }
    memset(rules, 0, sizeof(rules));
    nrules = 0;
    any_include = any_header_rule = any_allow = false;
    ws_which = WS_ALL;
    ws_cap = UINT32_MAX;
    digest = false;
    progress_ns = progress_bytes = 0;
    origin[0] = 0;
}

const char *ht_rules_origin(void) { return origin; }

/* ---- parsing ---- */

struct perr {
    char *buf;
    size_t len;
    const char *origin;
    unsigned line;
    bool file;                      /* line numbers, else rule numbers */
};

__attribute__((format(printf, 2, 3)))
static int fail(struct perr *e, const char *fmt, ...)
{
    int n = snprintf(e->buf, e->len, e->file ? "%s:%u: " : "%s: rule %u: ", e->origin, e->line);
    if (n < 0 || (size_t)n >= e->len)
        return -EINVAL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->buf + n, e->len - (size_t)n, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static char *dup_lower(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    for (size_t i = 0; i < n; i++)
        d[i] = (char)tolower((unsigned char)s[i]);
    d[n] = 0;
    return d;
}

/* "500ms", "2s", "750us": nanoseconds. */
static bool parse_duration(const char *s, uint64_t *ns)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || v > 1000000000ull)
        return false;
    if (!strcmp(end, "ms"))
        *ns = v * 1000000ull;
    else if (!strcmp(end, "s"))
        *ns = v * 1000000000ull;
    else if (!strcmp(end, "us"))
        *ns = v * 1000ull;
    else
        return false;
    return true;
}

/* "5xx,404": classes and codes. */
static bool parse_status(const char *s, struct cond *c)
{
    while (*s) {
        size_t n = strcspn(s, ",");
        if (n == 3 && s[0] >= '1' && s[0] <= '5' && s[1] == 'x' && s[2] == 'x') {
            c->classes |= (uint8_t)(1u << (s[0] - '0'));
        } else if (n == 3 && isdigit((unsigned char)s[0]) && isdigit((unsigned char)s[1]) &&
                   isdigit((unsigned char)s[2]) && c->ncodes < 8) {
            c->codes[c->ncodes++] = (uint16_t)atoi(s);
        } else {
            return false;
        }
        s += n + (s[n] == ',');
    }
    return c->classes || c->ncodes;
}

static int parse_cond(struct perr *e, const char *tok, struct cond *c)
{
    static const struct { const char *name; uint8_t kind; } names[] = {
        { "path", C_PATH }, { "method", C_METHOD }, { "host", C_HOST }, { "status", C_STATUS },
        { "slower", C_SLOWER }, { "request-header", C_REQ_HEADER },
        { "response-header", C_RESP_HEADER },
    };
    const char *eq = strchr(tok, '=');
    size_t kn = eq ? (size_t)(eq - tok) : 0;
    const char *v = eq ? eq + 1 : NULL;
    for (size_t i = 0; eq && i < sizeof(names) / sizeof(names[0]); i++) {
        if (strlen(names[i].name) != kn || strncmp(tok, names[i].name, kn))
            continue;
        c->kind = names[i].kind;
        if (!*v)
            return fail(e, "'%s' has no value", tok);
        if (c->kind == C_SLOWER) {
            if (!parse_duration(v, &c->ns))
                return fail(e, "'%s': expected a duration such as 500ms, 2s or 750us", tok);
            return 0;
        }
        if (c->kind == C_STATUS) {
            if (!parse_status(v, c))
                return fail(e, "'%s': expected status classes or codes, such as 5xx or 404,429",
                            tok);
            return 0;
        }
        const char *colon = (c->kind == C_REQ_HEADER || c->kind == C_RESP_HEADER) ? strchr(v, ':')
                                                                                 : NULL;
        bool fold = c->kind != C_PATH;  /* methods, hosts and names: any case */
        size_t n = colon ? (size_t)(colon - v) : strlen(v);
        c->pat = fold ? dup_lower(v, n) : strndup(v, n);
        if (colon)
            c->val = strdup(colon + 1);
        if (!c->pat || (colon && !c->val))
            return fail(e, "out of memory");
        return 0;
    }
    return fail(e, "unknown condition '%s' (expected path=, method=, host=, status=, slower=, "
                "request-header= or response-header=)", tok);
}

/* "10%", "0.5%": parts per million. */
static bool parse_rate(const char *s, uint32_t *ppm)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || strcmp(end, "%") || !(v >= 0 && v <= 100))
        return false;
    *ppm = (uint32_t)(v * 10000.0 + 0.5);
    return true;
}

static bool parse_size(const char *s, uint32_t *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    unsigned long long mul = !*end ? 1 : !strcasecmp(end, "k") ? 1024 : !strcasecmp(end, "m") ? 1 << 20 : 0;
    if (end == s || !mul || v * mul > (1u << 30))
        return false;
    *out = (uint32_t)(v * mul);
    return true;
}

/* One rule: its words, tok[0] the action. */
static int parse_rule(struct perr *e, char **tok, size_t n, struct rule *r)
{
    static const char *const acts[] = { "exclude", "include", "sample", "body", "header",
                                        "websocket", "digest", "progress" };
    size_t a = 0;
    while (a < 8 && strcmp(tok[0], acts[a]))
        a++;
    if (a == 8)
        return fail(e, "unknown rule '%s' (expected exclude, include, sample, body, header, "
                    "websocket, digest or progress)", tok[0]);
    if (a == 7) {
        uint32_t sz;
        r->act = A_DIGEST;          /* nothing to evaluate per exchange */
        for (size_t i = 1; i < n; i++) {
            if (!strncmp(tok[i], "every=", 6) && parse_duration(tok[i] + 6, &progress_ns) &&
                progress_ns)
                continue;
            if (!strncmp(tok[i], "bytes=", 6) && parse_size(tok[i] + 6, &sz) && sz) {
                progress_bytes = sz;
                continue;
            }
            return fail(e, "'%s': expected 'progress every=DURATION' and/or 'bytes=SIZE', such "
                        "as 'progress every=10s bytes=1m'", tok[i]);
        }
        if (n < 2)
            return fail(e, "expected 'progress every=DURATION' and/or 'bytes=SIZE', such as "
                        "'progress every=10s'");
        return 0;
    }
    if (a == 6) {
        if (n != 2 || strcmp(tok[1], "sha256"))
            return fail(e, "expected 'digest sha256'");
        r->act = A_DIGEST;
        digest = true;
        return 0;
    }
    if (a == 5) {
        static const char *const which[] = { "all", "data", "control", "none" };
        size_t k = 0;
        while (n >= 2 && k < 4 && strcmp(tok[1], which[k]))
            k++;
        if (n < 2 || n > 3 || k == 4 || (n == 3 && (strncmp(tok[2], "cap=", 4) ||
                                                    !parse_size(tok[2] + 4, &ws_cap))))
            return fail(e, "expected 'websocket all|data|control|none [cap=SIZE]', such as "
                        "'websocket data cap=1k'");
        r->act = A_WS;
        ws_which = (uint8_t)k;
        return 0;
    }
    size_t first = 1;
    if (a == 0 || a == 1) {
        r->act = a == 0 ? A_EXCLUDE : A_INCLUDE;
        if (n < 2)
            return fail(e, "'%s' needs at least one condition, such as path=/health", tok[0]);
    } else if (a == 2) {
        r->act = A_SAMPLE;
        if (n < 2 || !parse_rate(tok[1], &r->rate_ppm))
            return fail(e, "'sample' needs a rate from 0%% to 100%%, such as 'sample 10%%'");
        first = 2;
    } else if (a == 3) {
        r->act = A_BODY;
        r->cap = UINT32_MAX;
        if (n != 3)
            return fail(e, "expected 'body TYPE keep|drop|cap=SIZE', such as 'body image/* drop'");
        if (!(r->type = dup_lower(tok[1], strlen(tok[1]))))
            return fail(e, "out of memory");
        if (!strcmp(tok[2], "drop"))
            r->cap = 0;
        else if (!strncmp(tok[2], "cap=", 4) ? !parse_size(tok[2] + 4, &r->cap)
                                            : strcmp(tok[2], "keep"))
            return fail(e, "'%s': expected keep, drop or cap=SIZE (such as cap=16k)", tok[2]);
        return 0;
    } else {
        if (n != 3 || (strcmp(tok[1], "deny") && strcmp(tok[1], "allow")))
            return fail(e, "expected 'header deny|allow NAME,...', such as 'header deny cookie'");
        r->act = !strcmp(tok[1], "deny") ? A_DENY : A_ALLOW;
        r->c[0].pat = dup_lower(tok[2], strlen(tok[2]));
        r->nc = 1;
        return r->c[0].pat ? 0 : fail(e, "out of memory");
    }
    for (size_t i = first; i < n; i++) {
        if (r->nc == MAX_CONDS)
            return fail(e, "more than %d conditions", MAX_CONDS);
        int rc = parse_cond(e, tok[i], &r->c[r->nc]);
        r->nc++;                        /* freed with the rule either way */
        if (rc)
            return rc;
    }
    return 0;
}

/* Rules in text: lines (a file) or ';'-separated (the environment). */
static int parse_text(const char *text, struct perr *e)
{
    char *copy = strdup(text);
    if (!copy)
        return fail(e, "out of memory");
    int rc = 0;
    char *save = NULL;
    const char *seps = e->file ? "\n" : ";\n";
    unsigned line = 0;
    for (char *l = copy; !rc && l; l = save) {
        save = NULL;
        size_t k = strcspn(l, seps);
        if (l[k]) {
            l[k] = 0;
            save = l + k + 1;
        }
        line++;
        char *hash = strchr(l, '#');
        if (hash)
            *hash = 0;
        char *tok[MAX_CONDS + 3];
        size_t n = 0;
        for (char *t = strtok(l, " \t\r"); t; t = strtok(NULL, " \t\r")) {
            if (n == sizeof(tok) / sizeof(tok[0])) {
                e->line = line;
                rc = fail(e, "too many words");
                break;
            }
            tok[n++] = t;
        }
        if (rc || !n)
            continue;
        e->line = e->file ? line : (unsigned)nrules + 1;
        if (nrules == MAX_RULES) {
            rc = fail(e, "more than %d rules", MAX_RULES);
            break;
        }
        struct rule *r = &rules[nrules++];
        rc = parse_rule(e, tok, n, r);
        any_include |= r->act == A_INCLUDE;
        any_header_rule |= r->act == A_DENY || r->act == A_ALLOW;
        any_allow |= r->act == A_ALLOW;
    }
    free(copy);
    return rc;
}

int ht_rules_parse(const char *text, const char *from, char *err, size_t errlen)
{
    struct perr e = { err, errlen, from, 0, false };
    int rc = parse_text(text, &e);
    if (!rc)
        snprintf(origin, sizeof(origin), "%s", from);
    return rc;
}

/* The rule file's text (NULL with *path "" when there is none). */
static char *read_rules_file(char *path, size_t cap, char *err, size_t errlen)
{
    const char *p = getenv("HTTPTAPE_CONFIG");
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    path[0] = 0;
    if (p && *p) {
        snprintf(path, cap, "%s", p);
    } else {
        static char cand[2][4200];
        int nc = 0;
        if (xdg && *xdg)
            snprintf(cand[nc++], sizeof(cand[0]), "%s/httptape/rules.conf", xdg);
        else if (home && *home)
            snprintf(cand[nc++], sizeof(cand[0]), "%s/.config/httptape/rules.conf", home);
        snprintf(cand[nc++], sizeof(cand[0]), "/etc/httptape/rules.conf");
        for (int i = 0; i < nc && !path[0]; i++) {
            size_t n = strlen(cand[i]);
            if (n < cap && !access(cand[i], F_OK))
                memcpy(path, cand[i], n + 1);
        }
        if (!path[0])
            return NULL;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    char *text = NULL;
    if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > TEXT_MAX) {
        snprintf(err, errlen, "%s: %s", path, fd < 0 ? strerror(errno)
                 : !S_ISREG(st.st_mode) ? "not a regular file" : "larger than 64 KiB");
    } else if ((text = calloc(1, (size_t)st.st_size + 1)) &&
               read(fd, text, (size_t)st.st_size) != st.st_size) {
        snprintf(err, errlen, "%s: cannot read it", path);
        free(text);
        text = NULL;
    }
    if (fd >= 0)
        close(fd);
    return text;
}

int ht_rules_load(char *err, size_t errlen)
{
    char path[4300];
    ht_rules_reset();
    err[0] = 0;
    char *text = read_rules_file(path, sizeof(path), err, errlen);
    if (err[0])
        return -EINVAL;
    int rc = 0;
    if (text) {
        struct perr e = { err, errlen, path, 0, true };
        rc = parse_text(text, &e);
        free(text);
    }
    const char *env = getenv("HTTPTAPE_RULES");
    if (!rc && env && *env) {
        struct perr e = { err, errlen, "HTTPTAPE_RULES", 0, false };
        rc = parse_text(env, &e);
    }
    if (rc) {
        ht_rules_reset();
        return rc;
    }
    snprintf(origin, sizeof(origin), "%s%s%s", path, path[0] && env && *env ? " and " : "",
             env && *env ? "HTTPTAPE_RULES" : "");
    return 0;
}

/* ---- what an exchange says ---- */

static const uint8_t *field_value_in(const uint8_t *h, size_t n, const struct ht_field_at *list,
                                     uint32_t nlist, const char *name, size_t *len);

static const uint8_t *field_value(const uint8_t *h, size_t n, const char *name, size_t *len)
{
    return field_value_in(h, n, NULL, 0, name, len);
}

/* The first value of field name (lowercase) in head h (its fields as the
 * parser found them in list, when it kept them), or NULL. */
static const uint8_t *field_value_in(const uint8_t *h, size_t n, const struct ht_field_at *list,
                                     uint32_t nlist, const char *name, size_t *len)
{
    struct ht_fields_list l;
    struct ht_fields_walk w = { 0 };
    const struct ht_field_at *f;
    size_t nl = strlen(name);
    if (list)
        ht_fields_list_from(list, nlist, &l);
    while (h && (f = ht_fields_walk(h, n, list ? &l : NULL, &w)))
        if (f->name_len == nl && !strncasecmp((const char *)h + f->name, name, nl)) {
            *len = f->span_end - f->value;
            return h + f->value;
        }
    return NULL;
}

static bool glob_span(const char *pat, const uint8_t *s, size_t n, bool fold)
{
    char buf[2048];
    if (n >= sizeof(buf))
        n = sizeof(buf) - 1;
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)(fold ? tolower(s[i]) : s[i]);
    buf[n] = 0;
    return fnmatch(pat, buf, 0) == 0;
}

static bool in_list(const char *list, const uint8_t *s, size_t n)
{
    for (const char *p = list; *p;) {
        size_t k = strcspn(p, ",");
        if (k == n && !strncasecmp(p, (const char *)s, n))
            return true;
        p += k + (p[k] == ',');
    }
    return false;
}

/* The path of the request target: no query, no scheme://authority. */
static const uint8_t *target_path(const struct ht_exchange *ex, size_t *len)
{
    const uint8_t *t = ex->req_head + ex->req_msg.target_off;
    size_t n = ex->req_msg.target_len;
    const uint8_t *sch = n > 3 && t[0] != '/' ? memchr(t, ':', n) : NULL;
    if (sch && (size_t)(sch - t) + 3 <= n && sch[1] == '/' && sch[2] == '/') {
        const uint8_t *a = sch + 3, *end = t + n;
        while (a < end && *a != '/')
            a++;
        n = (size_t)(end - a);
        t = a;
    }
    size_t q = 0;
    while (q < n && t[q] != '?' && t[q] != '#')
        q++;
    *len = q;
    return t;
}

static enum tri test_cond(const struct cond *c, const struct ht_exchange *ex, bool final)
{
    size_t n;
    const uint8_t *v;
    if (!ex->req_head_done && c->kind != C_STATUS && c->kind != C_SLOWER &&
        c->kind != C_RESP_HEADER)
        return NO;                      /* nothing of the request is known */
    switch (c->kind) {
    case C_PATH:
        v = target_path(ex, &n);
        return glob_span(c->pat, v, n, false) ? YES : NO;
    case C_METHOD:
        return in_list(c->pat, ex->req_head, ex->req_msg.method_len) ? YES : NO;
    case C_HOST:
        v = field_value(ex->req_head, ex->req_head_len, "host", &n);
        if (!v)
            return NO;
        for (size_t i = n; i-- > 0 && v[0] != '[';)     /* the port off (not an IPv6's colons) */
            if (v[i] == ':') {
                n = i;
                break;
            }
        return glob_span(c->pat, v, n, true) ? YES : NO;
    case C_REQ_HEADER:
    case C_RESP_HEADER: {
        bool req = c->kind == C_REQ_HEADER;
        if (!req && !ex->resp_head_done)
            return final ? NO : UNKNOWN;
        v = req ? field_value(ex->req_head, ex->req_head_len, c->pat, &n)
                : field_value(ex->resp_head, ex->resp_head_len, c->pat, &n);
        if (!v)
            return NO;
        return !c->val || glob_span(c->val, v, n, false) ? YES : NO;
    }
    case C_STATUS: {
        if (!ex->resp_head_done)
            return final ? NO : UNKNOWN;
        uint16_t st = ex->resp_msg.status;
        if (st >= 100 && st < 600 && (c->classes & (1u << (st / 100))))
            return YES;
        for (unsigned i = 0; i < c->ncodes; i++)
            if (c->codes[i] == st)
                return YES;
        return NO;
    }
    case C_SLOWER:
        if (!ex->mono_resp_done)
            return final ? NO : UNKNOWN;
        return (uint64_t)(ex->mono_resp_done - ex->mono_start) > c->ns ? YES : NO;
    }
    return NO;
}

static enum tri test_rule(const struct rule *r, const struct ht_exchange *ex, bool final)
{
    enum tri t = YES;
    for (unsigned i = 0; i < r->nc && t != NO; i++) {
        enum tri c = test_cond(&r->c[i], ex, final);
        if (c == NO || (c == UNKNOWN && t == YES))
            t = c;
    }
    return t;
}

/* Keep this exchange at rate ppm? The same answer for every exchange of
 * one trace (the traceparent's trace id), wherever it is logged. */
static bool sampled_in(const struct ht_exchange *ex, uint32_t ppm)
{
    size_t n;
    const uint8_t *tp = ex->req_head_done ? field_value(ex->req_head, ex->req_head_len,
                                                        "traceparent", &n) : NULL;
    uint64_t h = 1469598103934665603ull;
    if (tp && n >= 35) {
        for (size_t i = 3; i < 35; i++)      /* version-TRACEID: the 32 hex digits */
            h = (h ^ (uint8_t)tolower(tp[i])) * 1099511628211ull;
    } else {
        for (const char *p = ex->conn_id; *p; p++)
            h = (h ^ (uint8_t)*p) * 1099511628211ull;
        h = (h ^ ex->request_index) * 1099511628211ull;
    }
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return h % 1000000u < ppm;
}

/* The verdict, or HT_KEEP_UNDECIDED while it depends on what is unknown. */
static enum ht_verdict decide(const struct ht_exchange *ex, bool final)
{
    bool undecided = false, included = !any_include;
    for (size_t i = 0; i < nrules; i++) {
        const struct rule *r = &rules[i];
        if (r->act == A_EXCLUDE) {
            enum tri t = test_rule(r, ex, final);
            if (t == YES)
                return HT_FILTERED;
            undecided |= t == UNKNOWN;
        } else if (r->act == A_INCLUDE && !included) {
            enum tri t = test_rule(r, ex, final);
            included = t == YES;
            undecided |= t == UNKNOWN;
        }
    }
    if (!included)
        return undecided ? HT_KEEP_UNDECIDED : HT_FILTERED;
    if (undecided)
        return HT_KEEP_UNDECIDED;
    for (size_t i = 0; i < nrules; i++) {
        const struct rule *r = &rules[i];
        if (r->act != A_SAMPLE)
            continue;
        enum tri t = test_rule(r, ex, final);
        if (t == UNKNOWN)
            return HT_KEEP_UNDECIDED;
        if (t == YES)
            return sampled_in(ex, r->rate_ppm) ? HT_KEEP : HT_SAMPLED_OUT;
    }
    return HT_KEEP;
}

/* The excerpt cap for a body whose Content-Type is ct (len bytes, NULL:
 * none), given cap. */
static uint32_t body_cap(const uint8_t *ct, size_t len, uint32_t cap)
{
    if (!ct || !cap)
        return cap;
    size_t k = 0;
    while (k < len && ct[k] != ';' && ct[k] != ' ')
        k++;
    for (size_t i = 0; i < nrules; i++)
        if (rules[i].act == A_BODY && glob_span(rules[i].type, ct, k, true))
            return rules[i].cap == UINT32_MAX ? cap : rules[i].cap < cap ? rules[i].cap : cap;
    return default_drop(ct, k) ? 0 : cap;
}

/* A head of direction d is in: its body's excerpt cap, digest and
 * multipart summary, from one look at its Content-Type. */
static void body_setup(struct ht_exchange *ex, enum ht_dir d)
{
    unsigned k = d != HT_REQ;
    struct ht_body *b = k ? &ex->resp_body : &ex->req_body;
    size_t n = 0;
    const uint8_t *ct = k ? field_value_in(ex->resp_head, ex->resp_head_len, ex->resp_fields,
                                           ex->resp_nfields, "content-type", &n)
                          : field_value_in(ex->req_head, ex->req_head_len, ex->req_fields,
                                           ex->req_nfields, "content-type", &n);
    uint32_t cap = body_cap(ct, n, ex->excerpt_cap[k]);
    b->omitted = cap < ex->excerpt_cap[k] && cap == 0;
    ex->excerpt_cap[k] = cap;
    if (digest)
        ht_body_digest_start(ex, b);
    if (ct)
        ht_body_multipart_start(ex, b, ct, n);
}

void ht_rules_request(struct ht_exchange *ex)
{
    if (!ex->req_head_done)
        return;
    ex->verdict = (uint8_t)decide(ex, false);
    if (ex->verdict == HT_FILTERED || ex->verdict == HT_SAMPLED_OUT) {
        ex->excerpt_cap[HT_REQ] = ex->excerpt_cap[HT_RESP] = 0;   /* not logged: not copied */
        return;
    }
    body_setup(ex, HT_REQ);
}

void ht_rules_response(struct ht_exchange *ex)
{
    if (!ex->resp_head_done || ex->verdict == HT_FILTERED || ex->verdict == HT_SAMPLED_OUT)
        return;
    body_setup(ex, HT_RESP);
}

enum ht_verdict ht_rules_final(struct ht_exchange *ex)
{
    if (ex->verdict == HT_KEEP_UNDECIDED)
        ex->verdict = (uint8_t)decide(ex, true);
    return (enum ht_verdict)ex->verdict;
}

bool ht_rules_ws_frame(uint8_t opcode, uint32_t max_body, uint32_t *cap)
{
    bool control = opcode >= 8;
    *cap = ws_cap < max_body ? ws_cap : max_body;
    return ws_which == WS_ALL || (ws_which == WS_DATA && !control) ||
           (ws_which == WS_CONTROL && control);
}

bool ht_rules_digest(void) { return digest; }

bool ht_rules_progress(uint64_t *every_ns, uint64_t *every_bytes)
{
    *every_ns = progress_ns;
    *every_bytes = progress_bytes;
    return progress_ns || progress_bytes;
}

bool ht_rules_filter_headers(void) { return any_header_rule; }

bool ht_rules_header_shown(const uint8_t *name, size_t len)
{
    bool allowed = !any_allow;
    for (size_t i = 0; i < nrules; i++) {
        const struct rule *r = &rules[i];
        if ((r->act == A_DENY || r->act == A_ALLOW) && in_list(r->c[0].pat, name, len)) {
            if (r->act == A_DENY)
                return false;
            allowed = true;
        }
    }
    return allowed;
}
