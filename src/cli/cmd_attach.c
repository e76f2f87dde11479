/*
 * cmd_attach.c - `httptape attach`: validate the flags, check that the
 * process exists and that BPF can be used here, then hand over to the
 * attach front end (src/attach/attach.c) until SIGINT/SIGTERM, --duration
 * or the process's exit.
 *
 * Built without the BPF toolchain (no HT_HAVE_ATTACH), the flags are still
 * checked and the command says that attach is unavailable in this build.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attach/attach.h"
#include "cli/cli.h"
#include "core/config.h"

static const char usage[] =
    "usage: httptape attach --pid PID [--log FILE] [--max-body BYTES] [--duration SECONDS]\n"
    "                       [--children | --no-children] [--max-header BYTES] [--queue N]\n"
    "                       [--ring-size BYTES]\n"
    "                       [--kernel-stats] [--verbose]\n"
    "       httptape attach --check\n"
    "\n"
    "Record the HTTP/1.x exchanges of a process that is already running, with\n"
    "no restart and no preload: eBPF programs on its socket system calls copy\n"
    "what it reads and writes on the connections it accepts, and the events are\n"
    "appended to FILE exactly as `httptape run` would log them (httptape.mode\n"
    "\"attach\"). Needs root (or CAP_BPF and CAP_PERFMON) and a kernel with BTF.\n"
    "Connections already open are joined at their next request.\n"
    "\n"
    "  --pid PID           the process to record (all its threads)\n"
    "  --children          also the processes it has forked and will fork; chosen\n"
    "                      by itself (and said) when PID listens and its children\n"
    "                      accept on the same sockets (an nginx or apache2 master)\n"
    "  --no-children       PID alone, even then\n"
    "  --log FILE          log path (default ./httptape.jsonl)\n"
    "  --max-body BYTES    body excerpt cap per message (default 4096; 0 = sizes only)\n"
    "  --max-header BYTES  head size limit per message (default 64k)\n"
    "  --queue N           exchanges buffered for the writer (default 4096)\n"
    "  --duration SECONDS  detach after this long (default: on Ctrl-C or SIGTERM,\n"
    "                      or when the process exits)\n"
    "  --ring-size BYTES   kernel-to-user ring buffer (power of 2, default 16m)\n"
    "  --kernel-stats      time the BPF programs while attached and say at detach\n"
    "                      what they cost (ns per run, per program)\n"
    "  --verbose           say more (libbpf's messages, followed forks)\n"
    "  --check             only check that attach can work here, and exit\n"
    "\n"
    "Prints a line once attached and one when detached. Exit: 0 detached\n"
    "normally, 1 failure, 2 usage error, 3 no such process, 4 not privileged,\n"
    "5 kernel without BTF or syscall tracepoints, 6 attach unavailable in this build.\n";

/* The log's directory must exist and the path must not be a directory. */
static int check_log_path(const char *path)
{
    char dir[4096];
    struct stat st;
    if (!ht_config_log_is_file(path)) {
        if (ht_config_log_fd_open(path, dir, sizeof(dir)) == 0)
            return 0;
        fprintf(stderr, "httptape attach: --log: %s\n", dir);
        return -1;
    }
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        fprintf(stderr, "httptape attach: --log: %s is a directory; give a file path\n", path);
        return -1;
    }
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return 0;
    if (slash == dir)
        slash[1] = 0;
    else
        *slash = 0;
    if (stat(dir, &st) || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "httptape attach: --log: directory %s does not exist\n", dir);
        return -1;
    }
    return 0;
}

static int parse_pid(const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v <= 0 || v > INT_MAX)
        return -EINVAL;
    *out = (int)v;
    return 0;
}

static int parse_seconds(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v <= 0 || v > 366 * 86400.0)
        return -EINVAL;
    *out = v;
    return 0;
}

