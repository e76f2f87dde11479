/*
 * select.c - the selection flags tail, export and stats share, and
 * matching a record against them (see select.h).
 *
 * Owns: the {flag, parse} table, the value syntaxes (status lists, method
 * lists, durations with units), file globbing, and the body search. No
 * global state; not thread-safe per struct ht_select.
 */
#include <errno.h>
#include <fnmatch.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cli/select.h"

/* One selection flag: its name and how its value is parsed (NULL: none). */
struct flag {
    const char *name;
    int (*parse)(struct ht_select *s, const char *value);
    bool set_stats;             /* for the two value-less flags */
    const char *want;           /* the value, as an error message names it */
};

static int parse_path(struct ht_select *s, const char *v)
{
    s->path_glob = v;
    return *v ? 0 : -EINVAL;
}

static int parse_grep(struct ht_select *s, const char *v)
{
    s->grep = v;
    return *v ? 0 : -EINVAL;
}

static int parse_slower(struct ht_select *s, const char *v)
{
    return ht_select_parse_duration(v, &s->slower_than_ns);
}

static const struct flag flags[] = {
    { "--status", ht_select_parse_status, false,
      "a code (404), a class (5xx) or a comma list of both (4xx,500)" },
    { "--path", parse_path, false, "a glob such as '/api/*'" },
    { "--method", ht_select_parse_methods, false, "a method or a comma list (GET,POST)" },
    { "--slower-than", parse_slower, false, "a duration with a unit: 200ms, 1.5s, 800us" },
    { "--grep", parse_grep, false, "non-empty text" },
    { "--stats", NULL, true, NULL },
    { "--no-stats", NULL, false, NULL },
};

const char ht_select_help[] =
    "Selection (exchanges must pass every filter given):\n"
    "      --status LIST    status codes: 404, a class 5xx, or a list 4xx,500\n"
    "      --path GLOB      url.path matches GLOB (fnmatch; '*' also matches '/')\n"
    "      --method LIST    request method(s), any case: GET or GET,POST\n"
    "      --slower-than D  httptape.duration_ns over D: 200ms, 1.5s, 800us, 50ns\n"
    "      --grep TEXT      TEXT in the request or response body excerpt\n"
    "                       (base64 excerpts are decoded first)\n"
    "      --stats, --no-stats  statistics records too, or not (the default)\n"
    "  FILE may be repeated, '-' (standard input) or a quoted glob ('logs/*.jsonl').\n";

void ht_select_init(struct ht_select *s)
{
    memset(s, 0, sizeof(*s));
    s->slower_than_ns = -1;
}

void ht_select_free(struct ht_select *s)
{
    for (size_t i = 0; i < s->n_files; i++)
        free(s->files[i]);
    free(s->files);
    s->files = NULL;
    s->n_files = 0;
}

/* ---- value syntaxes --------------------------------------------------- */

static void set_codes(struct ht_select *s, int lo, int hi)
{
    for (int c = lo; c <= hi; c++)
        s->status[c / 8] |= (uint8_t)(1u << (c % 8));
}

/* One item of a status list: "404" or "4xx" (also "4XX"). */
static int status_item(struct ht_select *s, const char *p, size_t n)
{
    if (n != 3 || p[0] < '1' || p[0] > '9')
        return -EINVAL;
    if ((p[1] == 'x' || p[1] == 'X') && (p[2] == 'x' || p[2] == 'X')) {
        int lo = (p[0] - '0') * 100;
        set_codes(s, lo, lo + 99);
        return 0;
    }
    if (p[1] < '0' || p[1] > '9' || p[2] < '0' || p[2] > '9')
        return -EINVAL;
    int code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
    set_codes(s, code, code);
    return 0;
}

int ht_select_parse_status(struct ht_select *s, const char *spec)
{
    if (!*spec)
        return -EINVAL;
    for (const char *p = spec;;) {
        size_t n = strcspn(p, ",");
        if (status_item(s, p, n))
            return -EINVAL;
        if (!p[n])
            break;
        p += n + 1;
    }
    s->has_status = true;
    return 0;
}

int ht_select_parse_methods(struct ht_select *s, const char *list)
{
    /* Items point into the list and end at ',' or NUL: no copies to free. */
    if (!*list || list[strlen(list) - 1] == ',')
        return -EINVAL;
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        if (n == 0 || s->n_methods == HT_SELECT_MAX_METHODS)
            return -EINVAL;
        s->methods[s->n_methods++] = p;     /* ends at ',' or NUL */
        p += n + (p[n] == ',');
    }
    return 0;
}

