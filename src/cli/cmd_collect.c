/*
 * cmd_collect.c - the collector process: recorded processes' rings in,
 * the log out. It runs the whole core (feed -> parser -> pairing ->
 * redaction -> events -> sink); the recorded processes only capture.
 *
 * Three ways it starts:
 *   httptape run        forks it (as the invoking user) before exec'ing the
 *                       server, and waits for the server's pid;
 *   the library         starts `httptape collect --for PID` for a process
 *                       that has no collector (plain LD_PRELOAD), handing
 *                       it the ring as fd 3 and a pidfd as fd 4;
 *   httptape collect    by hand or from a service manager: a standing
 *                       collector that servers register with through
 *                       HTTPTAPE_COLLECTOR, until SIGTERM.
 *
 * Single-threaded, but for the sink's writer thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "capture/record.h"
#include "core/rules.h"
#include "cli/cli.h"
#include "collector/collector.h"
#include "collector/feed.h"
#include "core/config.h"
#include "core/redact.h"
#include "core/sink.h"
#include "core/stats.h"

static volatile int stop_requested;
static void on_stop(int sig) { (void)sig; stop_requested = 1; }

/* A record, copied out of the ring first: the recorded process can still
 * write where it lies, and the feed checks lengths it then relies on. The
 * process is named by the registration, whatever the record claims. */
static void on_record(void *ctx, int32_t pid, int32_t ppid, uint16_t type, const void *p,
                      uint32_t len)
{
    static _Alignas(8) uint8_t copy[(128u << 10) + 256];
    (void)ctx;
    (void)type;
    if (len < sizeof(struct ht_rec) || len > sizeof(copy))
        return;
    memcpy(copy, p, len);
    struct ht_rec *h = (struct ht_rec *)copy;
    h->tgid = (uint32_t)pid;
    /* A connection is taken over from a parent only by that parent's
     * child: any other caller with the token is a new, joined one. */
    if (h->type == HT_REC_OPEN && len >= sizeof(struct ht_rec_open)) {
        struct ht_rec_open *o = (struct ht_rec_open *)copy;
        if (o->inherited && (int32_t)o->parent_tgid != ppid)
            o->parent_tgid = 0;
    }
    ht_feed_record(copy, len);
}

static void on_gone(void *ctx, int32_t pid)
{
    (void)ctx;
    ht_feed_process_gone((uint32_t)pid, HT_GAP_PROCESS_EXIT);
}

/* Records the rings had no room for, as the statistics record says them. */
static void count_losses(struct ht_collector *c)
{
    struct ht_coll_counts k;
    ht_coll_counts(c, &k);
    HT_STAT_SET(records_lost, k.lost_records);
    HT_STAT_SET(record_bytes_lost, k.lost_bytes);
    HT_STAT_SET(registrations_refused, k.refused);
    HT_STAT_SET(rings_broken, k.rings_broken);
}

static struct ht_collector *collector;

/* The feed no longer wants body bytes below to[]: the process's skip
 * table says so, and it copies them no more. */
static void skip_bytes(void *ctx, uint32_t tgid, int32_t fd, uint64_t id, const uint64_t to[2])
{
    (void)ctx;
    (void)fd;
    if (collector)
        ht_coll_skip(collector, (int32_t)tgid, id, to);
}

