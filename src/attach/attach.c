/*
 * attach.c - the loader of `httptape attach` (attach.h): check that BPF can
 * be used here, open the bpftool skeleton of httptape.bpf.c, set its
 * filters, load and attach it, then drain its ring buffer in batches until
 * a signal, --duration or the process's exit; detach, drain what is left,
 * end every connection and let the sink write its final record.
 *
 * The loop is the collector's (collector/collector.h), the ring buffer one
 * of its sources: the same loop as for preloaded processes' rings, with
 * its nap, its once-a-second tick and its stop.
 *
 * Records become exchanges in the collector's feed (collector/feed.h), the
 * same consumer the preloaded library's records go through; this front end
 * gives it what only the kernel side can do (skip body bytes, forget a
 * process's connections) and reads sendfile excerpts back (files.c). It
 * finds what is open already in proc.c.
 *
 * Threading: the main thread only; signals just set a flag.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "attach/attach_private.h"
#include "collector/collector.h"
#include "core/redact.h"
#include "core/rules.h"
#include "core/sink.h"
#include "core/stats.h"
#include "httptape.skel.h"

struct ht_attach_state ht_attach;

static struct httptape_bpf *skel;
static struct ring_buffer *rb;
static int stats_fd = -1;           /* BPF_ENABLE_STATS held while attached (--kernel-stats) */
/* The collector loop's stop: a signal, --duration (SIGALRM) or the
 * target's exit. */
static volatile int stop_requested;

static void on_signal(int sig) { (void)sig; stop_requested = 1; }

/* ---- what the feed asks of the kernel side ---- */

/* The kernel side looks "skips" up only while skips_live is not 0: it is
 * counted up before an entry can be there, and down (by whoever deleted
 * one) after it is gone. */
static void skip_bytes(void *ctx, uint32_t tgid, int32_t fd, uint64_t id, const uint64_t to[2])
{
    struct ht_conn_key key = { .tgid = tgid, .fd = fd };
    struct ht_skip sk = { .id = id, .to = { to[0], to[1] } };
    (void)ctx;
    __atomic_add_fetch(&skel->bss->skips_live, 1, __ATOMIC_SEQ_CST);
    if (bpf_map_update_elem(ht_attach.skips_fd, &key, &sk, BPF_NOEXIST) == 0)
        return;
    /* One there already (this connection's earlier skip): replaced, not
     * added, unless the connection closed meanwhile. */
    bpf_map_update_elem(ht_attach.skips_fd, &key, &sk, BPF_EXIST);
    __atomic_sub_fetch(&skel->bss->skips_live, 1, __ATOMIC_SEQ_CST);
}

static size_t fetch_sendfile(void *ctx, const void *rec, size_t size, uint64_t off, uint8_t *buf,
                             size_t len)
{
    struct ht_attach_fetch f = { .r = rec, .size = size, .fd = -2 };
    (void)ctx;
    return ht_attach_fetch_file(&f, off, buf, len);
}

static bool sendfile_id(void *ctx, const void *rec, size_t size, struct ht_file_id *id)
{
    (void)ctx;
    return ht_attach_file_id(rec, size, id);
}

static void process_exited(void *ctx, uint32_t tgid, int32_t fd)
{
    (void)ctx;
    if (fd >= 0) {
        struct ht_conn_key key = { .tgid = tgid, .fd = fd };
        bpf_map_delete_elem(ht_attach.conns_fd, &key);
        if (bpf_map_delete_elem(ht_attach.skips_fd, &key) == 0)
            __atomic_sub_fetch(&skel->bss->skips_live, 1, __ATOMIC_SEQ_CST);
    } else if (tgid == (uint32_t)ht_attach.o->pid) {
        ht_attach.target_gone = true;
        stop_requested = 1;
    }
}

/* The ring buffer's callback: one record. Always 0 (keep going). */
static int on_record(void *ctx, void *data, size_t size)
{
    const struct ht_rec *h = data;
    (void)ctx;
    if (size >= sizeof(*h) && h->type == HT_REC_FORK && ht_attach.o->verbose)
        ht_attach_say("pid %u forked %d: following it", h->tgid, h->fd);
    ht_feed_record(data, size);
    return 0;
}

