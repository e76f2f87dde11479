/*
 * tally.c - what `httptape stats` counts (see tally.h). Memory is fixed
 * once the route table is full: max_routes keys, a sketch, the top-N heap.
 * Single-threaded.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/select.h"
#include "cli/tally.h"

int ht_tally_init(struct ht_tally *t, size_t max_routes, size_t max_slow)
{
    memset(t, 0, sizeof(*t));
    ht_sketch_init(&t->latency);
    t->max_routes = max_routes ? max_routes : 1;
    for (t->cap = 16; t->cap < 2 * t->max_routes; t->cap *= 2)
        ;                           /* at most half full: short probes */
    t->max_slow = max_slow;
    t->routes = calloc(t->cap, sizeof(*t->routes));
    t->slow = calloc(max_slow ? max_slow : 1, sizeof(*t->slow));
    if (!t->routes || !t->slow) {
        ht_tally_free(t);
        return -ENOMEM;
    }
    return 0;
}

void ht_tally_free(struct ht_tally *t)
{
    for (size_t i = 0; t->routes && i < t->cap; i++)
        free(t->routes[i].key);
    free(t->routes);
    free(t->slow);
    t->routes = NULL;
    t->slow = NULL;
}

/* ---- path templates ---------------------------------------------------- */

static bool all_of(const char *s, size_t n, const char *set)
{
    for (size_t i = 0; i < n; i++)
        if (!strchr(set, s[i]) || !s[i])
            return false;
    return n > 0;
}

static bool is_uuid(const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdefABCDEF";
    if (n != 36)
        return false;
    for (size_t i = 0; i < n; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !strchr(hex, s[i]))
            return false;
    }
    return true;
}

static bool is_id(const char *s, size_t n)
{
    return all_of(s, n, "0123456789") || is_uuid(s, n) ||
           (n >= 16 && all_of(s, n, "0123456789abcdefABCDEF"));
}

void ht_tally_template(const char *path, char *out)
{
    size_t k = 0;
    for (const char *p = path; *p && k < HT_TALLY_PATH_MAX;) {
        if (*p == '/') {
            out[k++] = *p++;
            continue;
        }
        size_t n = strcspn(p, "/");
        const char *seg = is_id(p, n) ? "{id}" : p;
        size_t m = is_id(p, n) ? 4 : n;
        if (m > HT_TALLY_PATH_MAX - k)
            m = HT_TALLY_PATH_MAX - k;
        memcpy(out + k, seg, m);
        k += m;
        p += n;
    }
    out[k] = 0;
}

/* ---- rows and routes ------------------------------------------------------- */

