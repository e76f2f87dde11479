/*
 * sketch.c - the log-bucketed quantile sketch (see sketch.h for the bound).
 * No allocation, no global state.
 */
#include <math.h>
#include <string.h>

#include "cli/sketch.h"

static double gamma_(void)
{
    return (1 + HT_SKETCH_ALPHA) / (1 - HT_SKETCH_ALPHA);
}

void ht_sketch_init(struct ht_sketch *s)
{
    memset(s, 0, sizeof(*s));
}

void ht_sketch_add(struct ht_sketch *s, double v)
{
    if (v < 0 || v != v)
        v = 0;
    if (s->count == 0 || v < s->min)
        s->min = v;
    if (s->count == 0 || v > s->max)
        s->max = v;
    s->count++;
    if (v < 1) {
        s->low++;
        return;
    }
    double i = ceil(log(v) / log(gamma_()));
    s->bucket[i < HT_SKETCH_BUCKETS - 1 ? (int)i : HT_SKETCH_BUCKETS - 1]++;
}

static double clamp(const struct ht_sketch *s, double v)
{
    return v < s->min ? s->min : v > s->max ? s->max : v;
}

double ht_sketch_quantile(const struct ht_sketch *s, double q)
{
    if (s->count == 0)
        return 0;
    q = q < 0 ? 0 : q > 1 ? 1 : q;
    uint64_t rank = (uint64_t)ceil(q * (double)s->count);
    if (rank == 0)
        rank = 1;
    if (rank <= s->low)
        return s->min;
    uint64_t seen = s->low;
    double g = gamma_();
    for (int i = 0; i < HT_SKETCH_BUCKETS - 1; i++) {
        seen += s->bucket[i];
        if (seen >= rank)
            return clamp(s, 2 * pow(g, i) / (g + 1));
    }
    return s->max;                      /* the last bucket: past the range */
}