/* The collector loop's source: what the ring buffer holds now. */
static size_t drain_ring(void *ctx)
{
    int n = ring_buffer__consume(rb);
    (void)ctx;
    return n > 0 ? (size_t)n : 0;
}

static int64_t clock_ns(clockid_t id);

/* The collector loop's tick, about once a second: is the target still
 * there (its exit record may have been lost), and files not sent lately
 * are closed. */
static void tick(void *ctx)
{
    (void)ctx;
    if (kill(ht_attach.o->pid, 0) && errno == ESRCH) {
        ht_attach.target_gone = true;
        stop_requested = 1;
    }
    ht_attach_files_expire(clock_ns(CLOCK_MONOTONIC), false);
}

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void ht_attach_say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("httptape attach: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
    if (!ht_attach.o || !ht_attach.o->verbose || level == LIBBPF_DEBUG)
        return 0;
    return vfprintf(stderr, fmt, ap);
}

/* ---- checks ---- */

/* CAP_SYS_ADMIN, or CAP_BPF with CAP_PERFMON (kernel 5.8+). */
static bool privileged(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    char line[256];
    unsigned long long eff = 0;
    bool found = false;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "CapEff: %llx", &eff) == 1) {
            found = true;
            break;
        }
    if (f)
        fclose(f);
    if (!found)
        return geteuid() == 0;
    bool sys_admin = eff & (1ull << 21), perfmon = eff & (1ull << 38), bpf = eff & (1ull << 39);
    return sys_admin || (bpf && perfmon);
}

int ht_attach_preflight(char *err, size_t errlen)
{
    if (!privileged()) {
        snprintf(err, errlen, "needs root (or CAP_BPF and CAP_PERFMON) to load BPF programs");
        return HT_ATTACH_NO_PRIVILEGE;
    }
    if (access("/sys/kernel/btf/vmlinux", R_OK)) {
        snprintf(err, errlen, "this kernel has no BTF (/sys/kernel/btf/vmlinux: %s); attach "
                 "needs a kernel built with CONFIG_DEBUG_INFO_BTF", strerror(errno));
        return HT_ATTACH_NO_KERNEL;
    }
    return HT_ATTACH_OK;
}

/* libbpf finds syscall tracepoints under tracefs: mount it where it is
 * expected when nothing provides it (it stays mounted, as perf leaves it). */
static int ensure_tracefs(char *err, size_t errlen)
{
    if (!access("/sys/kernel/tracing/events/syscalls", F_OK) ||
        !access("/sys/kernel/debug/tracing/events/syscalls", F_OK))
        return HT_ATTACH_OK;
    if (access("/sys/kernel/tracing/events", F_OK) && access("/sys/kernel/debug/tracing", F_OK) &&
        mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL) && errno != EBUSY) {
        snprintf(err, errlen, "cannot mount tracefs on /sys/kernel/tracing (%s); mount it "
                 "and try again", strerror(errno));
        return HT_ATTACH_FAILED;
    }
    if (access("/sys/kernel/tracing/events/syscalls", F_OK) &&
        access("/sys/kernel/debug/tracing/events/syscalls", F_OK)) {
        snprintf(err, errlen, "this kernel has no syscall tracepoints "
                 "(CONFIG_FTRACE_SYSCALLS); attach cannot work here");
        return HT_ATTACH_NO_KERNEL;
    }
    return HT_ATTACH_OK;
}

static bool is_pow2(uint64_t v) { return v && !(v & (v - 1)); }

