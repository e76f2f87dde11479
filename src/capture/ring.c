/*
 * ring.c - the shared-memory record ring (ring.h).
 *
 * Protocol. head counts bytes reserved (producers, CAS), tail bytes given
 * back (consumer). A producer that wins the CAS for [pos, pos + frame)
 * owns that room: it publishes the payload length as RESERVED, writes the
 * payload, then stores COMMITTED with release order. The consumer reads
 * frames at tail in order; a frame still 0 or RESERVED is not ready. Once
 * it has read a frame it zeroes all of it (any 8-byte word of it may hold
 * a later frame header) and then advances tail with release order, so a
 * producer that sees the new tail also sees zeroed room.
 *
 * Everything the consumer reads from the mapping is checked: the mapping
 * is also the recorded process's memory.
 */
#include "capture/ring.h"

#include <errno.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define RING_MAGIC 0x48545247u      /* "HTRG" */
#define RING_VERSION 1u

#define ST_RESERVED (1u << 30)
#define ST_COMMITTED (1u << 31)
#define ST_LEN_MASK (ST_RESERVED - 1)
#define TYPE_PAD 0xffffu

struct ht_ring_hdr {
    uint32_t magic, version;
    uint32_t data_size, hdr_size;
    int32_t pid;
    uint32_t pad0;
    _Alignas(64) _Atomic uint64_t head;
    _Alignas(64) _Atomic uint64_t tail;
    _Atomic uint64_t wake_at;       /* head position that wakes the consumer; 0 none */
    _Atomic uint32_t wake_seq;      /* futex word the consumer naps on */
    _Atomic int32_t consumer;       /* its pid, 0 until it opened the ring */
    _Atomic uint64_t beat;          /* consumer alive at (CLOCK_MONOTONIC ns) */
    _Alignas(64) _Atomic uint64_t lost_records, lost_bytes;
};
_Static_assert(sizeof(struct ht_ring_hdr) <= HT_RING_HDR_SIZE, "ring header fits its page");

struct frame {
    _Atomic uint32_t state;         /* 0, RESERVED|len, COMMITTED|len */
    uint16_t type;
    uint16_t pad;
};
_Static_assert(sizeof(struct frame) == 8, "frame header is 8 bytes");

static inline uint32_t round8(uint32_t n) { return (n + 7u) & ~7u; }

static bool size_ok(uint32_t s)
{
    return s >= HT_RING_MIN_DATA && s <= HT_RING_MAX_DATA && (s & (s - 1)) == 0;
}

size_t ht_ring_map_size(uint32_t data_size) { return HT_RING_HDR_SIZE + (size_t)data_size; }

static void view(struct ht_ring *r, void *mem, uint32_t data_size)
{
    r->h = mem;
    r->data = (uint8_t *)mem + HT_RING_HDR_SIZE;
    r->size = data_size;
    r->mask = data_size - 1;
    r->tail = 0;
    r->high = data_size / 16;
}

int ht_ring_format(struct ht_ring *r, void *mem, size_t mem_len, uint32_t data_size, int32_t pid)
{
    if (!size_ok(data_size) || mem_len < ht_ring_map_size(data_size))
        return -EINVAL;
    view(r, mem, data_size);
    struct ht_ring_hdr *h = r->h;
    h->data_size = data_size;
    h->hdr_size = HT_RING_HDR_SIZE;
    h->pid = pid;
    h->version = RING_VERSION;
    atomic_store_explicit(&h->head, 0, memory_order_relaxed);
    atomic_store_explicit(&h->tail, 0, memory_order_relaxed);
    /* The magic last: a consumer that sees it sees the rest. */
    atomic_thread_fence(memory_order_release);
    h->magic = RING_MAGIC;
    return 0;
}

int ht_ring_open(struct ht_ring *r, void *mem, size_t mem_len)
{
    const struct ht_ring_hdr *h = mem;
    if (mem_len < HT_RING_HDR_SIZE)
        return -EBADMSG;
    uint32_t magic = h->magic;
    atomic_thread_fence(memory_order_acquire);
    uint32_t ds = h->data_size;
    if (magic != RING_MAGIC || h->version != RING_VERSION || h->hdr_size != HT_RING_HDR_SIZE ||
        !size_ok(ds) || mem_len < ht_ring_map_size(ds))
        return -EBADMSG;
    view(r, mem, ds);
    r->tail = atomic_load_explicit(&r->h->tail, memory_order_acquire);
    if (r->tail % 8)
        return -EBADMSG;                /* frames are 8-byte aligned */
    return 0;
}

