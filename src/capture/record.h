/*
 * record.h - the records capture writes and the collector reads: the BPF
 * programs of attach (through the BPF ring buffer) and the preloaded
 * library (through its shared-memory ring, capture/ring.h) write the same
 * structures, so one consumer (collector/feed.c) turns both into exchanges.
 * Fixed-width types only, no pointers: BPF code and user space read the
 * same bytes.
 *
 * Every byte a tracked connection moves in one direction has a stream
 * offset, counted by the capture side. A record covers [off, off + span):
 * DATA carries those bytes, UNSEEN says they went by without being copied
 * (why: HT_UNSEEN_*), SENDFILE/FILEDATA say they came from a file. The
 * consumer feeds them in offset order; a jump in the offsets is a lost
 * record (a ring was full), which is how losses show without a sequence
 * number.
 */
#ifndef HT_CAPTURE_RECORD_H
#define HT_CAPTURE_RECORD_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define HT_REC_PATH_MAX     108     /* sizeof(sun_path) */
#define HT_REC_FILE_PATH    512     /* sendfile: room for the file's path */

/* Record types. */
enum ht_rec_type {
    HT_REC_ACCEPT = 1,      /* struct ht_rec_accept: a new connection */
    HT_REC_DATA,            /* struct ht_rec + len payload bytes */
    HT_REC_UNSEEN,          /* struct ht_rec: span bytes not copied (reason) */
    HT_REC_SENDFILE,        /* struct ht_rec_sendfile: span bytes from a file */
    HT_REC_EOF,             /* struct ht_rec: dir 0: a read returned 0; dir 1: the app shut down writing */
    HT_REC_CLOSE,           /* struct ht_rec_close: close(fd) */
    HT_REC_EXIT,            /* struct ht_rec: process tgid is gone */
    HT_REC_FORK,            /* struct ht_rec: tgid forked fd = child tgid */
    HT_REC_INHERIT,         /* struct ht_rec_inherit: a forked child's copy of a connection */
    HT_REC_OPEN,            /* preload: struct ht_rec_open: a new connection, or a forked child's copy */
    HT_REC_FILEDATA,        /* preload: struct ht_rec_filedata + len bytes: span bytes from a file */
    HT_REC_UNREACHABLE,     /* preload: struct ht_rec: the connection's bytes are out of reach
                             * (reason HT_UNREACH_*); conn_id 0: the whole process */
    HT_REC_RAW,             /* struct ht_rec + len bytes: span bytes of a TLS connection's
                             * socket (ciphertext), at off in the raw stream; only the
                             * first HT_REC_HELLO_MAX bytes of dir 0 are carried (the
                             * ClientHello, for SNI and ALPN), the rest only counted */
    HT_REC_TLS,             /* struct ht_rec_tls: a covered TLS library serves the
                             * connection; what it says of the session (once) */
};

/* TLS connections (docs/tls.md). On a tracked connection whose first
 * request bytes are a TLS handshake record (0x16 0x03), the socket's bytes
 * go out as RAW records, never as DATA; DATA, UNSEEN and EOF then carry
 * the plaintext the TLS library handed to the app or took from it (their
 * offsets count plaintext). A connection with RAW records and no TLS
 * record is one whose plaintext no covered library gave us. */
#define HT_REC_HELLO_MAX 4096
#define HT_TLS_STR 64


/* Why a connection's bytes went out of reach (UNREACHABLE). */
enum ht_unreach_reason {
    HT_UNREACH_STDIO = 1,   /* handed to stdio (fdopen): not recorded, counted */
    HT_UNREACH_IO_URING,    /* conn_id 0: the process uses io_uring; a connection seen
                             * one way only is counted, not logged */
};

/* Why UNSEEN bytes were not copied. */
enum ht_unseen_reason {
    HT_UNSEEN_SKIP = 1,     /* user space said it does not need them */
    HT_UNSEEN_CUT,          /* over the per-call bound, or unreadable memory */
    HT_UNSEEN_SPLICE,       /* moved by splice(2): never in a buffer we could read */
    HT_UNSEEN_BIG,          /* preload: the middle of one call too big to copy whole; counted,
                             * a gap only where it had to be parsed */
    HT_UNSEEN_STALE,        /* preload: moved by a call that began on connection conn_id, whose
                             * fd another thread closed and reused meanwhile: given to neither */
};

/* conn_id bit set by attach's user side for connections open before it
 * attached. */
#define HT_ID_JOINED (1ull << 63)

/* Every record starts with this. */
struct ht_rec {
    __u8  type;             /* enum ht_rec_type */
    __u8  dir;              /* 0 request (read), 1 response (write) */
    __u8  reason;           /* UNSEEN: enum ht_unseen_reason */
    __u8  pad;
    __u32 tgid;
    __u32 tid;
    __s32 fd;
    __u64 conn_id;
    __u64 ts_ns;            /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
    __u64 off;              /* stream offset of the first byte covered */
    __u32 span;             /* bytes covered */
    __u32 len;              /* DATA: payload bytes that follow */
};

