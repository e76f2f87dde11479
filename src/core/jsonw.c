/*
 * jsonw.c - streaming JSON writer (jsonw.h).
 *
 * Escaping copies runs of bytes that need none in one append; a 256-entry
 * table says which bytes do (", \ and the C0 controls).
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

/* Escape s[0..n) up to its first byte >= 0x80 when stop_high, else all of
 * it; returns where it stopped. */
static inline size_t escape_run(struct ht_jw *w, const uint8_t *s, size_t n, bool stop_high)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0, i = 0;
    while (i < n) {
        if (i + 8 <= n) {
            /* Eight bytes at a time up to the first that may need escaping. */
            uint64_t v = ht_swar_load(s + i);
            uint64_t m = word_escapes(v) | (stop_high ? word_high(v) : 0);
            if (!m) {
                i += 8;
                continue;
            }
            i += ht_swar_first(m);
        }
        if (stop_high && s[i] >= 0x80)
            break;
        char e = esc[s[i]];
        if (e) {
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
    escape_run(w, s, n, false);
}

void ht_jw_str_bytes(struct ht_jw *w, const char *key, const uint8_t *s, size_t n)
{
    ht_jw_begin_string(w, key);
    /* One pass for the usual all-ASCII value; from the first other byte
     * (where a UTF-8 sequence must start), the rest is valid UTF-8 exactly
     * when the whole is, and an ASCII prefix reads the same as Latin-1. */
    size_t i = escape_run(w, s, n, true);
    if (i < n && ht_utf8_valid(s + i, n - i)) {
        escape_run(w, s + i, n - i, false);
    } else {
        /* Not UTF-8: read as ISO-8859-1, a byte at a time (rare: obs-text
         * in header values). */
        for (; i < n; i++) {
            char u[3];                  /* two UTF-8 bytes and a NUL */
            size_t k = ht_latin1_to_utf8(s + i, 1, u);
            escape_run(w, (const uint8_t *)u, k, false);
        }
    }
    ht_jw_end_string(w);
}

void ht_jw_put_slow(struct ht_jw *w, const void *p, size_t n)
{
    if (!w->err && ht_buf_append(w->b, p, n))
        w->err = -ENOMEM;
}
