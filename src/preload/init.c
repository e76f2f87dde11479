/*
 * init.c - start-up, fork and exit of the preloaded library.
 *
 * The constructor reads and validates the configuration; on any problem it
 * prints one line on stderr and leaves the library inert (nothing is
 * tracked, every hook passes straight through). So it does in a process
 * that runs with privileges its invoker does not have (setuid, setgid, file
 * capabilities: AT_SECURE), unless HTTPTAPE_ALLOW_SECURE=1. Nothing runs in
 * the background until the process accepts its first connection.
 */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "core/config.h"
#include "core/conn.h"
#include "core/redact.h"
#include "core/sink.h"
#include "preload/real.h"
#include "preload/tap.h"


static struct ht_conn_cfg conn_cfg;
static bool active;

/* One diagnostic line on stderr, through the real write (never stdout). */
__attribute__((format(printf, 1, 2)))
static void say(const char *fmt, ...)
{
    char line[768];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(line))
        n = sizeof(line) - 1;
    (void)!REAL(write)(STDERR_FILENO, line, (size_t)n);
}

/* HTTPTAPE_INHERIT=0: take this library out of LD_PRELOAD so programs the
 * app executes do not load it (the app itself already has). Entries are
 * separated by spaces or colons; ours is recognised by its real path. */
static void strip_preload(void)
{
    Dl_info info;
    char self[PATH_MAX], real[PATH_MAX], out[8192];
    const char *list = getenv("LD_PRELOAD");
    if (!list || !dladdr((void *)strip_preload, &info) || !info.dli_fname ||
        !realpath(info.dli_fname, self))
        return;
    size_t o = 0;
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, " :");
        if (n) {
            char entry[PATH_MAX];
            snprintf(entry, sizeof(entry), "%.*s", (int)n, p);
            bool ours = !strcmp(entry, self) || (realpath(entry, real) && !strcmp(real, self));
            if (!ours && o + n + 2 < sizeof(out)) {
                if (o)
                    out[o++] = ' ';
                memcpy(out + o, p, n);
                o += n;
            }
        }
        p += n;
        p += strspn(p, " :");
    }
    out[o] = 0;
    if (o)
        setenv("LD_PRELOAD", out, 1);
    else
        unsetenv("LD_PRELOAD");
}

/* The sink first: it resets the counters the tap then counts into. */
static void after_fork_child(void)
{
    ht_sink_after_fork_child();
    ht_tap_after_fork_child();
}

__attribute__((constructor)) static void httptape_init(void)
{
    struct ht_config cfg;
    char err[512];

    ht_real_init();
    /* A privileged process: its environment (our settings, the log path)
     * comes from someone with fewer rights. Checked before anything in it
     * is read. */
    if (getauxval(AT_SECURE)) {
        const char *allow = getenv("HTTPTAPE_ALLOW_SECURE");
        bool yes = false;
        if (!allow || ht_parse_bool(allow, &yes) || !yes) {
            say("httptape: this process runs with privileges its invoker lacks (setuid, "
                "setgid or file capabilities); not recording in it (pid %d); "
                "HTTPTAPE_ALLOW_SECURE=1 records it anyway\n", getpid());
            return;
        }
    }
    if (ht_config_from_env(&cfg, err, sizeof(err))) {
        say("httptape: %s; not recording in this process (pid %d)\n", err, getpid());
        return;
    }
    int rc = ht_redact_configure(cfg.redact_headers, cfg.redact_query, cfg.redact_fields,
                                 cfg.redact_key, cfg.redact, err, sizeof(err));
    explicit_bzero(cfg.redact_key, sizeof(cfg.redact_key));
    if (rc) {
        say("httptape: %s; not recording in this process (pid %d)\n", err, getpid());
        return;
    }
    if (ht_tap_init()) {
        say("httptape: cannot allocate the fd table; not recording (pid %d)\n", getpid());
        return;
    }
    if (!cfg.inherit)
        strip_preload();
    conn_cfg.max_body = cfg.max_body;
    conn_cfg.max_header = cfg.max_header;
    conn_cfg.mode = "preload";
    ht_tap_configure(&conn_cfg);
    ht_sink_configure(&cfg, "preload");
    pthread_atfork(NULL, ht_tap_after_fork_parent, after_fork_child);
    active = true;
    ht_tap_activate();
    if (!cfg.redact)
        say("httptape: HTTPTAPE_REDACT=off: headers, query strings and bodies are logged "
            "as sent, secrets included (pid %d)\n", getpid());
}

/* Write out what this process holds: at exit(), and from the _exit hook.
 * Not in a vfork child, which shares the parent's memory. */
void ht_preload_flush(void)
{
    if (!active || ht_tap_foreign_process())
        return;
    ht_tap_finish_all();
    ht_sink_shutdown();
}

__attribute__((destructor)) static void httptape_fini(void)
{
    ht_preload_flush();
}
