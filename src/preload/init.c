/*
 * init.c - start-up, fork and exit of the preloaded library.
 *
 * The constructor reads and validates the configuration; on any problem it
 * prints one line on stderr and leaves the library inert (nothing is
 * tracked, every hook passes straight through). Nothing runs in the
 * background until the process accepts its first connection.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/conn.h"
#include "core/sink.h"
#include "preload/real.h"
#include "preload/tap.h"

void ht_tap_activate(void);

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

static void after_fork_child(void)
{
    ht_tap_after_fork_child();
    ht_sink_after_fork_child();
}

__attribute__((constructor)) static void httptape_init(void)
{
    struct ht_config cfg;
    char err[512];

    ht_real_init();
    if (ht_config_from_env(&cfg, err, sizeof(err))) {
        say("httptape: %s; not recording in this process (pid %d)\n", err, getpid());
        return;
    }
    if (ht_tap_init()) {
        say("httptape: cannot allocate the fd table; not recording (pid %d)\n", getpid());
        return;
    }
    conn_cfg.max_body = cfg.max_body;
    conn_cfg.max_header = cfg.max_header;
    conn_cfg.mode = "preload";
    ht_tap_configure(&conn_cfg);
    ht_sink_configure(&cfg, "preload");
    pthread_atfork(NULL, NULL, after_fork_child);
    active = true;
    ht_tap_activate();
}

__attribute__((destructor)) static void httptape_fini(void)
{
    if (!active)
        return;
    ht_tap_finish_all();
    ht_sink_shutdown();
}
