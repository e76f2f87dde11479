/*
 * exchange.c - allocation and body excerpts of struct ht_exchange.
 * An exchange has one owner at a time (see exchange.h); the pool of idle
 * exchanges is shared by every thread, lock-free.
 */
#include "core/exchange.h"
#include "core/fields.h"
#include "core/multipart.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

static const char *const gap_names[HT_GAP_COUNT] = {
    "no_request",
    "request_incomplete",
    "no_response",
    "response_incomplete",
    "desync",
    "capture_gap",
    "process_exit",
    "body_not_captured",
    "joined_mid_connection",
    "capture_ended",
    "ambiguous_framing",
    "tls_not_decrypted",
    "stream_reset",
};

const char *ht_gap_name(uint32_t bit)
{
    for (unsigned i = 0; i < HT_GAP_COUNT; i++)
        if (bit == 1u << i)
            return gap_names[i];
    return NULL;
}

/* ---- the pool ----
 *
 * A Treiber stack of idle exchanges: any thread pushes one (CAS on the
 * head); a thread that needs one takes the whole stack at once (exchange
 * with NULL), keeps up to HT_EXCHANGE_CACHE_MAX in its own cache and pushes
 * the rest back. Push and take-all are free of ABA; a single pop is not,
 * which is why there is none. pool_depth is the stack's depth at push time
 * (an estimate of its size: it is only a bound). */

static _Atomic(struct ht_exchange *) pool_head;
static _Thread_local struct ht_exchange *cache
    __attribute__((tls_model("initial-exec")));
static _Thread_local bool cache_registered __attribute__((tls_model("initial-exec")));
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void push_chain(struct ht_exchange *first, struct ht_exchange *last, uint32_t n)
{
    struct ht_exchange *head = atomic_load_explicit(&pool_head, memory_order_relaxed);
    do {
        last->pool_next = head;
        uint32_t below = head ? atomic_load_explicit(&head->pool_depth, memory_order_relaxed) : 0;
        atomic_store_explicit(&first->pool_depth, below + n, memory_order_relaxed);
    } while (!atomic_compare_exchange_weak_explicit(&pool_head, &head, first,
                                                    memory_order_release,
                                                    memory_order_relaxed));
}

/* An idle exchange (what it owned already given back) to the pool, or to
 * malloc when the pool is full. */
static void pool_put(struct ht_exchange *ex)
{
    struct ht_exchange *head = atomic_load_explicit(&pool_head, memory_order_relaxed);
    if (head && atomic_load_explicit(&head->pool_depth, memory_order_relaxed) >=
                    HT_EXCHANGE_POOL_MAX) {
        free(ex);
        return;
    }
    push_chain(ex, ex, 1);
}

/* A thread ends: its cache goes back to the pool. Cached exchanges are
 * idle: their pointers are stale, nothing of theirs is freed again. */
static void cache_give_back(void *unused)
{
    (void)unused;
    while (cache) {
        struct ht_exchange *ex = cache;
        cache = ex->pool_next;
        pool_put(ex);
    }
}

static void cache_key_create(void)
{
    if (pthread_key_create(&cache_key, cache_give_back))
        cache_key = (pthread_key_t)-1;
}

/* Refill this thread's cache from the pool; false when the pool is empty. */
static bool cache_refill(void)
{
    struct ht_exchange *all = atomic_exchange_explicit(&pool_head, NULL, memory_order_acquire);
    if (!all)
        return false;
    if (!cache_registered) {
        /* Ask to be told when this thread exits, so that its cache is not
         * lost with it (thread-per-connection servers end threads often). */
        cache_registered = true;
        pthread_once(&cache_once, cache_key_create);
        if (cache_key != (pthread_key_t)-1)
            pthread_setspecific(cache_key, &cache);
    }
    struct ht_exchange *last = all;
    unsigned n = 1;
    while (n < HT_EXCHANGE_CACHE_MAX && last->pool_next) {
        last = last->pool_next;
        n++;
    }
    struct ht_exchange *rest = last->pool_next;
    last->pool_next = NULL;
    cache = all;
    if (rest) {
        struct ht_exchange *tail = rest;
        uint32_t k = 1;
        while (tail->pool_next) {
            tail = tail->pool_next;
            k++;
        }
        push_chain(rest, tail, k);
    }
    return true;
}

struct ht_exchange *ht_exchange_new(void)
{
    struct ht_exchange *ex;
    if (cache || cache_refill()) {
        ex = cache;
        cache = ex->pool_next;
    } else if (!(ex = malloc(sizeof(*ex)))) {
        return NULL;
    }
    memset(ex, 0, offsetof(struct ht_exchange, inl_used));
    ex->inl_used = 0;
    return ex;
}

static bool is_inline(const struct ht_exchange *ex, const void *p)
{
    return (const uint8_t *)p >= ex->inl && (const uint8_t *)p < ex->inl + sizeof(ex->inl);
}

void *ht_exchange_alloc(struct ht_exchange *ex, size_t n)
{
    /* Aligned for any struct kept there (field lists, the TLS session). */
    size_t at = (ex->inl_used + 7) & ~(size_t)7;
    if (at <= sizeof(ex->inl) && n <= sizeof(ex->inl) - at) {
        void *p = ex->inl + at;
        ex->inl_used = (uint32_t)(at + n);
        return p;
    }
    return malloc(n ? n : 1);
}

void ht_exchange_release(struct ht_exchange *ex, void *p)
{
    if (p && !is_inline(ex, p))
        free(p);
}

