/*
 * decode.h - Content-Encoding of body excerpts: gzip, deflate (zlib or
 * raw) and br are decoded with zlib and libbrotli, on the writer's thread,
 * before redaction reads the excerpt.
 *
 * Only an excerpt is decoded (the first bytes of the body as sent): a
 * stream cut by the excerpt cap decodes as far as it goes. Output is
 * bounded by the caller's cap, so a small excerpt that expands a
 * thousandfold costs no more than cap bytes. Thread-safe; no state.
 */
#ifndef HT_DECODE_H
#define HT_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ht_coding { HT_CODING_NONE = 0, HT_CODING_GZIP, HT_CODING_DEFLATE, HT_CODING_BR,
                 HT_CODING_OTHER };

/* The coding a Content-Encoding value names: one coding, any case
 * ("x-gzip" too); "identity" or empty is NONE; a list of several or an
 * unknown one is OTHER. */
enum ht_coding ht_coding_of(const uint8_t *v, size_t n);

/* "gzip", "deflate", "br" (NULL for NONE and OTHER). */
const char *ht_coding_name(enum ht_coding c);

struct ht_decoded {
    uint8_t *buf;       /* malloc'd, len bytes */
    size_t len;
    bool ended;         /* the coded stream ended inside the input */
    bool full;          /* output stopped at cap */
};

/* Decode in[0..n) coded with c, at most cap bytes out. 0, -EINVAL for data
 * that is not in that coding (out empty), -ENOMEM. */
int ht_decode(enum ht_coding c, const uint8_t *in, size_t n, size_t cap, struct ht_decoded *out);

#endif
