/* fields.c - field lines of a kept head (fields.h). */
#include "core/fields.h"

#include <string.h>

static bool ows(uint8_t c) { return c == ' ' || c == '\t'; }

void ht_fields_line(const uint8_t *h, size_t n, size_t *pos, size_t *start, size_t *end)
{
    const uint8_t *lf = *pos < n ? memchr(h + *pos, '\n', n - *pos) : NULL;
    size_t e = lf ? (size_t)(lf - h) : n;
    *start = *pos < n ? *pos : n;
    *pos = lf ? e + 1 : n;
    if (e > *start && h[e - 1] == '\r')
        e--;
    *end = e;
}

size_t ht_fields_start(const uint8_t *h, size_t n)
{
    size_t pos = 0, s, e;
    ht_fields_line(h, n, &pos, &s, &e);
    return pos;
}

bool ht_fields_next(const uint8_t *h, size_t n, size_t *pos, struct ht_field *f)
{
    while (*pos < n) {
        size_t ls, le;
        ht_fields_line(h, n, pos, &ls, &le);
        if (le == ls)
            return false;
        if (ows(h[ls]))
            continue;                           /* continues nothing we keep */
        const uint8_t *colon = memchr(h + ls, ':', le - ls);
        if (!colon)
            continue;
        f->name = ls;
        f->name_len = (size_t)(colon - h) - ls;
        while (f->name_len && ows(h[ls + f->name_len - 1]))
            f->name_len--;
        f->value = (size_t)(colon - h) + 1;
        f->value_end = le;
        while (f->value < f->value_end && ows(h[f->value]))
            f->value++;
        while (f->value_end > f->value && ows(h[f->value_end - 1]))
            f->value_end--;
        f->fold_from = *pos;
        f->span_end = f->value_end;
        while (*pos < n && ows(h[*pos])) {
            size_t cs, ce;
            ht_fields_line(h, n, pos, &cs, &ce);
            while (ce > cs && ows(h[ce - 1]))
                ce--;
            if (ce > cs)
                f->span_end = ce;
        }
        f->fold_to = *pos;
        return true;
    }
    return false;
}

/* 32 bits are enough: heads are bounded by HTTPTAPE_MAX_HEADER (and
 * lengths are uint32_t in the exchange). */
static struct ht_field_at field_at(const struct ht_field *f)
{
    return (struct ht_field_at){ .name = (uint32_t)f->name, .name_len = (uint32_t)f->name_len,
                                 .value = (uint32_t)f->value, .value_end = (uint32_t)f->value_end,
                                 .fold_from = (uint32_t)f->fold_from,
                                 .fold_to = (uint32_t)f->fold_to,
                                 .span_end = (uint32_t)f->span_end };
}

const struct ht_field_at *ht_fields_walk_head(const uint8_t *h, size_t n,
                                              struct ht_fields_walk *w)
{
    struct ht_field f;
    if (!w->started) {
        w->pos = ht_fields_start(h, n);
        w->started = true;
    }
    if (!ht_fields_next(h, n, &w->pos, &f))
        return NULL;
    w->at = field_at(&f);
    return &w->at;
}

void ht_fields_list(const uint8_t *h, size_t n, struct ht_fields_list *l)
{
    size_t pos = ht_fields_start(h, n);
    struct ht_field f;
    l->n = 0;
    l->all = true;
    l->f = l->own;
    while (ht_fields_next(h, n, &pos, &f)) {
        if (l->n == HT_FIELDS_LIST_MAX) {
            l->all = false;
            return;
        }
        l->own[l->n++] = field_at(&f);
    }
}
