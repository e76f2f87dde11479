/*
 * select.h - which records of a log a command looks at: the files it reads
 * and the filters tail, export and stats share (--status, --path, --method,
 * --slower-than, --grep, --stats/--no-stats).
 *
 * Owns the flag table for those options, parsing their values, expanding
 * file arguments (a quoted glob such as 'logs/log-?.jsonl'), and matching one
 * parsed record. Commands look flags up with ht_select_flag() before their
 * own, so every command spells and documents them the same way.
 * Not thread-safe; one struct ht_select per command run.
 */
#ifndef HT_CLI_SELECT_H
#define HT_CLI_SELECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define HT_SELECT_MAX_METHODS 16

struct ht_select {
    /* filters; an unset one lets every exchange through */
    bool has_status;
    uint8_t status[1000 / 8];       /* bit per code 0..999 */
    const char *path_glob;          /* fnmatch(3), '*' also crosses '/' */
    const char *methods[HT_SELECT_MAX_METHODS];
    size_t n_methods;               /* compared case-insensitively */
    long long slower_than_ns;       /* -1: unset; else duration_ns > this */
    const char *grep;               /* substring of a request or response body */
    bool stats;                     /* statistics records are selected too */

    /* files, in the order given (a glob's matches sorted); "-" is stdin */
    char **files;
    size_t n_files;
};

/* What a record is, as ht_select_match sees it. */
enum ht_select_kind {
    HT_SEL_SKIP,        /* an exchange (or other record) the filters reject */
    HT_SEL_EXCHANGE,    /* an exchange record the filters accept */
    HT_SEL_OTHER,       /* another record type, accepted (no filter is set) */
    HT_SEL_STATS,       /* a statistics record, and .stats is set */
};

/* The flags' lines for a command's --help. */
extern const char ht_select_help[];

void ht_select_init(struct ht_select *s);
void ht_select_free(struct ht_select *s);

/*
 * If argv[*i] is one of the selection flags ("--status 5xx" or
 * "--status=5xx"), parses it (and its value, advancing *i past it) into s.
 * Returns 1 when it took the flag, 0 when the flag is not one of ours, or
 * -EINVAL when its value is bad (the message, naming `prog`, already on
 * stderr). Values point into argv, which must outlive s.
 */
int ht_select_flag(struct ht_select *s, int argc, char **argv, int *i, const char *prog);

/* A command's own options: handles argv[*i] (advancing *i past a value);
 * 0, or 2 after printing a usage error. */
typedef int (*ht_select_opt_fn)(void *ctx, int argc, char **argv, int *i);

/*
 * The argument loop every selecting command shares: file arguments (also
 * "-", and everything after "--") go to ht_select_add_file, selection flags
 * to ht_select_flag, other options to opt. No FILE is an error unless *help.
 * Returns 0, or 2 after a usage error (the message and `usage` printed).
 */
int ht_select_args(struct ht_select *s, int argc, char **argv, const char *prog,
                   const char *usage, ht_select_opt_fn opt, void *ctx, const bool *help);

/* Prints "PROG: " fmt (with arg) and the usage line on stderr; returns 2. */
int ht_usage_error(const char *prog, const char *usage, const char *fmt, const char *arg);

/* Parsers behind the flags, for tests. 0 or -EINVAL (no message). */
int ht_select_parse_status(struct ht_select *s, const char *spec);
int ht_select_parse_duration(const char *spec, long long *ns);
int ht_select_parse_methods(struct ht_select *s, const char *list);

/*
 * Adds a file argument: itself when it exists, is "-" or has no glob
 * characters; otherwise the paths glob(3) finds for it, sorted (none found:
 * -ENOENT and a message naming `prog`). 0, -ENOENT or -ENOMEM.
 */
int ht_select_add_file(struct ht_select *s, const char *arg, const char *prog);

/* Whether any exchange filter is set (tail prints headers differently). */
bool ht_select_filters(const struct ht_select *s);

/* Classifies one parsed record (NULL or a non-object: HT_SEL_SKIP). */
enum ht_select_kind ht_select_match(const struct ht_select *s, json_t *rec);

/* Looks up a dotted path ("http.request.method") through nested objects;
 * a borrowed reference or NULL. */
json_t *ht_json_path(json_t *v, const char *path);

/* Whether the record is a statistics record (.httptape.type "stats"). */
bool ht_record_is_stats(json_t *rec);

/* Decodes standard base64 (padding optional, no whitespace) into out, which
 * has room for n * 3 / 4 + 3 bytes. Returns the length, or -1 if invalid. */
long ht_base64_decode(const char *s, size_t n, unsigned char *out);

#endif