int ht_select_parse_duration(const char *spec, long long *ns)
{
    static const struct { const char *unit; double mult; } units[] = {
        { "ns", 1 }, { "us", 1e3 }, { "ms", 1e6 }, { "s", 1e9 },
    };
    char *end;
    errno = 0;
    double v = strtod(spec, &end);
    if (end == spec || errno || v < 0 || spec[0] == '-' || spec[0] == '+')
        return -EINVAL;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].unit))
            continue;
        double x = v * units[i].mult;
        if (x > 9e18)
            return -EINVAL;
        *ns = (long long)(x + 0.5);
        return 0;
    }
    return -EINVAL;             /* a bare number: ambiguous, so refused */
}

/* ---- the flag table ------------------------------------------------------ */

static int bad_value(const char *prog, const struct flag *f, const char *v)
{
    fprintf(stderr, "%s: bad value '%s' for %s (want %s)\n", prog, v, f->name, f->want);
    return -EINVAL;
}

int ht_select_flag(struct ht_select *s, int argc, char **argv, int *i, const char *prog)
{
    const char *a = argv[*i];
    for (size_t k = 0; k < sizeof(flags) / sizeof(flags[0]); k++) {
        const struct flag *f = &flags[k];
        size_t n = strlen(f->name);
        if (strncmp(a, f->name, n) || (a[n] && a[n] != '='))
            continue;
        if (!f->parse) {
            if (a[n])
                break;          /* "--stats=x": not ours, the caller says so */
            s->stats = f->set_stats;
            return 1;
        }
        const char *v = a[n] ? a + n + 1 : NULL;
        if (!v && *i + 1 >= argc) {
            fprintf(stderr, "%s: option '%s' needs a value (%s)\n", prog, f->name, f->want);
            return -EINVAL;
        }
        if (!v)
            v = argv[++*i];
        return f->parse(s, v) ? bad_value(prog, f, v) : 1;
    }
    return 0;
}

int ht_usage_error(const char *prog, const char *usage, const char *fmt, const char *arg)
{
    fprintf(stderr, "%s: ", prog);
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    fputs(usage, stderr);
    return 2;
}

int ht_select_args(struct ht_select *s, int argc, char **argv, const char *prog,
                   const char *usage, ht_select_opt_fn opt, void *ctx, const bool *help)
{
    bool opts_done = false;
    int rc = 0;
    for (int i = 1; i < argc && !rc; i++) {
        const char *a = argv[i];
        if (opts_done || a[0] != '-' || !strcmp(a, "-")) {
            rc = ht_select_add_file(s, a, prog);
            if (rc == -ENOMEM)
                fprintf(stderr, "%s: out of memory\n", prog);
            rc = rc ? -EINVAL : 0;
        } else if (!strcmp(a, "--")) {
            opts_done = true;
        } else if (!(rc = ht_select_flag(s, argc, argv, &i, prog))) {
            rc = opt(ctx, argc, argv, &i);
        } else if (rc == 1) {
            rc = 0;
        }
    }
    if (rc == -EINVAL) {
        fputs(usage, stderr);           /* the message is out already */
        rc = 2;
    }
    if (!rc && !*help && !s->n_files)
        rc = ht_usage_error(prog, usage, "missing FILE%s", "");
    return rc;
}

/* ---- files ------------------------------------------------------------------ */

static int push_file(struct ht_select *s, const char *path)
{
    char **v = realloc(s->files, (s->n_files + 1) * sizeof(*v));
    if (!v)
        return -ENOMEM;
    s->files = v;
    if (!(v[s->n_files] = strdup(path)))
        return -ENOMEM;
    s->n_files++;
    return 0;
}

int ht_select_add_file(struct ht_select *s, const char *arg, const char *prog)
{
    struct stat st;
    if (!strcmp(arg, "-") || !strpbrk(arg, "*?[") || stat(arg, &st) == 0)
        return push_file(s, arg);
    glob_t g = { 0 };
    int rc = glob(arg, GLOB_ERR, NULL, &g) || g.gl_pathc == 0 ? -ENOENT : 0;
    if (rc)
        fprintf(stderr, "%s: no file matches '%s'\n", prog, arg);
    for (size_t i = 0; !rc && i < g.gl_pathc; i++)
        rc = push_file(s, g.gl_pathv[i]);       /* glob(3) sorted them */
    globfree(&g);
    return rc;
}

