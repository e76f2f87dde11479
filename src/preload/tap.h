/*
 * tap.h - tracked connections of the preload front end: an fd-indexed
 * table of the sockets this process accepted, and the calls the hooks make
 * to report what the app read and wrote on them.
 *
 * Threading: ht_tracked() is a single relaxed atomic load (no lock, no
 * syscall) and is all an untracked fd ever costs. Work on a tracked
 * connection takes that connection's own mutex; a re-entrant call on the
 * same thread (a signal handler writing while we hold it) is never waited
 * on: it is passed through and recorded as a capture gap.
 */
#ifndef HT_TAP_H
#define HT_TAP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "core/conn.h"
#include "core/parser.h"

struct ht_tconn;

extern _Atomic(struct ht_tconn *) *ht_fdtab;
extern unsigned ht_fdtab_size;      /* 0 while inert: nothing is tracked */

static inline bool ht_tracked(int fd)
{
    return (unsigned)fd < ht_fdtab_size &&
           atomic_load_explicit(&ht_fdtab[fd], memory_order_relaxed) != NULL;
}

/* Set up the table (size from RLIMIT_NOFILE). 0 or -errno. */
int ht_tap_init(void);

/* Start tracking (after the configuration was accepted). */
void ht_tap_activate(void);

/* The app accepted fd (peer address as accept returned it, may be NULL). */
void ht_tap_accepted(int fd, const struct sockaddr *peer, socklen_t peer_len);

/* fd arrived by SCM_RIGHTS: tracked if it is a connected TCP socket. */
void ht_tap_received(int fd);

/* The app received (HT_REQ) or sent (HT_RESP) n > 0 bytes, held in iov. */
void ht_tap_data(int fd, enum ht_dir d, const struct iovec *iov, int iovcnt, size_t n);

/* Direction d of fd ended: a read returned 0 (HT_REQ), or the app shut
 * down writing (HT_RESP). */
void ht_tap_eof(int fd, enum ht_dir d);

/* Bytes of direction d moved without our seeing them. */
void ht_tap_lost(int fd, enum ht_dir d);

/* n bytes of direction d moved by sendfile/splice (see ht_conn_feed_unseen). */
void ht_tap_unseen(int fd, enum ht_dir d, uint64_t n, enum ht_body_source src,
                   ht_fetch_fn fetch, void *ctx);

/* newfd now refers to what oldfd refers to (dup, dup2, dup3, F_DUPFD); any
 * connection newfd held before was closed by the call. */
void ht_tap_dup(int oldfd, int newfd);

/* close_range(first, last) closed these fds. */
void ht_tap_close_range(unsigned first, unsigned last);

/* Is any fd >= first tracked? (cheap; lets close_range skip the walk) */
bool ht_tap_any_tracked(unsigned first);

/* True in a vfork child: it shares our memory and must not change it. */
bool ht_tap_foreign_process(void);

/* close(): take fd out of the table before the real close (so a new
 * connection may reuse the number at once), release it after: the
 * connection ends with its last fd. From a signal handler that interrupted
 * the tap, the release is deferred to the next call outside it. */
struct ht_tconn *ht_tap_detach(int fd);
void ht_tap_finish(struct ht_tconn *t);

/* Process exit: finish every connection still open (their held exchanges
 * are logged with gap process_exit). */
void ht_tap_finish_all(void);

/* Forked child: forget the parent's connections without touching their
 * locks (another thread of the parent may have held one). */
void ht_tap_after_fork_child(void);

/* Forking parent: connections it holds are the child's to finish unless
 * the parent does I/O on them again. */
void ht_tap_after_fork_parent(void);

/* Why a connection's bytes are out of our reach. */
enum ht_unseen { HT_UNSEEN_NONE, HT_UNSEEN_STDIO, HT_UNSEEN_IO_URING, HT_UNSEEN_N };

/* The app handed fd to stdio (fdopen): stop recording the connection,
 * count it as unseen, say so once per process on stderr. */
void ht_tap_out_of_reach(int fd, enum ht_unseen why);

/* The process set up an io_uring (liburing): say so once; from now on a
 * connection that saw bytes one way only is counted unseen, not logged. */
void ht_tap_uses_io_uring(void);

/* Settings for new connections. */
struct ht_conn_cfg;
void ht_tap_configure(const struct ht_conn_cfg *cfg);

#endif
