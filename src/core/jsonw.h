/*
 * jsonw.h - a small streaming JSON writer for log records: objects, arrays,
 * strings, integers and booleans appended to an ht_buf, RFC 8259 escaping,
 * no allocation beyond the buffer's own growth.
 *
 * Strings given to ht_jw_str must be valid UTF-8 (callers check with
 * ht_utf8_valid, or use ht_jw_str_bytes, which transcodes Latin-1).
 * Errors (out of memory) are sticky in jw->err; check once at the end.
 * Not thread-safe; one writer per buffer.
 */
#ifndef HT_JSONW_H
#define HT_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <string.h>

#include "core/buf.h"

#define HT_JW_DEPTH 16

struct ht_jw {
    struct ht_buf *b;
    int err;
    int depth;
    bool first[HT_JW_DEPTH];    /* no member written yet at this depth */
};

void ht_jw_put_slow(struct ht_jw *w, const void *p, size_t n);
char *ht_jw_room_slow(struct ht_jw *w, size_t n);
void ht_jw_raw_escaped(struct ht_jw *w, const uint8_t *s, size_t n);   /* valid UTF-8 */
/* The inside of a string from any bytes: UTF-8 escaped, else Latin-1. */
void ht_jw_raw_bytes(struct ht_jw *w, const uint8_t *s, size_t n);
void ht_jw_str_bytes(struct ht_jw *w, const char *key, const uint8_t *s, size_t n);
/* The decimal digits of v, no separator or key. */
void ht_jw_digits(struct ht_jw *w, uint64_t v);

/* The small operations are inline, always (gcc's -O2 heuristics kept some
 * out of line): most keys are literals, whose length the compiler then
 * knows, and a call costs more than most of these do. */
#define HT_JW_INLINE static inline __attribute__((always_inline))

HT_JW_INLINE void ht_jw_put(struct ht_jw *w, const void *p, size_t n)
{
    struct ht_buf *b = w->b;
    if (__builtin_expect(b->len + n <= b->cap, 1)) {
        memcpy(b->p + b->len, p, n);
        b->len += n;
    } else {
        ht_jw_put_slow(w, p, n);
    }
}

HT_JW_INLINE void ht_jw_putc(struct ht_jw *w, char c)
{
    struct ht_buf *b = w->b;
    if (__builtin_expect(b->len < b->cap, 1))
        b->p[b->len++] = c;
    else
        ht_jw_put_slow(w, &c, 1);
}

/* n bytes to write into at the end of the buffer, or NULL (out of memory:
 * w->err is set). Whatever is written there counts once ht_jw_wrote says
 * how much of it: a writer that knows its bound checks room once, not
 * byte by byte. */
HT_JW_INLINE char *ht_jw_room(struct ht_jw *w, size_t n)
{
    struct ht_buf *b = w->b;
    if (__builtin_expect(b->len + n <= b->cap, 1))
        return b->p + b->len;
    return ht_jw_room_slow(w, n);
}

HT_JW_INLINE void ht_jw_wrote(struct ht_jw *w, size_t n) { w->b->len += n; }

HT_JW_INLINE void ht_jw_init(struct ht_jw *w, struct ht_buf *b)
{
    w->b = b;
    w->err = 0;
    w->depth = 0;
    w->first[0] = true;
}

/* Comma and key before a member or element, and then tail (an opening
 * bracket or quote, or 0 for none): one check for room, then stores at
 * known offsets (a literal key's length is known here). Keys are our own
 * names or HTTP field names, which the parser allowed only as tokens:
 * nothing in them needs escaping. */
