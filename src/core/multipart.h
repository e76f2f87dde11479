/*
 * multipart.h - a multipart/form-data body (RFC 7578) summarised part by
 * part as its bytes go by: name, filename, content type, size, and the
 * first bytes of text parts. The whole body is read (not only the
 * excerpt), with bounded memory: HT_MP_PARTS parts kept (the rest
 * counted), HT_MP_TEXT bytes of text per part, part heads up to
 * HT_MP_HEAD bytes.
 *
 * Threading: one body, one caller (the connection's); the result is read
 * by the writer once the exchange is handed over.
 */
#ifndef HT_MULTIPART_H
#define HT_MULTIPART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HT_MP_PARTS 16
#define HT_MP_TEXT 256
#define HT_MP_HEAD 1024
#define HT_MP_BOUNDARY 70           /* RFC 2046 5.1.1 */

struct ht_mp_part {
    char name[64];
    char filename[128];
    char content_type[64];
    uint64_t size;
    uint8_t text[HT_MP_TEXT];
    uint16_t text_len;
    bool text_cut;
};

struct ht_multipart {
    /* the delimiter "\r\n--BOUNDARY" and what of it may be under way */
    uint8_t delim[4 + HT_MP_BOUNDARY];
    uint8_t dlen;
    uint8_t win[4 + HT_MP_BOUNDARY];
    uint8_t wlen;
    uint8_t state;
    uint8_t head[HT_MP_HEAD];
    uint16_t hlen;
    struct ht_mp_part parts[HT_MP_PARTS];
    uint8_t nparts;
    uint32_t more;                  /* parts past HT_MP_PARTS, counted */
    bool in_part;                   /* the last part is being filled */
    bool ended;                     /* the close delimiter came */
    bool broken;                    /* unseen bytes, or a head too long: no more parts */
};

/* The boundary of a Content-Type value (n bytes), if it is
 * multipart/form-data with one; false otherwise. */
bool ht_mp_boundary(const uint8_t *ct, size_t n, char out[HT_MP_BOUNDARY + 1]);

/* Set up for a body with this boundary. */
void ht_mp_init(struct ht_multipart *m, const char *boundary);

/* Body bytes, in order. */
void ht_mp_feed(struct ht_multipart *m, const uint8_t *p, size_t n);

#endif
