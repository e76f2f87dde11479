/*
 * httptape.h - what the kernel side of attach (httptape.bpf.c) and the
 * user side (attach.c) share: the map keys and values, and the records the
 * BPF programs put in the ring buffer. Fixed-width types only, no pointers:
 * the same bytes are read by BPF code and by the loader.
 *
 * Every byte a tracked connection moves in one direction has a stream
 * offset, counted by the kernel side. A record covers [off, off + span):
 * DATA carries those bytes, UNSEEN says they went by without being copied
 * (why: HT_UNSEEN_*), SENDFILE says they came from a file. User space feeds
 * them in offset order; a jump in the offsets is a lost record (ring buffer
 * full), which is how overruns are noticed without a sequence number.
 */
#ifndef HT_ATTACH_HTTPTAPE_H
#define HT_ATTACH_HTTPTAPE_H

#define HT_BPF_CHUNK        4096    /* payload bytes per DATA record */
#define HT_BPF_MAX_PIECES   2048    /* pieces copied per system call (8 MiB) */
#define HT_BPF_MAX_IOV      64      /* iovec entries looked at per call */
#define HT_BPF_MAX_CONNS    65536   /* tracked connections, all processes */
#define HT_BPF_MAX_TGIDS    4096    /* processes followed with --children */
#define HT_BPF_PATH_MAX     108     /* sizeof(sun_path) */
#define HT_BPF_FILE_PATH    512     /* sendfile: room for the file's path */
#define HT_BPF_PATH_DEPTH   64      /* path components and mounts walked */

/* Record types. */
enum ht_rec_type {
    HT_REC_ACCEPT = 1,      /* struct ht_rec_accept: a new connection */
    HT_REC_DATA,            /* struct ht_rec + len payload bytes */
    HT_REC_UNSEEN,          /* struct ht_rec: span bytes not copied (reason) */
    HT_REC_SENDFILE,        /* struct ht_rec_sendfile: span bytes from a file */
    HT_REC_EOF,             /* struct ht_rec: a read returned 0 */
    HT_REC_CLOSE,           /* struct ht_rec_close: close(fd) */
    HT_REC_EXIT,            /* struct ht_rec: process tgid is gone */
    HT_REC_FORK,            /* struct ht_rec: tgid forked fd = child tgid */
    HT_REC_INHERIT,         /* struct ht_rec_inherit: a forked child's copy of a connection */
};

/* Why UNSEEN bytes were not copied. */
enum ht_unseen_reason {
    HT_UNSEEN_SKIP = 1,     /* user space said it does not need them */
    HT_UNSEEN_CUT,          /* over the per-call bound, or unreadable memory */
    HT_UNSEEN_SPLICE,       /* moved by splice(2): never in a buffer we could read */
};

/* Connection key: a process's fd. */
struct ht_conn_key {
    __u32 tgid;
    __s32 fd;
};

/* Kernel-side state of a tracked connection (map "conns"). */
struct ht_conn_state {
    __u64 id;               /* unique while attached; joined ones have HT_ID_JOINED */
    __u64 off[2];           /* bytes moved per direction (0 request, 1 response) */
};
#define HT_ID_JOINED (1ull << 63)   /* set by user space for pre-existing connections */

/* Bytes user space will not need (map "skips", written by user space):
 * in direction d, everything before stream offset to[d] is body past the
 * excerpt cap. Valid only for the connection with this id. */
struct ht_skip {
    __u64 id;
    __u64 to[2];
};

/* What a traced call does with its arguments (chosen per tracepoint). */
enum ht_io_kind { HT_IO_BUF = 1, HT_IO_RECVFROM, HT_IO_IOV, HT_IO_MSG, HT_IO_SENDFILE };

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
    char  path[HT_BPF_PATH_MAX];    /* AF_UNIX: the socket's bound path */
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
    char  path[HT_BPF_FILE_PATH];
};

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
    HT_CNT_MAX,
};

#endif