/* ---- producer ---- */

void ht_ring_count_lost(struct ht_ring *r, uint64_t bytes)
{
    atomic_fetch_add_explicit(&r->h->lost_records, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&r->h->lost_bytes, bytes, memory_order_relaxed);
}

static inline struct frame *frame_at(const struct ht_ring *r, uint64_t pos)
{
    return (struct frame *)(r->data + (pos & r->mask));
}

bool ht_ring_reserve(struct ht_ring *r, uint16_t type, uint32_t len, struct ht_ring_res *res)
{
    struct ht_ring_hdr *h = r->h;
    if (len > HT_RING_MAX_REC(r->size) || type == TYPE_PAD) {
        ht_ring_count_lost(r, len);
        return false;
    }
    uint32_t frame = (uint32_t)sizeof(struct frame) + round8(len);
    uint64_t pos = atomic_load_explicit(&h->head, memory_order_relaxed), total;
    uint32_t pad;
    do {
        uint64_t off = pos & r->mask;
        pad = off + frame > r->size ? (uint32_t)(r->size - off) : 0;
        total = (uint64_t)pad + frame;
        if (pos + total - atomic_load_explicit(&h->tail, memory_order_acquire) > r->size) {
            ht_ring_count_lost(r, len);
            return false;
        }
        /* seq_cst: ordered against the consumer publishing wake_at and
         * then reading head (ht_ring_nap). */
    } while (!atomic_compare_exchange_weak_explicit(&h->head, &pos, pos + total,
                                                    memory_order_seq_cst, memory_order_relaxed));
    if (pad) {
        struct frame *pf = frame_at(r, pos);
        pf->type = TYPE_PAD;
        atomic_store_explicit(&pf->state, ST_COMMITTED | (pad - (uint32_t)sizeof(struct frame)),
                              memory_order_release);
        pos += pad;
    }
    struct frame *f = frame_at(r, pos);
    f->type = type;
    f->pad = 0;
    atomic_store_explicit(&f->state, ST_RESERVED | len, memory_order_relaxed);
    res->payload = f + 1;
    res->pos = pos;
    res->start = pos - pad;
    res->end = res->start + total;
    return true;
}

void ht_ring_commit(struct ht_ring *r, const struct ht_ring_res *res)
{
    struct frame *f = frame_at(r, res->pos);
    uint32_t len = atomic_load_explicit(&f->state, memory_order_relaxed) & ST_LEN_MASK;
    atomic_store_explicit(&f->state, ST_COMMITTED | len, memory_order_release);
    /* Ordered against the consumer publishing wake_at and then reading
     * the state (ht_ring_nap_begin): one of the two sees the other. */
    atomic_thread_fence(memory_order_seq_cst);
    /* Wake the consumer if its high-water position lies in this record. */
    uint64_t at = atomic_load_explicit(&r->h->wake_at, memory_order_seq_cst);
    if (at && res->start < at && res->end >= at) {
        atomic_fetch_add(&r->h->wake_seq, 1);
        syscall(SYS_futex, &r->h->wake_seq, FUTEX_WAKE, 1, NULL, NULL, 0L);
    }
}

/* ---- consumer ---- */

int ht_ring_peek(struct ht_ring *r, struct ht_ring_rec *rec)
{
    /* Bounded: a producer that writes nothing but padding must not keep
     * the consumer here (one pad per lap is all a real one writes). */
    for (int pads = 0; pads < 64; pads++) {
        uint64_t head = atomic_load_explicit(&r->h->head, memory_order_acquire);
        if (head == r->tail)
            return HT_RING_EMPTY;
        if (head - r->tail > r->size)
            return -EBADMSG;
        uint64_t off = r->tail & r->mask;
        if (off + sizeof(struct frame) > r->size)
            return -EBADMSG;
        struct frame *f = frame_at(r, r->tail);
        uint32_t st = atomic_load_explicit(&f->state, memory_order_acquire);
        if (!(st & ST_COMMITTED))
            return HT_RING_PENDING;
        uint32_t len = st & ST_LEN_MASK;
        uint64_t frame = sizeof(struct frame) + (uint64_t)round8(len);
        if ((st & ST_RESERVED) || off + frame > r->size || frame > head - r->tail)
            return -EBADMSG;
        r->cur = frame;
        if (f->type == TYPE_PAD) {
            ht_ring_consume(r);
            continue;
        }
        rec->type = f->type;
        rec->len = len;
        rec->payload = f + 1;
        return HT_RING_READY;
    }
    return HT_RING_PENDING;
}