/* Open, size, load and attach the programs. */
static int load(const struct ht_attach_opts *o, char *err, size_t errlen)
{
    int rc = ht_attach_preflight(err, errlen);
    if (rc)
        return rc;
    rc = ensure_tracefs(err, errlen);
    if (rc)
        return rc;
    libbpf_set_print(libbpf_print);
    skel = httptape_bpf__open();
    if (!skel) {
        snprintf(err, errlen, "cannot open the BPF object: %s", strerror(errno));
        return HT_ATTACH_FAILED;
    }
    uint64_t ring = o->ring_size ? o->ring_size : HT_ATTACH_DEFAULT_RING;
    if (!is_pow2(ring) || ring < (uint64_t)sysconf(_SC_PAGESIZE) || ring > (1ull << 30)) {
        snprintf(err, errlen, "--ring-size must be a power of 2 from the page size to 1g");
        return HT_ATTACH_USAGE;
    }
    skel->rodata->targ_tgid = (uint32_t)o->pid;
    skel->rodata->follow_children = o->children;
    skel->rodata->wake_bytes = ring / 4;
    bpf_map__set_max_entries(skel->maps.rb, (uint32_t)ring);
    if (!o->children)
        bpf_program__set_autoload(skel->progs.on_fork, false);
    /* The uprobes are attached by tls.c, to the library the target runs. */
    struct bpf_program *uprobes[] = { skel->progs.ssl_read, skel->progs.ssl_read_ex,
                                      skel->progs.ssl_write, skel->progs.ssl_write_ex,
                                      skel->progs.ssl_ret, skel->progs.ssl_set_fd };
    for (size_t i = 0; i < sizeof(uprobes) / sizeof(uprobes[0]); i++)
        bpf_program__set_autoattach(uprobes[i], false);

    if ((rc = httptape_bpf__load(skel))) {
        snprintf(err, errlen, "the kernel refused the BPF programs (%s)%s", strerror(-rc),
                 o->verbose ? "" : "; --verbose shows why");
        return -rc == EPERM || -rc == EACCES ? HT_ATTACH_NO_PRIVILEGE : HT_ATTACH_NO_KERNEL;
    }
    ht_attach.conns_fd = bpf_map__fd(skel->maps.conns);
    ht_attach.skips_fd = bpf_map__fd(skel->maps.skips);
    ht_attach.tgids_fd = bpf_map__fd(skel->maps.tgids);
    ht_attach.files_fd = bpf_map__fd(skel->maps.files);
    /* The kernel times every BPF program while one such fd is open (as
     * sysctl kernel.bpf_stats_enabled=1 does, and ends with us). */
    if (o->kernel_stats && (stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME)) < 0)
        ht_attach_say("--kernel-stats: the kernel cannot time BPF programs (%s); no figure "
                      "at detach", strerror(errno));
    if ((rc = httptape_bpf__attach(skel))) {
        snprintf(err, errlen, "cannot attach to the syscall tracepoints (%s)%s", strerror(-rc),
                 o->verbose ? "" : "; --verbose shows why");
        return HT_ATTACH_NO_KERNEL;
    }
    return HT_ATTACH_OK;
}

static void unload(void)
{
    ht_attach_tls_detach();
    if (stats_fd >= 0)
        close(stats_fd);
    stats_fd = -1;
    ring_buffer__free(rb);
    rb = NULL;
    httptape_bpf__destroy(skel);
    skel = NULL;
}

int ht_attach_check(const struct ht_attach_opts *o, char *err, size_t errlen)
{
    /* Every program, the one for --children too. */
    struct ht_attach_opts all = *o;
    all.children = true;
    ht_attach.o = o;
    int rc = load(&all, err, errlen);
    unload();
    return rc;
}

/* ---- the run ---- */

static uint64_t kernel_counter(enum ht_counter which)
{
    int ncpu = libbpf_num_possible_cpus();
    uint64_t sum = 0;
    if (ncpu <= 0)
        return 0;
    uint64_t *v = calloc((size_t)ncpu, sizeof(*v));
    uint32_t key = which;
    if (v && bpf_map_lookup_elem(bpf_map__fd(skel->maps.counters), &key, v) == 0)
        for (int i = 0; i < ncpu; i++)
            sum += v[i];
    free(v);
    return sum;
}

/* --kernel-stats: what the programs cost the processes they ran in, from
 * the kernel's own accounting (run_time_ns, run_cnt per program), as one
 * line on stdout. Called once they are detached: nothing runs any more. */
