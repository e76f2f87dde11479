/*
 * test_cases.c - golden connection cases (tests/cases/NAME/).
 *
 * Each case holds the raw bytes of one connection's two directions
 * ("client", "server") and "expect.jsonl": one JSON object per expected
 * event, listing the fields that matter. An expected object matches an
 * event when every key it names has an equal value in the event (objects
 * compared recursively the same way); a null value means "absent".
 *
 * Each case is replayed whole, then with the client and the server stream
 * cut at every offset, then byte by byte; every run must print exactly the
 * same events as the whole run, and the whole run must match expect.jsonl.
 */
#include <dirent.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/conn.h"
#include "core/event.h"
#include "core/replay.h"
#include "tap.h"

#ifndef CASES_DIR
#define CASES_DIR "tests/cases"
#endif

static int read_all(const char *path, struct ht_buf *b)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
        ht_buf_append(b, tmp, n);
    fclose(f);
    return 0;
}

static void emit(void *ctx, struct ht_exchange *ex)
{
    ht_event_format(ex, ctx);
    ht_exchange_free(ex);
}

/* Replay a case with the given cuts; the events land in out. */
static void replay(const struct ht_buf *cli, const struct ht_buf *srv,
                   const struct ht_cuts *cc, const struct ht_cuts *sc, struct ht_buf *out)
{
    static const struct ht_conn_cfg cfg = { .max_body = 4096, .max_header = 65536, .mode = "replay" };
    struct ht_endpoints ep = { .peer_port = -1, .local_port = -1 };
    struct ht_clock now = { .wall_ns = 1700000000000000000LL, .mono_ns = 1 };
    struct ht_conn c;
    /* Exactly-sized copies so ASan sees reads past either end. */
    uint8_t *cb = malloc(cli->len + 1), *sb = malloc(srv->len + 1);
    if (cli->len)
        memcpy(cb, cli->p, cli->len);
    if (srv->len)
        memcpy(sb, srv->p, srv->len);
    ht_buf_reset(out);
    ht_conn_init(&c, &cfg, &ep, "case-1", 0, emit, out);
    ht_replay(&c, cb, cli->len, sb, srv->len, &now, cc, sc);
    free(cb);
    free(sb);
}

/* Does actual contain everything expected says (null = absent)? */
static bool matches(json_t *want, json_t *got, struct ht_buf *where)
{
    if (!json_is_object(want))
        return got && json_equal(want, got);
    if (!json_is_object(got))
        return false;
    const char *k;
    json_t *v;
    json_object_foreach(want, k, v) {
        json_t *g = json_object_get(got, k);
        if (json_is_null(v) ? g != NULL : !matches(v, g, where)) {
            /* Prepend ".k": the path is built innermost first. */
            struct ht_buf path = { 0 };
            ht_buf_append(&path, ".", 1);
            ht_buf_append(&path, k, strlen(k));
            ht_buf_append(&path, where->p, where->len);
            ht_buf_free(where);
            *where = path;
            return false;
        }
    }
    return true;
}

static void check_expected(const char *name, const char *dir, const struct ht_buf *events)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/expect.jsonl", dir);
    FILE *f = fopen(path, "r");
    if (!tap_ok(f != NULL, "case %s: has expect.jsonl", name))
        return;
    char *copy = strndup(events->p ? events->p : "", events->len);
    char *save = NULL, *line = strtok_r(copy, "\n", &save);
    char want_line[1 << 16];
    int idx = 0, bad = 0;
    while (fgets(want_line, sizeof(want_line), f)) {
        json_error_t err;
        json_t *want = json_loads(want_line, 0, &err);
        json_t *got = line ? json_loads(line, JSON_ALLOW_NUL, &err) : NULL;
        struct ht_buf where = { 0 };
        if (!got || !matches(want, got, &where)) {
            tap_diag("event %d differs at %.*s", idx, (int)where.len, where.p ? where.p : "(missing)");
            tap_diag("want: %s", want_line);
            tap_diag("got:  %s", line ? line : "(no event)");
            bad++;
        }
        ht_buf_free(&where);
        json_decref(want);
        json_decref(got);
        line = strtok_r(NULL, "\n", &save);
        idx++;
    }
    for (; line; line = strtok_r(NULL, "\n", &save), bad++)
        tap_diag("unexpected event: %s", line);
    fclose(f);
    free(copy);
    tap_ok(bad == 0, "case %s: events match expect.jsonl", name);
}

/* Replays cut every which way must all print what the whole run printed. */
static void check_splits(const char *name, const struct ht_buf *cli, const struct ht_buf *srv,
                         const struct ht_buf *whole)
{
    struct ht_buf out = { 0 };
    int bad = 0;
    for (size_t k = 1; k < cli->len && !bad; k++) {
        struct ht_cuts cc = { .split = k };
        replay(cli, srv, &cc, NULL, &out);
        if (out.len != whole->len || memcmp(out.p, whole->p, out.len)) {
            tap_diag("client cut at %zu:\n%.*s", k, (int)out.len, out.p);
            bad++;
        }
    }
    for (size_t k = 1; k < srv->len && !bad; k++) {
        struct ht_cuts sc = { .split = k };
        replay(cli, srv, NULL, &sc, &out);
        if (out.len != whole->len || memcmp(out.p, whole->p, out.len)) {
            tap_diag("server cut at %zu:\n%.*s", k, (int)out.len, out.p);
            bad++;
        }
    }
    tap_ok(bad == 0, "case %s: same events at every split point", name);
    struct ht_cuts one = { .step = 1 };
    replay(cli, srv, &one, &one, &out);
    tap_ok(out.len == whole->len && !memcmp(out.p, whole->p, out.len),
           "case %s: same events byte by byte", name);
    ht_buf_free(&out);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
    const char *root = argc > 1 ? argv[1] : CASES_DIR;
    struct dirent **ents;
    int n = scandir(root, &ents, NULL, by_name);
    if (!tap_ok(n > 2, "cases directory %s is readable and not empty", root))
        return tap_done();
    for (int i = 0; i < n; i++) {
        const char *name = ents[i]->d_name;
        char dir[512], path[600];
        struct ht_buf cli = { 0 }, srv = { 0 }, whole = { 0 };
        snprintf(dir, sizeof(dir), "%s/%s", root, name);
        snprintf(path, sizeof(path), "%s/client", dir);
        if (name[0] == '.' || read_all(path, &cli)) {
            free(ents[i]);
            continue;
        }
        snprintf(path, sizeof(path), "%s/server", dir);
        read_all(path, &srv);
        replay(&cli, &srv, NULL, NULL, &whole);
        check_expected(name, dir, &whole);
        check_splits(name, &cli, &srv, &whole);
        ht_buf_free(&cli);
        ht_buf_free(&srv);
        ht_buf_free(&whole);
        free(ents[i]);
    }
    free(ents);
    return tap_done();
}
