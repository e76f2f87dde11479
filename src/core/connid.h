/*
 * connid.h - the `httptape.connection.id` of live capture:
 * "<pid>-<session>-<n>", e.g. "41977-3f9a01bc-1".
 *
 *   pid      the process that owns the connection
 *   session  8 lowercase hex digits, random, drawn once per capture session
 *            (a preloaded process, one `httptape attach` run)
 *   n        the session's connection counter, from 1
 *
 * pid and a counter alone collide when two captures watch one process (an
 * `attach` on a server already under `run`) or when a pid is reused; the
 * session tag keeps ids unique across both. The pid stays first, so
 * `split("-")[0]` is still the pid.
 *
 * Thread-safe, no allocation, no locks: usable from a hook. The first call
 * in a process makes one getrandom(2) call (non-blocking, with a clock
 * fallback).
 */
#ifndef HT_CONNID_H
#define HT_CONNID_H

#include <stddef.h>
#include <stdint.h>

/* This process's session tag (printed as 8 hex digits); drawn on the first
 * call, the same for the life of the process (and its forked children,
 * whose pids differ). */
uint32_t ht_connid_session(void);

/* Writes "<pid>-<session>-<n>" into out (NUL-terminated, cut to outlen).
 * Returns the length of the whole id, as snprintf does. A 32-byte buffer
 * holds every id with n below 10^13. */
int ht_connid_format(char *out, size_t outlen, int pid, uint64_t n);

#endif
