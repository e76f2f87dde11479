/*
 * cmd_tail.c - `httptape tail`: show the records of a JSON-lines log, one
 * line each, and optionally keep following the file.
 *
 * Owns: tail's option parsing, finding the last N lines, following a file
 * across truncation and replacement, and the human one-line format below.
 * Single-threaded. The only global is the stop flag set by SIGINT/SIGTERM.
 *
 * What -n counts: records the selection (select.h: --status, --path, ...)
 * takes, except statistics records (.httptape.type "stats"), so a log with
 * the periodic statistics on still shows N exchanges.
 * Statistics records are not shown unless --stats; then those after the
 * (N+1)-th last counted record are shown among the others, not counted.
 * Lines that are not JSON objects count (they are reported on stderr).
 *
 * Finding the last N records: a regular file is scanned backwards from its
 * end in 64 KiB blocks until N+1 newlines are seen; if those lines hold N or
 * fewer counted records (statistics among them) the scan goes back twice as
 * many lines, and so on; then it is read forwards from there, skipping the
 * counted records beyond N, so a 100 MB log costs a few blocks. Anything else
 * (stdin pipe, FIFO) is read to its end keeping a ring of the last N counted
 * records (and, with --stats, the statistics records among them).
 *
 * Following: the file is looked at when inotify reports a change and every
 * 200 ms. Before reading on, a file shorter than our offset, or one whose
 * first bytes or bytes just before our offset (up to 4 KiB each, kept from
 * what we read) changed, was truncated: it is read again from its start, so
 * a file truncated and refilled past our offset between two looks loses
 * nothing.
 *
 * A final line without '\n' counts as a line when not following (like
 * tail(1)); with -f it is held until its '\n' arrives. Line numbers in
 * warnings are exact when the scan reached the start of the file (small
 * files, stdin, after truncation or rotation), otherwise "?".
 *
 * Output format (one line per record; "-" marks an absent field):
 *
 *   exchange records (.httptape.type "exchange" or no .httptape.type):
 *     TIME METHOD PATH[?QUERY] STATUS DURATION req=<N>B resp=<N>B
 *          [ INCOMPLETE(GAP,...)] [ anomalies=A,...] [ [CONN#INDEX]]
 *   stats records (.httptape.type "stats"):
 *     TIME -- stats pid PID: KEY=VALUE KEY=VALUE ...[ (final)]
 *   any other type:
 *     TIME -- TYPE record
 *
 *   TIME      .timestamp (or .@timestamp) cut to milliseconds,
 *             "2026-11-21T23:57:12.123456789Z" -> "2026-11-21T23:57:12.123Z";
 *             printed as-is if it is not of that shape
 *   METHOD    .http.request.method
 *   PATH      .url.path; "?QUERY" added when .url.query is a non-empty string
 *   STATUS    .http.response.status_code
 *   DURATION  .httptape.duration_ns with about 3 significant digits:
 *             "850ns", "12.3us", "4.56ms", "1.23s"
 *   req/resp  .http.request.body.size / .http.response.body.size in bytes
 *             ("req=-" when absent)
 *   INCOMPLETE(...)  when .httptape.complete is false; lists .httptape.gaps
 *             (just " INCOMPLETE" when there are no gaps)
 *   anomalies=...    when .httptape.anomalies is a non-empty array
 *   [CONN#INDEX]     .httptape.connection.id and .request_index, when the id
 *             is present ("[CONN]" when the index is absent)
 *   stats KEY=VALUE  the members of .httptape.stats in file order; PID is
 *             .process.pid; " (final)" when .httptape.final is true
 *
 * Control bytes in strings are printed as \xNN so a log cannot drive the
 * terminal. With --json the lines are printed unchanged instead. Either way
 * a line that is not a JSON object prints nothing on stdout and
 * "httptape tail: line N: not a JSON object" on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "cli/select.h"

#define HT_TAIL_BLOCK      (64 * 1024)
#define HT_TAIL_MAX_LINE   (64 * 1024 * 1024)  /* longer lines are skipped */
#define HT_TAIL_MAX_READS  64                  /* blocks read per poll tick */
#define HT_TAIL_POLL_NS    (200 * 1000 * 1000)
#define HT_TAIL_DEFAULT_N  10
#define HT_TAIL_FP         4096                /* bytes kept at each end of what we read */
#define LINENO_UNKNOWN     (-1LL)

static volatile sig_atomic_t stop_requested;

static const char short_usage[] =
    "usage: httptape tail [-f|--follow] [-n N|--lines N] [--json] [SELECTION] FILE..."
    " (see 'httptape tail --help')\n";

