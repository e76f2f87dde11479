/*
 * test_exchange.c - memory of an exchange: heads and bodies larger than
 * its inline space come out intact, exchanges freed on another thread
 * (the writer) are reused without malloc, and the pool of idle exchanges
 * stays bounded, also when threads that held a cache of them exit.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/exchange.h"
#include "tap.h"

#define N 200

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed + i * 7);
}

static void test_sizes(void)
{
    static uint8_t big[3 * HT_EXCHANGE_INLINE], small[100], body[4096];
    fill(big, sizeof(big), 1);
    fill(small, sizeof(small), 2);
    fill(body, sizeof(body), 3);

    struct ht_exchange *ex = ht_exchange_new();
    int rc = ht_head_copy(ex, &ex->req_head, &ex->req_head_len, small, sizeof(small));
    rc |= ht_head_copy(ex, &ex->resp_head, &ex->resp_head_len, big, sizeof(big));
    /* The body grows from the inline space into malloc'd memory. */
    for (size_t off = 0; off < sizeof(body); off += 100)
        rc |= ht_body_append(ex, &ex->resp_body, body + off,
                             sizeof(body) - off < 100 ? sizeof(body) - off : 100, 4096);
    tap_ok(rc == 0, "exchange: heads and a body are copied (rc %d)", rc);
    tap_ok(ex->req_head_len == sizeof(small) && !memcmp(ex->req_head, small, sizeof(small)),
           "exchange: a small head is intact");
    tap_ok(ex->resp_head_len == sizeof(big) && !memcmp(ex->resp_head, big, sizeof(big)),
           "exchange: a head larger than the inline space is intact");
    tap_ok(ex->resp_body.len == sizeof(body) && !ex->resp_body.truncated &&
               !memcmp(ex->resp_body.buf, body, sizeof(body)),
           "exchange: a body that outgrew the inline space is intact (%u bytes)",
           ex->resp_body.len);
    /* Replacing a head (redaction does) keeps the new one. */
    rc = ht_head_copy(ex, &ex->resp_head, &ex->resp_head_len, small, 10);
    tap_ok(rc == 0 && ex->resp_head_len == 10 && !memcmp(ex->resp_head, small, 10),
           "exchange: a replaced head holds the new bytes");
    ht_exchange_free(ex);

    ex = ht_exchange_new();
    tap_ok(ex && !ex->req_head && !ex->resp_body.buf && !ex->resp_body.size && !ex->gaps &&
               !ex->redacted.done,
           "exchange: a recycled exchange starts zeroed");
    ht_exchange_free(ex);
}

static struct ht_exchange *batch[N];

static void *free_batch(void *arg)
{
    (void)arg;
    for (int i = 0; i < N; i++)
        ht_exchange_free(batch[i]);
    return NULL;
}

static void test_cross_thread_reuse(void)
{
    for (int i = 0; i < N; i++)
        batch[i] = ht_exchange_new();
    struct ht_exchange *was[N];
    memcpy(was, batch, sizeof(was));
    pthread_t t;
    pthread_create(&t, NULL, free_batch, NULL);
    pthread_join(t, NULL);

    int reused = 0;
    for (int i = 0; i < N; i++) {
        batch[i] = ht_exchange_new();
        for (int k = 0; k < N; k++)
            reused += batch[i] == was[k];
    }
    tap_ok(reused == N, "exchange: %d of %d exchanges freed on another thread were reused", reused,
           N);
    for (int i = 0; i < N; i++)
        ht_exchange_free(batch[i]);
}

static void test_pool_bounded(void)
{
    enum { MANY = 2000 };
    static struct ht_exchange *many[MANY];
    size_t before = mallinfo2().uordblks;
    for (int i = 0; i < MANY; i++)
        many[i] = ht_exchange_new();
    for (int i = 0; i < MANY; i++)
        ht_exchange_free(many[i]);
    size_t kept = mallinfo2().uordblks - before;
    size_t bound = (HT_EXCHANGE_POOL_MAX + HT_EXCHANGE_CACHE_MAX) * (sizeof(struct ht_exchange) + 64);
    tap_ok(kept <= bound, "exchange: %zu bytes kept after freeing %d exchanges (bound %zu)", kept,
           MANY, bound);
}

static void *one_exchange(void *arg)
{
    (void)arg;
    static uint8_t head[2 * HT_EXCHANGE_INLINE];      /* one malloc'd head */
    struct ht_exchange *ex = ht_exchange_new();        /* fills this thread's cache */
    ht_head_copy(ex, &ex->req_head, &ex->req_head_len, head, sizeof(head));
    ht_exchange_free(ex);
    return NULL;
}

static void test_thread_exit(void)
{
    /* Each thread takes a cache from the pool; when it exits the cache must
     * come back, or the pool drains into dead threads and every later
     * exchange is a fresh malloc. */
    enum { K = 200 };
    static struct ht_exchange *k[K];
    for (int i = 0; i < K; i++)
        k[i] = ht_exchange_new();
    for (int i = 0; i < K; i++)
        ht_exchange_free(k[i]);
    size_t before = mallinfo2().uordblks;
    for (int i = 0; i < 100; i++) {
        pthread_t t;
        pthread_create(&t, NULL, one_exchange, NULL);
        pthread_join(t, NULL);
    }
    for (int i = 0; i < K; i++)
        k[i] = ht_exchange_new();
    size_t grown = mallinfo2().uordblks - before;
    tap_ok(grown < 4 * sizeof(struct ht_exchange),
           "exchange: after 100 threads used the pool and exited, %d exchanges took %zu new "
           "bytes", K, grown);
    for (int i = 0; i < K; i++)
        ht_exchange_free(k[i]);
}

int main(void)
{
    test_sizes();
    test_cross_thread_reuse();
    test_pool_bounded();
    test_thread_exit();
    return tap_done();
}