struct ht_rec_accept {
    struct ht_rec h;
    __u16 family;           /* AF_INET, AF_INET6, AF_UNIX */
    __u16 local_port;       /* host order */
    __u16 peer_port;
    __u16 pad;
    __u8  local_addr[16];   /* network order; IPv4 in the first 4 bytes */
    __u8  peer_addr[16];
    char  path[HT_REC_PATH_MAX];    /* AF_UNIX: the socket's bound path */
};

struct ht_rec_sendfile {
    struct ht_rec h;
    __u64 file_off;         /* offset in the file of the first byte sent */
    __u64 ino;
    __u32 dev;              /* kernel encoding: major << 20 | minor */
    __s32 in_fd;
    __u16 path_len;         /* bytes used in path */
    __u8  path_ok;          /* path reaches the root of the mount namespace */
    __u8  pad[5];
    /* The file's path, so that it can be opened after the process closed
     * it: components from the file up, each a length byte then the name. */
    char  path[HT_REC_FILE_PATH];
};

/* CLOSE's h.reason: the process forked since it last touched the
 * connection, so a child may go on with it (fork-per-connection). */
#define HT_CLOSE_HANDED_OVER 1

struct ht_rec_close {
    struct ht_rec h;
    __u64 end[2];           /* final stream offsets: trailing losses show */
};

/* With --children, a process forked by a followed one gets its own copy of
 * each tracked connection the parent holds (a server that accepts, then
 * forks a child to serve): h.tgid/h.fd/h.conn_id are the child's. */
struct ht_rec_inherit {
    struct ht_rec h;
    __u64 parent_id;
    __u64 parent_off[2];    /* where the parent's streams stood at the fork */
};
#define HT_BPF_INHERIT_MAX 16       /* connections copied per fork */

/* A connection the preloaded library saw accepted (inherited 0), or a
 * forked child's copy of one its parent (parent_tgid) had (inherited 1):
 * its streams then start at start[0], start[1], where the parent's stood. */
struct ht_rec_open {
    struct ht_rec_accept a;
    __u64 start[2];
    __u32 inherited;
    __u32 parent_tgid;
};

/* span bytes went to the socket by sendfile, from file_off of the file
 * (dev, ino, fsize, mtime_ns and ctime_ns as fstat said when it was sent;
 * ino 0: it could not say). path_len bytes of its path follow (readlink of the
 * process's fd, under the process's root), then the first h.len bytes
 * sent (the library read them back, up to the excerpt cap).
 *
 * HT_FILEDATA_KEPT: neither path nor bytes follow; they are those of the
 * last record this process sent with them for the same file, offset and
 * length, kept in the slot the record names (the library chooses it, so
 * that two hot files never share one; the collector keeps what a record
 * carries in the slot it names, < HT_FILEDATA_SLOTS). The library
 * says KEPT only for what it sent whole since its ring last lost a record;
 * the collector checks the key in its slot, and a mismatch (two threads
 * raced for one slot) leaves that excerpt out, never another's bytes.
 *
 * HT_FILEDATA_WHOLE: the bytes are the whole excerpt and the file had not
 * changed for HT_FILEDATA_SETTLED_NS when they were read (its ctime, which
 * no process can set back, and its mtime): only such a record is kept, by
 * both sides. A file changed since is read again, as one changed within a
 * timestamp tick of the read could keep its times (coarse timestamps, 1 s
 * on some filesystems) and so its key. Residual: writes through a shared
 * mapping change the times only at the first write after writeback (on
 * tmpfs never), so a file rewritten that way may keep its key. */
struct ht_rec_filedata {
    struct ht_rec h;
    __u64 file_off;
    __u64 ino;
    __u64 fsize;
    __s64 mtime_ns;
    __s64 ctime_ns;
    __u32 dev;              /* major << 20 | minor */
    __u32 excerpt;          /* bytes of excerpt this stands for: h.len, or with KEPT the kept ones' */
    __u16 path_len;
    __u8  flags;            /* HT_FILEDATA_* */
    __u8  slot;             /* where both sides keep this excerpt */
    __u8  pad[4];
};
#define HT_FILEDATA_KEPT 1
#define HT_FILEDATA_WHOLE 2
#define HT_FILEDATA_SETTLED_NS 2000000000LL
#define HT_FILEDATA_SLOTS 16

struct ht_rec_tls {
    struct ht_rec h;
    char version[16];       /* SSL_get_version: "TLSv1.3"; NUL-terminated, "" unknown */
    char cipher[HT_TLS_STR];        /* SSL_CIPHER_get_name (OpenSSL's name) */
    char server_name[256];  /* SSL_get_servername (SNI), "" none */
    char alpn[32];          /* SSL_get0_alpn_selected, "" none */
};

#endif
