/*
 * cmd_replay.c - `httptape replay`: the replay front end. The two captured
 * directions of one TCP connection (e.g. the pair of files tcpflow writes)
 * go through the same conn/parser/event code as live capture, and the
 * events are printed to stdout.
 *
 * Feeding order is core/replay.c's. Files carry no per-byte times:
 * every event's timestamp is the client file's modification time and its
 * timing offsets are 0. Events are redacted as in live capture, by the
 * same HTTPTAPE_REDACT* variables.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/conn.h"
#include "core/event.h"
#include "core/redact.h"
#include "core/replay.h"
#include "core/rules.h"

static const char usage[] =
    "usage: httptape replay [--max-body BYTES] [--max-header BYTES] CLIENT_STREAM SERVER_STREAM\n"
    "\n"
    "Parse the two directions of one captured TCP connection (client->server\n"
    "bytes, server->client bytes; e.g. the two files tcpflow writes) and print\n"
    "one JSON event per exchange on stdout, exactly as live capture would log\n"
    "them (httptape.mode \"replay\"). tcpflow-style file names\n"
    "(127.000.000.001.51234-127.000.000.001.08000) give the peer and local\n"
    "addresses.\n"
    "\n"
    "  --max-body BYTES    body excerpt cap (default 4096; 64k, 1m accepted)\n"
    "  --max-header BYTES  head size limit (default 64k)\n"
    "\n"
    "Secrets are redacted as in live capture; HTTPTAPE_REDACT, _HEADERS, _QUERY,\n"
    "_FIELDS and _KEY apply (docs/security.md).\n"
    "\n"
    "Exit: 0 success, 1 unreadable input or write failure, 2 usage error.\n";

struct emit_ctx {
    struct ht_buf line;
    int failed;
};

static void emit_stdout(void *ctx, struct ht_exchange *ex)
{
    struct emit_ctx *e = ctx;
    ht_buf_reset(&e->line);
    enum ht_verdict v = ht_rules_final(ex);
    if (v != HT_FILTERED && v != HT_SAMPLED_OUT && ht_event_format(ex, &e->line) == 0 &&
        fwrite(e->line.p, 1, e->line.len, stdout) != e->line.len)
        e->failed = 1;
    ht_exchange_free(ex);
}

static int read_file(const char *path, uint8_t **data, size_t *len, struct stat *st)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    struct ht_buf b = { 0 };
    char chunk[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (ht_buf_append(&b, chunk, n)) {
            rc = -ENOMEM;
            break;
        }
    if (!rc && ferror(f))
        rc = -EIO;
    if (!rc && fstat(fileno(f), st))
        rc = -errno;
    fclose(f);
    if (rc) {
        ht_buf_free(&b);
        return rc;
    }
    *data = (uint8_t *)b.p;
    *len = b.len;
    return 0;
}

/* tcpflow names a flow SRCIP.SRCPORT-DSTIP.DSTPORT with zero-padded octets. */
static void endpoints_from_name(const char *path, struct ht_endpoints *ep)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    unsigned a[4], b[4], sp, dp;
    int used = 0;
    if (sscanf(base, "%3u.%3u.%3u.%3u.%5u-%3u.%3u.%3u.%3u.%5u%n",
               &a[0], &a[1], &a[2], &a[3], &sp, &b[0], &b[1], &b[2], &b[3], &dp, &used) != 10)
        return;
    ep->transport = "tcp";
    snprintf(ep->peer_addr, sizeof(ep->peer_addr), "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
    snprintf(ep->local_addr, sizeof(ep->local_addr), "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
    ep->peer_port = (int)sp;
    ep->local_port = (int)dp;
}

int ht_cmd_replay(int argc, char **argv)
{
    static const struct option opts[] = {
        { "max-body", required_argument, NULL, 'b' },
        { "max-header", required_argument, NULL, 'H' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    struct ht_config cfg;
    char err[512];
    int c;

    ht_config_defaults(&cfg);

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        const char *var = c == 'b' ? "HTTPTAPE_MAX_BODY" : "HTTPTAPE_MAX_HEADER";
        switch (c) {
        case 'b':
        case 'H':
            if (ht_config_set(&cfg, var, optarg, err, sizeof(err))) {
                fprintf(stderr, "httptape replay: --%s: %s\n", opts[c == 'b' ? 0 : 1].name,
                        strchr(err, ' ') + 1);
                return 2;
            }
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs("httptape replay: see 'httptape replay --help'\n", stderr);
            return 2;
        }
    }
    if (argc - optind != 2) {
        fputs("httptape replay: need CLIENT_STREAM and SERVER_STREAM\n", stderr);
        fputs(usage, stderr);
        return 2;
    }
    if (ht_config_redact_from_env(&cfg, err, sizeof(err)) ||
        ht_redact_configure(cfg.redact_headers, cfg.redact_query, cfg.redact_fields,
                            cfg.redact_key, cfg.redact, err, sizeof(err)) ||
        ht_rules_load(err, sizeof(err))) {
        fprintf(stderr, "httptape replay: %s\n", err);
        return 2;
    }
    explicit_bzero(cfg.redact_key, sizeof(cfg.redact_key));
    if (!cfg.redact)
        fputs("httptape replay: HTTPTAPE_REDACT=off: headers, query strings and bodies are "
              "printed as captured, secrets included\n", stderr);

    uint8_t *cli = NULL, *srv = NULL;
    size_t cn = 0, sn = 0;
    struct stat cst, sst;
    int rc;
    if ((rc = read_file(argv[optind], &cli, &cn, &cst)) ||
        (rc = read_file(argv[optind + 1], &srv, &sn, &sst))) {
        fprintf(stderr, "httptape replay: %s: %s\n", argv[cli ? optind + 1 : optind], strerror(-rc));
        free(cli);
        return 1;
    }

    struct ht_conn_cfg ccfg = { .max_body = cfg.max_body, .max_header = cfg.max_header,
                                .h2_max_streams = cfg.h2_max_streams,
                                .mode = "replay" };
    struct ht_endpoints ep = { .peer_port = -1, .local_port = -1 };
    endpoints_from_name(argv[optind], &ep);
    struct ht_clock now = {
        .wall_ns = (int64_t)cst.st_mtim.tv_sec * 1000000000 + cst.st_mtim.tv_nsec,
        .mono_ns = 1,   /* non-zero: 0 means "not seen" in an exchange */
    };
    struct emit_ctx ectx = { 0 };
    struct ht_conn conn;
    ht_conn_init(&conn, &ccfg, &ep, "replay-1", 0, emit_stdout, &ectx);
    ht_replay(&conn, cli, cn, srv, sn, &now, NULL, NULL);

    ht_buf_free(&ectx.line);
    free(cli);
    free(srv);
    if (fflush(stdout) || ectx.failed) {
        fprintf(stderr, "httptape replay: writing stdout: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}
