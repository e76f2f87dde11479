/*
 * attach_private.h - what the files of the attach front end's user side
 * share (not for other front ends, not for the core):
 *
 *   attach.c   checks, loading and attaching the BPF programs, the run loop
 *   files.c    files sent with sendfile, reopened to read their excerpts
 *   proc.c     what is already there when attaching, found in /proc
 *   tls.c      uprobes on the target's OpenSSL, for TLS plaintext
 *
 * Threading: all of it runs on the main thread (the sink's writer only
 * gets finished exchanges), so the shared state below takes no lock.
 */
#ifndef HT_ATTACH_PRIVATE_H
#define HT_ATTACH_PRIVATE_H

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attach/attach.h"
#include "attach/httptape.h"
#include "collector/feed.h"
#include "core/conn.h"

struct ht_attach_state {
    const struct ht_attach_opts *o;
    struct ht_conn_cfg ccfg;        /* mode "attach", the caps */
    int conns_fd, skips_fd, tgids_fd, files_fd;     /* the BPF maps */
    int64_t wall_minus_mono;        /* CLOCK_REALTIME - CLOCK_MONOTONIC */
    bool target_gone;               /* the process we attached to exited */
};

extern struct ht_attach_state ht_attach;

/* One line on stderr, "httptape attach: " first. */
void ht_attach_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- files.c ---- */

/* ht_fetch_fn context for the bytes of one SENDFILE record. */
struct ht_attach_fetch {
    const struct ht_rec_sendfile *r;
    size_t size;                    /* of the record */
    int fd;                         /* -2 until looked up, -1 unavailable */
};

/* An ht_fetch_fn: the bytes at off of what r sent, read from the file. */
size_t ht_attach_fetch_file(void *ctx, uint64_t off, uint8_t *buf, size_t len);

/* The file r names, for the event: the path as the process saw it when we
 * opened the file (id->path points at our copy, valid while we hold it),
 * identity, size and mtime from our own descriptor of it. false when it
 * cannot be opened. */
bool ht_attach_file_id(const struct ht_rec_sendfile *r, size_t size, struct ht_file_id *id);

/* Close the files not used since FILES_IDLE (all of them when all). */
void ht_attach_files_expire(int64_t now_mono, bool all);

/* ---- tls.c ---- */

struct httptape_bpf;

/* Uprobes on the OpenSSL process pid runs (its libssl, else OpenSSL linked
 * into its executable), for every process with children. Returns what was
 * probed (the library's file name), or NULL when no OpenSSL was found:
 * TLS connections are then logged as tls_not_decrypted. */
const char *ht_attach_tls_attach(struct httptape_bpf *skel, int pid, bool children);

/* Remove them (before the final drain). Idempotent. */
void ht_attach_tls_detach(void);

/* ---- proc.c ---- */

/* pid (and with children its descendants): followed, and the connections
 * they have open joined. After the programs are attached. */
void ht_attach_follow_existing(int pid, bool children);

#endif