void ht_exchange_free(struct ht_exchange *ex)
{
    if (!ex)
        return;
    ht_exchange_release(ex, ex->req_head);
    ht_exchange_release(ex, ex->resp_head);
    ht_exchange_release(ex, ex->req_fields);
    ht_exchange_release(ex, ex->resp_fields);
    ht_exchange_release(ex, ex->req_body.file);
    ht_exchange_release(ex, ex->resp_body.file);
    ht_exchange_release(ex, ex->req_body.buf);
    ht_exchange_release(ex, ex->resp_body.buf);
    ht_exchange_release(ex, ex->tls);
    /* What the modules allocate in it (digest, multipart, gRPC, frames). */
    ht_exchange_release(ex, ex->req_body.digest);
    ht_exchange_release(ex, ex->resp_body.digest);
    ht_exchange_release(ex, ex->req_body.mp);
    ht_exchange_release(ex, ex->resp_body.mp);
    ht_exchange_release(ex, ex->grpc);
    ht_exchange_release(ex, ex->ws);
    pool_put(ex);
}

_Static_assert(sizeof(((struct ht_digest *)0)->state) >= sizeof(crypto_hash_sha256_state),
               "ht_digest.state holds a crypto_hash_sha256_state");

bool ht_body_digest_start(struct ht_exchange *ex, struct ht_body *b)
{
    if (b->digest)
        return true;
    b->digest = ht_exchange_alloc(ex, sizeof(*b->digest));
    if (!b->digest)
        return false;
    b->digest->broken = b->size > 0;    /* bytes before it were not hashed */
    crypto_hash_sha256_init((crypto_hash_sha256_state *)(void *)b->digest->state);
    return true;
}

bool ht_body_digest_hex(struct ht_body *b, char hex[65])
{
    uint8_t sum[crypto_hash_sha256_BYTES];
    if (!b->digest || b->digest->broken)
        return false;
    crypto_hash_sha256_final((crypto_hash_sha256_state *)(void *)b->digest->state, sum);
    sodium_bin2hex(hex, 65, sum, sizeof(sum));
    b->digest->broken = true;           /* final once */
    return true;
}

void ht_body_unseen(struct ht_body *b)
{
    if (b->digest)
        b->digest->broken = true;
    if (b->mp)
        b->mp->broken = true;
}

bool ht_body_multipart_start(struct ht_exchange *ex, struct ht_body *b, const uint8_t *ct,
                             size_t n)
{
    char boundary[HT_MP_BOUNDARY + 1];
    if (b->mp || !ht_mp_boundary(ct, n, boundary))
        return true;
    b->mp = ht_exchange_alloc(ex, sizeof(*b->mp));
    if (!b->mp)
        return false;
    ht_mp_init(b->mp, boundary);
    b->mp->broken = b->size > 0;        /* bytes before it were not read */
    return true;
}

bool ht_body_wants_all(const struct ht_body *b)
{
    return (b->digest && !b->digest->broken) || (b->mp && !b->mp->broken && !b->mp->ended);
}

int ht_body_append(struct ht_exchange *ex, struct ht_body *b, const uint8_t *data, size_t len,
                   uint32_t cap)
{
    b->size += len;
    if (b->digest && !b->digest->broken && len)
        crypto_hash_sha256_update((crypto_hash_sha256_state *)(void *)b->digest->state, data, len);
    if (b->mp && !b->mp->broken)
        ht_mp_feed(b->mp, data, len);
    if (b->len >= cap || b->truncated) {
        b->truncated = b->truncated || len > 0;
        return 0;
    }
    size_t room = cap - b->len;
    size_t take = len < room ? len : room;
    if (b->len + take > b->cap) {
        /* Grow geometrically, never past the cap. */
        size_t ncap = b->cap ? b->cap : 256;
        while (ncap < b->len + take)
            ncap *= 2;
        if (ncap > cap)
            ncap = cap;
        uint8_t *nb = ht_exchange_alloc(ex, ncap);
        if (!nb) {
            b->truncated = true;
            return -ENOMEM;
        }
        if (b->len)
            memcpy(nb, b->buf, b->len);
        ht_exchange_release(ex, b->buf);
        b->buf = nb;
        b->cap = (uint32_t)ncap;
    }
    memcpy(b->buf + b->len, data, take);
    b->len += (uint32_t)take;
    if (take < len)
        b->truncated = true;
    return 0;
}

int ht_head_copy(struct ht_exchange *ex, uint8_t **dst, uint32_t *dst_len, const uint8_t *src,
                 uint32_t len)
{
    uint8_t *h = ht_exchange_alloc(ex, len);
    if (!h)
        return -ENOMEM;
    memcpy(h, src, len);
    ht_exchange_release(ex, *dst);
    *dst = h;
    *dst_len = len;
    return 0;
}

void ht_head_fields(struct ht_exchange *ex, struct ht_field_at **dst, uint32_t *dst_n,
                    const struct ht_field_at *fields, uint32_t n)
{
    ht_exchange_release(ex, *dst);
    *dst = NULL;
    *dst_n = 0;
    if (!fields)
        return;
    struct ht_field_at *f = ht_exchange_alloc(ex, n ? n * sizeof(*f) : 1);
    if (!f)
        return;
    memcpy(f, fields, n * sizeof(*f));
    *dst = f;
    *dst_n = n;
}

int ht_exchange_set_tls(struct ht_exchange *ex, const struct ht_tls *t)
{
    struct ht_tls *copy = ht_exchange_alloc(ex, sizeof(*copy));
    if (!copy)
        return -ENOMEM;
    *copy = *t;
    ex->tls = copy;
    return 0;
}
