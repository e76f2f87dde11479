/*
 * swar.h - byte tests eight at a time in a 64-bit word, for the scanners
 * of the hot path (parser lines and field values, JSON escaping).
 *
 * ht_swar_eq and ht_swar_lt set the high bit of each byte that matches. A
 * zero result is exact; otherwise the lowest set bit is exact, and bits
 * above it may be set wrongly (a borrow carries into the next byte), so
 * callers take the lowest (ht_swar_first) or check bytes one by one.
 * Pure functions; no state.
 */
#ifndef HT_SWAR_H
#define HT_SWAR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define HT_SWAR_ONES  0x0101010101010101ULL
#define HT_SWAR_HIGHS 0x8080808080808080ULL

/* Eight bytes at p, the first in the low bits whatever the byte order. */
static inline uint64_t ht_swar_load(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

/* Bytes equal to c. */
static inline uint64_t ht_swar_eq(uint64_t v, uint8_t c)
{
    uint64_t x = v ^ (HT_SWAR_ONES * c);
    return (x - HT_SWAR_ONES) & ~x & HT_SWAR_HIGHS;
}

/* Bytes below c (c at most 0x80). */
static inline uint64_t ht_swar_lt(uint64_t v, uint8_t c)
{
    return (v - HT_SWAR_ONES * c) & ~v & HT_SWAR_HIGHS;
}

/* Index (0-7) of the first byte a non-zero result marks. */
static inline size_t ht_swar_first(uint64_t m)
{
    return (size_t)__builtin_ctzll(m) >> 3;
}

/* v with its ASCII capitals made small; every other byte as it is. Byte
 * by byte, so in either byte order. */
static inline uint64_t ht_swar_lower(uint64_t v)
{
    uint64_t low7 = v & ~HT_SWAR_HIGHS;                  /* no carry between bytes */
    uint64_t ge_a = low7 + HT_SWAR_ONES * (0x80 - 'A');  /* high bit: >= 'A' */
    uint64_t gt_z = low7 + HT_SWAR_ONES * (0x80 - 'Z' - 1);
    uint64_t upper = ge_a & ~gt_z & ~v & HT_SWAR_HIGHS;
    return v | upper >> 2;                               /* 0x80 >> 2 == 'a' - 'A' */
}

#endif
