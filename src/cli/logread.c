/*
 * logread.c - selected exchange records out of logs, a line at a time (see
 * logread.h).
 *
 * Owns: the line loop (getline: one buffer, as long as the longest line),
 * the selection of each record, and the simple follower stats -f uses: it
 * polls (tail -f's inotify and fingerprints are tail's own; a statistics
 * view that looks every 200 ms does not need them). Single-threaded.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/logread.h"

#define HT_LOGREAD_POLL_MS 200

/* One line (without its '\n'): parse, select, hand over. */
static int take_line(struct ht_logread *lr, const char *name, long long lineno,
                     const char *s, size_t n)
{
    lr->lines++;
    if (n == 0)
        return 0;
    json_t *rec = json_loadb(s, n, JSON_ALLOW_NUL, NULL);
    int rc = 0;
    if (!json_is_object(rec)) {
        lr->bad_lines++;
        fprintf(stderr, "%s: %s:%lld: not a JSON object\n", lr->prog, name, lineno);
    } else if (ht_select_match(lr->sel, rec) == HT_SEL_EXCHANGE) {
        lr->selected++;
        rc = lr->fn(lr->ctx, rec);
    }
    json_decref(rec);
    return rc;
}

/* All the lines of f; a last line without '\n' counts. */
static int read_stream(struct ht_logread *lr, FILE *f, const char *name)
{
    char *line = NULL;
    size_t cap = 0;
    long long lineno = 0;
    ssize_t n;
    int rc = 0;
    while (!rc && (n = getline(&line, &cap, f)) >= 0) {
        if (n > 0 && line[n - 1] == '\n')
            n--;
        rc = take_line(lr, name, ++lineno, line, (size_t)n);
    }
    if (!rc && ferror(f))
        rc = -EIO;
    free(line);
    return rc;
}

int ht_logread_files(struct ht_logread *lr)
{
    int status = 0;
    for (size_t i = 0; i < lr->sel->n_files; i++) {
        const char *path = lr->sel->files[i];
        bool is_stdin = !strcmp(path, "-");
        FILE *f = is_stdin ? stdin : fopen(path, "re");
        if (!f) {
            fprintf(stderr, "%s: cannot open '%s': %s\n", lr->prog, path, strerror(errno));
            status = 1;
            continue;
        }
        int rc = read_stream(lr, f, is_stdin ? "stdin" : path);
        if (!is_stdin)
            fclose(f);
        if (rc == -EIO) {
            fprintf(stderr, "%s: reading '%s': %s\n", lr->prog, path, strerror(EIO));
            status = 1;
        } else if (rc) {
            return rc;
        }
    }
    return status;
}

/* ---- following -------------------------------------------------------- */

/* A followed file: a line is held until its '\n' arrives. */
struct follow {
    const char *path, *prog;
    FILE *f;
    dev_t dev;
    ino_t ino;
    char *held;             /* the start of a line still being written */
    size_t held_n;
    long long lineno;
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fw_close(struct follow *fw)
{
    if (fw->f)
        fclose(fw->f);
    fw->f = NULL;
    fw->held_n = 0;
    fw->lineno = 0;
}

static void fw_open(struct follow *fw)
{
    struct stat st;
    fw_close(fw);
    fw->f = fopen(fw->path, "re");
    if (fw->f && fstat(fileno(fw->f), &st) == 0) {
        fw->dev = st.st_dev;
        fw->ino = st.st_ino;
    }
}

/* Joins a held partial line with what came after it. */
static int hold(struct follow *fw, const char *s, size_t n)
{
    char *b = realloc(fw->held, fw->held_n + n + 1);
    if (!b)
        return -ENOMEM;
    memcpy(b + fw->held_n, s, n);
    fw->held = b;
    fw->held_n += n;
    return 0;
}

/* Reads the complete lines appended since the last call. */
static int fw_drain(struct ht_logread *lr, struct follow *fw, char **line, size_t *cap)
{
    ssize_t n;
    int rc = 0;
    clearerr(fw->f);
    while (!rc && (n = getline(line, cap, fw->f)) >= 0) {
        bool whole = n > 0 && (*line)[n - 1] == '\n';
        rc = hold(fw, *line, (size_t)(n - whole));
        if (rc || !whole)
            break;
        rc = take_line(lr, fw->path, ++fw->lineno, fw->held, fw->held_n);
        fw->held_n = 0;
    }
    return rc;
}

/* Truncated (shorter than what we read) or replaced: start over. */
static void fw_check(struct follow *fw)
{
    struct stat st, fst;
    bool there = stat(fw->path, &st) == 0;
    if (!fw->f) {
        if (there)
            fw_open(fw);
        return;
    }
    if (there && (st.st_dev != fw->dev || st.st_ino != fw->ino)) {
        fprintf(stderr, "%s: %s: replaced; following the new file\n", fw->prog, fw->path);
        fw_open(fw);
    } else if (fstat(fileno(fw->f), &fst) == 0 && fst.st_size < ftello(fw->f)) {
        fprintf(stderr, "%s: %s: file truncated\n", fw->prog, fw->path);
        rewind(fw->f);
        fw->held_n = 0;
        fw->lineno = 0;
    }
}

int ht_logread_follow(struct ht_logread *lr, const char *path, int (*tick)(void *ctx),
                      unsigned interval_ms, volatile sig_atomic_t *stop)
{
    struct follow fw = { .path = path, .prog = lr->prog };
    char *line = NULL;
    size_t cap = 0;
    int rc = 0;
    long long next_tick = now_ms() + interval_ms;
    fw_open(&fw);
    if (!fw.f)
        fprintf(stderr, "%s: cannot open '%s': %s (will retry)\n", lr->prog, path, strerror(errno));
    while (!rc && !*stop) {
        if (fw.f)
            rc = fw_drain(lr, &fw, &line, &cap);
        if (!rc && interval_ms && tick && now_ms() >= next_tick) {
            rc = tick(lr->ctx);
            next_tick = now_ms() + interval_ms;
        }
        if (rc || *stop)
            break;
        struct timespec ts = { 0, HT_LOGREAD_POLL_MS * 1000000L };
        nanosleep(&ts, NULL);
        fw_check(&fw);
    }
    if (!rc && tick)
        rc = tick(lr->ctx);
    fw_close(&fw);
    free(fw.held);
    free(line);
    return rc;
}
