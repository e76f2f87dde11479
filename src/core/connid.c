/*
 * connid.c - connection ids unique per capture session (connid.h).
 *
 * The tag is drawn lazily and published with one compare-and-swap: two
 * threads racing on the first call both see the winner's tag. Lock-free
 * and allocation-free, so the preload hooks may call it.
 */
#include "core/connid.h"

#include <stdatomic.h>
#include <stdio.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* 0: not drawn yet; else (1 << 32) | the 32-bit tag. */
static _Atomic uint64_t session;

static uint32_t draw(void)
{
    uint32_t v = 0;
    if (getrandom(&v, sizeof(v), GRND_NONBLOCK) == (ssize_t)sizeof(v))
        return v;
    /* No entropy yet (early boot): the clock and pid still differ per session. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ ((uint64_t)getpid() << 40);
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (uint32_t)x;
}

uint32_t ht_connid_session(void)
{
    uint64_t v = atomic_load_explicit(&session, memory_order_relaxed);
    if (!v) {
        uint64_t want = (1ULL << 32) | draw();
        if (atomic_compare_exchange_strong(&session, &v, want))
            v = want;                           /* else v holds the winner's */
    }
    return (uint32_t)v;
}

int ht_connid_format(char *out, size_t outlen, int pid, uint64_t n)
{
    return snprintf(out, outlen, "%d-%08x-%llu", pid, (unsigned)ht_connid_session(),
                    (unsigned long long)n);
}
