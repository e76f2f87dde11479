/*
 * spawn.h - start a collector for this process when none is there
 * (plain LD_PRELOAD, or the collector of `httptape run` is gone).
 *
 * The collector (`httptape collect --for PID`) is a grandchild made with
 * raw clone(2) calls whose exit signal is 0: the app gets no SIGCHLD, its
 * wait() never sees it, and it is not the app's child at all once the
 * middle process exits (it is reaped here at once). It gets the ring's
 * memfd as fd 3 and a pidfd of this process as fd 4, /dev/null as stdin,
 * the app's stdout (the log, with HTTPTAPE_LOG=-) and stderr, and only the
 * environment prepared at start-up (the HTTPTAPE_* settings; no
 * LD_PRELOAD).
 */
#ifndef HT_PRELOAD_SPAWN_H
#define HT_PRELOAD_SPAWN_H

#include "capture/register.h"

/* Start bin as this process's collector at address a, handing it ring_fd.
 * env is NULL-terminated and gets HTTPTAPE_COLLECTOR=a added. 0 or -errno
 * (-ENOENT: no collector executable). Not async-signal-safe (it formats
 * the environment); the child side makes raw system calls only. */
int ht_spawn_collector(const char *bin, char *const *env, const struct ht_reg_addr *a, int ring_fd);

#endif