static const char help_text[] =
    "usage: httptape tail [-f|--follow] [-n N|--lines N] [--json] [SELECTION] FILE...\n"
    "\n"
    "Show the last N selected records of an httptape log, one line per exchange.\n"
    "FILE '-' reads standard input (-f is then ignored). Several files: the last\n"
    "N of each, under a '==> FILE <==' header (none with --json); -f takes one.\n"
    "\n"
    "  -f, --follow     keep printing records as they are appended; survives\n"
    "                   truncation and the file being replaced or re-created;\n"
    "                   stop with Ctrl-C\n"
    "  -n, --lines N    how many records to show first (default 10, 0 for none);\n"
    "                   statistics records and records not selected are\n"
    "                   not counted\n"
    "      --json       print the records' JSON unchanged instead of a summary\n"
    "  -h, --help       show this help\n"
    "\n"
    "Line format:\n"
    "  TIME METHOD PATH[?QUERY] STATUS DURATION req=<bytes>B resp=<bytes>B\n"
    "     [INCOMPLETE(GAPS)] [anomalies=LIST] [[CONNECTION#INDEX]]\n"
    "  TIME -- stats pid PID: KEY=VALUE ... [(final)]\n"
    "Lines that are not JSON objects are reported on stderr and skipped.\n"
    "\n"
    "Exit status: 0 success, 1 FILE cannot be read, 2 usage error.\n"
    "\n";

struct tail_opts {
    bool follow;
    bool json;
    bool help;
    long long lines;
    struct ht_select sel;   /* filters, files, and whether stats records show */
    const char *path;       /* the file being shown */
};

/* Where lines go to be shown: counted records beyond N are skipped first. */
struct show {
    const struct tail_opts *o;
    long long skip;         /* counted records still to skip */
};

/* Receives each complete line (without its '\n'). Returns 0 or -errno. */
typedef int (*line_sink)(void *ctx, const char *s, size_t n, long long lineno);

/* Splits a byte stream into lines; holds a partial line between feeds. */
struct splitter {
    char *buf;
    size_t len, cap;
    bool skipping;          /* inside a line longer than HT_TAIL_MAX_LINE */
    long long lineno;       /* number of the line being assembled */
    line_sink sink;
    void *ctx;
};

struct ring_line {
    char *s;
    size_t n;
    long long lineno;
    bool counted;           /* not a statistics record */
};

/* The last `max` counted lines seen, and the statistics records among them
 * when o->sel.stats; grows on demand. */
struct ring {
    struct ring_line *v;
    size_t cap, head, count;
    long long max, counted;
    const struct tail_opts *o;
};

/*
 * What we last read of the followed file: its first bytes and the bytes just
 * before our offset. A file truncated and written again past our offset
 * between two looks keeps its inode and may even be longer than before;
 * these bytes no longer matching is how we notice (tail -F's case).
 */
struct fingerprint {
    char head[HT_TAIL_FP], tail[HT_TAIL_FP];
    size_t head_n, tail_n;
    off_t seen_size;            /* size and mtime at the last comparison */
    struct timespec seen_mtime;
};

/* The file being followed; fd < 0 while the path is missing. */
struct follower {
    const char *path;
    int fd;
    off_t off;
    dev_t dev;
    ino_t ino;
    bool warned_open;
    struct show *show;          /* its skip ends when the file starts again */
    int ino_fd, wd;             /* inotify wake-ups; -1 when unavailable */
    struct fingerprint fp;
};

/* ---- option parsing ---------------------------------------------------- */

static int usage_error(const char *fmt, const char *arg)
{
    return ht_usage_error("httptape tail", short_usage, fmt, arg);
}

static int parse_count(const char *s, long long *out)
{
    if (*s < '0' || *s > '9')
        return usage_error("bad line count '%s' (want a number >= 0)", s);
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end)
        return usage_error("bad line count '%s' (want a number >= 0)", s);
    if (errno == ERANGE || v > LLONG_MAX - 1)
        v = LLONG_MAX - 1;   /* "everything"; keeps N+1 from overflowing */
    *out = v;
    return 0;
}

/* Short flags may be bundled: -fn5, -fn 5. *i is advanced past a value. */
static int parse_short(int argc, char **argv, int *i, struct tail_opts *o)
{
    const char *a = argv[*i];
    for (size_t k = 1; a[k]; k++) {
        if (a[k] == 'f') {
            o->follow = true;
        } else if (a[k] == 'h') {
            o->help = true;
        } else if (a[k] == 'n') {
            if (a[k + 1])
                return parse_count(a + k + 1, &o->lines);
            if (*i + 1 >= argc)
                return usage_error("option '%s' needs a line count", "-n");
            return parse_count(argv[++*i], &o->lines);
        } else {
            char bad[3] = { '-', a[k], 0 };
            return usage_error("unknown option '%s'", bad);
        }
    }
    return 0;
}

static int parse_long(int argc, char **argv, int *i, struct tail_opts *o)
{
    const char *a = argv[*i];
    if (!strcmp(a, "--follow"))
        o->follow = true;
    else if (!strcmp(a, "--json"))
        o->json = true;
    else if (!strcmp(a, "--help"))
        o->help = true;
    else if (!strncmp(a, "--lines=", 8))
        return parse_count(a + 8, &o->lines);
    else if (!strcmp(a, "--lines")) {
        if (*i + 1 >= argc)
            return usage_error("option '%s' needs a line count", a);
        return parse_count(argv[++*i], &o->lines);
    } else
        return usage_error("unknown option '%s'", a);
    return 0;
}

/* Tail's own options (ht_select_opt_fn); ctx is the struct tail_opts. */
static int parse_opt(void *ctx, int argc, char **argv, int *i)
{
    struct tail_opts *o = ctx;
    return argv[*i][1] == '-' ? parse_long(argc, argv, i, o) : parse_short(argc, argv, i, o);
}

