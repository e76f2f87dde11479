/*
 * httptape.h - what the kernel side of attach (httptape.bpf.c) and the
 * user side (attach.c) share besides the records (capture/record.h): the
 * map keys and values and the limits of the BPF programs. Fixed-width
 * types only, no pointers: the same bytes are read by BPF code and by the
 * loader.
 */
#ifndef HT_ATTACH_HTTPTAPE_H
#define HT_ATTACH_HTTPTAPE_H

#include "capture/record.h"

#define HT_BPF_CHUNK        4096    /* payload bytes per DATA record */
#define HT_BPF_MAX_PIECES   2048    /* pieces copied per system call (8 MiB) */
#define HT_BPF_MAX_IOV      64      /* iovec entries looked at per call */
#define HT_BPF_MAX_CONNS    65536   /* tracked connections, all processes */
#define HT_BPF_MAX_TGIDS    4096    /* processes followed with --children */
#define HT_BPF_PATH_MAX     HT_REC_PATH_MAX
#define HT_BPF_FILE_PATH    HT_REC_FILE_PATH
#define HT_BPF_PATH_DEPTH   64      /* path components and mounts walked */

/* Connection key: a process's fd. */
struct ht_conn_key {
    __u32 tgid;
    __s32 fd;
};

/* Kernel-side state of a tracked connection (map "conns"). */
struct ht_conn_state {
    __u64 id;               /* unique while attached; joined ones have HT_ID_JOINED */
    __u64 off[2];           /* bytes moved per direction (0 request, 1 response); under
                             * TLS, plaintext bytes the library handed over */
    __u64 raw_off[2];       /* TLS: the socket's bytes per direction (ciphertext) */
    __u8 tls;               /* enum ht_tls_kind */
    __u8 tls_said;          /* the TLS record went out */
    __u8 pad[6];
};

/* What a connection's socket carries. */
enum ht_tls_kind { HT_TLS_UNKNOWN = 0, HT_TLS_PLAIN, HT_TLS_YES };

/* An SSL_* call in progress on a thread (map "ssl_calls", by tid). */
struct ht_ssl_call {
    __u64 ssl;              /* the SSL * */
    __u64 buf;              /* the app's buffer */
    __u64 nptr;             /* _ex: where the library writes the count, else 0 */
    __s32 fd;               /* the socket a system call inside it used, -1 */
    __u8 dir;               /* 0 SSL_read*, 1 SSL_write* */
    __u8 pad[3];
};

/* An SSL of a process (map "ssl_fds": its socket). */
struct ht_ssl_key {
    __u64 ssl;
    __u32 tgid;
    __u32 pad;
};

/* Bytes user space will not need (map "skips", written by user space):
 * in direction d, everything before stream offset to[d] is body past the
 * excerpt cap. Valid only for the connection with this id. */
struct ht_skip {
    __u64 id;
    __u64 to[2];
};

/* What a traced call does with its arguments (chosen per tracepoint). */
enum ht_io_kind { HT_IO_BUF = 1, HT_IO_RECVFROM, HT_IO_IOV, HT_IO_MSG, HT_IO_SENDFILE };

/* A file user space holds open already (map "files"): sendfile records for
 * it need no path. */
struct ht_file_key {
    __u64 ino;
    __u32 dev;
    __u32 pad;
};
#define HT_BPF_FILES_MAX 128

/* Kernel-side counters (per-CPU array "counters"). */
enum ht_counter {
    HT_CNT_RB_DROPS,        /* records the ring buffer had no room for */
    HT_CNT_CUT,             /* transfers not copied whole */
    HT_CNT_CONNS_FULL,      /* accepted connections not tracked: map full */
    HT_CNT_TLS_UNMAPPED,    /* SSL_read/SSL_write plaintext whose socket was not known */
    HT_CNT_MAX,
};

#endif
