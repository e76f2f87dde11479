/*
 * event.h - turning exchanges and counters into log records: one JSON
 * object per line, nested so that each dotted OpenTelemetry name is a path
 * (see docs/events.md for the schema).
 *
 * Thread-safe (no shared state); called on the writer thread in preload
 * mode, on the main thread in replay.
 */
#ifndef HT_EVENT_H
#define HT_EVENT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/exchange.h"

/* Append the exchange's record and a '\n' to out. 0 or -errno. Secrets
 * in ex are redacted in place first (redact.h), so ex is modified. */
int ht_event_format(struct ht_exchange *ex, struct ht_buf *out);

/* A snapshot of the counters (stats.h) for the statistics record. */
struct ht_stats_record {
    int64_t wall_ns;
    int pid;
    const char *mode;
    bool final;
    uint64_t connections, exchanges_seen, exchanges_written;
    uint64_t connections_unseen_stdio, connections_unseen_io_uring;
    uint64_t connections_tls_not_decrypted;
    uint64_t dropped_queue_full, dropped_write_error, dropped_no_memory;
    uint64_t dropped_pipeline, dropped_unparsed;
    uint64_t dropped;           /* the sum of the dropped_* above */
    uint64_t parse_errors, capture_gaps, bytes_received, bytes_sent;
    uint64_t records_lost, record_bytes_lost;
    uint64_t registrations_refused, rings_broken, bytes_unattributed, files_unmatched;
    uint64_t filtered, sampled_out;
};

/* Fill a record from the live counters. */
void ht_stats_record_take(struct ht_stats_record *r, int64_t wall_ns, int pid,
                          const char *mode, bool final);

/* Append the statistics record and a '\n' to out. 0 or -errno. */
int ht_event_format_stats(const struct ht_stats_record *r, struct ht_buf *out);

#endif
