/*
 * tap.h - tracked connections of the preload front end: an fd-indexed
 * table of the sockets this process accepted, and the calls the hooks make
 * to report what the app read and wrote on them.
 *
 * Threading: ht_tracked() is a single relaxed atomic load (no lock, no
 * syscall) and is all an untracked fd ever costs. Bytes on a tracked
 * connection are recorded lock-free (out.h), also from a signal handler;
 * accept, dup and close take the connection's lock, and a close from a
 * signal handler that interrupted them on the same thread is deferred.
 */
#ifndef HT_TAP_H
#define HT_TAP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <stdint.h>

/* Directions, as in the records (capture/record.h). */
#ifndef HT_DIR_DEFINED
#define HT_DIR_DEFINED
enum ht_dir { HT_REQ = 0, HT_RESP = 1 };
#endif

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

/* The connection fd names as a call on it begins (its id), 0 when none:
 * a call that blocked while another thread closed fd and accepted a new
 * connection on the same number moved the old connection's bytes. The
 * hooks take it before the real call and give it to ht_tap_same after. */
uint64_t ht_tap_id(int fd);
static inline uint64_t ht_tap_token(int fd) { return ht_tracked(fd) ? ht_tap_id(fd) : 0; }

/* Does fd still name the connection tok named? When not, the n bytes (or
 * the end of stream, n 0) are no connection's: counted under the old one
 * (tok), given to neither. */
bool ht_tap_same(int fd, uint64_t tok, enum ht_dir d, uint64_t n);

/* The app received (HT_REQ) or sent (HT_RESP) n > 0 bytes, held in iov. */
void ht_tap_data(int fd, enum ht_dir d, const struct iovec *iov, int iovcnt, size_t n);

/* ---- TLS (tls.c; docs/tls.md) ----
 * A tracked connection whose client starts with a TLS handshake record
 * (ht_tap_data sees 0x16 0x03) has its socket bytes recorded as
 * ciphertext (RAW records: counted, the ClientHello carried); its
 * plaintext comes from the TLS library's hooks. */

/* n > 0 plaintext bytes the TLS library handed to the app (HT_REQ) or
 * took from it (HT_RESP) on fd. */
void ht_tap_tls_plain(int fd, enum ht_dir d, const void *buf, size_t n);

struct ht_rec_tls;
/* A covered TLS library serves fd: its first call announces the session,
 * and the first once the handshake is done (established) again, asking
 * fill (which must not block) what the library knows of ssl. */
void ht_tap_tls_used(int fd, void (*fill)(const void *ssl, struct ht_rec_tls *r), const void *ssl,
                     bool established);

/* An SSL with no socket of its own (a memory BIO: asyncio, node) whose
 * ClientHello had the client random `random`: bind it to the one tracked
 * TLS connection whose client sent that ClientHello (its first record
 * holds that random) and has no SSL yet. None, or more than one: nothing
 * is bound. The fd, or -1. Scans the fd table (once per SSL, tls.c);
 * lock-free. */
int ht_tap_tls_find(const void *ssl, const uint8_t random[32]);

/* Is ssl the memory-BIO SSL bound to fd's connection? */
bool ht_tap_tls_bound(int fd, const void *ssl);

/* Direction d of fd ended: a read returned 0 (HT_REQ), or the app shut
 * down writing (HT_RESP). */
void ht_tap_eof(int fd, enum ht_dir d);

/* n bytes of direction d were thrown away without our seeing them
 * (MSG_TRUNC on a stream). */
void ht_tap_lost(int fd, enum ht_dir d, uint64_t n);

/* n bytes of direction d moved by splice/copy_file_range: never seen. */
void ht_tap_unseen(int fd, enum ht_dir d, uint64_t n);

/* n bytes went out on fd by sendfile, from in_fd at file offset file_off
 * (-1: unknown, no excerpt). */
void ht_tap_sent_file(int fd, int in_fd, int64_t file_off, uint64_t n);

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

/* Forked child: keep the parent's connections (recorded from the child's
 * own ring from its first call on them) without trusting their locks. */
void ht_tap_after_fork_child(void);

/* Forking parent: connections it holds may be a child's to go on with,
 * until the parent touches them again. */
void ht_tap_after_fork_parent(void);

/* Why a connection's bytes are out of our reach. */
enum ht_unseen { HT_UNSEEN_NONE, HT_UNSEEN_STDIO, HT_UNSEEN_IO_URING, HT_UNSEEN_N };

/* The app handed fd to stdio (fdopen): stop recording the connection,
 * count it as unseen, say so once per process on stderr. */
void ht_tap_out_of_reach(int fd, enum ht_unseen why);

/* The process set up an io_uring (liburing): say so once; from now on a
 * connection that saw bytes one way only is counted unseen, not logged. */
void ht_tap_uses_io_uring(void);

#endif
