/*
 * ring.h - a bounded ring of variable-length records in memory that two
 * processes share: the capture side (many threads of a recorded process)
 * appends records, one consumer (the collector) reads them in order.
 *
 * Layout of a mapping: one page of header, then data_size bytes of data
 * (a power of two). A record is an 8-byte frame header (state + length,
 * type) and its payload, rounded up to 8 bytes; a record that would cross
 * the end of the data is preceded by a padding record to the end.
 *
 * Producers: lock-free and wait-free but for the CAS on the reservation
 * counter; never block, never make a system call except the one futex
 * wake of a napping consumer when the ring fills to its high-water mark.
 * A record that does not fit is dropped and counted in the header.
 *
 * Consumer: one thread. It trusts nothing in the mapping (the other
 * process may be buggy or hostile): positions and lengths are checked, a
 * bad one ends the ring (-EBADMSG), a nap always has a timeout.
 *
 * The ring knows nothing of what records mean (capture/record.h does).
 */
#ifndef HT_CAPTURE_RING_H
#define HT_CAPTURE_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HT_RING_HDR_SIZE 4096u
#define HT_RING_MIN_DATA (64u << 10)
#define HT_RING_MAX_DATA (1u << 30)
/* A payload is at most this share of the ring: producers split larger. */
#define HT_RING_MAX_REC(data_size) ((data_size) / 8)

struct ht_ring_hdr;

/* One side's view of a mapping. The consumer keeps its own read position
 * (tail) and only publishes it to the mapping. */
struct ht_ring {
    struct ht_ring_hdr *h;
    uint8_t *data;
    uint64_t size, mask;
    uint64_t tail;              /* consumer: next record to read */
    uint64_t cur;               /* consumer: frame bytes of the record peeked */
    uint32_t high;              /* consumer: bytes queued that end a nap */
};

/* Bytes to map for a ring of data_size bytes. */
size_t ht_ring_map_size(uint32_t data_size);

/* Producer side: lay out a new ring in mem (mem_len from
 * ht_ring_map_size, zero-filled, e.g. fresh from mmap). pid is recorded
 * for the consumer. 0 or -EINVAL (size not a power of two in range). */
int ht_ring_format(struct ht_ring *r, void *mem, size_t mem_len, uint32_t data_size, int32_t pid);

/* Consumer side: take over a mapping made by ht_ring_format in another
 * process. Checks the header against mem_len. 0 or -EBADMSG. */
int ht_ring_open(struct ht_ring *r, void *mem, size_t mem_len);

/* ---- producer (any thread of the recorded process) ---- */

struct ht_ring_res {
    void *payload;              /* len bytes to fill before commit */
    uint64_t pos;               /* where the frame starts (absolute) */
    uint64_t start, end;        /* the room reserved, padding included */
};

/* Reserve room for a record of type with a payload of len bytes. Returns
 * false (and counts a lost record of len bytes) when the ring is full or
 * len is over HT_RING_MAX_REC. Async-signal-safe. */
bool ht_ring_reserve(struct ht_ring *r, uint16_t type, uint32_t len, struct ht_ring_res *res);

/* Publish a reserved record; wakes a napping consumer when this record
 * crosses its high-water mark. Async-signal-safe. */
void ht_ring_commit(struct ht_ring *r, const struct ht_ring_res *res);

/* Count a record the producer lost before reserving (e.g. its own
 * re-entrancy). */
void ht_ring_count_lost(struct ht_ring *r, uint64_t bytes);

/* ---- consumer (one thread) ---- */

struct ht_ring_rec {
    uint16_t type;
    uint32_t len;
    const void *payload;        /* valid until ht_ring_consume */
};
/* The payload lies in memory the producer can still write: a consumer
 * copies any header it checks before checking it. */

enum ht_ring_peek {
    HT_RING_EMPTY = 0,          /* nothing reserved */
    HT_RING_READY = 1,          /* *rec is the next record */
    HT_RING_PENDING = 2,        /* the next record is reserved, not yet committed */
};

/* The next record in order. HT_RING_* or -EBADMSG (the mapping holds
 * something no producer of ours wrote: stop reading this ring). */
int ht_ring_peek(struct ht_ring *r, struct ht_ring_rec *rec);

/* Done with the record peek returned: its room goes back to producers. */
void ht_ring_consume(struct ht_ring *r);

/* Give up on a pending record whose producer will never commit it: its
 * process is gone (never while it lives: a slow writer would then write
 * into room given to another record). Skipped and counted as lost. Only when its length was published (else false: the
 * ring cannot be read past it). */
bool ht_ring_skip_pending(struct ht_ring *r);

/* The consumer says who it is (its pid), and that it is alive: it stores
 * the CLOCK_MONOTONIC time (ns) at least every 100 ms, so that producers
 * can tell a slow consumer from a dead one without asking the kernel
 * about a pid (which may be in another pid namespace, or reused). */
void ht_ring_set_consumer(struct ht_ring *r, int32_t pid);
int32_t ht_ring_consumer(const struct ht_ring *r);
void ht_ring_heartbeat(struct ht_ring *r, uint64_t mono_ns);
uint64_t ht_ring_last_beat(const struct ht_ring *r);     /* 0: never */

/* Count records lost before they could be written here (e.g. while the
 * ring was being made). */
void ht_ring_add_lost(struct ht_ring *r, uint64_t records, uint64_t bytes);

/* Sleep up to ns nanoseconds, or until producers queue high bytes. */
void ht_ring_nap(struct ht_ring *r, long ns);

/* The same for a consumer of several rings, in three steps: for each ring
 * ht_ring_nap_begin (false: it has high bytes queued already, do not
 * sleep), then one FUTEX_WAITV over the words and values it gave, then
 * ht_ring_nap_end for each. */
bool ht_ring_nap_begin(struct ht_ring *r, uint32_t **word, uint32_t *val);
void ht_ring_nap_end(struct ht_ring *r);

struct ht_ring_counts {
    uint64_t lost_records, lost_bytes;  /* dropped by producers: ring full */
    uint64_t queued;                    /* bytes reserved, not yet consumed */
    int32_t pid;                        /* as the producer wrote it */
};

/* Read the counters (consumer; values come from the other process). */
void ht_ring_counts(const struct ht_ring *r, struct ht_ring_counts *c);

#endif