/* ---- matching ------------------------------------------------------------------ */

json_t *ht_json_path(json_t *v, const char *path)
{
    while (v && *path) {
        size_t n = strcspn(path, ".");
        v = json_is_object(v) ? json_object_getn(v, path, n) : NULL;
        path += n + (path[n] == '.');
    }
    return v;
}

bool ht_record_is_stats(json_t *rec)
{
    const char *t = json_string_value(ht_json_path(rec, "httptape.type"));
    return t && !strcmp(t, "stats");
}

bool ht_select_filters(const struct ht_select *s)
{
    return s->has_status || s->path_glob || s->n_methods || s->slower_than_ns >= 0 || s->grep;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

long ht_base64_decode(const char *s, size_t n, unsigned char *out)
{
    while (n && s[n - 1] == '=')
        n--;
    unsigned acc = 0, bits = 0;
    long len = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value((unsigned char)s[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[len++] = (unsigned char)(acc >> bits);
        }
    }
    return len;
}

/* Whether one body's content (text, or base64 decoded first) holds needle. */
static bool body_has(json_t *body, const char *needle)
{
    json_t *c = json_object_get(body, "content");
    const char *text = json_string_value(c);
    if (!text)
        return false;
    size_t n = json_string_length(c);
    const char *enc = json_string_value(json_object_get(body, "encoding"));
    if (!enc || strcmp(enc, "base64"))
        return memmem(text, n, needle, strlen(needle)) != NULL;
    unsigned char *raw = malloc(n * 3 / 4 + 3);
    long len = raw ? ht_base64_decode(text, n, raw) : -1;
    bool hit = len >= 0 && memmem(raw, (size_t)len, needle, strlen(needle));
    free(raw);
    return hit;
}

static bool method_ok(const struct ht_select *s, json_t *rec)
{
    const char *m = json_string_value(ht_json_path(rec, "http.request.method"));
    if (!m)
        return false;
    size_t mlen = strlen(m);
    for (size_t i = 0; i < s->n_methods; i++) {
        size_t n = strcspn(s->methods[i], ",");
        if (n == mlen && !strncasecmp(s->methods[i], m, n))
            return true;
    }
    return false;
}

static bool status_ok(const struct ht_select *s, json_t *rec)
{
    json_t *v = ht_json_path(rec, "http.response.status_code");
    if (!json_is_integer(v))
        return false;
    json_int_t c = json_integer_value(v);
    return c >= 0 && c < 1000 && (s->status[c / 8] >> (c % 8) & 1);
}

static bool path_ok(const struct ht_select *s, json_t *rec)
{
    const char *p = json_string_value(ht_json_path(rec, "url.path"));
    return p && fnmatch(s->path_glob, p, 0) == 0;
}

static bool slow_ok(const struct ht_select *s, json_t *rec)
{
    json_t *d = ht_json_path(rec, "httptape.duration_ns");
    return json_is_integer(d) && json_integer_value(d) > s->slower_than_ns;
}

static bool exchange_ok(const struct ht_select *s, json_t *rec)
{
    return (!s->has_status || status_ok(s, rec)) &&
           (!s->n_methods || method_ok(s, rec)) &&
           (!s->path_glob || path_ok(s, rec)) &&
           (s->slower_than_ns < 0 || slow_ok(s, rec)) &&
           (!s->grep || body_has(ht_json_path(rec, "http.request.body"), s->grep) ||
            body_has(ht_json_path(rec, "http.response.body"), s->grep));
}

enum ht_select_kind ht_select_match(const struct ht_select *s, json_t *rec)
{
    if (!json_is_object(rec))
        return HT_SEL_SKIP;
    const char *t = json_string_value(ht_json_path(rec, "httptape.type"));
    if (t && !strcmp(t, "stats"))
        return s->stats ? HT_SEL_STATS : HT_SEL_SKIP;
    if (t && strcmp(t, "exchange"))
        return ht_select_filters(s) ? HT_SEL_SKIP : HT_SEL_OTHER;
    return exchange_ok(s, rec) ? HT_SEL_EXCHANGE : HT_SEL_SKIP;
}
