/*
 * jsonw.c - streaming JSON writer (jsonw.h).
 *
 * Escaping copies runs of bytes that need none in one append; a 256-entry
 * table says which bytes do (", \ and the C0 controls). The scan for them
 * takes sixteen bytes at a time with SSE2 (every x86-64), else eight in a
 * word (swar.h).
 */
#include "core/jsonw.h"

#include <errno.h>
#include <string.h>

#include "core/swar.h"
#include "core/text.h"

/* 0: copy as is; otherwise the character after the backslash ('u' for
 * \u00XX). */
static const char esc[256] = {
    ['"'] = '"', ['\\'] = '\\', ['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't',
    [0x00] = 'u', [0x01] = 'u', [0x02] = 'u', [0x03] = 'u', [0x04] = 'u', [0x05] = 'u',
    [0x06] = 'u', [0x07] = 'u', [0x0b] = 'u', [0x0e] = 'u', [0x0f] = 'u', [0x10] = 'u',
    [0x11] = 'u', [0x12] = 'u', [0x13] = 'u', [0x14] = 'u', [0x15] = 'u', [0x16] = 'u',
    [0x17] = 'u', [0x18] = 'u', [0x19] = 'u', [0x1a] = 'u', [0x1b] = 'u', [0x1c] = 'u',
    [0x1d] = 'u', [0x1e] = 'u', [0x1f] = 'u',
};

/* Which bytes of v may need escaping: < 0x20, '"' or '\\' (swar.h). */
static inline uint64_t word_escapes(uint64_t v)
{
    return ht_swar_lt(v, 0x20) | ht_swar_eq(v, '"') | ht_swar_eq(v, '\\');
}

/* Bytes that stop the ASCII scan of ht_jw_str_bytes too: >= 0x80. */
static inline uint64_t word_high(uint64_t v) { return v & 0x8080808080808080ULL; }

/* Which bytes of v may need escaping, or stop the scan when stop_high. */
static inline uint64_t word_stops(uint64_t v, bool stop_high)
{
    return word_escapes(v) | (stop_high ? word_high(v) : 0);
}

/* From i, the first byte of s[0..n) that may need escaping (or stops the
 * scan), or n: eight bytes at a time in a word; the last few (of a string
 * of 8 or more) in the word that ends at s + n, its bytes before i shifted
 * out; a shorter string in two words of four that overlap. Never a byte
 * outside the string. */
static inline size_t next_special_short(const uint8_t *s, size_t n, size_t i, bool stop_high)
{
    for (; i + 8 <= n; i += 8) {
        uint64_t m = word_stops(ht_swar_load(s + i), stop_high);
        if (m)
            return i + ht_swar_first(m);
    }
    if (i == n)
        return n;
    if (n >= 8) {
        uint64_t m = word_stops(ht_swar_load(s + n - 8), stop_high) >> (8 * (i + 8 - n));
        return m ? i + ht_swar_first(m) : n;
    }
    if (i == 0 && n >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, s, 4);
        memcpy(&hi, s + n - 4, 4);
        if (!word_stops((uint64_t)hi << 32 | lo, stop_high))
            return n;
    }
    for (; i < n; i++)
        if (esc[s[i]] || (stop_high && s[i] >= 0x80))
            return i;
    return n;
}

#ifdef __SSE2__
#include <emmintrin.h>

/* Which of the 16 bytes at p may need escaping (bit i: byte i), as
 * word_escapes, and >= 0x80 too when stop_high. */
static inline unsigned block_escapes_v(__m128i v, bool stop_high)
{
    __m128i ctl = _mm_cmpeq_epi8(_mm_max_epu8(v, _mm_set1_epi8(0x1f)), _mm_set1_epi8(0x1f));
    __m128i q = _mm_cmpeq_epi8(v, _mm_set1_epi8('"'));
    __m128i bs = _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'));
    unsigned m = (unsigned)_mm_movemask_epi8(_mm_or_si128(ctl, _mm_or_si128(q, bs)));
    return stop_high ? m | (unsigned)_mm_movemask_epi8(v) : m;
}

static inline unsigned block_escapes(const uint8_t *p, bool stop_high)
{
    return block_escapes_v(_mm_loadu_si128((const __m128i *)(const void *)p), stop_high);
}

/* The same, sixteen bytes at a time; the last few (of a string of 16 or
 * more) in the block that ends at s + n, overlapping what was read before:
 * never a byte past the string, never a copy (a copy read back at once
 * stalls on store forwarding). */
static inline size_t next_special(const uint8_t *s, size_t n, size_t i, bool stop_high)
{
    if (n < 16)
        return next_special_short(s, n, i, stop_high);
    for (; i + 16 <= n; i += 16) {
        unsigned m = block_escapes(s + i, stop_high);
        if (m)
            return i + (size_t)__builtin_ctz(m);
    }
    if (i < n) {
        unsigned m = block_escapes(s + n - 16, stop_high) >> (16 - (n - i));
        return m ? i + (size_t)__builtin_ctz(m) : n;
    }
    return n;
}
#else
#define next_special next_special_short
#endif

/* A string of up to 32 bytes with nothing to escape (or stop at), copied
 * in two pieces that overlap and cover it (its first and last 4, 8 or 16
 * bytes; of a shorter one, its first, middle and last byte), read and
 * checked in the same registers: no scan loop, no memcpy call for the
 * usual short value ("tcp", "1.1"). false: not so, nothing written. */
