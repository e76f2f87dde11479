/*
 * feed.h - records in, exchanges out: the one consumer of capture records
 * (capture/record.h), whether they came from attach's BPF ring buffer or a
 * preloaded process's ring. Each connection is a struct ht_conn of the
 * core, found by its process and id; its bytes are fed in stream-offset
 * order, a jump in the offsets being bytes lost (a full ring), fed as
 * unseen and marked as a gap, never passed over. Finished exchanges go to
 * the sink (core/sink.h).
 *
 * What a capture side can do besides writing records (be told to skip
 * body bytes, read back a file that was sent, forget a process) comes in
 * as ops.
 *
 * Threading: one thread (the collector's loop, or attach's main thread);
 * no locks.
 */
#ifndef HT_COLLECTOR_FEED_H
#define HT_COLLECTOR_FEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/conn.h"

struct ht_feed_ops {
    /* Body bytes of connection (tgid, fd, id) before stream offsets to[]
     * are no longer wanted (past the excerpt cap): a source that can
     * avoid copying them is told. NULL: not offered. */
    void (*skip)(void *ctx, uint32_t tgid, int32_t fd, uint64_t id, const uint64_t to[2]);
    /* Read back, from the file a SENDFILE record (rec, size bytes) names,
     * len bytes at offset off of what was sent. Returns bytes read, 0 when
     * they cannot be had. NULL: SENDFILE bodies are not captured. */
    size_t (*fetch_sendfile)(void *ctx, const void *rec, size_t size, uint64_t off, uint8_t *buf,
                             size_t len);
    /* The file a SENDFILE record names, for the event (body.file): false
     * when it cannot say. id->path stays valid until the next record.
     * NULL: bodies from SENDFILE records name no file. */
    bool (*sendfile_id)(void *ctx, const void *rec, size_t size, struct ht_file_id *id);
    /* An EXIT record ended process tgid; its connection (tgid, fd) was
     * just finished (called once per connection, then once with fd -1). */
    void (*process_exited)(void *ctx, uint32_t tgid, int32_t fd);
    void *ctx;
};

/* What was lost or passed over, for the front end's summary. */
struct ht_feed_counts {
    uint64_t lost_bytes, lost_events;   /* offset jumps: records a ring had no room for */
    uint64_t cut_events;                /* transfers the capture side could not copy whole */
    uint64_t joined;                    /* connections picked up mid-way */
    uint64_t resynced;                  /* ... again after lost bytes they had to parse */
    uint64_t no_accept;                 /* bytes of a connection whose opening record was lost */
    uint64_t dropped_early;             /* bytes of joined connections before a message boundary */
    uint64_t skipped_bytes;             /* body past the excerpt cap, not copied */
};

/* Settings for every connection (ccfg must outlive the feed) and the
 * offset of CLOCK_REALTIME over the records' CLOCK_MONOTONIC times. */
void ht_feed_init(const struct ht_conn_cfg *ccfg, int64_t wall_minus_mono, const struct ht_feed_ops *ops);

/* One record, size bytes (malformed or short ones are ignored). */
void ht_feed_record(const void *data, size_t size);

/* A connection that was open before capture began, tracked under id from
 * now on: logged from its next message, every exchange marked joined. */
bool ht_feed_join(uint64_t id, uint32_t tgid, int fd, const struct ht_endpoints *ep);

/* Process tgid is gone: end its connections (extra_gaps on what was in
 * flight). */
void ht_feed_process_gone(uint32_t tgid, uint32_t extra_gaps);

/* About once a second: end connections held for a forked child that
 * never went on with them. */
void ht_feed_tick(void);

/* End every connection (capture stops). */
void ht_feed_finish_all(uint32_t extra_gaps);

void ht_feed_counts(struct ht_feed_counts *out);

/* Endpoints from raw addresses (network order) or a Unix socket path. */
void ht_feed_ep_inet(struct ht_endpoints *ep, int family, const uint8_t *laddr, int lport,
                     const uint8_t *paddr, int pport);
void ht_feed_ep_unix(struct ht_endpoints *ep, const char *path);

#endif