static int parse_args(int argc, char **argv, struct tail_opts *o)
{
    int rc = ht_select_args(&o->sel, argc, argv, "httptape tail", short_usage, parse_opt, o,
                            &o->help);
    if (!rc && o->follow && o->sel.n_files > 1)
        rc = usage_error("-f follows one FILE; several were given%s", "");
    return rc;
}

/* ---- rendering ------------------------------------------------------------ */

#define get ht_json_path

static void put_bytes(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
}

static void put_str_or_dash(json_t *v)
{
    if (json_is_string(v))
        put_bytes(json_string_value(v), json_string_length(v));
    else
        putchar('-');
}

static void put_int_or_dash(json_t *v)
{
    if (json_is_integer(v))
        printf("%lld", (long long)json_integer_value(v));
    else
        putchar('-');
}

/* Strings raw, integers plain, anything else as compact JSON. */
static void put_value(json_t *v)
{
    if (json_is_string(v)) {
        put_str_or_dash(v);
        return;
    }
    if (json_is_integer(v)) {
        put_int_or_dash(v);
        return;
    }
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    put_bytes(s ? s : "?", s ? strlen(s) : 1);
    free(s);
}

static void put_joined(json_t *arr)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        if (i)
            putchar(',');
        put_value(v);
    }
}

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return n > 0;
}

/* "YYYY-MM-DDTHH:MM:SS[.fraction]Z" -> "YYYY-MM-DDTHH:MM:SS.mmmZ". */
static void put_time(json_t *rec)
{
    json_t *t = json_object_get(rec, "timestamp");
    if (!json_is_string(t))
        t = json_object_get(rec, "@timestamp");
    if (!json_is_string(t)) {
        putchar('-');
        return;
    }
    const char *s = json_string_value(t);
    size_t n = json_string_length(t);
    bool frac = n > 21 && s[19] == '.' && all_digits(s + 20, n - 21);
    if (n < 20 || s[10] != 'T' || s[n - 1] != 'Z' || !(frac || n == 20)) {
        put_bytes(s, n);
        return;
    }
    printf("%.19s.", s);
    for (size_t k = 0; k < 3; k++)
        putchar(frac && 20 + k < n - 1 ? s[20 + k] : '0');
    putchar('Z');
}

/* About three significant digits; the unit moves up when rounding hits 1000. */
static void put_duration(json_t *v)
{
    static const struct { double div; const char *unit; } units[] = {
        { 1e3, "us" }, { 1e6, "ms" }, { 1e9, "s" },
    };
    if (!json_is_integer(v)) {
        putchar('-');
        return;
    }
    long long ns = (long long)json_integer_value(v);
    if (ns < 1000) {
        printf("%lldns", ns);
        return;
    }
    for (size_t i = 0; i < 3; i++) {
        double x = (double)ns / units[i].div;
        if (x >= 999.5 && i < 2)
            continue;
        int decimals = x < 9.995 ? 2 : x < 99.95 ? 1 : 0;
        printf("%.*f%s", decimals, x, units[i].unit);
        return;
    }
}

/* " req=123B", or " req=-" when absent. */
static void put_size(const char *label, json_t *v)
{
    fputs(label, stdout);
    put_int_or_dash(v);
    if (json_is_integer(v))
        putchar('B');
}

static void put_exchange_flags(json_t *ht)
{
    if (json_is_false(json_object_get(ht, "complete"))) {
        json_t *gaps = json_object_get(ht, "gaps");
        fputs(" INCOMPLETE", stdout);
        if (json_array_size(gaps)) {
            putchar('(');
            put_joined(gaps);
            putchar(')');
        }
    }
    json_t *anomalies = json_object_get(ht, "anomalies");
    if (json_array_size(anomalies)) {
        fputs(" anomalies=", stdout);
        put_joined(anomalies);
    }
    json_t *conn = json_object_get(ht, "connection");
    json_t *id = json_object_get(conn, "id");
    if (id) {
        fputs(" [", stdout);
        put_value(id);
        json_t *idx = json_object_get(conn, "request_index");
        if (idx) {
            putchar('#');
            put_value(idx);
        }
        putchar(']');
    }
}

static void render_exchange(json_t *rec, json_t *ht)
{
    put_time(rec);
    putchar(' ');
    put_str_or_dash(get(rec, "http.request.method"));
    putchar(' ');
    put_str_or_dash(get(rec, "url.path"));
    json_t *query = get(rec, "url.query");
    if (json_string_length(query)) {
        putchar('?');
        put_str_or_dash(query);
    }
    putchar(' ');
    put_int_or_dash(get(rec, "http.response.status_code"));
    putchar(' ');
    put_duration(json_object_get(ht, "duration_ns"));
    put_size(" req=", get(rec, "http.request.body.size"));
    put_size(" resp=", get(rec, "http.response.body.size"));
    put_exchange_flags(ht);
    putchar('\n');
}

static void render_stats(json_t *rec, json_t *ht)
{
    put_time(rec);
    fputs(" -- stats pid ", stdout);
    put_int_or_dash(get(rec, "process.pid"));
    putchar(':');
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(ht, "stats"), key, v) {
        putchar(' ');
        put_bytes(key, strlen(key));
        putchar('=');
        put_value(v);
    }
    if (json_is_true(json_object_get(ht, "final")))
        fputs(" (final)", stdout);
    putchar('\n');
}

