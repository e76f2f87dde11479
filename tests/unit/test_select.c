/*
 * test_select.c - cli/select.c: the selection flags tail, export and stats
 * share: their value syntaxes, the flag table, and matching records.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/select.h"
#include "tap.h"

static const char *rec_text =
    "{\"timestamp\":\"2026-11-22T00:31:02.518337212Z\","
    "\"http\":{\"request\":{\"method\":\"POST\",\"body\":{\"size\":17,"
    "\"content\":\"{\\\"item\\\":\\\"server\\\"}\"}},"
    "\"response\":{\"status_code\":503,\"body\":{\"size\":4,\"content\":\"AAEC/w==\","
    "\"encoding\":\"base64\"}}},"
    "\"url\":{\"path\":\"/api/items/42\"},"
    "\"httptape\":{\"type\":\"exchange\",\"duration_ns\":250000000}}";

static json_t *record(void)
{
    return json_loads(rec_text, 0, NULL);
}

/* Parses argv (after argv[0]) through ht_select_flag; the result of the last
 * flag, or 0 when one was not a selection flag. */
static int parse(struct ht_select *s, int argc, char **argv)
{
    int rc = 1;
    for (int i = 1; i < argc && rc == 1; i++)
        rc = ht_select_flag(s, argc, argv, &i, "test");
    return rc;
}

static void test_status(void)
{
    struct ht_select s;
    ht_select_init(&s);
    tap_ok(ht_select_parse_status(&s, "4xx,503") == 0, "status list '4xx,503' parses");
    json_t *r = record();
    tap_ok(ht_select_match(&s, r) == HT_SEL_EXCHANGE, "503 is in '4xx,503'");
    ht_select_init(&s);
    ht_select_parse_status(&s, "5XX");
    tap_ok(ht_select_match(&s, r) == HT_SEL_EXCHANGE, "503 is in class '5XX'");
    ht_select_init(&s);
    ht_select_parse_status(&s, "200,2xx,404");
    tap_ok(ht_select_match(&s, r) == HT_SEL_SKIP, "503 is not in '200,2xx,404'");
    const char *bad[] = { "", "5", "5x", "5xxx", "099", "50a", "4xx,", ",4xx", "x5x" };
    int refused = 0;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        refused += ht_select_parse_status(&s, bad[i]) == -EINVAL;
    tap_ok(refused == (int)(sizeof(bad) / sizeof(bad[0])), "bad status lists are refused (%d of %zu)",
           refused, sizeof(bad) / sizeof(bad[0]));
    json_decref(r);
}

static void test_duration(void)
{
    static const struct { const char *in; long long ns; } ok[] = {
        { "200ms", 200000000 }, { "1.5s", 1500000000 }, { "800us", 800000 },
        { "50ns", 50 }, { "0s", 0 }, { "0.25ms", 250000 },
    };
    int good = 0;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        long long ns = -1;
        if (ht_select_parse_duration(ok[i].in, &ns) == 0 && ns == ok[i].ns)
            good++;
        else
            tap_diag("'%s' gave %lld, want %lld", ok[i].in, ns, ok[i].ns);
    }
    tap_ok(good == (int)(sizeof(ok) / sizeof(ok[0])), "durations with ns/us/ms/s units");
    const char *bad[] = { "200", "ms", "-1ms", "2 ms", "2m", "1e30s", "" };
    int refused = 0;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        long long ns;
        refused += ht_select_parse_duration(bad[i], &ns) == -EINVAL;
    }
    tap_ok(refused == (int)(sizeof(bad) / sizeof(bad[0])),
           "a bare number, a negative, an unknown unit are refused");
}