static void say_kernel_time(void)
{
    struct bpf_program *prog;
    char per[1024];
    size_t used = 0;
    unsigned long long ns = 0, runs = 0;
    per[0] = 0;
    bpf_object__for_each_program(prog, skel->obj) {
        struct bpf_prog_info info;
        uint32_t len = sizeof(info);
        int fd = bpf_program__fd(prog);
        memset(&info, 0, sizeof(info));
        if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len) || !info.run_cnt)
            continue;
        ns += info.run_time_ns;
        runs += info.run_cnt;
        int n = snprintf(per + used, sizeof(per) - used, "%s%s %llu/%llu", used ? ", " : "",
                         bpf_program__name(prog), (unsigned long long)info.run_cnt,
                         (unsigned long long)info.run_time_ns);
        if (n > 0 && (size_t)n < sizeof(per) - used)
            used += (size_t)n;
    }
    printf("httptape attach: kernel side: %llu ns in %llu program runs (%.0f ns per run; per "
           "program, runs/ns: %s)\n", ns, runs, runs ? (double)ns / (double)runs : 0.0,
           used ? per : "none ran");
}

static void comm_of(int pid, char *out, size_t len)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/comm", pid);
    FILE *f = fopen(path, "re");
    out[0] = 0;
    if (f && fgets(out, (int)len, f))
        out[strcspn(out, "\n")] = 0;
    if (f)
        fclose(f);
}

