/*
 * cmd_export.c - `httptape export`: the selected exchanges of logs as HAR,
 * curl commands or OTLP/JSON logs (the formats are export_*.c).
 *
 * Owns: export's options and the loop from records to the format; reads a
 * line at a time (logread.c) and writes as it reads, so memory stays that of
 * the longest line however big the logs. Statistics records are skipped.
 * Single-threaded.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/export.h"
#include "cli/logread.h"
#include "cli/select.h"

static const char prog[] = "httptape export";

static const char short_usage[] =
    "usage: httptape export [--format har|curl|otlp] [-o FILE] [SELECTION] FILE..."
    " (see 'httptape export --help')\n";

static const char help_text[] =
    "usage: httptape export [--format har|curl|otlp] [-o FILE] [SELECTION] FILE...\n"
    "\n"
    "Write the selected exchanges of httptape logs in another format, streaming:\n"
    "  har    one HAR 1.2 document (for browsers' devtools, HAR viewers)\n"
    "  curl   one curl command per exchange, a shell script; redacted values stay\n"
    "         as placeholders (REDACTED), said on stderr\n"
    "  otlp   OpenTelemetry logs as OTLP/JSON, one ExportLogsServiceRequest a line\n"
    "         (the Collector's file exporter format)\n"
    "\n"
    "      --format F      har (default), curl or otlp\n"
    "  -o, --output FILE   write there instead of standard output\n"
    "  -h, --help          show this help\n"
    "\n";

static const struct ht_export_format *const formats[] = {
    &ht_export_har, &ht_export_curl, &ht_export_otlp,
};

struct export_opts {
    const struct ht_export_format *fmt;
    const char *output;
    bool help;
    struct ht_select sel;
};

static int usage_error(const char *fmt, const char *arg)
{
    return ht_usage_error(prog, short_usage, fmt, arg);
}

static int set_format(struct export_opts *o, const char *name)
{
    for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
        if (!strcmp(name, formats[i]->name)) {
            o->fmt = formats[i];
            return 0;
        }
    return usage_error("unknown format '%s' (want har, curl or otlp)", name);
}

/* "--flag V", "--flag=V" or "-o V"; *v set, *i advanced. 1 if it matched. */
static int valued(int argc, char **argv, int *i, const char *lng, const char *shrt,
                  const char **v)
{
    const char *a = argv[*i];
    size_t n = strlen(lng);
    if (!strncmp(a, lng, n) && a[n] == '=') {
        *v = a + n + 1;
        return 1;
    }
    if (strcmp(a, lng) && (!shrt || strcmp(a, shrt)))
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *v = argv[++*i];
    return 1;
}

/* Export's own options (ht_select_opt_fn); ctx is the struct export_opts. */
static int parse_one(void *ctx, int argc, char **argv, int *i)
{
    struct export_opts *o = ctx;
    const char *a = argv[*i], *v;
    int took;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
        o->help = true;
        return 0;
    }
    if ((took = valued(argc, argv, i, "--format", NULL, &v)))
        return took < 0 ? usage_error("option '%s' needs a value", a) : set_format(o, v);
    if ((took = valued(argc, argv, i, "--output", "-o", &v))) {
        o->output = v;
        return took < 0 ? usage_error("option '%s' needs a value", a) : 0;
    }
    return usage_error("unknown option '%s'", a);
}

static int parse_args(int argc, char **argv, struct export_opts *o)
{
    return ht_select_args(&o->sel, argc, argv, prog, short_usage, parse_one, o, &o->help);
}

static int on_record(void *ctx, json_t *rec)
{
    struct ht_export *x = ctx;
    int rc = x->fmt->entry(x, rec);
    x->entries++;
    return rc;
}

/* Runs the format over every selected record. 0, 1 (read or write failed). */
static int run_export(struct export_opts *o, FILE *out)
{
    struct ht_export x = { .out = out, .prog = prog, .fmt = o->fmt };
    struct ht_logread lr = { .sel = &o->sel, .prog = prog, .fn = on_record, .ctx = &x };
    int rc = x.fmt->begin(&x);
    int status = rc ? rc : ht_logread_files(&lr);
    rc = x.fmt->end(&x);
    free(x.batch_key);
    if (status < 0 || rc || fflush(out) || ferror(out)) {
        fprintf(stderr, "%s: writing %s: %s\n", prog, o->output ? o->output : "output",
                strerror(status < -1 ? -status : EIO));
        return 1;
    }
    if (x.warnings)
        fprintf(stderr, "%s: %lld of %lld exchanges cannot be sent again as logged (above)\n",
                prog, x.warnings, x.entries);
    return status;
}

int ht_cmd_export(int argc, char **argv)
{
    struct export_opts o = { .fmt = &ht_export_har };
    ht_select_init(&o.sel);
    int rc = parse_args(argc, argv, &o);
    bool help = o.help;
    if (help) {
        fputs(help_text, stdout);
        fputs(ht_select_help, stdout);
    }
    if (rc || help)
        goto out;
    FILE *out = o.output ? fopen(o.output, "we") : stdout;
    if (!out) {
        fprintf(stderr, "%s: cannot open '%s': %s\n", prog, o.output, strerror(errno));
        rc = 1;
        goto out;
    }
    rc = run_export(&o, out);
    if (o.output && fclose(out) && !rc) {
        fprintf(stderr, "%s: writing %s: %s\n", prog, o.output, strerror(errno));
        rc = 1;
    }
out:
    ht_select_free(&o.sel);
    return rc;
}
