/* stats.c - the process-wide counters (see stats.h). */
#include "core/stats.h"

#include <string.h>

struct ht_stats ht_stats;

void ht_stats_reset(void)
{
    atomic_store(&ht_stats.connections, 0);
    atomic_store(&ht_stats.connections_unseen_stdio, 0);
    atomic_store(&ht_stats.connections_tls_not_decrypted, 0);
    atomic_store(&ht_stats.connections_unseen_io_uring, 0);
    atomic_store(&ht_stats.exchanges_seen, 0);
    atomic_store(&ht_stats.exchanges_written, 0);
    atomic_store(&ht_stats.dropped_queue_full, 0);
    atomic_store(&ht_stats.dropped_write_error, 0);
    atomic_store(&ht_stats.dropped_no_memory, 0);
    atomic_store(&ht_stats.dropped_pipeline, 0);
    atomic_store(&ht_stats.dropped_unparsed, 0);
    atomic_store(&ht_stats.parse_errors, 0);
    atomic_store(&ht_stats.capture_gaps, 0);
    atomic_store(&ht_stats.bytes_received, 0);
    atomic_store(&ht_stats.bytes_sent, 0);
    atomic_store(&ht_stats.records_lost, 0);
    atomic_store(&ht_stats.registrations_refused, 0);
    atomic_store(&ht_stats.bytes_unattributed, 0);
    atomic_store(&ht_stats.rings_broken, 0);
    atomic_store(&ht_stats.files_unmatched, 0);
    atomic_store(&ht_stats.filtered, 0);
    atomic_store(&ht_stats.sampled_out, 0);
    atomic_store(&ht_stats.record_bytes_lost, 0);
}
