/*
 * text.h - byte-level text helpers for events: UTF-8 validation, base64,
 * Latin-1 transcoding, RFC 3339 timestamps. Pure functions, thread-safe.
 */
#ifndef HT_TEXT_H
#define HT_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Strict UTF-8 (RFC 3629: no overlongs, surrogates or > U+10FFFF). */
bool ht_utf8_valid(const uint8_t *s, size_t n);

/* ASCII lowercase of c (other bytes as they are). */
static inline uint8_t ht_ascii_lower(uint8_t c) { return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c; }

/* Is s[0..n) the lowercase word, but for ASCII case? Inline: word is
 * mostly a literal, whose length the compiler then knows. */
static inline bool ht_ascii_is(const uint8_t *s, size_t n, const char *word)
{
    if (n != strlen(word))
        return false;
    for (size_t i = 0; i < n; i++)
        if (ht_ascii_lower(s[i]) != (uint8_t)word[i])
            return false;
    return true;
}

/* Length of s without a trailing multi-byte sequence cut short (for an
 * excerpt cut at an arbitrary byte). */
size_t ht_utf8_trim_partial(const uint8_t *s, size_t n);

/* Base64 (RFC 4648, padded) of s into out, which must hold
 * ht_base64_len(n) + 1 bytes; NUL-terminated. Returns the length. */
size_t ht_base64_len(size_t n);
size_t ht_base64_encode(const uint8_t *s, size_t n, char *out);

/* Bytes read as ISO-8859-1 into UTF-8; out holds 2*n + 1. Returns length. */
size_t ht_latin1_to_utf8(const uint8_t *s, size_t n, char *out);

/* "2026-11-21T23:57:12.123456789Z" (31 bytes incl. NUL) from ns since epoch. */
#define HT_RFC3339_LEN 31
void ht_rfc3339_ns(int64_t wall_ns, char out[HT_RFC3339_LEN]);

#endif
