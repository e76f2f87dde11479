/*
 * dest.h - where the writer's lines go: the log file (reopened when
 * renamed, rotated by size), standard output ("-"), a Unix stream socket
 * ("unix:PATH", reconnected with a bounded backoff) or an inherited
 * descriptor ("fd:N"). The writer thread owns one destination.
 *
 * A stream (socket, pipe) is written without blocking: what its reader
 * has not taken within a bounded wait is dropped, whole lines, and the
 * caller counts them. Our diagnostics (one line each, on stderr) are said
 * once per outage.
 *
 * Threading: one owner (the writer thread); nothing here is shared.
 */
#ifndef HT_DEST_H
#define HT_DEST_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

struct ht_dest;

/* A destination for path (a log path with %p already expanded; the forms
 * above). Nothing is opened yet. NULL when out of memory. */
struct ht_dest *ht_dest_new(const char *path, uint32_t mode, uint64_t rotate_size,
                            unsigned rotate_keep);

/* Before each batch and once a second: open what is closed (a socket at
 * most once per backoff step), follow a log renamed away, notice a socket
 * peer that went away. */
void ht_dest_check(struct ht_dest *d);

/* Write b (whole lines). Returns how many of its lines were delivered,
 * SIZE_MAX meaning all of them. */
size_t ht_dest_write(struct ht_dest *d, const struct ht_buf *b);

/* After a batch: rotate the log file by size. */
void ht_dest_rotate(struct ht_dest *d);

/* Close and free (NULL: nothing). */
void ht_dest_free(struct ht_dest *d);

#endif