static uint64_t uint_at(json_t *rec, const char *path)
{
    json_t *v = ht_json_path(rec, path);
    return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

bool ht_tally_is_error(json_t *rec)
{
    json_int_t status = json_integer_value(ht_json_path(rec, "http.response.status_code"));
    return status >= 500 || json_is_false(ht_json_path(rec, "httptape.complete"));
}

static void count_row(struct ht_tally_row *r, json_t *rec, bool err, json_t *dur)
{
    r->requests++;
    r->errors += err;
    r->req_bytes += uint_at(rec, "http.request.body.size");
    r->resp_bytes += uint_at(rec, "http.response.body.size");
    if (json_is_integer(dur) && json_integer_value(dur) >= 0) {
        uint64_t d = (uint64_t)json_integer_value(dur);
        r->timed++;
        r->dur_sum += d;
        if (d > r->dur_max)
            r->dur_max = d;
    }
}

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603u;      /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

/* The route's row: found, added while there is room, else "other". */
static struct ht_tally_row *route(struct ht_tally *t, const char *key)
{
    size_t i = hash(key) & (t->cap - 1);
    for (; t->routes[i].key; i = (i + 1) & (t->cap - 1))
        if (!strcmp(t->routes[i].key, key))
            return &t->routes[i].row;
    if (t->n_routes >= t->max_routes || !(t->routes[i].key = strdup(key)))
        return &t->other;                   /* no memory: counted, not lost */
    t->n_routes++;
    return &t->routes[i].row;
}

/* ---- the slowest ------------------------------------------------------------- */

static void swap(struct ht_tally_slow *a, struct ht_tally_slow *b)
{
    struct ht_tally_slow tmp = *a;
    *a = *b;
    *b = tmp;
}

static void sift_down(struct ht_tally_slow *h, size_t n, size_t i)
{
    for (;;) {
        size_t m = i, l = 2 * i + 1, r = l + 1;
        if (l < n && h[l].duration_ns < h[m].duration_ns)
            m = l;
        if (r < n && h[r].duration_ns < h[m].duration_ns)
            m = r;
        if (m == i)
            return;
        swap(&h[i], &h[m]);
        i = m;
    }
}

static void sift_up(struct ht_tally_slow *h, size_t i)
{
    for (; i > 0 && h[(i - 1) / 2].duration_ns > h[i].duration_ns; i = (i - 1) / 2)
        swap(&h[i], &h[(i - 1) / 2]);
}

static void copy_str(char *dst, size_t cap, json_t *v)
{
    const char *s = json_string_value(v);
    snprintf(dst, cap, "%s", s ? s : "-");
}

static void note_slow(struct ht_tally *t, json_t *rec, uint64_t d)
{
    if (!t->max_slow || (t->n_slow == t->max_slow && d <= t->slow[0].duration_ns))
        return;
    struct ht_tally_slow s = { .duration_ns = d };
    s.status = (int)json_integer_value(ht_json_path(rec, "http.response.status_code"));
    copy_str(s.timestamp, sizeof(s.timestamp), json_object_get(rec, "timestamp"));
    copy_str(s.method, sizeof(s.method), ht_json_path(rec, "http.request.method"));
    copy_str(s.path, sizeof(s.path), ht_json_path(rec, "url.path"));
    if (t->n_slow < t->max_slow) {
        t->slow[t->n_slow] = s;
        sift_up(t->slow, t->n_slow++);
    } else {
        t->slow[0] = s;                     /* replaces the fastest kept */
        sift_down(t->slow, t->n_slow, 0);
    }
}

void ht_tally_sort_slow(struct ht_tally *t)
{
    for (size_t n = t->n_slow; n > 1; n--) {
        swap(&t->slow[0], &t->slow[n - 1]); /* the fastest goes last */
        sift_down(t->slow, n - 1, 0);
    }
}

/* ---- one record ------------------------------------------------------------- */

static int class_of(json_t *rec)
{
    json_t *v = ht_json_path(rec, "http.response.status_code");
    if (!json_is_integer(v))
        return 6;
    json_int_t c = json_integer_value(v);
    return c >= 100 && c < 600 ? (int)(c / 100) - 1 : 5;
}

int ht_tally_add(struct ht_tally *t, json_t *rec)
{
    bool err = ht_tally_is_error(rec);
    json_t *dur = ht_json_path(rec, "httptape.duration_ns");
    const char *method = json_string_value(ht_json_path(rec, "http.request.method"));
    const char *path = json_string_value(ht_json_path(rec, "url.path"));
    char key[24 + HT_TALLY_PATH_MAX + 2];
    size_t mlen = method ? strnlen(method, 23) : 1;
    memcpy(key, method ? method : "-", mlen);
    key[mlen] = ' ';
    ht_tally_template(path ? path : "-", key + mlen + 1);

    count_row(&t->total, rec, err, dur);
    count_row(&t->classes[class_of(rec)], rec, err, dur);
    count_row(route(t, key), rec, err, dur);
    t->errors_5xx += json_integer_value(ht_json_path(rec, "http.response.status_code")) >= 500;
    t->incomplete += json_is_false(ht_json_path(rec, "httptape.complete"));
    if (json_is_integer(dur) && json_integer_value(dur) >= 0) {
        ht_sketch_add(&t->latency, (double)json_integer_value(dur));
        note_slow(t, rec, (uint64_t)json_integer_value(dur));
    }
    return 0;
}
