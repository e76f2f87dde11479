/*
 * fields.h - the one reader of the field lines of a head httptape kept
 * (the event's headers, redaction): everyone who looks at a head's fields
 * after the parser framed it goes through ht_fields_next, so they agree
 * on every odd shape.
 *
 * The rules, as the parser frames: a line ends at LF, a CR before it is
 * not part of it; the first line is the start line; the empty line ends
 * the fields; a line that begins with SP or HTAB continues the field
 * before it (obs-fold, RFC 9112 5.2; right after the start line it
 * continues nothing and is passed over); a line without a colon is passed
 * over (the parser flagged both). A name loses the whitespace before its
 * colon ("Name :", flagged).
 *
 * No allocation, no state but *pos; thread-safe.
 */
#ifndef HT_FIELDS_H
#define HT_FIELDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ht_field {
    size_t name, name_len;          /* offsets into the head */
    size_t value, value_end;        /* the first line's value, trimmed */
    size_t fold_from, fold_to;      /* its continuation lines; equal when none */
    size_t span_end;                /* end of the value across them, trimmed */
};

/* Where the fields of head h (n bytes) start: after the start line. */
size_t ht_fields_start(const uint8_t *h, size_t n);

/* The next field from *pos (ht_fields_start at first). false at the empty
 * line that ends the head, or at its end. */
bool ht_fields_next(const uint8_t *h, size_t n, size_t *pos, struct ht_field *f);

/* One line from *pos: [*start, *end) without its CR LF; *pos moves past
 * it. For walking continuation lines. */
void ht_fields_line(const uint8_t *h, size_t n, size_t *pos, size_t *start, size_t *end);

/* A field as the parser found it while framing the head (ht_pev.fields),
 * the same offsets as struct ht_field in 32 bits (heads are bounded by
 * HTTPTAPE_MAX_HEADER): kept with the exchange, so the writer need not
 * read the head's lines again. */
struct ht_field_at {
    uint32_t name, name_len, value, value_end, fold_from, fold_to, span_end;
};

/* A head's fields found once, for every reader of the same bytes (the
 * writer redacts, then formats): f[0..n), the parser's own list (not
 * copied: it must outlive this one) or the head read into own. Heads with
 * more fields than fit are read with ht_fields_next instead (all false). */
#define HT_FIELDS_LIST_MAX 48
struct ht_fields_list {
    bool all;                       /* f[0..n) are all the head's fields */
    size_t n;
    const struct ht_field_at *f;
    struct ht_field_at own[HT_FIELDS_LIST_MAX];
};

/* Fill l from head h (n bytes); l->all false when it has too many. */
void ht_fields_list(const uint8_t *h, size_t n, struct ht_fields_list *l);

/* Make l the n fields the parser found (n <= HT_FIELDS_LIST_MAX): l points
 * at a, which must outlive it. */
static inline void ht_fields_list_from(const struct ht_field_at *a, size_t n,
                                       struct ht_fields_list *l)
{
    l->all = true;
    l->n = n;
    l->f = a;
}

/* Walking the fields of head h with a list found before (l may be NULL):
 * from l when it has them all, else read from h. Start with { 0 }; each
 * call gives the next field (in the list, or in w), NULL after the last.
 * A pointer, not a copy: most heads are walked from a list. */
struct ht_fields_walk { size_t i, pos; bool started; struct ht_field_at at; };
const struct ht_field_at *ht_fields_walk_head(const uint8_t *h, size_t n,
                                              struct ht_fields_walk *w);
static inline const struct ht_field_at *ht_fields_walk(const uint8_t *h, size_t n,
                                                       const struct ht_fields_list *l,
                                                       struct ht_fields_walk *w)
{
    if (l && l->all)
        return w->i < l->n ? &l->f[w->i++] : NULL;
    return ht_fields_walk_head(h, n, w);
}

#endif