static void test_flags_and_match(void)
{
    struct ht_select s;
    json_t *r = record();
    char *args[] = { "x", "--method", "get,post", "--path=/api/*", "--slower-than", "200ms",
                     "--grep", "server" };
    ht_select_init(&s);
    tap_ok(parse(&s, 8, args) == 1, "every filter flag, '--flag V' and '--flag=V'");
    tap_ok(ht_select_match(&s, r) == HT_SEL_EXCHANGE, "a record passing every filter matches");
    tap_ok(ht_select_filters(&s), "filters are reported as set");

    char *slow[] = { "x", "--slower-than", "250ms" };
    ht_select_init(&s);
    parse(&s, 3, slow);
    tap_ok(ht_select_match(&s, r) == HT_SEL_SKIP, "--slower-than is strict (250ms is not slower than 250ms)");

    char *path[] = { "x", "--path", "/api/users/*" };
    ht_select_init(&s);
    parse(&s, 3, path);
    tap_ok(ht_select_match(&s, r) == HT_SEL_SKIP, "--path rejects another path");

    char *meth[] = { "x", "--method", "PUT,DELETE" };
    ht_select_init(&s);
    parse(&s, 3, meth);
    tap_ok(ht_select_match(&s, r) == HT_SEL_SKIP, "--method rejects other methods");

    char *grep64[] = { "x", "--grep", "\x01\x02\xff" };
    ht_select_init(&s);
    parse(&s, 3, grep64);
    tap_ok(ht_select_match(&s, r) == HT_SEL_EXCHANGE, "--grep finds bytes in a base64 body");
    char *grepno[] = { "x", "--grep", "AAEC" };
    ht_select_init(&s);
    parse(&s, 3, grepno);
    tap_ok(ht_select_match(&s, r) == HT_SEL_SKIP, "--grep does not search base64 text itself");

    char *unknown[] = { "x", "--json" };
    ht_select_init(&s);
    tap_ok(parse(&s, 2, unknown) == 0, "a flag that is not a selection flag is left alone");
    char *novalue[] = { "x", "--status" };
    tap_ok(parse(&s, 2, novalue) == -EINVAL, "a filter flag without its value is an error");
    json_decref(r);
}

static void test_kinds(void)
{
    struct ht_select s;
    json_t *stats = json_loads("{\"httptape\":{\"type\":\"stats\"}}", 0, NULL);
    json_t *other = json_loads("{\"httptape\":{\"type\":\"start\"}}", 0, NULL);
    json_t *bare = json_loads("{\"url\":{\"path\":\"/\"}}", 0, NULL);
    json_t *arr = json_loads("[1]", 0, NULL);
    ht_select_init(&s);
    tap_ok(ht_select_match(&s, stats) == HT_SEL_SKIP, "statistics records are skipped by default");
    char *on[] = { "x", "--stats" }, *off[] = { "x", "--no-stats" };
    parse(&s, 2, on);
    tap_ok(ht_select_match(&s, stats) == HT_SEL_STATS, "--stats selects them");
    parse(&s, 2, off);
    tap_ok(ht_select_match(&s, stats) == HT_SEL_SKIP, "--no-stats after --stats skips them again");
    tap_ok(ht_select_match(&s, other) == HT_SEL_OTHER, "other record types pass without filters");
    tap_ok(ht_select_match(&s, bare) == HT_SEL_EXCHANGE, "a record without httptape.type is an exchange");
    tap_ok(ht_select_match(&s, arr) == HT_SEL_SKIP, "a non-object is skipped");
    ht_select_parse_status(&s, "2xx");
    tap_ok(ht_select_match(&s, other) == HT_SEL_SKIP, "other record types are skipped under a filter");
    tap_ok(ht_select_match(&s, bare) == HT_SEL_SKIP, "an exchange without a status fails --status");
    json_decref(stats);
    json_decref(other);
    json_decref(bare);
    json_decref(arr);
}

static void test_files(void)
{
    char dir[] = "/tmp/test_select.XXXXXX";
    if (!mkdtemp(dir)) {
        tap_ok(0, "mkdtemp");
        return;
    }
    char p[64];
    const char *names[] = { "b.jsonl", "a.jsonl", "c.txt" };
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
        fclose(fopen(p, "w"));
    }
    struct ht_select s;
    ht_select_init(&s);
    snprintf(p, sizeof(p), "%s/*.jsonl", dir);
    int rc = ht_select_add_file(&s, p, "test");
    tap_ok(rc == 0 && s.n_files == 2 && strstr(s.files[0], "/a.jsonl") &&
           strstr(s.files[1], "/b.jsonl"), "a glob adds its matches, sorted");
    tap_ok(ht_select_add_file(&s, "-", "test") == 0 && !strcmp(s.files[2], "-"), "'-' is kept");
    tap_ok(ht_select_add_file(&s, "/nonexistent/file", "test") == 0 && s.n_files == 4,
           "a plain missing path is kept (opening it says what is wrong)");
    snprintf(p, sizeof(p), "%s/*.none", dir);
    tap_ok(ht_select_add_file(&s, p, "test") == -ENOENT, "a glob matching nothing is an error");
    ht_select_free(&s);
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

int main(void)
{
    test_status();
    test_duration();
    test_flags_and_match();
    test_kinds();
    test_files();
    return tap_done();
}
