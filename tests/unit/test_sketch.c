/*
 * test_sketch.c - cli/sketch.c (the streaming quantile sketch: every
 * quantile within HT_SKETCH_ALPHA of the exact nearest-rank one) and
 * cli/tally.c (path templates, the route bound, the slowest heap).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/sketch.h"
#include "cli/tally.h"
#include "tap.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The exact nearest-rank quantile of sorted v[0..n). */
static double exact(const double *v, size_t n, double q)
{
    size_t rank = (size_t)ceil(q * (double)n);
    return v[rank ? rank - 1 : 0];
}

/* Every quantile of a series within the bound; the worst error in *worst. */
static int within_bound(double *v, size_t n, double *worst)
{
    struct ht_sketch s;
    ht_sketch_init(&s);
    for (size_t i = 0; i < n; i++)
        ht_sketch_add(&s, v[i]);
    qsort(v, n, sizeof(*v), cmp_double);
    *worst = 0;
    for (double q = 0.01; q <= 1.0; q += 0.01) {
        double want = exact(v, n, q), got = ht_sketch_quantile(&s, q);
        double err = want > 0 ? fabs(got - want) / want : fabs(got);
        if (err > *worst)
            *worst = err;
    }
    return *worst <= HT_SKETCH_ALPHA + 1e-9;
}

static void test_uniform(void)
{
    size_t n = 100000;
    double *v = malloc(n * sizeof(*v)), worst;
    for (size_t i = 0; i < n; i++)
        v[i] = (double)(i + 1) * 1000;          /* 1 us .. 100 ms */
    int ok = within_bound(v, n, &worst);
    tap_ok(ok, "1..100000 us: every percentile within 1%% (worst %.4f%%)",
           worst * 100);
    free(v);
}

static void test_lognormal(void)
{
    size_t n = 200000;
    double *v = malloc(n * sizeof(*v)), worst;
    srand(7);
    for (size_t i = 0; i < n; i++) {
        double u1 = (rand() + 1.0) / (RAND_MAX + 2.0), u2 = (rand() + 1.0) / (RAND_MAX + 2.0);
        double z = sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
        v[i] = exp(14 + 2 * z);                 /* a latency-like spread, ns to minutes */
    }
    int ok = within_bound(v, n, &worst);
    tap_ok(ok, "log-normal latencies: within 1%% (worst %.4f%%)",
           worst * 100);
    free(v);
}

static void test_edges(void)
{
    struct ht_sketch s;
    ht_sketch_init(&s);
    tap_ok(ht_sketch_quantile(&s, 0.5) == 0, "an empty sketch answers 0");
    ht_sketch_add(&s, 0);
    ht_sketch_add(&s, 0);
    ht_sketch_add(&s, 1e18);                    /* past the buckets' range */
    tap_ok(ht_sketch_quantile(&s, 0.5) == 0 && ht_sketch_quantile(&s, 1) == 1e18,
           "zeros and values past the range are answered by the exact min and max");
    ht_sketch_init(&s);
    ht_sketch_add(&s, 4242);
    tap_ok(ht_sketch_quantile(&s, 0.01) == 4242 && ht_sketch_quantile(&s, 0.99) == 4242,
           "one value: every quantile is it (clamped to min/max)");
    tap_ok(sizeof(struct ht_sketch) < 16 * 1024, "the sketch is %zu bytes, fixed",
           sizeof(struct ht_sketch));
}

static void test_templates(void)
{
    static const struct { const char *in, *want; } cases[] = {
        { "/users/42/orders/7", "/users/{id}/orders/{id}" },
        { "/u/550e8400-e29b-41d4-a716-446655440000", "/u/{id}" },
        { "/blob/9f86d081884c7d659a2feaa0c55ad015", "/blob/{id}" },
        { "/blob/deadbeef", "/blob/deadbeef" },     /* short hex: a word */
        { "/v2/items", "/v2/items" },
        { "/", "/" },
        { "/a//1/", "/a//{id}/" },
    };
    int good = 0;
    char out[HT_TALLY_PATH_MAX + 1];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ht_tally_template(cases[i].in, out);
        if (!strcmp(out, cases[i].want))
            good++;
        else
            tap_diag("'%s' gave '%s', want '%s'", cases[i].in, out, cases[i].want);
    }
    tap_ok(good == (int)(sizeof(cases) / sizeof(cases[0])),
           "numbers, UUIDs and long hex ids fold to {id}");
    char longp[1000];
    memset(longp, 'g', sizeof(longp) - 1);       /* not hex: not an id */
    longp[0] = '/';
    longp[sizeof(longp) - 1] = 0;
    ht_tally_template(longp, out);
    tap_ok(strlen(out) == HT_TALLY_PATH_MAX, "a long path is cut at %d bytes", HT_TALLY_PATH_MAX);
}

static json_t *rec(const char *method, const char *path, int status, long long dur)
{
    return json_pack("{s:{s:{s:s},s:{s:i}},s:{s:s},s:{s:I}}", "http", "request", "method",
                     method, "response", "status_code", status, "url", "path", path,
                     "httptape", "duration_ns", (json_int_t)dur);
}

static void test_tally(void)
{
    struct ht_tally t;
    ht_tally_init(&t, 3, 4);
    for (int i = 0; i < 100; i++) {
        char path[32];
        snprintf(path, sizeof(path), "/r%d/%d", i % 5, i);
        json_t *r = rec("GET", path, i % 10 ? 200 : 503, (i * 37) % 100 * 1000);
        ht_tally_add(&t, r);
        json_decref(r);
    }
    uint64_t routed = t.other.requests;
    for (size_t i = 0; i < t.cap; i++)
        routed += t.routes[i].key ? t.routes[i].row.requests : 0;
    tap_ok(t.n_routes == 3 && t.other.requests == 40 && routed == 100,
           "routes stop at the bound; the rest count under other (%zu, %llu)", t.n_routes,
           (unsigned long long)t.other.requests);
    tap_ok(t.total.errors == 10 && t.errors_5xx == 10 && t.classes[4].requests == 10,
           "5xx counted as errors and by class");
    ht_tally_sort_slow(&t);
    tap_ok(t.n_slow == 4 && t.slow[0].duration_ns == 99000 && t.slow[1].duration_ns == 98000 &&
           t.slow[3].duration_ns == 96000, "the 4 slowest, slowest first");
    ht_tally_free(&t);
}

int main(void)
{
    test_uniform();
    test_lognormal();
    test_edges();
    test_templates();
    test_tally();
    return tap_done();
}
