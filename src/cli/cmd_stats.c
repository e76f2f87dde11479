/*
 * cmd_stats.c - `httptape stats`: requests, errors, bytes and latency
 * percentiles over the selected exchanges of logs, as a table or JSON;
 * with -f, over a log as it grows, printed again every --interval.
 *
 * Owns: stats' options, and printing a struct ht_tally (tally.c counts,
 * in memory that does not grow with the log). Single-threaded; the only
 * global is the stop flag set by SIGINT/SIGTERM under -f.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/logread.h"
#include "cli/select.h"
#include "cli/tally.h"

static const char prog[] = "httptape stats";
static volatile sig_atomic_t stop_requested;

static const char short_usage[] =
    "usage: httptape stats [-f] [--json] [--top N] [--max-paths N] [SELECTION] FILE..."
    " (see 'httptape stats --help')\n";

static const char help_text[] =
    "usage: httptape stats [-f] [--json] [--top N] [--max-paths N] [SELECTION] FILE...\n"
    "\n"
    "Requests, errors (5xx and incomplete exchanges), body bytes and latency\n"
    "percentiles (p50/p90/p99, within 1%) of the selected exchanges, by status\n"
    "class and by method + path template (ids folded to {id}), and the slowest.\n"
    "\n"
    "  -f, --follow        count a log as it grows; print every --interval and\n"
    "                      at Ctrl-C (one FILE)\n"
    "      --interval SECS seconds between prints with -f (default 2)\n"
    "      --json          one JSON object (with -f: one per print, a line each)\n"
    "      --top N         how many of the slowest exchanges to list (default 10)\n"
    "      --max-paths N   path templates kept (default 1000); the rest count\n"
    "                      under 'other'\n"
    "  -h, --help          show this help\n"
    "\n";

struct stats_opts {
    bool follow, json, help;
    long top, max_paths, interval;
    struct ht_select sel;
    struct ht_tally tally;
};

static const char *const class_names[7] = { "1xx", "2xx", "3xx", "4xx", "5xx", "other", "none" };

/* ---- options ------------------------------------------------------------ */

static int usage_error(const char *fmt, const char *arg)
{
    return ht_usage_error(prog, short_usage, fmt, arg);
}

/* A number option's value: "--top 5" or "--top=5", in [min, max]. */
static int number(int argc, char **argv, int *i, const char *name, long min, long max,
                  long *out, bool *took)
{
    const char *a = argv[*i], *v;
    size_t n = strlen(name);
    *took = !strncmp(a, name, n) && (a[n] == 0 || a[n] == '=');
    if (!*took)
        return 0;
    if (a[n] == '=')
        v = a + n + 1;
    else if (*i + 1 < argc)
        v = argv[++*i];
    else
        return usage_error("option '%s' needs a number", name);
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end || errno || x < min || x > max)
        return usage_error("bad number '%s'", v);
    *out = x;
    return 0;
}

static int parse_opt(void *ctx, int argc, char **argv, int *i)
{
    struct stats_opts *o = ctx;
    const char *a = argv[*i];
    bool took;
    int rc;
    if (!strcmp(a, "-f") || !strcmp(a, "--follow"))
        o->follow = true;
    else if (!strcmp(a, "--json"))
        o->json = true;
    else if (!strcmp(a, "-h") || !strcmp(a, "--help"))
        o->help = true;
    else if ((rc = number(argc, argv, i, "--top", 0, 10000, &o->top, &took)) || took)
        return rc;
    else if ((rc = number(argc, argv, i, "--max-paths", 1, 1000000, &o->max_paths, &took)) || took)
        return rc;
    else if ((rc = number(argc, argv, i, "--interval", 1, 86400, &o->interval, &took)) || took)
        return rc;
    else
        return usage_error("unknown option '%s'", a);
    return 0;
}

static int parse_args(int argc, char **argv, struct stats_opts *o)
{
    int rc = ht_select_args(&o->sel, argc, argv, prog, short_usage, parse_opt, o, &o->help);
    if (!rc && o->follow && (o->sel.n_files != 1 || !strcmp(o->sel.files[0], "-")))
        rc = usage_error("-f follows one FILE (not standard input)%s", "");
    return rc;
}

/* ---- the table --------------------------------------------------------------- */

/* A duration in ns with about 3 significant digits, as tail prints it. */
static void fmt_ns(char *out, size_t n, double ns)
{
    static const struct { double div; const char *unit; } u[] = {
        { 1e9, "s" }, { 1e6, "ms" }, { 1e3, "us" },
    };
    for (size_t i = 0; i < 3; i++) {
        if (ns < u[i].div)
            continue;
        double x = ns / u[i].div;
        snprintf(out, n, "%.*f%s", x < 9.995 ? 2 : x < 99.95 ? 1 : 0, x, u[i].unit);
        return;
    }
    snprintf(out, n, "%.0fns", ns);
}

static double mean_ns(const struct ht_tally_row *r)
{
    return r->timed ? (double)r->dur_sum / (double)r->timed : 0;
}

