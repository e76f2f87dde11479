/*
 * sink.h - where finished exchanges go in live capture: a bounded lock-free
 * queue that the front end's thread (the collector's loop, attach's main
 * thread) pushes onto, and one writer thread that formats records and
 * appends whole lines to the log, or writes them to standard output.
 *
 * Threading: ht_sink_push is safe from any thread and lock-free; it makes
 * no system call but the one wake at high water, except that a full queue
 * makes it wait for the writer. The others are called from the front
 * end's start-up and exit.
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

/* Hand an exchange to the writer; ownership passes in all cases. A full
 * queue waits for the writer (up to a second). Returns false when it was
 * dropped (still full, or no writer): counted in the statistics record. */
bool ht_sink_push(struct ht_exchange *ex);

/* Stop the writer: it writes what is queued and a final statistics record,
 * waiting at most the configured flush timeout. For process exit. */
void ht_sink_shutdown(void);

/* The process the log speaks for (%p in the path, process.pid of the
 * statistics record), when that is not the writing process (the
 * collector). Before ht_sink_start. */
void ht_sink_speak_for(int pid);

#endif
