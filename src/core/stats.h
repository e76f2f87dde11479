/*
 * stats.h - process-wide counters behind the statistics record, so a reader
 * of the log can prove nothing was lost silently:
 *   exchanges_seen == exchanges_written + exchanges_dropped (+ still queued).
 *
 * Thread-safe: relaxed atomics, updated from any thread, read by the writer.
 */
#ifndef HT_STATS_H
#define HT_STATS_H

#include <stdatomic.h>
#include <stdint.h>

struct ht_stats {
    _Atomic uint64_t connections;       /* connections tracked */
    _Atomic uint64_t connections_unseen_stdio;    /* ... handed to stdio (fdopen) */
    _Atomic uint64_t connections_unseen_io_uring; /* ... moved bytes through io_uring */
    _Atomic uint64_t connections_tls_not_decrypted; /* TLS whose plaintext we did not get */
    _Atomic uint64_t exchanges_seen;    /* exchanges handed to the sink */
    _Atomic uint64_t exchanges_written; /* ... and written to the log */
    _Atomic uint64_t dropped_queue_full;
    _Atomic uint64_t dropped_write_error;
    _Atomic uint64_t dropped_no_memory;
    _Atomic uint64_t dropped_pipeline;  /* beyond the pipelining depth kept */
    _Atomic uint64_t dropped_unparsed;  /* responses after a request-side desync */
    _Atomic uint64_t parse_errors;      /* connections that desynchronised */
    _Atomic uint64_t capture_gaps;      /* bytes we could not observe (events) */
    _Atomic uint64_t bytes_received;    /* by the app, on tracked connections */
    _Atomic uint64_t bytes_sent;
    _Atomic uint64_t records_lost;      /* capture records a full ring had no room for */
    _Atomic uint64_t record_bytes_lost; /* ... the bytes they would have held */
    _Atomic uint64_t bytes_unattributed; /* moved by a call whose fd was closed and reused meanwhile */
    _Atomic uint64_t registrations_refused; /* processes whose ring the collector refused */
    _Atomic uint64_t rings_broken;      /* rings whose reading stopped (foreign data) */
    _Atomic uint64_t files_unmatched;   /* kept sendfile excerpts the collector did not have */
    _Atomic uint64_t filtered;          /* exchanges an include/exclude rule left out */
    _Atomic uint64_t sampled_out;       /* ... a sample rule left out */
};

extern struct ht_stats ht_stats;

#define HT_STAT_ADD(field, n) \
    atomic_fetch_add_explicit(&ht_stats.field, (uint64_t)(n), memory_order_relaxed)
#define HT_STAT_SET(field, n) \
    atomic_store_explicit(&ht_stats.field, (uint64_t)(n), memory_order_relaxed)
#define HT_STAT_GET(field) \
    atomic_load_explicit(&ht_stats.field, memory_order_relaxed)

/* Exchanges dropped, all causes: the one sum everything reports. */
static inline uint64_t ht_stats_dropped(void)
{
    return HT_STAT_GET(dropped_queue_full) + HT_STAT_GET(dropped_write_error) +
           HT_STAT_GET(dropped_no_memory) + HT_STAT_GET(dropped_pipeline) +
           HT_STAT_GET(dropped_unparsed);
}

/* Zero every counter (a forked child starts its own accounting). */
void ht_stats_reset(void);

#endif