/* A WebSocket frame: "WS client text 5B "hello"", a close its code. */
static void render_frame(json_t *rec, json_t *ht)
{
    json_t *ws = json_object_get(rec, "websocket");
    put_time(rec);
    fputs(" WS ", stdout);
    put_str_or_dash(json_object_get(ws, "direction"));
    putchar(' ');
    put_str_or_dash(json_object_get(ws, "opcode"));
    put_size(" ", json_object_get(ws, "size"));
    json_t *code = json_object_get(ws, "close_code");
    if (code) {
        fputs(" code=", stdout);
        put_value(code);
    }
    json_t *text = json_object_get(ws, "content");
    if (!text)
        text = json_object_get(ws, "close_reason");
    if (json_string_length(text)) {
        fputs(" \"", stdout);
        size_t n = json_string_length(text);
        put_bytes(json_string_value(text), n > 60 ? 60 : n);
        fputs(n > 60 ? "...\"" : "\"", stdout);
    }
    put_exchange_flags(ht);
    putchar('\n');
}

/* A tunnel's end, or a long response's progress. */
static void render_tunnel(json_t *rec, json_t *ht, bool progress)
{
    json_t *t = json_object_get(rec, progress ? "progress" : "tunnel");
    put_time(rec);
    if (progress) {
        fputs(" PROGRESS ", stdout);
        put_int_or_dash(json_object_get(t, "status_code"));
        put_size(" resp=", json_object_get(t, "response_bytes"));
        putchar(' ');
        put_duration(json_object_get(t, "elapsed_ns"));
    } else {
        fputs(" TUNNEL ", stdout);
        put_str_or_dash(json_object_get(t, "protocol"));
        json_t *b = json_object_get(t, "bytes");
        put_size(" client=", json_object_get(b, "client"));
        put_size(" server=", json_object_get(b, "server"));
        json_t *f = json_object_get(t, "frames");
        if (f) {
            fputs(" frames=", stdout);
            put_int_or_dash(json_object_get(f, "client"));
            putchar('/');
            put_int_or_dash(json_object_get(f, "server"));
        }
        putchar(' ');
        put_duration(json_object_get(t, "duration_ns"));
    }
    put_exchange_flags(ht);
    putchar('\n');
}

static void render(json_t *rec)
{
    json_t *ht = json_object_get(rec, "httptape");
    json_t *type = json_object_get(ht, "type");
    const char *t = json_string_value(type);
    if (!type || (t && !strcmp(t, "exchange"))) {
        render_exchange(rec, ht);
    } else if (t && !strcmp(t, "stats")) {
        render_stats(rec, ht);
    } else if (t && !strcmp(t, "websocket_frame")) {
        render_frame(rec, ht);
    } else if (t && (!strcmp(t, "tunnel") || !strcmp(t, "progress"))) {
        render_tunnel(rec, ht, !strcmp(t, "progress"));
    } else {
        put_time(rec);
        fputs(" -- ", stdout);
        put_value(type);
        fputs(" record\n", stdout);
    }
}

static void warn_line(long long lineno, const char *what)
{
    if (lineno == LINENO_UNKNOWN)
        fprintf(stderr, "httptape tail: line ?: %s\n", what);
    else
        fprintf(stderr, "httptape tail: line %lld: %s\n", lineno, what);
}

/* How tail treats a line: counted by -n and shown, shown among them, or
 * neither. A line that is not a JSON object counts (it is warned about). */
enum line_kind { LINE_COUNTED, LINE_STATS, LINE_HIDDEN };

static enum line_kind classify(const struct tail_opts *o, json_t *rec)
{
    if (!json_is_object(rec))
        return LINE_COUNTED;
    switch (ht_select_match(&o->sel, rec)) {
    case HT_SEL_EXCHANGE:
    case HT_SEL_OTHER:
        return LINE_COUNTED;
    case HT_SEL_STATS:
        return LINE_STATS;
    default:
        return LINE_HIDDEN;
    }
}

static enum line_kind classify_line(const struct tail_opts *o, const char *s, size_t n)
{
    json_t *rec = json_loadb(s, n, JSON_ALLOW_NUL, NULL);
    enum line_kind k = classify(o, rec);
    json_decref(rec);
    return k;
}

/* line_sink that prints one record unless it is skipped; ctx is the struct show. */
static int emit_line(void *ctx, const char *s, size_t n, long long lineno)
{
    struct show *sh = ctx;
    const struct tail_opts *o = sh->o;
    json_t *rec = json_loadb(s, n, JSON_ALLOW_NUL, NULL);
    enum line_kind k = classify(o, rec);
    if (k == LINE_COUNTED && sh->skip > 0) {
        sh->skip--;
    } else if (k == LINE_HIDDEN || (k == LINE_STATS && sh->skip > 0)) {
        ;                       /* not selected, or before the first record shown */
    } else if (!json_is_object(rec)) {
        warn_line(lineno, "not a JSON object");
    } else if (o->json) {
        fwrite(s, 1, n, stdout);
        putchar('\n');
    } else {
        render(rec);
    }
    json_decref(rec);
    return ferror(stdout) ? -EIO : 0;
}

/* ---- line splitting ---------------------------------------------------- */