static void print_row(const char *label, const char *path, const struct ht_tally_row *r)
{
    char mean[16], max[16];
    fmt_ns(mean, sizeof(mean), mean_ns(r));
    fmt_ns(max, sizeof(max), (double)r->dur_max);
    printf("%-7s %-32s %9llu %7llu %12llu %12llu %9s %9s\n", label, path,
           (unsigned long long)r->requests, (unsigned long long)r->errors,
           (unsigned long long)r->req_bytes, (unsigned long long)r->resp_bytes,
           r->timed ? mean : "-", r->timed ? max : "-");
}

static int by_requests(const void *a, const void *b)
{
    const struct ht_tally_route *x = *(const struct ht_tally_route *const *)a;
    const struct ht_tally_route *y = *(const struct ht_tally_route *const *)b;
    if (x->row.requests != y->row.requests)
        return x->row.requests < y->row.requests ? 1 : -1;
    return strcmp(x->key, y->key);
}

/* The routes, most requests first, as a malloc'd array of n_routes pointers
 * (the table itself stays in hash order: -f goes on counting into it). */
static const struct ht_tally_route **sorted_routes(const struct ht_tally *t)
{
    const struct ht_tally_route **v = malloc((t->n_routes + 1) * sizeof(*v));
    size_t n = 0;
    for (size_t i = 0; v && i < t->cap; i++)
        if (t->routes[i].key)
            v[n++] = &t->routes[i];
    if (v)
        qsort(v, n, sizeof(*v), by_requests);
    return v;
}

static void print_latency(const struct ht_tally *t)
{
    const struct ht_sketch *s = &t->latency;
    char p[4][16];
    fmt_ns(p[0], 16, ht_sketch_quantile(s, 0.50));
    fmt_ns(p[1], 16, ht_sketch_quantile(s, 0.90));
    fmt_ns(p[2], 16, ht_sketch_quantile(s, 0.99));
    fmt_ns(p[3], 16, s->max);
    if (s->count)
        printf("latency   p50 %s  p90 %s  p99 %s  max %s  (%llu timed; within %g%%)\n",
               p[0], p[1], p[2], p[3], (unsigned long long)s->count, HT_SKETCH_ALPHA * 100);
    else
        printf("latency   - (no finished exchange)\n");
}

static void print_table(const struct ht_tally *t)
{
    printf("requests  %llu  errors %llu (5xx %llu, incomplete %llu)  "
           "request bytes %llu  response bytes %llu\n",
           (unsigned long long)t->total.requests, (unsigned long long)t->total.errors,
           (unsigned long long)t->errors_5xx, (unsigned long long)t->incomplete,
           (unsigned long long)t->total.req_bytes, (unsigned long long)t->total.resp_bytes);
    print_latency(t);
    printf("\n%-7s %-32s %9s %7s %12s %12s %9s %9s\n", "STATUS", "", "REQUESTS", "ERRORS",
           "REQ_BYTES", "RESP_BYTES", "MEAN", "MAX");
    for (int c = 0; c < 7; c++)
        if (t->classes[c].requests)
            print_row(class_names[c], "", &t->classes[c]);
    printf("\n%-7s %-32s %9s %7s %12s %12s %9s %9s\n", "METHOD", "PATH", "REQUESTS", "ERRORS",
           "REQ_BYTES", "RESP_BYTES", "MEAN", "MAX");
    const struct ht_tally_route **v = sorted_routes(t);
    for (size_t i = 0; v && i < t->n_routes; i++) {
        const char *key = v[i]->key, *sp = strchr(key, ' ');
        char method[24];
        snprintf(method, sizeof(method), "%.*s", (int)(sp - key), key);
        print_row(method, sp + 1, &v[i]->row);
    }
    free(v);
    if (t->other.requests)
        print_row("*", "(other paths)", &t->other);
}

static void print_slowest(struct ht_tally *t)
{
    if (!t->n_slow)
        return;
    printf("\nslowest\n");
    for (size_t i = 0; i < t->n_slow; i++) {
        const struct ht_tally_slow *s = &t->slow[i];
        char d[16], st[8] = "-";
        fmt_ns(d, sizeof(d), (double)s->duration_ns);
        if (s->status)
            snprintf(st, sizeof(st), "%d", s->status);
        printf("%9s  %s %s %s %s\n", d, s->timestamp, s->method, s->path, st);
    }
}

/* ---- JSON --------------------------------------------------------------------- */

static json_t *row_json(const struct ht_tally_row *r)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "requests", (json_int_t)r->requests,
                     "errors", (json_int_t)r->errors, "request_bytes", (json_int_t)r->req_bytes,
                     "response_bytes", (json_int_t)r->resp_bytes,
                     "mean_ns", (json_int_t)mean_ns(r), "max_ns", (json_int_t)r->dur_max);
}