int ht_attach_run(const struct ht_attach_opts *o)
{
    char err[512], comm[32], logpath[sizeof(o->cfg.log_path) + 16];
    int rc;

    ht_attach.o = o;
    ht_attach.ccfg = (struct ht_conn_cfg){ .max_body = o->cfg.max_body, .max_header = o->cfg.max_header,
                                   .h2_max_streams = o->cfg.h2_max_streams,
                                   .mode = "attach", .service = o->cfg.service_name };
    ht_attach.wall_minus_mono = clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_MONOTONIC);
    static const struct ht_feed_ops ops = { .skip = skip_bytes, .fetch_sendfile = fetch_sendfile,
                                            .sendfile_id = sendfile_id,
                                            .process_exited = process_exited };
    ht_feed_init(&ht_attach.ccfg, ht_attach.wall_minus_mono, &ops);
    comm_of(o->pid, comm, sizeof(comm));

    struct sigaction sa = { .sa_handler = on_signal };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGALRM, &sa, NULL);

    /* Secrets are redacted as in the other front ends (HTTPTAPE_REDACT*). */
    if (ht_redact_configure(o->cfg.redact_headers, o->cfg.redact_query, o->cfg.redact_fields,
                            o->cfg.redact_key, o->cfg.redact, err, sizeof(err)) ||
        ht_rules_load(err, sizeof(err))) {
        ht_attach_say("%s", err);
        return HT_ATTACH_USAGE;
    }
    if (!o->cfg.redact)
        ht_attach_say("HTTPTAPE_REDACT=off: headers, query strings and bodies are logged as sent, "
            "secrets included");
    ht_sink_configure(&o->cfg, "attach");
    if ((rc = ht_sink_start())) {
        ht_attach_say("cannot start the log writer: %s", strerror(-rc));
        return HT_ATTACH_FAILED;
    }
    if ((rc = load(o, err, sizeof(err)))) {
        ht_attach_say("%s", err);
        unload();
        ht_sink_shutdown();
        return rc;
    }
    rb = ring_buffer__new(bpf_map__fd(skel->maps.rb), on_record, NULL, NULL);
    static const struct ht_coll_ops cops = { .tick = tick };
    struct ht_collector *coll = rb ? ht_coll_new(NULL, -1, &cops, &rc) : NULL;
    struct ht_coll_source src = { .drain = drain_ring, .fd = rb ? ring_buffer__epoll_fd(rb) : -1 };
    if (!coll || ht_coll_add_source(coll, &src)) {
        ht_attach_say("cannot map the ring buffer: %s", strerror(errno));
        ht_coll_free(coll);
        unload();
        ht_sink_shutdown();
        return HT_ATTACH_FAILED;
    }
    /* TLS plaintext, where the target runs OpenSSL. */
    const char *tls = ht_attach_tls_attach(skel, o->pid, o->children);
    if (o->verbose)
        ht_attach_say("TLS: %s", tls ? tls : "no OpenSSL found in the process: TLS connections "
                      "will be logged as tls_not_decrypted");
    /* The programs are live: whatever is accepted from now on is ours;
     * what was open before is joined at its next message boundary. */
    ht_attach_follow_existing(o->pid, o->children);

    if (ht_config_log_path(&o->cfg, getpid(), logpath, sizeof(logpath)))
        snprintf(logpath, sizeof(logpath), "%s", o->cfg.log_path);
    printf("httptape attach: attached to pid %d (%s)%s, logging to %s\n", o->pid, comm,
           o->children ? " and its children" : "", logpath);
    fflush(stdout);

    int64_t start = clock_ns(CLOCK_MONOTONIC);
    if (o->duration > 0) {
        struct itimerval it = { .it_value = { .tv_sec = (time_t)o->duration,
            .tv_usec = (suseconds_t)((o->duration - (double)(time_t)o->duration) * 1e6) } };
        if (!it.it_value.tv_sec && !it.it_value.tv_usec)
            it.it_value.tv_usec = 1;
        setitimer(ITIMER_REAL, &it, NULL);
    }
    /* Records do not wake the loop (unless the ring is filling): it mostly
     * naps, then drains a batch. */
    if (!stop_requested)
        ht_coll_run(coll, &stop_requested, true);
    setitimer(ITIMER_REAL, &(struct itimerval){ 0 }, NULL);
    ht_coll_free(coll);

    double secs = (double)(clock_ns(CLOCK_MONOTONIC) - start) / 1e9;
    /* Detach first, then drain: nothing new arrives, nothing is left behind. */
    ht_attach_tls_detach();
    httptape_bpf__detach(skel);
    ring_buffer__consume(rb);
    if (stats_fd >= 0)
        say_kernel_time();
    uint64_t rb_drops = kernel_counter(HT_CNT_RB_DROPS);
    uint64_t conns_full = kernel_counter(HT_CNT_CONNS_FULL);
    /* Exchanges still in flight end here: we will not see the rest. */
    ht_feed_finish_all(ht_attach.target_gone ? HT_GAP_PROCESS_EXIT : HT_GAP_CAPTURE_ENDED);
    struct ht_feed_counts fc;
    ht_feed_counts(&fc);
    /* Records lost whole that no offset jump showed (an accept, a close):
     * counted too. */
    uint64_t unnoticed = rb_drops > fc.lost_events ? rb_drops - fc.lost_events : 0;
    if (conns_full || unnoticed)
        HT_STAT_ADD(capture_gaps, conns_full + unnoticed);
    ht_attach_files_expire(0, true);
    unload();
    ht_sink_shutdown();

    printf("httptape attach: detached from pid %d after %.1f s%s: %llu connections (%llu "
           "joined), %llu exchanges logged\n", o->pid, secs, ht_attach.target_gone ? " (it exited)" : "",
           (unsigned long long)HT_STAT_GET(connections), (unsigned long long)fc.joined,
           (unsigned long long)HT_STAT_GET(exchanges_written));
    fflush(stdout);
    if (rb_drops || fc.lost_events || fc.cut_events || conns_full || fc.no_accept)
        ht_attach_say("not everything was seen: %llu records lost to a full ring buffer (%llu bytes "
            "missed; see --ring-size), %llu transfers not copied whole, %llu connections "
            "not tracked (map full); the statistics record counts them in capture_gaps",
            (unsigned long long)rb_drops, (unsigned long long)fc.lost_bytes,
            (unsigned long long)fc.cut_events, (unsigned long long)conns_full);
    if (o->verbose)
        ht_attach_say("%llu body bytes past the excerpt cap were counted without being copied",
                      (unsigned long long)fc.skipped_bytes);
    if (o->verbose && fc.dropped_early)
        ht_attach_say("%llu bytes of joined connections preceded their first whole message (not logged)",
            (unsigned long long)fc.dropped_early);
    return HT_ATTACH_OK;
}
