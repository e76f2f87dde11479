/*
 * buf.h - a growable byte buffer for building log lines.
 * Not thread-safe; one owner.
 */
#ifndef HT_BUF_H
#define HT_BUF_H

#include <stddef.h>

struct ht_buf {
    char *p;
    size_t len, cap;
};

/* Append n bytes; 0 or -ENOMEM (the buffer is unchanged then). */
int ht_buf_append(struct ht_buf *b, const void *data, size_t n);
/* Room for n more bytes (len unchanged); 0 or -ENOMEM. */
int ht_buf_reserve(struct ht_buf *b, size_t n);
void ht_buf_reset(struct ht_buf *b);    /* len = 0, keeps memory */
void ht_buf_free(struct ht_buf *b);

#endif