static void split_reset(struct splitter *sp, long long lineno)
{
    sp->len = 0;
    sp->skipping = false;
    sp->lineno = lineno;
}

static int split_append(struct splitter *sp, const char *p, size_t n)
{
    if (sp->len + n > sp->cap) {
        size_t cap = sp->cap ? sp->cap : 4096;
        while (cap < sp->len + n)
            cap *= 2;
        char *b = realloc(sp->buf, cap);
        if (!b)
            return -ENOMEM;
        sp->buf = b;
        sp->cap = cap;
    }
    memcpy(sp->buf + sp->len, p, n);
    sp->len += n;
    return 0;
}

/* Takes the bytes up to (not including) a '\n' or the end of the chunk. */
static int split_take(struct splitter *sp, const char *p, size_t take, bool ends_line)
{
    if (sp->skipping)
        return 0;
    if (sp->len + take > HT_TAIL_MAX_LINE) {
        warn_line(sp->lineno, "longer than 64 MiB, skipped");
        sp->len = 0;
        sp->skipping = true;
        return 0;
    }
    if (ends_line && sp->len == 0)   /* whole line in the chunk: no copy */
        return sp->sink(sp->ctx, p, take, sp->lineno);
    int rc = split_append(sp, p, take);
    if (rc || !ends_line)
        return rc;
    size_t len = sp->len;
    sp->len = 0;
    return sp->sink(sp->ctx, sp->buf, len, sp->lineno);
}

static int split_feed(struct splitter *sp, const char *p, size_t n)
{
    while (n) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        int rc = split_take(sp, p, take, nl != NULL);
        if (rc)
            return rc;
        if (nl) {
            sp->skipping = false;
            if (sp->lineno != LINENO_UNKNOWN)
                sp->lineno++;
            take++;
        }
        p += take;
        n -= take;
    }
    return 0;
}

/* End of input: a held partial line counts as a line. */
static int split_finish(struct splitter *sp)
{
    int rc = 0;
    if (sp->len && !sp->skipping)
        rc = sp->sink(sp->ctx, sp->buf, sp->len, sp->lineno);
    split_reset(sp, sp->lineno == LINENO_UNKNOWN ? LINENO_UNKNOWN : sp->lineno + 1);
    return rc;
}

/* ---- the last N lines of a stream (ring) ---------------------------------- */

/* Drops the oldest line. */
static void ring_pop(struct ring *r)
{
    struct ring_line *l = &r->v[r->head];
    r->counted -= l->counted;
    free(l->s);
    r->head = (r->head + 1) % r->cap;
    r->count--;
}

/* Room for one more line: doubles the array, oldest line first. */
static int ring_grow(struct ring *r)
{
    size_t cap = r->cap ? r->cap * 2 : 16;
    struct ring_line *v = malloc(cap * sizeof(*v));
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < r->count; i++)
        v[i] = r->v[(r->head + i) % r->cap];
    free(r->v);
    r->v = v;
    r->cap = cap;
    r->head = 0;
    return 0;
}

/*
 * line_sink that keeps a copy of the line; ctx is the struct ring. Past max
 * counted lines, the oldest go up to and including the oldest counted one,
 * so the statistics records after it stay, as a file's window has them.
 */
static int ring_push(void *ctx, const char *s, size_t n, long long lineno)
{
    struct ring *r = ctx;
    if (r->max == 0)
        return 0;
    enum line_kind k = classify_line(r->o, s, n);
    bool counted = k == LINE_COUNTED;
    if (k == LINE_HIDDEN)
        return 0;
    if (r->count == r->cap && ring_grow(r))
        return -ENOMEM;
    char *copy = malloc(n ? n : 1);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, s, n);
    r->v[(r->head + r->count++) % r->cap] = (struct ring_line){ copy, n, lineno, counted };
    r->counted += counted;
    while (r->counted > r->max) {
        bool was_counted = r->v[r->head].counted;
        ring_pop(r);
        if (was_counted)
            break;
    }
    return 0;
}

static int ring_flush_free(struct ring *r, const struct tail_opts *o, int rc)
{
    struct show sh = { .o = o };
    for (size_t i = 0; i < r->count; i++) {
        struct ring_line *l = &r->v[(r->head + i) % r->cap];
        if (!rc)
            rc = emit_line(&sh, l->s, l->n, l->lineno);
        free(l->s);
    }
    free(r->v);
    return rc;
}

/* Pipes and other unseekable input: read to the end keeping the last N. */
static int show_stream(int fd, const struct tail_opts *o, char *blk)
{
    struct ring r = { .max = o->lines, .o = o };
    struct splitter sp = { .lineno = 1, .sink = ring_push, .ctx = &r };
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, blk, HT_TAIL_BLOCK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : split_finish(&sp);
            break;
        }
        if ((rc = split_feed(&sp, blk, (size_t)n)))
            break;
    }
    free(sp.buf);
    return ring_flush_free(&r, o, rc);
}

/* ---- the last N lines of a regular file (backward scan) ------------------ */

