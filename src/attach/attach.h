/*
 * attach.h - the attach front end as the CLI sees it: check that BPF can
 * be used here, then attach to a running process and record its HTTP
 * exchanges until told to stop.
 *
 * Exit statuses (also those of `httptape attach`) are the HT_ATTACH_*
 * values, so scripts and tests can tell "cannot attach here" apart from
 * "something went wrong". Not thread-safe: one attach per process.
 */
#ifndef HT_ATTACH_H
#define HT_ATTACH_H

#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"

enum {
    HT_ATTACH_OK = 0,
    HT_ATTACH_FAILED = 1,       /* runtime failure (load, attach, log) */
    HT_ATTACH_USAGE = 2,        /* bad flag or value */
    HT_ATTACH_NO_PROCESS = 3,   /* no such pid */
    HT_ATTACH_NO_PRIVILEGE = 4, /* not root / no CAP_BPF + CAP_PERFMON */
    HT_ATTACH_NO_KERNEL = 5,    /* kernel without BTF, tracepoints or BPF features */
    HT_ATTACH_UNAVAILABLE = 6,  /* built without the BPF toolchain */
};

#define HT_ATTACH_DEFAULT_RING (16u << 20)

struct ht_attach_opts {
    int pid;
    bool children;              /* also the processes pid forks (and its descendants now) */
    bool verbose;               /* libbpf's and our own diagnostics on stderr */
    bool kernel_stats;          /* time the BPF programs (BPF_ENABLE_STATS); one line at detach */
    double duration;            /* seconds; 0 = until SIGINT/SIGTERM or the process exits */
    uint64_t ring_size;         /* ring buffer bytes: a power of 2, >= page size */
    struct ht_config cfg;       /* log path, body cap, head limit, queue, rotation */
};

/* Can attach run here at all (privileges, kernel BTF)? HT_ATTACH_OK, or a
 * status with a one-line reason in err. Cheap: loads nothing. */
int ht_attach_preflight(char *err, size_t errlen);

/* Load the BPF programs and unload them again: the full check.
 * HT_ATTACH_OK or a status, with a one-line reason in err. */
int ht_attach_check(const struct ht_attach_opts *o, char *err, size_t errlen);

/* Attach to o->pid and log its exchanges until SIGINT/SIGTERM, the end of
 * o->duration, or the process's exit; then detach, write what is pending
 * and a final statistics record. Prints one line on stdout once attached
 * and one when detached. Returns an HT_ATTACH_* status; errors are one
 * line on stderr. */
int ht_attach_run(const struct ht_attach_opts *o);

/* Children of pid that hold a TCP socket pid listens on (they accept on
 * it: an nginx or apache2 master's workers); up to max pids in kids.
 * Returns how many; 0 when pid listens on nothing or accepts alone. */
size_t ht_attach_accepting_children(int pid, int *kids, size_t max);

#endif