HT_JW_INLINE void ht_jw_key_then(struct ht_jw *w, const char *key, char tail)
{
    bool first = w->first[w->depth];
    w->first[w->depth] = false;
    size_t kn = key ? strlen(key) : 0;
    char *o = ht_jw_room(w, kn + 5);
    if (!o)
        return;
    char *start = o;
    *o = ',';
    o += !first;
    if (key) {
        o[0] = '"';
        memcpy(o + 1, key, kn);
        memcpy(o + 1 + kn, "\":", 2);
        o += kn + 3;
    }
    *o = tail;
    o += tail != 0;
    ht_jw_wrote(w, (size_t)(o - start));
}

HT_JW_INLINE void ht_jw_member(struct ht_jw *w, const char *key) { ht_jw_key_then(w, key, 0); }

/* The bracket c is written; a level deeper. */
HT_JW_INLINE void ht_jw_deeper(struct ht_jw *w)
{
    if (w->depth + 1 < HT_JW_DEPTH)
        w->first[++w->depth] = true;
    else
        w->err = -7;    /* -E2BIG: nesting deeper than any record we write */
}

HT_JW_INLINE void ht_jw_push(struct ht_jw *w, char c)
{
    ht_jw_putc(w, c);
    ht_jw_deeper(w);
}

HT_JW_INLINE void ht_jw_open(struct ht_jw *w, const char *key)
{
    if (w->depth > 0 || !w->first[0]) {
        ht_jw_key_then(w, key, '{');
        ht_jw_deeper(w);
        return;
    }
    w->first[0] = false;
    ht_jw_push(w, '{');
}

HT_JW_INLINE void ht_jw_open_array(struct ht_jw *w, const char *key)
{
    ht_jw_key_then(w, key, '[');
    ht_jw_deeper(w);
}

HT_JW_INLINE void ht_jw_close(struct ht_jw *w)
{
    ht_jw_putc(w, '}');
    if (w->depth > 0)
        w->depth--;
}

HT_JW_INLINE void ht_jw_close_array(struct ht_jw *w)
{
    ht_jw_putc(w, ']');
    if (w->depth > 0)
        w->depth--;
}

HT_JW_INLINE void ht_jw_begin_string(struct ht_jw *w, const char *key)
{
    ht_jw_key_then(w, key, '"');
}

HT_JW_INLINE void ht_jw_end_string(struct ht_jw *w) { ht_jw_putc(w, '"'); }

HT_JW_INLINE void ht_jw_str(struct ht_jw *w, const char *key, const char *s, size_t n)
{
    ht_jw_begin_string(w, key);
    ht_jw_raw_escaped(w, (const uint8_t *)s, n);
    ht_jw_end_string(w);
}

HT_JW_INLINE void ht_jw_cstr(struct ht_jw *w, const char *key, const char *s)
{
    ht_jw_str(w, key, s, strlen(s));
}

HT_JW_INLINE void ht_jw_u64(struct ht_jw *w, const char *key, uint64_t v)
{
    ht_jw_member(w, key);
    ht_jw_digits(w, v);
}

/* Negative only for a clock step backwards; written as it is, not hidden. */
HT_JW_INLINE void ht_jw_i64(struct ht_jw *w, const char *key, int64_t v)
{
    ht_jw_member(w, key);
    if (v < 0)
        ht_jw_putc(w, '-');
    ht_jw_digits(w, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v);
}

/* JSON text s (a literal, so its length is a constant) for members whose
 * shape is always the same, written as one piece, not key by key: it
 * brings its own commas and keys (they need no escaping), counts as a
 * member here, opens `opens` objects that then hold a member, and may
 * leave a string open for what follows. */
HT_JW_INLINE void ht_jw_literal(struct ht_jw *w, const char *s, int opens)
{
    w->first[w->depth] = false;
    ht_jw_put(w, s, strlen(s));
    for (int i = 0; i < opens; i++) {
        ht_jw_deeper(w);
        w->first[w->depth] = false;
    }
}

HT_JW_INLINE void ht_jw_bool(struct ht_jw *w, const char *key, bool v)
{
    ht_jw_member(w, key);
    ht_jw_put(w, v ? "true" : "false", v ? 4 : 5);
}

#endif
