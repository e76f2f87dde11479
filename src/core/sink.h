/*
 * sink.h - where finished exchanges go in live capture: a bounded lock-free
 * queue that app threads push onto, and one background writer thread per
 * process that formats records and appends whole lines to the log.
 *
 * Threading: ht_sink_push is safe from any thread, lock-free, never blocks
 * and makes no system call. The others are called from the front end's
 * start-up, exit and fork paths. App threads never touch the log file.
 */
#ifndef HT_SINK_H
#define HT_SINK_H

#include <stdbool.h>

#include "core/config.h"
#include "core/exchange.h"

/* Remember the settings; nothing is allocated or started yet. */
void ht_sink_configure(const struct ht_config *cfg, const char *mode);

/* Allocate the queue and start the writer thread, once per process (later
 * calls return at once). All signals are blocked in the writer. 0 or
 * -errno; on failure pushes drop and count. */
int ht_sink_start(void);

/* Hand an exchange to the writer; ownership passes in all cases. Returns
 * false when it was dropped (queue full, or no writer): counted in the
 * statistics record. */
bool ht_sink_push(struct ht_exchange *ex);

/* Stop the writer: it writes what is queued and a final statistics record,
 * waiting at most the configured flush timeout. For process exit. */
void ht_sink_shutdown(void);

/* The log's fd, or -1. The app must not close or replace it: the hooks
 * ask. Lock-free. */
int ht_sink_log_fd(void);

/* The app is about to dup2/dup3 onto the log's fd: move the log to another
 * fd first (waits for a write under way; called on the app's thread, only
 * in that rare case). */
void ht_sink_move_log_fd(void);

/* In a forked child: the parent's writer does not exist here and the
 * parent's queued exchanges are not ours to write; start afresh. */
void ht_sink_after_fork_child(void);

#endif