static inline bool copy_plain_short(struct ht_jw *w, const uint8_t *s, size_t n, bool stop_high)
{
    if (n > 32)
        return false;
    char *o = ht_jw_room(w, 32);
    if (!o || n == 0)
        return o != NULL;
    if (n < 4) {
        uint8_t a = s[0], b = s[n / 2], c = s[n - 1];
        if (esc[a] | esc[b] | esc[c] || (stop_high && (a | b | c) >= 0x80))
            return false;
        o[0] = (char)a;
        o[n / 2] = (char)b;
        o[n - 1] = (char)c;
        ht_jw_wrote(w, n);
        return true;
    }
#ifdef __SSE2__
    if (n >= 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(const void *)s);
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(s + n - 16));
        if (block_escapes_v(a, stop_high) | block_escapes_v(b, stop_high))
            return false;
        _mm_storeu_si128((__m128i *)(void *)o, a);
        _mm_storeu_si128((__m128i *)(void *)(o + n - 16), b);
        ht_jw_wrote(w, n);
        return true;
    }
#else
    if (n > 16)
        return false;
#endif
    if (n >= 8) {
        uint64_t a, b;
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        if (word_stops(a, stop_high) | word_stops(b, stop_high))
            return false;
        memcpy(o, &a, 8);
        memcpy(o + n - 8, &b, 8);
    } else {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        if (word_stops((uint64_t)a << 32 | b, stop_high))
            return false;
        memcpy(o, &a, 4);
        memcpy(o + n - 4, &b, 4);
    }
    ht_jw_wrote(w, n);
    return true;
}

/* Escape s[0..n) up to its first byte >= 0x80 when stop_high, else all of
 * it; returns where it stopped. */
static inline size_t escape_run(struct ht_jw *w, const uint8_t *s, size_t n, bool stop_high)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0, i = 0;
    while ((i = next_special(s, n, i, stop_high)) < n) {
        if (stop_high && s[i] >= 0x80)
            break;
        char e = esc[s[i]];
        if (e) {        /* always, but for the SWAR scan's false positives */
            ht_jw_put(w, s + run, i - run);
            if (e == 'u') {
                char u[6] = { '\\', 'u', '0', '0', hex[s[i] >> 4], hex[s[i] & 15] };
                ht_jw_put(w, u, 6);
            } else {
                char two[2] = { '\\', e };
                ht_jw_put(w, two, 2);
            }
            run = i + 1;
        }
        i++;
    }
    ht_jw_put(w, s + run, i - run);
    return i;
}

void ht_jw_raw_escaped(struct ht_jw *w, const uint8_t *s, size_t n)
{
    if (!copy_plain_short(w, s, n, false))
        escape_run(w, s, n, false);
}

/* Inline in both callers: a call more per string costs more than it
 * saves in code. */
static inline __attribute__((always_inline)) void raw_bytes(struct ht_jw *w, const uint8_t *s,
                                                            size_t n)
{
    if (copy_plain_short(w, s, n, true))
        return;
    /* One pass for the usual all-ASCII value; from the first other byte
     * (where a UTF-8 sequence must start), the rest is valid UTF-8 exactly
     * when the whole is, and an ASCII prefix reads the same as Latin-1. */
    size_t i = escape_run(w, s, n, true);
    if (i == n)
        return;
    if (ht_utf8_valid(s + i, n - i)) {
        escape_run(w, s + i, n - i, false);
        return;
    }
    /* Not UTF-8: read as ISO-8859-1, a byte at a time (rare: obs-text in
     * header values). */
    for (; i < n; i++) {
        char u[3];                  /* two UTF-8 bytes and a NUL */
        size_t k = ht_latin1_to_utf8(s + i, 1, u);
        escape_run(w, (const uint8_t *)u, k, false);
    }
}

void ht_jw_raw_bytes(struct ht_jw *w, const uint8_t *s, size_t n)
{
    raw_bytes(w, s, n);
}

void ht_jw_str_bytes(struct ht_jw *w, const char *key, const uint8_t *s, size_t n)
{
    ht_jw_begin_string(w, key);
    raw_bytes(w, s, n);
    ht_jw_end_string(w);
}

/* "00" to "99": numbers are written two digits at a time. */
static const char pairs[200] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

void ht_jw_digits(struct ht_jw *w, uint64_t v)
{
    static const uint64_t pow10[20] = {
        1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL,
        100000000ULL, 1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL,
        10000000000000ULL, 100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL,
        100000000000000000ULL, 1000000000000000000ULL, 10000000000000000000ULL,
    };
    char *o = ht_jw_room(w, 20);
    if (!o)
        return;
    if (v < 10) {                   /* sizes and indexes are mostly 0 */
        *o = (char)('0' + v);
        ht_jw_wrote(w, 1);
        return;
    }
    /* Digits, counted first (then written from the last): about log10(2)
     * = 1233/4096 of the bits, one less below that power of ten. */
    size_t t = (size_t)(64 - __builtin_clzll(v)) * 1233 >> 12;
    size_t n = t + 1 - (v < pow10[t]);
    char *e = o + n;
    for (; v >= 1ULL << 32; v /= 100) {
        e -= 2;
        memcpy(e, pairs + 2 * (v % 100), 2);
    }
    uint32_t u = (uint32_t)v;       /* cheaper division from here */
    for (; u >= 100; u /= 100) {
        e -= 2;
        memcpy(e, pairs + 2 * (u % 100), 2);
    }
    if (u >= 10)
        memcpy(e - 2, pairs + 2 * u, 2);
    else
        e[-1] = (char)('0' + u);
    ht_jw_wrote(w, n);
}

void ht_jw_put_slow(struct ht_jw *w, const void *p, size_t n)
{
    if (!w->err && ht_buf_append(w->b, p, n))
        w->err = -ENOMEM;
}

char *ht_jw_room_slow(struct ht_jw *w, size_t n)
{
    if (w->err)
        return NULL;
    if (ht_buf_reserve(w->b, n)) {
        w->err = -ENOMEM;
        return NULL;
    }
    return w->b->p + w->b->len;
}
