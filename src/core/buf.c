/* buf.c - growable byte buffer (buf.h). */
#include "core/buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int ht_buf_reserve(struct ht_buf *b, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np)
            return -ENOMEM;
        b->p = np;
        b->cap = cap;
    }
    return 0;
}

int ht_buf_append(struct ht_buf *b, const void *data, size_t n)
{
    if (n == 0)
        return 0;
    if (ht_buf_reserve(b, n))
        return -ENOMEM;
    memcpy(b->p + b->len, data, n);
    b->len += n;
    return 0;
}

void ht_buf_reset(struct ht_buf *b) { b->len = 0; }

void ht_buf_free(struct ht_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}
