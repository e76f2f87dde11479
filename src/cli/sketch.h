/*
 * sketch.h - a streaming quantile sketch for latencies: a log-bucketed
 * histogram (the DDSketch idea) in fixed memory, ~13 KB, however many
 * values it is given.
 *
 * A value v > 0 goes to bucket i = ceil(log(v) / log(g)), g = (1 + a) /
 * (1 - a), the bucket of the values in (g^(i-1), g^i]; a quantile is
 * answered with 2 g^i / (g + 1), within a relative error a of every value
 * in that bucket, so of the true quantile: |estimate - x| <= a * x, with
 * a = HT_SKETCH_ALPHA (1%). Quantiles are nearest-rank: q of n values is
 * the ceil(q * n)-th smallest. Values from 1 to about 8e13 (22 hours in
 * ns) keep that bound; smaller ones (0) and larger ones are counted at
 * the ends and answered by the exact minimum and maximum, which the sketch
 * also keeps. Not thread-safe; a struct per series.
 */
#ifndef HT_CLI_SKETCH_H
#define HT_CLI_SKETCH_H

#include <stdint.h>

#define HT_SKETCH_ALPHA   0.01
#define HT_SKETCH_BUCKETS 1600

struct ht_sketch {
    uint64_t count;
    uint64_t low;                       /* values below 1 */
    uint64_t bucket[HT_SKETCH_BUCKETS]; /* the last also holds larger values */
    double min, max;
};

void ht_sketch_init(struct ht_sketch *s);

/* Adds one value (negative ones count as 0). */
void ht_sketch_add(struct ht_sketch *s, double v);

/* The q-quantile (0 <= q <= 1) of the values added; 0 when there are none. */
double ht_sketch_quantile(const struct ht_sketch *s, double q);

#endif
