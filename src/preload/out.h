/*
 * out.h - the preloaded library's only output: records (capture/record.h)
 * appended to this process's ring (capture/ring.h), which a collector
 * process reads. Nothing is parsed, formatted or written to a file here.
 *
 * The ring is made and handed to the collector on first need
 * (ht_out_start): registered with the collector named by
 * HTTPTAPE_COLLECTOR (httptape run, httptape collect), or, when there is
 * none or it is gone, with a collector this process starts for itself
 * (spawn.c). A forked child makes its own ring on first need and
 * announces the connections it inherited.
 *
 * Threading: every ht_out_* call on a connection is lock-free and makes no
 * system call (one clock read) except: ht_out_start (once per process),
 * ht_out_file (one pread of the excerpt) and, at most once per process
 * and child, the first record of an inherited connection. Async-signal-
 * safe apart from ht_out_start.
 */
#ifndef HT_PRELOAD_OUT_H
#define HT_PRELOAD_OUT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "capture/record.h"

/* What the library keeps of a tracked connection. */
struct ht_oconn {
    uint64_t id;                    /* per process, from 1 */
    _Atomic int32_t pid;            /* the process that announced it; 0: none yet */
    _Atomic uint32_t gen;           /* ... to the ring of that generation (out.c) */
    _Atomic uint64_t off[2];        /* bytes moved per direction (TLS: plaintext) */
    _Atomic uint64_t raw_off[2];    /* TLS: bytes the socket moved per direction */
    struct ht_rec_accept open;      /* what to announce again in a forked child */
};

struct ht_out_cfg {
    uint32_t ring_size;             /* data bytes of a ring (power of two) */
    uint32_t max_body;              /* excerpt cap: how much of a sendfile to read back */
    uint32_t max_header;            /* head size limit: what of a huge call is kept */
    const char *collector;          /* HTTPTAPE_COLLECTOR, or NULL */
    const char *collector_bin;      /* the httptape executable, for spawning one */
    char *const *collector_env;     /* its environment (HTTPTAPE_* settings) */
};

/* Remember the settings (strings must outlive the process). */
void ht_out_configure(const struct ht_out_cfg *cfg);

/* Make this process's ring and hand it to a collector, once (later calls
 * return at once). 0; -EAGAIN while another thread is making it (records
 * of this thread are dropped meanwhile, counted by the offsets); other
 * -errno: nothing can be recorded (said once on stderr, and the process's
 * connections are not tracked). */
int ht_out_start(void);

/* A connection accepted (or received) on fd: announced at once. */
void ht_out_open(struct ht_oconn *c, int fd, const struct sockaddr *local, socklen_t llen,
                 const struct sockaddr *peer, socklen_t plen);

/* n > 0 bytes moved in direction d (0 request, 1 response), held in iov. */
void ht_out_data(struct ht_oconn *c, int fd, int d, const struct iovec *iov, int iovcnt, size_t n);

/* n bytes of direction d went by without passing through a buffer we saw
 * (splice) or were thrown away unseen (MSG_TRUNC): reason HT_UNSEEN_*. */
void ht_out_unseen(struct ht_oconn *c, int fd, int d, uint64_t n, int reason);

/* n bytes (0: an end of stream) of direction d moved by a call that began
 * on connection old_id, which fd no longer names: an UNSEEN record
 * (HT_UNSEEN_STALE) under the old id, given to no connection. */
void ht_out_stale(int fd, uint64_t old_id, int d, uint64_t n);

/* n bytes were sent from in_fd at file offset file_off (sendfile): the
 * first bytes, up to the excerpt cap, are read back into the record. */
void ht_out_file(struct ht_oconn *c, int fd, int in_fd, int64_t file_off, uint64_t n);

/* TLS: n > 0 bytes of ciphertext moved on the socket in direction d: a
 * RAW record, carrying them only while they are the start of the client's
 * stream (the ClientHello). */
void ht_out_raw(struct ht_oconn *c, int fd, int d, const struct iovec *iov, int iovcnt, size_t n);

/* TLS: what the library says of the session (rec: its h is filled here). */
void ht_out_tls(struct ht_oconn *c, int fd, const struct ht_rec_tls *rec);

/* Direction d ended: a read returned 0 (0), the app shut down writing (1). */
void ht_out_eof(struct ht_oconn *c, int fd, int d);

/* The connection's last fd was closed; handed_over: this process forked
 * since it last touched it (a child may go on with it). Nothing is
 * recorded by a forked child that never touched the connection: its
 * parent still has it. */
void ht_out_close(struct ht_oconn *c, bool handed_over);

/* The connection's bytes went out of reach (reason HT_UNREACH_*): the
 * collector logs nothing of it and counts it; no more records follow. */
void ht_out_unreachable(struct ht_oconn *c, int fd, int reason);

/* This process moves bytes through io_uring: the collector counts a
 * connection it saw one way only as unseen instead of logging it. */
void ht_out_process_uses_io_uring(void);

/* Forked child: the parent's ring is not ours (its mapping is dropped
 * here); a new one is made on first need. */
void ht_out_after_fork_child(void);

#endif
