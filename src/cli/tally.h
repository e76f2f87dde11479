/*
 * tally.h - the counts `httptape stats` keeps over exchange records, in
 * memory that does not grow with the log: totals, per status class, per
 * method + path template (at most max_routes, the rest under "other"), a
 * latency sketch (sketch.h) and the N slowest exchanges (a bounded heap).
 *
 * Path templates fold the segments that are ids: all digits, a UUID, or
 * 16 or more hex digits become "{id}" (/users/42/orders/9f8e... ->
 * /users/{id}/orders/{id}). Not thread-safe; one struct per report.
 */
#ifndef HT_CLI_TALLY_H
#define HT_CLI_TALLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cli/sketch.h"

#define HT_TALLY_PATH_MAX 200       /* template bytes kept */

struct ht_tally_row {
    uint64_t requests, errors, req_bytes, resp_bytes;
    uint64_t timed, dur_sum, dur_max;   /* ns, over exchanges with a duration */
};

struct ht_tally_route {
    char *key;                      /* "METHOD /template", NULL: empty slot */
    struct ht_tally_row row;
};

struct ht_tally_slow {
    uint64_t duration_ns;
    int status;                     /* 0: none */
    char timestamp[40], method[24], path[HT_TALLY_PATH_MAX + 1];
};

struct ht_tally {
    struct ht_tally_row total;
    uint64_t errors_5xx, incomplete;
    struct ht_tally_row classes[7]; /* 1xx..5xx, other codes, no response */
    struct ht_sketch latency;
    struct ht_tally_route *routes;  /* open addressing, cap slots */
    size_t cap, n_routes, max_routes;
    struct ht_tally_row other;      /* routes past max_routes */
    struct ht_tally_slow *slow;     /* min-heap on duration, top entries */
    size_t n_slow, max_slow;
};

/* 0 or -ENOMEM. max_routes >= 1; max_slow may be 0. */
int ht_tally_init(struct ht_tally *t, size_t max_routes, size_t max_slow);
void ht_tally_free(struct ht_tally *t);

/* Counts one exchange record (borrowed). 0 or -ENOMEM. */
int ht_tally_add(struct ht_tally *t, json_t *rec);

/* The template of a path into out (HT_TALLY_PATH_MAX + 1 bytes). */
void ht_tally_template(const char *path, char *out);

/* The slowest first, sorted in place (the heap is gone after this). */
void ht_tally_sort_slow(struct ht_tally *t);

/* Whether an exchange is an error: a 5xx, or incomplete. */
bool ht_tally_is_error(json_t *rec);

#endif