static json_t *latency_json(const struct ht_sketch *s)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:f}", "count", (json_int_t)s->count,
                     "p50", (json_int_t)(ht_sketch_quantile(s, 0.50) + 0.5),
                     "p90", (json_int_t)(ht_sketch_quantile(s, 0.90) + 0.5),
                     "p99", (json_int_t)(ht_sketch_quantile(s, 0.99) + 0.5),
                     "min", (json_int_t)s->min, "max", (json_int_t)s->max,
                     "relative_error", HT_SKETCH_ALPHA);
}

static json_t *routes_json(const struct ht_tally *t)
{
    json_t *arr = json_array();
    const struct ht_tally_route **v = sorted_routes(t);
    for (size_t i = 0; v && i < t->n_routes; i++) {
        const char *key = v[i]->key, *sp = strchr(key, ' ');
        json_t *r = row_json(&v[i]->row);
        json_object_set_new(r, "method", json_stringn(key, (size_t)(sp - key)));
        json_object_set_new(r, "path", json_string(sp + 1));
        json_array_append_new(arr, r);
    }
    free(v);
    return arr;
}

static json_t *slow_json(const struct ht_tally *t)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < t->n_slow; i++) {
        const struct ht_tally_slow *s = &t->slow[i];
        json_array_append_new(arr, json_pack("{s:I,s:s,s:s,s:s,s:o}", "duration_ns",
                                             (json_int_t)s->duration_ns, "timestamp", s->timestamp,
                                             "method", s->method, "path", s->path, "status",
                                             s->status ? json_integer(s->status) : json_null()));
    }
    return arr;
}

static int print_json(struct ht_tally *t)
{
    json_t *classes = json_object();
    for (int c = 0; c < 7; c++)
        if (t->classes[c].requests)
            json_object_set_new(classes, class_names[c], row_json(&t->classes[c]));
    json_t *doc = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:o,s:o,s:o,s:o}",
                            "requests", (json_int_t)t->total.requests,
                            "errors", (json_int_t)t->total.errors,
                            "errors_5xx", (json_int_t)t->errors_5xx,
                            "incomplete", (json_int_t)t->incomplete,
                            "request_bytes", (json_int_t)t->total.req_bytes,
                            "response_bytes", (json_int_t)t->total.resp_bytes,
                            "latency_ns", latency_json(&t->latency), "status_classes", classes,
                            "routes", routes_json(t), "other_routes", row_json(&t->other),
                            "slowest", slow_json(t));
    int rc = doc ? json_dumpf(doc, stdout, JSON_COMPACT) : -1;
    putchar('\n');
    json_decref(doc);
    return rc ? -ENOMEM : 0;
}

/* ---- running ----------------------------------------------------------------- */

static int on_record(void *ctx, json_t *rec)
{
    struct stats_opts *o = ctx;
    return ht_tally_add(&o->tally, rec);
}

/* Prints the report. Sorting the slowest spends the heap, so a copy is
 * printed and the heap kept for -f. */
static int report(void *ctx)
{
    struct stats_opts *o = ctx;
    struct ht_tally_slow *heap = o->tally.slow;
    struct ht_tally_slow *copy = malloc((o->tally.n_slow + 1) * sizeof(*heap));
    if (!copy)
        return -ENOMEM;
    memcpy(copy, heap, o->tally.n_slow * sizeof(*heap));
    o->tally.slow = copy;
    ht_tally_sort_slow(&o->tally);
    int rc = 0;
    if (o->json) {
        rc = print_json(&o->tally);
    } else {
        if (o->follow)
            printf("\n");
        print_table(&o->tally);
        print_slowest(&o->tally);
    }
    o->tally.slow = heap;
    free(copy);
    fflush(stdout);
    return rc ? rc : ferror(stdout) ? -EIO : 0;
}

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int run_stats(struct stats_opts *o)
{
    struct ht_logread lr = { .sel = &o->sel, .prog = prog, .fn = on_record, .ctx = o };
    if (!o->follow) {
        int status = ht_logread_files(&lr);
        int rc = status < 0 ? status : report(o);
        return rc ? 1 : status;
    }
    struct sigaction sa = { .sa_handler = on_stop_signal };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    int rc = ht_logread_follow(&lr, o->sel.files[0], report, (unsigned)o->interval * 1000,
                               &stop_requested);
    return rc ? 1 : 0;
}

int ht_cmd_stats(int argc, char **argv)
{
    struct stats_opts o = { .top = 10, .max_paths = 1000, .interval = 2 };
    ht_select_init(&o.sel);
    int rc = parse_args(argc, argv, &o);
    if (o.help && !rc) {
        fputs(help_text, stdout);
        fputs(ht_select_help, stdout);
    }
    if (!rc && !o.help) {
        if (ht_tally_init(&o.tally, (size_t)o.max_paths, (size_t)o.top)) {
            fprintf(stderr, "%s: out of memory\n", prog);
            rc = 1;
        } else {
            rc = run_stats(&o);
            ht_tally_free(&o.tally);
        }
    }
    ht_select_free(&o.sel);
    return rc;
}
