/*
 * logread.h - reading the selected exchange records of logs one line at a
 * time, for export and stats: memory stays that of the longest line, however
 * big the log.
 *
 * Owns: opening each file of a selection in turn (or standard input),
 * splitting lines, parsing each with jansson, warning about lines that are
 * not JSON objects, and following one file as it grows (stats -f).
 * Single-threaded; one struct ht_logread per reading.
 */
#ifndef HT_CLI_LOGREAD_H
#define HT_CLI_LOGREAD_H

#include <signal.h>

#include <jansson.h>

#include "cli/select.h"

/* Called with each selected exchange record (borrowed: valid during the
 * call). Returns 0 to go on, or -errno to stop reading. */
typedef int (*ht_logread_fn)(void *ctx, json_t *rec);

struct ht_logread {
    const struct ht_select *sel;
    const char *prog;               /* names the warnings: "httptape export" */
    ht_logread_fn fn;
    void *ctx;
    long long lines, bad_lines, selected;   /* counted as they go by */
};

/*
 * Reads every file of lr->sel in order and calls lr->fn for each selected
 * exchange record. A file that cannot be opened is reported and skipped.
 * Returns 0, 1 if some file could not be read (the others were), or the
 * -errno lr->fn stopped with.
 */
int ht_logread_files(struct ht_logread *lr);

/*
 * Reads `path` from its start and then keeps reading what is appended
 * (looking every 200 ms), from the start again after a truncation and
 * following the path to a new file after rotation. Calls tick(ctx) every
 * interval_ms (0: never) and once more before returning. Returns when *stop
 * is set (0), or on an error (-errno, or what fn or tick returned).
 */
int ht_logread_follow(struct ht_logread *lr, const char *path, int (*tick)(void *ctx),
                      unsigned interval_ms, volatile sig_atomic_t *stop);

#endif