static void on_tick(void *ctx)
{
    (void)ctx;
    ht_feed_tick();
    if (collector)
        count_losses(collector);
}

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int ht_collect(const struct ht_config *cfg_in, const struct ht_collect_opts *co)
{
    static struct ht_config cfg;
    static struct ht_conn_cfg ccfg;
    char err[512];
    int rc;
    cfg = *cfg_in;
    /* %p is the process httptape speaks for: the one run started, or the
     * one that started us. */
    if (co->for_pid > 0 && strstr(cfg.log_path, "%p")) {
        char path[sizeof(cfg.log_path)];
        if (ht_config_log_path(&cfg, co->for_pid, path, sizeof(path)) == 0)
            snprintf(cfg.log_path, sizeof(cfg.log_path), "%s", path);
    }
    /* Started by the library: fd:N would name one of our own (3 is the
     * ring), not the app's. */
    if (co->ring_fd >= 0 && ht_config_log_fd(cfg.log_path) >= 0)
        snprintf(cfg.log_path, sizeof(cfg.log_path), "fd:-1");
    if (ht_redact_configure(cfg.redact_headers, cfg.redact_query, cfg.redact_fields,
                            cfg.redact_key, cfg.redact, err, sizeof(err)) ||
        ht_rules_load(err, sizeof(err))) {
        fprintf(stderr, "httptape collect: %s\n", err);
        return 2;
    }
    ccfg = (struct ht_conn_cfg){ .max_body = cfg.max_body, .max_header = cfg.max_header,
                                 .h2_max_streams = cfg.h2_max_streams,
                                 .mode = "preload", .service = cfg.service_name };
    static const struct ht_feed_ops fops = { .skip = skip_bytes };
    ht_feed_init(&ccfg, clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_MONOTONIC), &fops);

    struct sigaction sa = { .sa_handler = on_stop };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Ctrl-C in the server's terminal is for the server: we end with it. */
    signal(SIGINT, co->standing ? on_stop : SIG_IGN);
    signal(SIGHUP, SIG_IGN);

    /* When the server saturates the CPUs, the records its threads write
     * must still be read before its ring fills: the collector asks for a
     * better share than the server's (allowed for root only; the little
     * it does per byte is what the server saves). */
    if (setpriority(PRIO_PROCESS, 0, -10) && errno != EACCES && errno != EPERM)
        fprintf(stderr, "httptape collect: setpriority: %s\n", strerror(errno));
    ht_sink_configure(&cfg, "preload");
    if (co->for_pid > 0)
        ht_sink_speak_for(co->for_pid);
    if ((rc = ht_sink_start())) {
        fprintf(stderr, "httptape collect: cannot start the log writer: %s\n", strerror(-rc));
        return 1;
    }
    struct ht_coll_ops ops = { .record = on_record, .process_gone = on_gone, .tick = on_tick };
    struct ht_collector *c = ht_coll_new(&co->addr, co->wait_pidfd, &ops, &rc);
    collector = c;
    if (!c) {
        fprintf(stderr, "httptape collect: cannot listen for recorded processes: %s\n",
                strerror(-rc));
        ht_sink_shutdown();
        return 1;
    }
    if (co->ring_fd >= 0 && (rc = ht_coll_add(c, co->ring_fd, co->ring_pidfd, co->for_pid)))
        fprintf(stderr, "httptape collect: the ring of pid %d is unusable: %s\n", co->for_pid,
                strerror(-rc));
    if (co->ready_fd >= 0) {
        (void)!write(co->ready_fd, "1", 1);
        close(co->ready_fd);
    }
    ht_coll_run(c, &stop_requested, co->standing);
    ht_feed_finish_all(stop_requested ? HT_GAP_CAPTURE_ENDED : HT_GAP_PROCESS_EXIT);
    count_losses(c);
    struct ht_coll_counts k;
    ht_coll_counts(c, &k);
    collector = NULL;
    ht_coll_free(c);
    ht_sink_shutdown();
    if (k.lost_records)
        fprintf(stderr, "httptape: %llu records (%llu bytes) did not fit in the recorded processes' "
                "rings; their exchanges are marked capture_gap (HTTPTAPE_RING_SIZE makes rings "
                "larger)\n", (unsigned long long)k.lost_records, (unsigned long long)k.lost_bytes);
    if (k.refused)
        fprintf(stderr, "httptape: %llu registrations were refused (no token, a ring not sealed or "
                "of the wrong size, someone else's pidfd, or no memory); those processes' "
                "records were not read\n", (unsigned long long)k.refused);
    if (k.rings_broken)
        fprintf(stderr, "httptape: %llu rings held data no recorded process of ours writes; "
                "reading them stopped\n", (unsigned long long)k.rings_broken);
    return 0;
}

static const char usage[] =
    "usage: httptape collect [--log FILE] [--address NAME:TOKEN]\n"
    "\n"
    "A standing collector: servers started with HTTPTAPE_COLLECTOR=NAME:TOKEN\n"
    "and libhttptape.so preloaded hand it their records; it writes the log.\n"
    "Without --address it makes one and prints it. Runs until SIGTERM or\n"
    "SIGINT. (`httptape run` starts a collector of its own: this is for\n"
    "several servers sharing one.)\n";

int ht_cmd_collect(int argc, char **argv)
{
    static const struct option opts[] = {
        { "log", required_argument, NULL, 'l' },
        { "address", required_argument, NULL, 'a' },
        { "for", required_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    struct ht_config cfg;
    struct ht_collect_opts co = { .wait_pidfd = -1, .ring_fd = -1, .ring_pidfd = -1, .ready_fd = -1 };
    char err[512];
    const char *address = getenv("HTTPTAPE_COLLECTOR"), *log = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'l': log = optarg; break;
        case 'a': address = optarg; break;
        case 'f': co.for_pid = atoi(optarg); break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (ht_config_from_env(&cfg, err, sizeof(err))) {
        fprintf(stderr, "httptape collect: %s\n", err);
        return 2;
    }
    if (log && ht_config_set(&cfg, "HTTPTAPE_LOG", log, err, sizeof(err))) {
        fprintf(stderr, "httptape collect: --log%s\n", strchr(err, ':') ? strchr(err, ':') : err);
        return 2;
    }
    if (co.for_pid > 0) {
        /* Started by the library of process for_pid: its ring is fd 3, a
         * pidfd of it fd 4. */
        co.ring_fd = 3;
        co.ring_pidfd = 4;
        co.wait_pidfd = dup(4);
    } else {
        co.standing = true;
        if (ht_config_log_fd_open(cfg.log_path, err, sizeof(err))) {
            fprintf(stderr, "httptape collect: --log: %s\n", err);
            return 2;
        }
    }
    if (address && ht_reg_parse(address, &co.addr)) {
        fprintf(stderr, "httptape collect: --address/HTTPTAPE_COLLECTOR: expected NAME:TOKEN "
                "(NAME of a-z, 0-9 and '-', TOKEN 32 hex digits)\n");
        return 2;
    }
    if (!address) {
        if (ht_reg_new(&co.addr, getpid())) {
            fputs("httptape collect: cannot draw a token\n", stderr);
            return 1;
        }
        char s[128];
        ht_reg_format(&co.addr, s, sizeof(s));
        printf("HTTPTAPE_COLLECTOR=%s\n", s);
        fflush(stdout);
    }
    return ht_collect(&cfg, &co);
}
