/*
 * export.h - `httptape export`'s output formats (HAR, curl, OTLP/JSON) and
 * the record helpers they share.
 *
 * Each format writes as records come: begin() once, entry() per selected
 * exchange, end() once; none keeps an entry after writing it, so memory
 * does not grow with the log. Single-threaded; one struct ht_export per run.
 */
#ifndef HT_CLI_EXPORT_H
#define HT_CLI_EXPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

struct ht_export;

struct ht_export_format {
    const char *name;
    int (*begin)(struct ht_export *x);
    int (*entry)(struct ht_export *x, json_t *rec);   /* 0 or -errno */
    int (*end)(struct ht_export *x);
};

struct ht_export {
    FILE *out;
    const char *prog;               /* for warnings on stderr */
    const struct ht_export_format *fmt;
    long long entries;              /* written so far */
    long long warnings;             /* records a warning was given for */
    /* OTLP: the resource the open batch belongs to, and its size */
    char *batch_key;
    long long batch_n;
};

extern const struct ht_export_format ht_export_har, ht_export_curl, ht_export_otlp;

/* The request's absolute URL (scheme://host[:port]/path[?query]); malloc'd,
 * NULL without memory. The host is the Host field's, else server.address,
 * else the local address, else "localhost". */
char *ht_export_url(json_t *rec);

/* The first value of a request ("request") or response field, or NULL. */
const char *ht_export_header(json_t *rec, const char *dir, const char *name);

/* .timestamp as nanoseconds since the epoch; false if it is not RFC 3339 UTC. */
bool ht_export_time_ns(json_t *rec, uint64_t *ns);

/* Writes a JSON value compactly; -EIO when the stream failed. */
int ht_export_dump(struct ht_export *x, json_t *v);

#endif
