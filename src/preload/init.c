/*
 * init.c - start-up and fork of the preloaded library.
 *
 * The constructor reads and validates the configuration; on any problem it
 * prints one line on stderr and leaves the library inert (nothing is
 * tracked, every hook passes straight through). So it does in a process
 * that runs with privileges its invoker does not have (setuid, setgid, file
 * capabilities: AT_SECURE), unless HTTPTAPE_ALLOW_SECURE=1, and in the
 * httptape executable itself. Nothing happens until the process accepts
 * its first connection: then its ring is made and handed to a collector
 * (out.h). There is nothing to do at exit: every record is in the ring
 * already, and the collector learns of the exit from its pidfd.
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

#include "capture/register.h"
#include "core/config.h"
#include "core/redact.h"
#include "preload/out.h"
#include "preload/real.h"
#include "preload/tap.h"
#include "paths.h"                /* generated: $(BUILD)/gen (mk/install.mk) */



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

/* ---- what a collector we start gets ---- */

/* The HTTPTAPE_* settings (and OTEL_SERVICE_NAME, which names the service
 * in the events) as the app started with them (the log path made
 * absolute), for a collector this process may start later: environ may be
 * changed by the app by then, and is not ours to read from a hook. */
#define ENV_MAX 48
static char env_buf[16384];
static char *env_list[ENV_MAX + 1];

static void keep_env(const struct ht_config *cfg)
{
    extern char **environ;
    size_t used = 0, n = 0;
    int w = snprintf(env_buf, sizeof(env_buf), "HTTPTAPE_LOG=%s", cfg->log_path);
    if (w <= 0 || (size_t)w >= sizeof(env_buf))
        return;
    env_list[n++] = env_buf;
    used = (size_t)w + 1;
    for (char **e = environ; e && *e && n < ENV_MAX; e++) {
        size_t len = strlen(*e) + 1;
        if ((strncmp(*e, "HTTPTAPE_", 9) && strncmp(*e, "OTEL_SERVICE_NAME=", 18)) ||
            !strncmp(*e, "HTTPTAPE_LOG=", 13) ||
            !strncmp(*e, "HTTPTAPE_COLLECTOR=", 19) || used + len > sizeof(env_buf))
            continue;
        memcpy(env_buf + used, *e, len);
        env_list[n++] = env_buf + used;
        used += len;
    }
    env_list[n] = NULL;
}

/* The httptape executable that collects for us: $HTTPTAPE_COLLECTOR_BIN,
 * else beside this library (build/), else where `make install` puts it:
 * first relative to this library (../../../bin/ from PREFIX/lib/TRIPLET/
 * httptape/, so an install under DESTDIR or moved whole works), then the
 * BINDIR compiled in (paths.h, mk/install.mk). */
static char collector_bin[PATH_MAX];

static void find_collector(void)
{
    const char *env = getenv("HTTPTAPE_COLLECTOR_BIN");
    Dl_info info;
    if (env && env[0]) {
        if (access(env, X_OK) == 0)
            snprintf(collector_bin, sizeof(collector_bin), "%s", env);
        return;
    }
    char self[PATH_MAX];
    if (!dladdr((void *)find_collector, &info) || !info.dli_fname || !realpath(info.dli_fname, self))
        return;
    char *slash = strrchr(self, '/');
    if (!slash)
        return;
    *slash = 0;
    static const char *const rel[] = { ".", HT_BINDIR_FROM_PKGLIB };
    char cand[PATH_MAX * 2];
    for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
        snprintf(cand, sizeof(cand), "%s/%s/httptape", self, rel[i]);
        if (realpath(cand, collector_bin) && access(collector_bin, X_OK) == 0)
            return;
    }
    snprintf(cand, sizeof(cand), "%s/httptape", HT_BINDIR);
    if (realpath(cand, collector_bin) && access(collector_bin, X_OK) == 0)
        return;
    collector_bin[0] = 0;
}

/* The httptape executable itself (run's collector, attach) is never
 * recorded, also when an outer `httptape run` preloaded us into it. */
extern const int httptape_no_capture __attribute__((weak, visibility("default")));

__attribute__((constructor)) static void httptape_init(void)
{
    struct ht_config cfg;
    char err[512];

    ht_real_init();
    if (&httptape_no_capture)
        return;
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
    /* Checked here so that a bad pattern is one line from the app; the
     * collector redacts. */
    int rc = ht_redact_configure(cfg.redact_headers, cfg.redact_query, cfg.redact_fields,
                                 cfg.redact_key, cfg.redact, err, sizeof(err));
    explicit_bzero(cfg.redact_key, sizeof(cfg.redact_key));
    if (rc) {
        say("httptape: %s; not recording in this process (pid %d)\n", err, getpid());
        return;
    }
    static char collector[160];
    const char *c = getenv("HTTPTAPE_COLLECTOR");
    struct ht_reg_addr probe;
    if (c && ht_reg_parse(c, &probe)) {
        say("httptape: HTTPTAPE_COLLECTOR: expected NAME:TOKEN as `httptape collect` prints it; "
            "not recording in this process (pid %d)\n", getpid());
        return;
    }
    snprintf(collector, sizeof(collector), "%s", c ? c : "");
    if (ht_tap_init()) {
        say("httptape: cannot allocate the fd table; not recording (pid %d)\n", getpid());
        return;
    }
    keep_env(&cfg);
    find_collector();
    if (!cfg.inherit)
        strip_preload();
    uint32_t ring = 1u << 16;
    while (ring < cfg.ring_size)
        ring <<= 1;
    struct ht_out_cfg oc = { .ring_size = ring, .max_body = cfg.max_body,
                             .max_header = cfg.max_header,
                             .collector = collector[0] ? collector : NULL,
                             .collector_bin = collector_bin[0] ? collector_bin : NULL,
                             .collector_env = env_list };
    ht_out_configure(&oc);
    pthread_atfork(NULL, ht_tap_after_fork_parent, ht_tap_after_fork_child);
    ht_tap_activate();
    if (!cfg.redact)
        say("httptape: HTTPTAPE_REDACT=off: headers, query strings and bodies are logged "
            "as sent, secrets included (pid %d)\n", getpid());
}