/* Reads up to n bytes at off; returns how many (short only at EOF) or -errno. */
static ssize_t pread_full(int fd, char *buf, size_t n, off_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, buf + got, n - got, off + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

static long long count_newlines(const char *p, size_t n)
{
    long long c = 0;
    for (const char *q; (q = memchr(p, '\n', n)); n -= (size_t)(q + 1 - p), p = q + 1)
        c++;
    return c;
}

/*
 * Sets *start just past the need-th '\n' counted back from `size` (0 if
 * there are fewer), and *lineno to the number of the line starting there
 * when the scan saw everything before it, else LINENO_UNKNOWN.
 */
static int find_start(int fd, off_t size, long long need, char *blk,
                      off_t *start, long long *lineno)
{
    long long found = 0;
    for (off_t pos = size; pos > 0;) {
        size_t n = pos < HT_TAIL_BLOCK ? (size_t)pos : HT_TAIL_BLOCK;
        pos -= (off_t)n;
        ssize_t r = pread_full(fd, blk, n, pos);
        if (r < 0)
            return (int)r;
        if ((size_t)r < n)
            break;              /* shrank under us: show it from the start */
        for (char *end = blk + n, *nl; (nl = memrchr(blk, '\n', (size_t)(end - blk))); end = nl) {
            if (++found < need)
                continue;
            *start = pos + (nl - blk) + 1;
            *lineno = pos ? LINENO_UNKNOWN : count_newlines(blk, (size_t)(nl - blk)) + 2;
            return 0;
        }
    }
    *start = 0;
    *lineno = 1;
    return 0;
}

static int feed_range(int fd, off_t from, off_t to, struct splitter *sp, char *blk)
{
    while (from < to) {
        size_t want = to - from < HT_TAIL_BLOCK ? (size_t)(to - from) : HT_TAIL_BLOCK;
        ssize_t r = pread_full(fd, blk, want, from);
        if (r <= 0)
            return (int)r;
        int rc = split_feed(sp, blk, (size_t)r);
        if (rc)
            return rc;
        from += r;
    }
    return 0;
}

/* What count_line adds up. */
struct counter {
    const struct tail_opts *o;
    long long n;
};

/* line_sink that counts the lines -n counts; ctx is a struct counter. */
static int count_line(void *ctx, const char *s, size_t n, long long lineno)
{
    struct counter *c = ctx;
    (void)lineno;
    c->n += classify_line(c->o, s, n) == LINE_COUNTED;
    return 0;
}

/* How many counted records [from, to) holds; a final line without '\n'
 * only when `partial` (it is shown now, not held for -f). */
static int count_range(int fd, off_t from, off_t to, bool partial, char *blk,
                       const struct tail_opts *o, long long *out)
{
    struct counter c = { .o = o };
    struct splitter sp = { .lineno = LINENO_UNKNOWN, .sink = count_line, .ctx = &c };
    int rc = feed_range(fd, from, to, &sp, blk);
    if (!rc && partial)
        rc = split_finish(&sp);
    free(sp.buf);
    *out = c.n;
    return rc;
}

/*
 * Finds where to start showing the last N counted records: goes back N+1
 * lines, and twice as many while that holds N or fewer counted records and
 * is not the whole file. Sets sh->skip to the counted records before them.
 */
static int find_window(int fd, off_t size, const struct tail_opts *o, bool partial,
                       char *blk, struct show *sh, off_t *start, long long *lineno)
{
    long long need = o->lines + !partial;
    for (;;) {
        long long have;
        int rc = find_start(fd, size, need, blk, start, lineno);
        if (!rc)
            rc = count_range(fd, *start, size, partial, blk, o, &have);
        if (rc)
            return rc;
        if (have > o->lines || *start == 0) {
            sh->skip = have > o->lines ? have - o->lines : 0;
            return 0;
        }
        need = need > LLONG_MAX / 2 ? LLONG_MAX : need * 2;
    }
}

/*
 * Prepares sp to start at the first line of the window of the last N
 * counted records and sets *start to that offset. Without -f also prints
 * them (up to the size seen now, the final unterminated line included);
 * with -f the follower reads them and holds an unterminated last line.
 */
static int show_regular(int fd, off_t size, const struct tail_opts *o,
                        struct splitter *sp, char *blk, off_t *start)
{
    char last = '\n';
    long long lineno = 1;
    *start = 0;
    if (size > 0 && pread_full(fd, &last, 1, size - 1) != 1)
        return -EIO;
    bool partial = !o->follow && last != '\n';
    int rc = 0;
    if (size > 0 && o->lines == 0)
        *start = size;
    else if (size > 0)
        rc = find_window(fd, size, o, partial, blk, sp->ctx, start, &lineno);
    split_reset(sp, lineno);
    if (rc || o->follow)
        return rc;
    rc = feed_range(fd, *start, size, sp, blk);
    return rc ? rc : split_finish(sp);
}

/* ---- following ------------------------------------------------------------ */

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* No SA_RESTART: the signal interrupts the sleep and we notice at once. */
static void install_stop_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* Until the file changes (inotify) or 200 ms pass, whichever is first. */
static void nap(struct follower *f)
{
    if (f->ino_fd < 0) {
        struct timespec ts = { 0, HT_TAIL_POLL_NS };
        nanosleep(&ts, NULL);
        return;
    }
    struct pollfd p = { .fd = f->ino_fd, .events = POLLIN };
    if (poll(&p, 1, HT_TAIL_POLL_NS / 1000000) > 0) {
        char ev[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        while (read(f->ino_fd, ev, sizeof(ev)) > 0)
            ;                   /* the events only wake us; we look ourselves */
    }
}

/* Watches the path's current file; without inotify we just poll. */
static void watch_path(struct follower *f)
{
    if (f->ino_fd < 0)
        return;
    if (f->wd >= 0)
        inotify_rm_watch(f->ino_fd, f->wd);
    f->wd = inotify_add_watch(f->ino_fd, f->path,
                              IN_MODIFY | IN_ATTRIB | IN_MOVE_SELF | IN_DELETE_SELF);
}

/* Records n bytes just read at pos (sequential reads only). */
static void fp_note(struct fingerprint *fp, const char *p, size_t n, off_t pos)
{
    if (pos < HT_TAIL_FP && (size_t)pos == fp->head_n) {
        size_t k = HT_TAIL_FP - (size_t)pos < n ? HT_TAIL_FP - (size_t)pos : n;
        memcpy(fp->head + pos, p, k);
        fp->head_n += k;
    }
    if (n >= HT_TAIL_FP) {
        memcpy(fp->tail, p + n - HT_TAIL_FP, HT_TAIL_FP);
        fp->tail_n = HT_TAIL_FP;
        return;
    }
    size_t keep = fp->tail_n < HT_TAIL_FP - n ? fp->tail_n : HT_TAIL_FP - n;
    memmove(fp->tail, fp->tail + fp->tail_n - keep, keep);
    memcpy(fp->tail + keep, p, n);
    fp->tail_n = keep + n;
}

/* Fills the fingerprint from the file for a follower starting at f->off. */
static void fp_load(struct follower *f)
{
    struct fingerprint *fp = &f->fp;
    struct stat st;
    fp->head_n = fp->tail_n = 0;
    if (fstat(f->fd, &st) == 0) {
        fp->seen_size = st.st_size;
        fp->seen_mtime = st.st_mtim;
    }
    size_t hn = f->off < HT_TAIL_FP ? (size_t)f->off : HT_TAIL_FP;
    ssize_t r = pread_full(f->fd, fp->head, hn, 0);
    fp->head_n = r > 0 ? (size_t)r : 0;
    r = pread_full(f->fd, fp->tail, hn, f->off - (off_t)hn);
    fp->tail_n = r > 0 ? (size_t)r : 0;
}

static bool same_bytes(int fd, const char *want, size_t n, off_t at, char *blk)
{
    return n == 0 || (pread_full(fd, blk, n, at) == (ssize_t)n && !memcmp(blk, want, n));
}

/* Shorter than our offset, or what we read is no longer there. */
static bool was_truncated(struct follower *f, char *blk)
{
    struct fingerprint *fp = &f->fp;
    struct stat st;
    if (fstat(f->fd, &st))
        return false;
    if (st.st_size < f->off)
        return true;
    if (st.st_size == fp->seen_size && st.st_mtim.tv_sec == fp->seen_mtime.tv_sec &&
        st.st_mtim.tv_nsec == fp->seen_mtime.tv_nsec)
        return false;           /* untouched since we last compared */
    fp->seen_size = st.st_size;
    fp->seen_mtime = st.st_mtim;
    return !same_bytes(f->fd, fp->head, fp->head_n, 0, blk) ||
           !same_bytes(f->fd, fp->tail, fp->tail_n, f->off - (off_t)fp->tail_n, blk);
}

/* Reads what is there, at most HT_TAIL_MAX_READS blocks; *more when cut short. */
static int drain(struct follower *f, struct splitter *sp, char *blk, bool *more)
{
    *more = false;
    for (int i = 0; f->fd >= 0 && i < HT_TAIL_MAX_READS && !stop_requested; i++) {
        ssize_t r = pread(f->fd, blk, HT_TAIL_BLOCK, f->off);
        if (r < 0)
            return errno == EINTR ? 0 : -errno;
        if (r == 0)
            return 0;
        fp_note(&f->fp, blk, (size_t)r, f->off);
        f->off += r;
        int rc = split_feed(sp, blk, (size_t)r);
        if (rc)
            return rc;
    }
    *more = f->fd >= 0 && !stop_requested;
    return 0;
}

/* Before reading more: if the file was cut (and maybe refilled), start at 0. */
static void check_truncated(struct follower *f, struct splitter *sp, char *blk)
{
    if (f->fd < 0 || !was_truncated(f, blk))
        return;
    fprintf(stderr, "httptape tail: %s: file truncated\n", f->path);
    f->show->skip = 0;
    f->off = 0;
    f->fp.head_n = f->fp.tail_n = 0;
    split_reset(sp, 1);
}

/* Opens the path again if it is there; reads it from its start. */
static void follow_open(struct follower *f, struct splitter *sp)
{
    struct stat st;
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        if (err != ENOENT && !f->warned_open)
            fprintf(stderr, "httptape tail: cannot open '%s': %s (will retry)\n",
                    f->path, strerror(err));
        f->warned_open = err != ENOENT;
        return;
    }
    if (fstat(fd, &st)) {
        close(fd);
        return;
    }
    f->fd = fd;
    f->off = 0;
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    f->warned_open = false;
    f->show->skip = 0;
    f->fp.head_n = f->fp.tail_n = 0;
    f->fp.seen_size = st.st_size;
    f->fp.seen_mtime = st.st_mtim;
    watch_path(f);
    split_reset(sp, 1);
}

/* Replaced or removed path: finish the old file, then switch to the new one. */
static int check_replaced(struct follower *f, struct splitter *sp, char *blk)
{
    struct stat st;
    bool gone = stat(f->path, &st) != 0;
    if (f->fd < 0) {
        if (!gone)
            follow_open(f, sp);
        return 0;
    }
    if (!gone && st.st_dev == f->dev && st.st_ino == f->ino)
        return 0;
    bool more;
    int rc;
    do
        rc = drain(f, sp, blk, &more);
    while (!rc && more);
    if (!rc)
        rc = split_finish(sp);
    close(f->fd);
    f->fd = -1;
    fprintf(stderr, "httptape tail: %s: %s\n", f->path,
            gone ? "removed; waiting for it to reappear" : "replaced; following the new file");
    if (!gone)
        follow_open(f, sp);
    return rc;
}

/*
 * Looks at the file when inotify says it changed, and every 200 ms anyway
 * (a removed path is only noticed by polling), until SIGINT/SIGTERM.
 * Closes f->fd on the way out.
 */
static int follow(struct follower *f, struct splitter *sp, char *blk)
{
    int rc = 0;
    install_stop_handlers();
    f->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    f->wd = -1;
    watch_path(f);
    fp_load(f);
    while (!rc && !stop_requested) {
        bool more;
        check_truncated(f, sp, blk);
        rc = drain(f, sp, blk, &more);
        if (rc || more)
            continue;
        rc = check_replaced(f, sp, blk);
        if (!rc && !stop_requested)
            nap(f);
    }
    if (f->fd >= 0)
        close(f->fd);
    if (f->ino_fd >= 0)
        close(f->ino_fd);
    return rc;
}

/* ---- entry point ------------------------------------------------------------ */

/* Shows the last N lines of fd, then follows if asked. Takes ownership of fd. */
static int tail_fd(int fd, const struct tail_opts *o, bool is_stdin, char *blk)
{
    struct stat st;
    struct show sh = { .o = o };
    struct splitter sp = { .sink = emit_line, .ctx = &sh };
    off_t start = 0;
    int rc;
    if (fstat(fd, &st))
        rc = -errno;
    else if (!S_ISREG(st.st_mode))
        rc = show_stream(fd, o, blk);
    else
        rc = show_regular(fd, st.st_size, o, &sp, blk, &start);
    if (!rc && o->follow && !is_stdin && S_ISREG(st.st_mode)) {
        struct follower *f = calloc(1, sizeof(*f));
        if (f) {
            *f = (struct follower){ .path = o->path, .fd = fd, .off = start,
                                    .dev = st.st_dev, .ino = st.st_ino, .show = &sh };
            rc = follow(f, &sp, blk);
            free(f);
        } else {
            close(fd);
            rc = -ENOMEM;
        }
    } else if (!is_stdin) {
        close(fd);
    }
    free(sp.buf);
    return rc;
}

/* Shows one file (and follows it with -f); 0, or 1 after a message. */
static int tail_one(struct tail_opts *o, const char *path, char *blk)
{
    o->path = path;
    bool is_stdin = !strcmp(path, "-");
    int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "httptape tail: cannot open '%s': %s\n", path, strerror(errno));
        return 1;
    }
    if (o->follow && !is_stdin)
        setvbuf(stdout, NULL, _IOLBF, 0);   /* one flush per record for | grep */
    int rc = tail_fd(fd, o, is_stdin, blk);
    if (rc)
        fprintf(stderr, "httptape tail: %s: %s\n", is_stdin ? "stdin" : path, strerror(-rc));
    return rc ? 1 : 0;
}