#ifdef HT_HAVE_ATTACH
/* The process (thread group) a thread id belongs to, or -1. */
static int process_of(int tid)
{
    char path[64], line[128];
    int tgid = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", tid);
    FILE *f = fopen(path, "re");
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "Tgid: %d", &tgid) == 1)
            break;
    if (f)
        fclose(f);
    return tgid;
}

/* Whether the process has libhttptape.so mapped (it runs under `httptape
 * run` or LD_PRELOAD): a mapping whose file name is libhttptape.so. An
 * unreadable maps file says no. */
static bool has_preload(int pid)
{
    char path[64], line[4096 + 128];
    bool found = false;
    snprintf(path, sizeof(path), "/proc/%d/maps", pid);
    FILE *f = fopen(path, "re");
    while (f && !found && fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = 0;
        char *slash = strrchr(line, '/');
        found = slash && (!strcmp(slash + 1, "libhttptape.so") ||
                          !strcmp(slash + 1, "libhttptape.so (deleted)"));
    }
    if (f)
        fclose(f);
    return found;
}
#endif

int ht_cmd_attach(int argc, char **argv)
{
    enum { O_PID = 'p', O_LOG = 'l', O_BODY = 'b', O_HEAD = 'H', O_QUEUE = 'q',
           O_DUR = 'd', O_CHILD = 'c', O_RING = 'r', O_CHECK = 'C', O_VERB = 'v',
           O_KSTATS = 'K', O_NOCHILD = 'N' };
    static const struct option opts[] = {
        { "pid", required_argument, NULL, O_PID },
        { "log", required_argument, NULL, O_LOG },
        { "max-body", required_argument, NULL, O_BODY },
        { "max-header", required_argument, NULL, O_HEAD },
        { "queue", required_argument, NULL, O_QUEUE },
        { "duration", required_argument, NULL, O_DUR },
        { "children", no_argument, NULL, O_CHILD },
        { "no-children", no_argument, NULL, O_NOCHILD },
        { "ring-size", required_argument, NULL, O_RING },
        { "check", no_argument, NULL, O_CHECK },
        { "verbose", no_argument, NULL, O_VERB },
        { "kernel-stats", no_argument, NULL, O_KSTATS },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    struct ht_attach_opts o = { 0 };
    bool no_children = false;
    bool check = false;
    char err[512];
    int c;

    /* HTTPTAPE_* variables apply as for `run`; flags override them. */
    if (ht_config_from_env(&o.cfg, err, sizeof(err))) {
        fprintf(stderr, "httptape attach: %s\n", err);
        return HT_ATTACH_USAGE;
    }
    optind = 1;
    while ((c = getopt_long(argc, argv, "hv", opts, NULL)) != -1) {
        const char *var = c == O_LOG ? "HTTPTAPE_LOG" : c == O_BODY ? "HTTPTAPE_MAX_BODY" :
                          c == O_HEAD ? "HTTPTAPE_MAX_HEADER" : "HTTPTAPE_QUEUE";
        switch (c) {
        case O_PID:
            if (parse_pid(optarg, &o.pid)) {
                fprintf(stderr, "httptape attach: --pid: invalid value '%s'; expected a "
                        "process id (a positive number)\n", optarg);
                return HT_ATTACH_USAGE;
            }
            break;
        case O_LOG: case O_BODY: case O_HEAD: case O_QUEUE:
            if (ht_config_set(&o.cfg, var, optarg, err, sizeof(err))) {
                const char *why = strchr(err, ':');
                fprintf(stderr, "httptape attach: --%s%s\n",
                        opts[c == O_LOG ? 1 : c == O_BODY ? 2 : c == O_HEAD ? 3 : 4].name,
                        why ? why : err);
                return HT_ATTACH_USAGE;
            }
            if (c == O_LOG && check_log_path(o.cfg.log_path))
                return HT_ATTACH_USAGE;
            break;
        case O_DUR:
            if (parse_seconds(optarg, &o.duration)) {
                fprintf(stderr, "httptape attach: --duration: invalid value '%s'; expected "
                        "a number of seconds above 0 (1, 2.5)\n", optarg);
                return HT_ATTACH_USAGE;
            }
            break;
        case O_RING:
            if (ht_parse_size(optarg, &o.ring_size) || !o.ring_size ||
                (o.ring_size & (o.ring_size - 1)) || o.ring_size < 4096 ||
                o.ring_size > (1ull << 30)) {
                fprintf(stderr, "httptape attach: --ring-size: invalid value '%s'; expected a "
                        "power of 2 from 4k to 1g (64k, 16m)\n", optarg);
                return HT_ATTACH_USAGE;
            }
            break;
        case O_CHILD:
            o.children = true;
            no_children = false;
            break;
        case O_NOCHILD:
            o.children = false;
            no_children = true;
            break;
        case O_CHECK:
            check = true;
            break;
        case O_VERB:
            o.verbose = true;
            break;
        case O_KSTATS:
            o.kernel_stats = true;
            break;
        case 'h':
            fputs(usage, stdout);
            return HT_ATTACH_OK;
        default:
            fputs("httptape attach: see 'httptape attach --help'\n", stderr);
            return HT_ATTACH_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "httptape attach: unexpected argument '%s'\n", argv[optind]);
        return HT_ATTACH_USAGE;
    }
    if (!o.pid && !check) {
        fputs("httptape attach: --pid PID is required\n", stderr);
        fputs(usage, stderr);
        return HT_ATTACH_USAGE;
    }

#ifndef HT_HAVE_ATTACH
    fputs("httptape attach: attach is unavailable in this build (it was built without "
          "clang, bpftool, libbpf-dev or kernel BTF; install them with "
          "scripts/install-deps.sh and run make again)\n", stderr);
    return HT_ATTACH_UNAVAILABLE;
#else
    int rc;
    if (o.pid) {
        if (kill(o.pid, 0) && errno == ESRCH) {
            fprintf(stderr, "httptape attach: no process with pid %d\n", o.pid);
            return HT_ATTACH_NO_PROCESS;
        }
        int tgid = process_of(o.pid);
        if (tgid > 0 && tgid != o.pid) {
            fprintf(stderr, "httptape attach: %d is a thread of process %d; attaching to the "
                    "process\n", o.pid, tgid);
            o.pid = tgid;
        }
        if (o.pid == getpid()) {
            fputs("httptape attach: cannot attach to itself\n", stderr);
            return HT_ATTACH_USAGE;
        }
        if (!check && has_preload(o.pid))
            fprintf(stderr, "httptape attach: warning: pid %d already has libhttptape.so "
                    "loaded (httptape run or LD_PRELOAD): its exchanges will be logged "
                    "twice, once by each, under different connection ids\n", o.pid);
    }
    if ((rc = ht_attach_preflight(err, sizeof(err)))) {
        fprintf(stderr, "httptape attach: %s\n", err);
        return rc;
    }
    if (o.pid && !check && !o.children && !no_children) {
        /* A master that listens while its children accept (nginx, apache2
         * prefork): alone, it would record nothing. */
        int kids[8];
        size_t nk = ht_attach_accepting_children(o.pid, kids, 8);
        if (nk) {
            char list[96] = "";
            for (size_t i = 0; i < nk && strlen(list) < sizeof(list) - 12; i++)
                snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%d", i ? " " : "",
                         kids[i]);
            fprintf(stderr, "httptape attach: pid %d listens, and its children (%s%s) accept on "
                    "the same sockets: recording them too, as --children does (--no-children: "
                    "pid %d alone)\n", o.pid, list, nk == 8 ? " ..." : "", o.pid);
            o.children = true;
        }
    }
    if (check) {
        if ((rc = ht_attach_check(&o, err, sizeof(err)))) {
            fprintf(stderr, "httptape attach: %s\n", err);
            return rc;
        }
        puts("httptape attach: ok: the BPF programs load and attach on this kernel");
        return HT_ATTACH_OK;
    }
    return ht_attach_run(&o);
#endif
}
