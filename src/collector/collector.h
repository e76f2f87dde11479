/*
 * collector.h - the collector's event loop: take registrations of recorded
 * processes (capture/register.h), map their rings (capture/ring.h), read
 * their records in order and hand each to a consumer, notice each process's
 * exit (pidfd) and, once its ring is drained, say so. It ends when the
 * processes it waits for are all gone.
 *
 * What records mean is the consumer's business (collector/feed.h); this
 * loop only moves them. Records that do not come through preload rings
 * (attach's BPF ring buffer) join the same loop as a source: drained on
 * every pass, napped on with the rings.
 *
 * Threading: one thread runs the loop, and the consumer is called on it;
 * a thread of the collector's own takes registrations.
 */
#ifndef HT_COLLECTOR_H
#define HT_COLLECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "capture/register.h"

struct ht_coll_ops {
    /* One record of process pid (whose parent was ppid when it
     * registered, 0 if unknown), in ring order. */
    void (*record)(void *ctx, int32_t pid, int32_t ppid, uint16_t type, const void *p,
                   uint32_t len);
    /* Process pid is gone and every record it wrote was handed over. */
    void (*process_gone)(void *ctx, int32_t pid);
    /* Once a second or so, with the collector's own clock (housekeeping). */
    void (*tick)(void *ctx);
    void *ctx;
};

struct ht_coll_counts {
    uint64_t processes;             /* registrations taken */
    uint64_t refused;               /* without the token, or malformed */
    uint64_t rings_broken;          /* a ring that held nonsense: stopped reading it */
    uint64_t lost_records, lost_bytes;  /* records producers could not write (ring full) */
};

/* A source of records besides the preload rings. */
struct ht_coll_source {
    /* Hand over what is there; returns how many records (0: none). */
    size_t (*drain)(void *ctx);
    /* Readable when the source wants draining before the nap ends (its
     * buffer is filling); -1: the timer only. */
    int fd;
    void *ctx;
};

struct ht_collector;

/* Listen at a (fails with -errno, e.g. -EADDRINUSE); a NULL: take no
 * registrations (rings come by ht_coll_add, records by a source). The
 * collector waits for the process behind wait_pidfd (-1: for none) and for
 * every process that registers; it takes ownership of wait_pidfd. */
struct ht_collector *ht_coll_new(const struct ht_reg_addr *a, int wait_pidfd,
                                 const struct ht_coll_ops *ops, int *err);

/* Take a ring that did not come through the socket (a process that started
 * its own collector hands its ring over at once). Ownership of both fds
 * passes. 0 or -errno. */
int ht_coll_add(struct ht_collector *c, int ring_fd, int pid_fd, int32_t pid);

/* Drain src on every pass of the loop (at most 4 sources; -ENOSPC
 * past that). With a source the nap waits on source fds and the timer:
 * rings then wake the loop by the timer only. */
int ht_coll_add_source(struct ht_collector *c, const struct ht_coll_source *src);

/* Run until every process waited for is gone and its records are handed
 * over (standing: only until *stop), or until *stop becomes true (checked
 * on every pass, even while records flow; then drain the rings and return:
 * a source is the caller's to drain last). Returns 0. */
int ht_coll_run(struct ht_collector *c, volatile const int *stop, bool standing);

void ht_coll_counts(struct ht_collector *c, struct ht_coll_counts *out);

/* Tell process pid that connection id's body bytes before to[] need not
 * be copied into its ring (the skip table, capture/register.h). 0 or
 * -ESRCH. */
int ht_coll_skip(struct ht_collector *c, int32_t pid, uint64_t id, const uint64_t to[2]);

/* Unmap every ring, close every fd. */
void ht_coll_free(struct ht_collector *c);

#endif
