/*
 * exchange.c - allocation and body excerpts of struct ht_exchange.
 * Not thread-safe; an exchange has one owner at a time (see exchange.h).
 */
#include "core/exchange.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const gap_names[HT_GAP_COUNT] = {
    "no_request",
    "request_incomplete",
    "no_response",
    "response_incomplete",
    "desync",
    "capture_gap",
    "process_exit",
    "body_not_captured",
    "joined_mid_connection",
    "capture_ended",
};

const char *ht_gap_name(uint32_t bit)
{
    for (unsigned i = 0; i < HT_GAP_COUNT; i++)
        if (bit == 1u << i)
            return gap_names[i];
    return NULL;
}

struct ht_exchange *ht_exchange_new(void)
{
    return calloc(1, sizeof(struct ht_exchange));
}

void ht_exchange_free(struct ht_exchange *ex)
{
    if (!ex)
        return;
    free(ex->req_head);
    free(ex->resp_head);
    free(ex->req_body.buf);
    free(ex->resp_body.buf);
    free(ex);
}

int ht_body_append(struct ht_body *b, const uint8_t *data, size_t len, uint32_t cap)
{
    b->size += len;
    if (b->len >= cap || b->truncated) {
        b->truncated = b->truncated || len > 0;
        return 0;
    }
    size_t room = cap - b->len;
    size_t take = len < room ? len : room;
    if (b->len + take > b->cap) {
        /* Grow geometrically, never past the cap. */
        size_t ncap = b->cap ? b->cap : 256;
        while (ncap < b->len + take)
            ncap *= 2;
        if (ncap > cap)
            ncap = cap;
        uint8_t *nb = realloc(b->buf, ncap);
        if (!nb) {
            b->truncated = true;
            return -ENOMEM;
        }
        b->buf = nb;
        b->cap = (uint32_t)ncap;
    }
    memcpy(b->buf + b->len, data, take);
    b->len += (uint32_t)take;
    if (take < len)
        b->truncated = true;
    return 0;
}

int ht_head_copy(uint8_t **dst, uint32_t *dst_len, const uint8_t *src, uint32_t len)
{
    uint8_t *h = malloc(len ? len : 1);
    if (!h)
        return -ENOMEM;
    memcpy(h, src, len);
    free(*dst);
    *dst = h;
    *dst_len = len;
    return 0;
}