/* Several files: each one's last N records under a "==> FILE <==" header,
 * as tail(1) prints them (no headers with --json: the output stays JSON). */
static int tail_files(struct tail_opts *o, char *blk)
{
    int status = 0;
    for (size_t i = 0; i < o->sel.n_files && !ferror(stdout); i++) {
        const char *path = o->sel.files[i];
        if (o->sel.n_files > 1 && !o->json) {
            printf("%s==> %s <==\n", i ? "\n" : "", strcmp(path, "-") ? path : "standard input");
            fflush(stdout);
        }
        if (tail_one(o, path, blk))
            status = 1;
    }
    return status;
}

int ht_cmd_tail(int argc, char **argv)
{
    struct tail_opts o = { .lines = HT_TAIL_DEFAULT_N };
    ht_select_init(&o.sel);
    int rc = parse_args(argc, argv, &o);
    if (rc || o.help) {
        if (o.help) {
            fputs(help_text, stdout);
            fputs(ht_select_help, stdout);
        }
        ht_select_free(&o.sel);
        return rc;
    }
    char *blk = malloc(HT_TAIL_BLOCK);
    if (blk) {
        rc = tail_files(&o, blk);
        free(blk);
    } else {
        fputs("httptape tail: out of memory\n", stderr);
        rc = 1;
    }
    ht_select_free(&o.sel);
    if (fflush(stdout) || ferror(stdout)) {
        if (!rc)
            fprintf(stderr, "httptape tail: writing output: %s\n", strerror(errno));
        rc = 1;
    }
    return rc;
}