/* Zero the frame at tail (its length already checked by peek, or given)
 * and give its room back. */
static void release(struct ht_ring *r, uint64_t frame)
{
    memset(r->data + (r->tail & r->mask), 0, frame);
    r->tail += frame;
    atomic_store_explicit(&r->h->tail, r->tail, memory_order_release);
}

void ht_ring_consume(struct ht_ring *r)
{
    /* The length peek checked, not the mapping's (it may have changed). */
    release(r, r->cur);
    r->cur = 0;
}

bool ht_ring_skip_pending(struct ht_ring *r)
{
    uint64_t head = atomic_load_explicit(&r->h->head, memory_order_acquire);
    struct frame *f = frame_at(r, r->tail);
    uint32_t st = atomic_load_explicit(&f->state, memory_order_acquire);
    uint64_t frame = sizeof(struct frame) + (uint64_t)round8(st & ST_LEN_MASK);
    if (head == r->tail || !(st & ST_RESERVED) || (st & ST_COMMITTED) ||
        (r->tail & r->mask) + frame > r->size || frame > head - r->tail)
        return false;
    atomic_fetch_add_explicit(&r->h->lost_records, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&r->h->lost_bytes, st & ST_LEN_MASK, memory_order_relaxed);
    release(r, frame);
    return true;
}

bool ht_ring_nap_begin(struct ht_ring *r, uint32_t **word, uint32_t *val)
{
    struct ht_ring_hdr *h = r->h;
    *val = atomic_load(&h->wake_seq);
    *word = (uint32_t *)&h->wake_seq;
    /* A record reserved but not committed holds back all behind it: wake
     * on its commit (its room starts at tail), not at high water. */
    struct frame *f = frame_at(r, r->tail);
    bool blocked = atomic_load_explicit(&h->head, memory_order_acquire) != r->tail &&
                   !(atomic_load_explicit(&f->state, memory_order_acquire) & ST_COMMITTED);
    atomic_store_explicit(&h->wake_at, r->tail + (blocked ? 1 : r->high), memory_order_seq_cst);
    uint64_t queued = atomic_load_explicit(&h->head, memory_order_seq_cst) - r->tail;
    if (blocked)
        return !(atomic_load_explicit(&f->state, memory_order_seq_cst) & ST_COMMITTED);
    return queued < r->high;
}

void ht_ring_nap_end(struct ht_ring *r)
{
    atomic_store_explicit(&r->h->wake_at, 0, memory_order_relaxed);
}

void ht_ring_nap(struct ht_ring *r, long ns)
{
    uint32_t *word, val;
    if (ht_ring_nap_begin(r, &word, &val)) {
        struct timespec ts = { ns / 1000000000L, ns % 1000000000L };
        syscall(SYS_futex, word, FUTEX_WAIT, val, &ts, NULL, 0L);
    }
    ht_ring_nap_end(r);
}

void ht_ring_set_consumer(struct ht_ring *r, int32_t pid)
{
    atomic_store_explicit(&r->h->consumer, pid, memory_order_release);
}

int32_t ht_ring_consumer(const struct ht_ring *r)
{
    return atomic_load_explicit(&r->h->consumer, memory_order_acquire);
}

void ht_ring_heartbeat(struct ht_ring *r, uint64_t mono_ns)
{
    atomic_store_explicit(&r->h->beat, mono_ns, memory_order_relaxed);
}

uint64_t ht_ring_last_beat(const struct ht_ring *r)
{
    return atomic_load_explicit(&r->h->beat, memory_order_relaxed);
}

void ht_ring_add_lost(struct ht_ring *r, uint64_t records, uint64_t bytes)
{
    atomic_fetch_add_explicit(&r->h->lost_records, records, memory_order_relaxed);
    atomic_fetch_add_explicit(&r->h->lost_bytes, bytes, memory_order_relaxed);
}

void ht_ring_counts(const struct ht_ring *r, struct ht_ring_counts *c)
{
    c->lost_records = atomic_load_explicit(&r->h->lost_records, memory_order_relaxed);
    c->lost_bytes = atomic_load_explicit(&r->h->lost_bytes, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&r->h->head, memory_order_relaxed);
    c->queued = head - r->tail <= r->size ? head - r->tail : r->size;
    c->pid = r->h->pid;
}
