// SPDX-License-Identifier: GPL-2.0
/*
 * httptape.bpf.c - the kernel side of `httptape attach`: syscall
 * tracepoints that see what one process (and, with --children, the
 * processes it forks) accepts, reads and writes on the sockets it
 * accepted, and copy those bytes into a ring buffer for the user side
 * (attach.c loads this, collector/feed.c reads the records). Over TLS the
 * socket's bytes are only counted (RAW), and the plaintext comes from
 * uprobes on the target's OpenSSL (SSL_read/SSL_write, tls.c attaches
 * them), at the same DATA records and offsets.
 *
 * Cost is the design constraint: every tracepoint fires for every process
 * on the machine, so the first thing each program does is compare the tgid
 * with the target (a read-only constant: the JIT folds it). Only fds that
 * the target accepted while we watched (or that user space joined) are in
 * "conns"; any other fd costs one hash lookup. Programs run at syscall exit
 * only, reading the call's arguments from the registers the thread entered
 * with; close is the one entry probe. Records never wake the reader
 * (BPF_RB_NO_WAKEUP) unless the ring is filling up: user space drains it in
 * batches.
 *
 * Bytes are copied when the return value says how many moved, each record
 * tagged with its stream offset so that user space sees any record the
 * ring had no room for. A small transfer (under 1 KiB in one buffer, under
 * 2 KiB over up to 4 iovec entries) is one record reserved in the ring and
 * filled in place; anything else goes in pieces of HT_BPF_CHUNK through a
 * per-CPU scratch buffer. Bytes user space said it does not need (body
 * past the excerpt cap, map "skips") are reported by count only.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "attach/httptape.h"

#define AF_UNIX   1
#define AF_INET   2
#define AF_INET6  10
#define SOCK_STREAM 1
#define MSG_PEEK  2

char LICENSE[] SEC("license") = "GPL";

/* Set by the loader before load. */
const volatile __u32 targ_tgid = 0;
const volatile bool follow_children = false;
const volatile __u64 wake_bytes = 1 << 20;  /* force a wake-up past this backlog */

__u64 next_conn_id = 0;

/* How many entries "skips" may hold: user space counts one up before it
 * adds one, whoever deletes one counts it down. While it is 0 (no body is
 * being skipped anywhere, the usual case) a transfer does not look: a
 * lookup that misses costs as much as one that hits. Looking too rarely is
 * safe, the bytes are then copied. */
__u64 skips_live = 0;

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 8 << 20);           /* resized by the loader */
} rb SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, HT_BPF_MAX_CONNS);
    __type(key, struct ht_conn_key);
    __type(value, struct ht_conn_state);
} conns SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, HT_BPF_MAX_CONNS);
    __type(key, struct ht_conn_key);
    __type(value, struct ht_skip);
} skips SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, HT_BPF_MAX_TGIDS);
    __type(key, __u32);
    __type(value, __u8);
} tgids SEC(".maps");

struct scratch {
    struct ht_rec h;
    __u8 data[HT_BPF_CHUNK];
};

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct scratch);
} scratch SEC(".maps");

/* The walk over one transfer, for bpf_loop. It lives in a map value, not
 * on the stack, so the verifier checks the loop body once instead of
 * following the values it holds from iteration to iteration. */
struct walk {
    __u64 pid_tgid;
    __u64 id;
    __u64 off;          /* stream offset of the next byte */
    __u64 left;         /* bytes still to report */
    __u64 iov;          /* user pointer to the iovec array, 0 for flat */
    __u64 iovcnt;
    __u64 idx;          /* next iovec entry */
    __u64 base;         /* current segment */
    __u64 seg_left;
    __u64 skip;         /* leading bytes to step over (already reported) */
    __s32 fd;
    __u8 dir;
    __u8 failed;
};

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct walk);
} walks SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, HT_BPF_FILES_MAX);
    __type(key, struct ht_file_key);
    __type(value, __u8);
} files SEC(".maps");

/* TLS (uprobes on libssl): the SSL_* call each thread is in, and the
 * socket each SSL was seen to use. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __type(key, __u32);
    __type(value, struct ht_ssl_call);
} ssl_calls SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, HT_BPF_MAX_CONNS);
    __type(key, struct ht_ssl_key);
    __type(value, __s32);
} ssl_fds SEC(".maps");

/* The walk up a file's path (bpf_loop state, in a map for the same reason).
 * It stops at the task's root (a chroot), as d_path does: the path is the
 * one the process itself would use, and user space opens it under
 * /proc/PID/root. */
struct pwalk {
    __u64 dentry;
    __u64 mnt;          /* struct mount * */
    __u64 root_dentry;  /* the task's fs->root */
    __u64 root_mnt;     /* its struct vfsmount * */
    __u32 len;
    __u8 ok;
};

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct pwalk);
} pwalks SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, HT_CNT_MAX);
    __type(key, __u32);
    __type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 which)
{
    __u64 *c = bpf_map_lookup_elem(&counters, &which);
    if (c)
        *c += 1;
}

/* Is this process one we watch? The common answer, "no", costs a compare. */
static __always_inline bool watched(__u32 tgid)
{
    if (tgid == targ_tgid)
        return true;
    if (!follow_children)
        return false;
    return bpf_map_lookup_elem(&tgids, &tgid) != NULL;
}

/* The skip entry of a connection going away or taken over by a new one. */
static __always_inline void forget_skip(struct ht_conn_key *key)
{
    if (skips_live && bpf_map_delete_elem(&skips, key) == 0)
        __sync_fetch_and_sub(&skips_live, 1);
}

static __always_inline __u64 rb_flags(void)
{
    return bpf_ringbuf_query(&rb, BPF_RB_AVAIL_DATA) > wake_bytes ? BPF_RB_FORCE_WAKEUP
                                                                  : BPF_RB_NO_WAKEUP;
}

static __always_inline void fill(struct ht_rec *h, __u8 type, __u8 dir, __u64 pid_tgid,
                                 int fd, __u64 id, __u64 off, __u32 span)
{
    h->type = type;
    h->dir = dir;
    h->reason = 0;
    h->pad = 0;
    h->tgid = pid_tgid >> 32;
    h->tid = (__u32)pid_tgid;
    h->fd = fd;
    h->conn_id = id;
    h->ts_ns = bpf_ktime_get_ns();
    h->off = off;
    h->span = span;
    h->len = 0;
}

static __always_inline void emit(void *rec, __u64 size)
{
    if (bpf_ringbuf_output(&rb, rec, size, rb_flags()))
        count(HT_CNT_RB_DROPS);
}

/* Records of a small transfer are reserved in the ring at one of a few
 * fixed sizes (the verifier wants a constant) and filled from user memory
 * in place: no per-CPU bounce buffer, no second copy, no loop. A reserved
 * record longer than its payload is fine (h.len says how much is data),
 * but the sizes stay close to what they carry: the ring is written in
 * order, and a record that follows a long unused tail starts on cold
 * memory, which cost it more than the tail saved (nginx, 2 CPUs: a record
 * reserved 1.7 KiB longer than its data made the next program 300 ns
 * slower). Sizes are powers of two from 64 to 1024. */
#define SMALL_MAX   1024    /* one segment: fewer bytes than this */
#define GATHER_SEGS 4       /* iovec entries a small transfer may span */

/* Where the bytes of a small transfer are: len[i] bytes at base[i], in
 * stream order; an entry with len 0 holds none of them. */
struct segs {
    __u64 base[GATHER_SEGS];
    __u64 len[GATHER_SEGS];
    __u64 max_off;          /* the offset of the last entry with bytes */
    __u64 max_len;          /* the longest entry with bytes after the first */
    __u32 used;             /* entries with bytes */
    __u32 first;            /* the first of them */
};

/* n & mask, done where the verifier sees it: the compiler would drop a
 * plain mask it can prove to be a no-op, and copy the unbounded value. */
static __always_inline __u64 bound(__u64 n, const __u64 mask)
{
    asm volatile("%[n] &= %[m]" : [n] "+r"(n) : [m] "i"(mask));
    return n;
}

static __always_inline void submit_data(struct ht_rec *h, __u8 dir, __u64 pid_tgid, int fd,
                                        __u64 id, __u64 off, __u32 len, __u64 flags)
{
    fill(h, HT_REC_DATA, dir, pid_tgid, fd, id, off, len);
    h->len = len;
    bpf_ringbuf_submit(h, flags);
}

/* One DATA record with room for n bytes, for the len (< n) bytes at src.
 * Memory that cannot be read discards it (nothing written: the caller
 * goes the slow way, which reports what it cannot copy). */
#define EMIT_ONE(n)                                                             \
    do {                                                                        \
        struct { struct ht_rec h; __u8 data[n]; } *r =                          \
            bpf_ringbuf_reserve(&rb, sizeof(*r), 0);                            \
        if (!r)                                                                 \
            goto full;                                                          \
        if (bpf_probe_read_user(r->data, bound(len, (n) - 1), (void *)src)) {   \
            bpf_ringbuf_discard(r, BPF_RB_NO_WAKEUP);                           \
            return -1;                                                          \
        }                                                                       \
        submit_data(&r->h, dir, pid_tgid, fd, id, off, len, flags);             \
        return 0;                                                               \
    } while (0)

/* Copy the len (1..SMALL_MAX - 1) bytes at user address src into one DATA
 * record: 0 when written, 1 when the ring had no room (counted; the
 * offsets show the loss), -1 when the memory could not be read. */
static __always_inline int emit_one(__u64 pid_tgid, int fd, __u64 id, __u8 dir, __u64 off,
                                    __u64 src, __u32 len)
{
    __u64 flags = rb_flags();
    if (len < 64)
        EMIT_ONE(64);
    if (len < 128)
        EMIT_ONE(128);
    if (len < 256)
        EMIT_ONE(256);
    if (len < 512)
        EMIT_ONE(512);
    if (len < SMALL_MAX)
        EMIT_ONE(SMALL_MAX);
    return -1;
full:
    count(HT_CNT_RB_DROPS);
    return 1;
}

/* One DATA record for the segments of sg (len bytes), each read at its
 * running offset: every offset is below a, so the first segment (at 0)
 * is shorter than a too, and every later one is shorter than c. The
 * verifier sees each offset and length only within those bounds, not
 * that they add up to len, so the record has room for a + c bytes. */
#define EMIT_GATHER(a, c)                                                       \
    do {                                                                        \
        struct { struct ht_rec h; __u8 data[(a) + (c)]; } *r =                  \
            bpf_ringbuf_reserve(&rb, sizeof(*r), 0);                            \
        if (!r)                                                                 \
            goto full;                                                          \
        __u64 pos = 0;                                                          \
        for (int i = 0; i < GATHER_SEGS; i++) {                                 \
            __u64 k = sg->len[i];                                               \
            if (!k)                                                             \
                continue;                                                       \
            k = pos ? bound(k, (c) - 1) : bound(k, (a) - 1);                    \
            if (bpf_probe_read_user(r->data + bound(pos, (a) - 1), k,           \
                                    (void *)sg->base[i])) {                     \
                bpf_ringbuf_discard(r, BPF_RB_NO_WAKEUP);                       \
                return -1;                                                      \
            }                                                                   \
            pos += k;                                                           \
        }                                                                       \
        submit_data(&r->h, dir, pid_tgid, fd, id, off, len, flags);             \
        return 0;                                                               \
    } while (0)

/* The smallest c for an offset bound a (a + c bytes of room). */
#define GATHER_ROW(a)                                                           \
    if (sg->max_off < (a)) {                                                    \
        if (sg->max_len < 64)                                                   \
            EMIT_GATHER(a, 64);                                                 \
        if (sg->max_len < 128)                                                  \
            EMIT_GATHER(a, 128);                                                \
        if (sg->max_len < 256)                                                  \
            EMIT_GATHER(a, 256);                                                \
        if (sg->max_len < 512)                                                  \
            EMIT_GATHER(a, 512);                                                \
        if (sg->max_len < 1024)                                                 \
            EMIT_GATHER(a, 1024);                                               \
    }

/* emit_one for bytes over several segments (sg from find_segs): a record
 * of 128 to 2048 bytes of room, the smallest for where the last segment
 * starts and how long the longest after the first is. */
static __always_inline int emit_gather(__u64 pid_tgid, int fd, __u64 id, __u8 dir, __u64 off,
                                       const struct segs *sg, __u32 len)
{
    __u64 flags = rb_flags();
    GATHER_ROW(64);
    GATHER_ROW(128);
    GATHER_ROW(256);
    GATHER_ROW(512);
    GATHER_ROW(1024);
    return -1;
full:
    count(HT_CNT_RB_DROPS);
    return 1;
}

/* The segments that hold bytes [skip, skip + left) of a transfer through
 * the iovec array at iov (iovcnt entries). false when they are not all in
 * its first GATHER_SEGS entries, or the array cannot be read. */
static __always_inline bool find_segs(struct segs *sg, __u64 iov, __u64 iovcnt, __u64 skip,
                                      __u64 left)
{
    struct iovec v[GATHER_SEGS];
    __u64 pos = 0;
    if (!iov || !iovcnt)
        return false;
    if (iovcnt > GATHER_SEGS)
        iovcnt = GATHER_SEGS;
    if (bpf_probe_read_user(v, bound(iovcnt * sizeof(v[0]) - 1, sizeof(v) - 1) + 1, (void *)iov))
        return false;
    for (int i = 0; i < GATHER_SEGS; i++) {
        if (i >= iovcnt || !left)
            break;
        __u64 n = v[i].iov_len;
        if (skip >= n) {
            skip -= n;
            continue;
        }
        n -= skip;
        if (n > left)
            n = left;
        sg->base[i] = (__u64)v[i].iov_base + skip;
        sg->len[i] = n;
        if (sg->used++) {
            sg->max_off = pos;
            if (n > sg->max_len)
                sg->max_len = n;
        } else {
            sg->first = i;
        }
        skip = 0;
        left -= n;
        pos += n;
    }
    return !left;
}

/* The struct file behind fd in the current process, or NULL. */
static __always_inline struct file *fd_file(int fd)
{
    struct task_struct *task = bpf_get_current_task_btf();
    struct fdtable *fdt = task->files->fdt;
    struct file **fds = fdt->fd;
    unsigned int max = fdt->max_fds;
    struct file *f = NULL;
    if (fd < 0 || (unsigned int)fd >= max)
        return NULL;
    bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
    return f;
}

/* ---- accept: the connections we follow ---- */

static __always_inline int on_accept_exit(struct trace_event_raw_sys_exit *ctx)
{
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    __u32 tgid = pid_tgid >> 32;
    long fd = ctx->ret;
    if (!watched(tgid) || fd < 0)
        return 0;

    struct file *f = fd_file(fd);
    if (!f)
        return 0;
    struct socket *sock = BPF_CORE_READ(f, private_data);
    if (!sock || BPF_CORE_READ(sock, type) != SOCK_STREAM)
        return 0;
    struct sock *sk = BPF_CORE_READ(sock, sk);
    if (!sk)
        return 0;
    __u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
    if (family != AF_INET && family != AF_INET6 && family != AF_UNIX)
        return 0;

    struct ht_conn_key key = { .tgid = tgid, .fd = fd };
    struct ht_conn_state st = { .id = __sync_fetch_and_add(&next_conn_id, 1) + 1 };
    if (bpf_map_update_elem(&conns, &key, &st, BPF_ANY)) {
        count(HT_CNT_CONNS_FULL);
        return 0;
    }
    forget_skip(&key);

    __u32 zero = 0;
    struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
    if (!s)
        return 0;
    struct ht_rec_accept *a = (struct ht_rec_accept *)s;
    __builtin_memset((void *)a + sizeof(a->h), 0, sizeof(*a) - sizeof(a->h));
    fill(&a->h, HT_REC_ACCEPT, 0, pid_tgid, fd, st.id, 0, 0);
    a->family = family;
    if (family == AF_INET) {
        a->local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
        a->peer_port = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
        bpf_core_read(a->local_addr, 4, &sk->__sk_common.skc_rcv_saddr);
        bpf_core_read(a->peer_addr, 4, &sk->__sk_common.skc_daddr);
    } else if (family == AF_INET6) {
        a->local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
        a->peer_port = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
        bpf_core_read(a->local_addr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
        bpf_core_read(a->peer_addr, 16, &sk->__sk_common.skc_v6_daddr);
    } else {
        /* An accepted Unix socket carries its listener's address. */
        struct unix_address *ua = BPF_CORE_READ((struct unix_sock *)sk, addr);
        if (ua) {
            int len = BPF_CORE_READ(ua, len) - (int)sizeof(__u16);
            if (len > 0) {
                if (len > HT_BPF_PATH_MAX - 1)
                    len = HT_BPF_PATH_MAX - 1;
                bpf_probe_read_kernel(a->path, len & 127, &ua->name[0].sun_path);
            }
        }
    }
    emit(a, sizeof(*a));
    return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept")
int exit_accept(struct trace_event_raw_sys_exit *ctx) { return on_accept_exit(ctx); }

SEC("tracepoint/syscalls/sys_exit_accept4")
int exit_accept4(struct trace_event_raw_sys_exit *ctx) { return on_accept_exit(ctx); }

/* One bpf_loop step over the transfer in "walks": load the next iovec
 * entry, step over bytes already reported, or copy one piece (at most
 * HT_BPF_CHUNK, never across a segment) into a DATA record. Stops when all
 * is reported, or early (out of entries, unreadable memory): the caller
 * reports the rest as cut. */
static long copy_piece(__u64 i, void *ctx)
{
    __u32 zero = 0;
    struct walk *w = bpf_map_lookup_elem(&walks, &zero);
    if (!w || !w->left)
        return 1;
    if (!w->seg_left) {
        struct iovec v;
        if (!w->iov || w->idx >= w->iovcnt || w->idx >= HT_BPF_MAX_IOV)
            return 1;                       /* out of segments: cut */
        if (bpf_probe_read_user(&v, sizeof(v), (void *)(w->iov + w->idx * sizeof(v)))) {
            w->failed = 1;
            return 1;
        }
        w->idx++;
        w->base = (__u64)v.iov_base;
        w->seg_left = v.iov_len;
        return 0;
    }
    if (w->skip) {
        __u64 k = w->skip < w->seg_left ? w->skip : w->seg_left;
        w->skip -= k;
        w->base += k;
        w->seg_left -= k;
        return 0;
    }
    struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
    if (!s)
        return 1;
    __u64 n = w->seg_left < w->left ? w->seg_left : w->left;
    if (n > HT_BPF_CHUNK)
        n = HT_BPF_CHUNK;
    __u32 len = n;
    if (len > HT_BPF_CHUNK || len == 0)
        return 1;
    if (bpf_probe_read_user(s->data, len, (void *)w->base)) {
        w->failed = 1;
        return 1;
    }
    fill(&s->h, HT_REC_DATA, w->dir, w->pid_tgid, w->fd, w->id, w->off, len);
    s->h.len = len;
    emit(s, sizeof(s->h) + len);
    w->base += len;
    w->seg_left -= len;
    w->left -= len;
    w->off += len;
    return 0;
}

static __always_inline void report_unseen(__u64 pid_tgid, int fd, __u64 id, __u8 dir,
                                          __u64 off, __u64 n, __u8 reason)
{
    struct ht_rec h;
    fill(&h, HT_REC_UNSEEN, dir, pid_tgid, fd, id, off, n > 0xffffffffull ? 0xffffffffu : n);
    h.reason = reason;
    emit(&h, sizeof(h));
}

/* One step up the path of a file: a name, or a mount crossed. The record
 * being built is the scratch buffer. */
static long path_step(__u64 i, void *ctx)
{
    __u32 zero = 0;
    struct pwalk *p = bpf_map_lookup_elem(&pwalks, &zero);
    struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
    if (!p || !s)
        return 1;
    struct ht_rec_sendfile *r = (struct ht_rec_sendfile *)s;
    struct dentry *d = (struct dentry *)p->dentry;
    struct mount *m = (struct mount *)p->mnt;
    struct dentry *parent = BPF_CORE_READ(d, d_parent);
    if (p->dentry == p->root_dentry &&
        p->mnt + bpf_core_field_offset(struct mount, mnt) == p->root_mnt) {
        p->ok = 1;                  /* the process's root (it may be chroot'ed) */
        return 1;
    }
    if (d == BPF_CORE_READ(m, mnt.mnt_root) || d == parent) {
        struct mount *up = BPF_CORE_READ(m, mnt_parent);
        if (!up || up == m) {
            p->ok = 1;              /* the root of the namespace */
            return 1;
        }
        p->dentry = (__u64)BPF_CORE_READ(m, mnt_mountpoint);
        p->mnt = (__u64)up;
        return 0;
    }
    __u32 n = BPF_CORE_READ(d, d_name.len);
    const unsigned char *name = BPF_CORE_READ(d, d_name.name);
    __u32 off = p->len;
    if (n == 0 || n > 255 || off > HT_BPF_FILE_PATH - 256 || off + 1 + n > HT_BPF_FILE_PATH)
        return 1;                   /* too long: path not ok */
    r->path[off] = n;
    if (bpf_probe_read_kernel(&r->path[off + 1], n & 255, name))
        return 1;
    p->len = off + 1 + n;
    p->dentry = (__u64)parent;
    return 0;
}

/* sendfile(out_fd = a connection, in_fd = buf, offset = cnt) sent ret
 * bytes: the file's identity and offset. The file was read from *offset,
 * else from its position; both have moved past what was sent by now. For a
 * file user space holds open already (map "files") the record needs no
 * path and is filled in place in the ring; else the path is walked into
 * the per-CPU scratch record. */
static __always_inline void on_sendfile(__u64 pid_tgid, int fd, __u64 id, __u64 off, long ret,
                                        __u64 buf, __u64 cnt)
{
    int in_fd = buf;
    long long pos = 0;
    __u64 ino = 0;
    __u32 dev = 0;
    struct file *f = fd_file(in_fd);
    if (cnt)
        bpf_probe_read_user(&pos, sizeof(pos), (void *)cnt);
    else if (f)
        pos = BPF_CORE_READ(f, f_pos);
    if (f) {
        struct inode *inode = BPF_CORE_READ(f, f_inode);
        ino = BPF_CORE_READ(inode, i_ino);
        dev = BPF_CORE_READ(inode, i_sb, s_dev);
    }
    struct ht_file_key fk = { .ino = ino, .dev = dev };
    if (!f || bpf_map_lookup_elem(&files, &fk)) {
        struct ht_rec_sendfile *r =
            bpf_ringbuf_reserve(&rb, offsetof(struct ht_rec_sendfile, path), 0);
        if (!r) {
            count(HT_CNT_RB_DROPS);
            return;
        }
        fill(&r->h, HT_REC_SENDFILE, 1, pid_tgid, fd, id, off, ret);
        r->file_off = pos - ret;
        r->ino = ino;
        r->dev = dev;
        r->in_fd = in_fd;
        r->path_len = 0;
        r->path_ok = 0;
        __builtin_memset(r->pad, 0, sizeof(r->pad));
        bpf_ringbuf_submit(r, rb_flags());
        return;
    }
    /* A file user space has not opened yet: its path, so that it can be,
     * even after the process closed it. */
    __u32 zero = 0;
    struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
    struct pwalk *p = bpf_map_lookup_elem(&pwalks, &zero);
    if (!s || !p)
        return;
    struct ht_rec_sendfile *r = (struct ht_rec_sendfile *)s;
    fill(&r->h, HT_REC_SENDFILE, 1, pid_tgid, fd, id, off, ret);
    r->file_off = pos - ret;
    r->ino = ino;
    r->dev = dev;
    r->in_fd = in_fd;
    struct vfsmount *vm = BPF_CORE_READ(f, f_path.mnt);
    p->dentry = (__u64)BPF_CORE_READ(f, f_path.dentry);
    p->mnt = (__u64)((void *)vm - bpf_core_field_offset(struct mount, mnt));
    struct task_struct *task = bpf_get_current_task_btf();
    p->root_dentry = (__u64)BPF_CORE_READ(task, fs, root.dentry);
    p->root_mnt = (__u64)BPF_CORE_READ(task, fs, root.mnt);
    p->len = 0;
    p->ok = 0;
    bpf_loop(HT_BPF_PATH_DEPTH, path_step, NULL, 0);
    r->path_len = p->len;
    r->path_ok = p->ok;
    __u32 size = r->path_len;
    if (size > HT_BPF_FILE_PATH)
        size = HT_BPF_FILE_PATH;
    emit(r, offsetof(struct ht_rec_sendfile, path) + size);
}

/* ---- TLS: the socket's bytes are ciphertext, the plaintext comes from
 * uprobes on the library (docs/tls.md) ---- */

/* The first bytes of transfer buf (flat or iovec) of kind, for the
 * handshake check; 0 when they cannot be read. */
static __always_inline __u16 first_two(__u8 kind, __u64 buf, __u64 cnt)
{
    __u8 b[2] = { 0, 0 };
    __u64 src = buf;
    if (kind == HT_IO_IOV || kind == HT_IO_MSG) {
        __u64 iov = buf;
        struct iovec v;
        if (kind == HT_IO_MSG) {
            struct user_msghdr m;
            if (bpf_probe_read_user(&m, sizeof(m), (void *)buf))
                return 0;
            iov = (__u64)m.msg_iov;
        }
        if (bpf_probe_read_user(&v, sizeof(v), (void *)iov) || v.iov_len < 2)
            return 0;
        src = (__u64)v.iov_base;
    }
    if (bpf_probe_read_user(b, 2, (void *)src))
        return 0;
    return (__u16)b[0] << 8 | b[1];
}

/* One system call's transfer, for the subprograms below (BPF functions
 * take at most five arguments). */
struct xfer {
    __u64 pid_tgid;
    __u64 buf, cnt;         /* the call's second and third arguments */
    long ret;
    __u8 kind, dir;
};

/* A transfer of ret bytes on a tracked socket whose kind is not known to
 * be plain: decide it (a TLS handshake record first, 0x16 0x03, or a call
 * made from inside SSL_read/SSL_write), and under TLS report the bytes as
 * RAW (the first HT_REC_HELLO_MAX of the client's carried: the
 * ClientHello's SNI and ALPN). true when they were TLS. */
static __noinline bool tls_socket(struct ht_conn_key *key, struct ht_conn_state *st,
                                  const struct xfer *x)
{
    __u64 pid_tgid = x->pid_tgid, buf = x->buf;
    long ret = x->ret;
    __u8 kind = x->kind, dir = x->dir;
    __u32 tid = (__u32)pid_tgid;
    struct ht_ssl_call *call = bpf_map_lookup_elem(&ssl_calls, &tid);
    if (call) {
        /* The SSL this thread is in uses this socket. */
        struct ht_ssl_key sk = { .ssl = call->ssl, .tgid = key->tgid };
        __s32 fd = key->fd;
        call->fd = fd;
        bpf_map_update_elem(&ssl_fds, &sk, &fd, BPF_ANY);
    }
    if (st->tls == HT_TLS_UNKNOWN) {
        bool fresh = !(st->id & HT_ID_JOINED) && dir == 0 && st->off[0] == 0 && st->raw_off[0] == 0;
        /* A joined connection is past its handshake: its transfers all
         * happen inside SSL calls when it is TLS. */
        if (call || (fresh && first_two(kind, buf, x->cnt) == 0x1603))
            st->tls = HT_TLS_YES;
        else
            st->tls = HT_TLS_PLAIN;
        if (st->tls != HT_TLS_YES)
            return false;
    }
    __u64 off = __sync_fetch_and_add(&st->raw_off[dir & 1], (__u64)ret);
    __u32 span = ret > 0xffffffffl ? 0xffffffffu : (__u32)ret;
    __u64 src = buf;
    if (dir == 0 && off < HT_REC_HELLO_MAX && ret < SMALL_MAX &&
        (kind == HT_IO_BUF || kind == HT_IO_RECVFROM)) {
        struct { struct ht_rec h; __u8 data[SMALL_MAX]; } *r =
            bpf_ringbuf_reserve(&rb, sizeof(*r), 0);
        if (!r) {
            count(HT_CNT_RB_DROPS);
            return true;
        }
        __u32 len = (__u32)ret;
        if (bpf_probe_read_user(r->data, bound(len, SMALL_MAX - 1), (void *)src))
            len = 0;
        fill(&r->h, HT_REC_RAW, dir, pid_tgid, key->fd, st->id, off, span);
        r->h.len = len;
        bpf_ringbuf_submit(r, rb_flags());
        return true;
    }
    struct ht_rec h;
    fill(&h, HT_REC_RAW, dir, pid_tgid, key->fd, st->id, off, span);
    emit(&h, sizeof(h));
    return true;
}

/* x->ret plaintext bytes at user address x->buf, direction x->dir of a
 * tracked connection: DATA records at the plaintext offsets (body past the
 * cap, as user space said, only counted). */
static __noinline void plain_copy(struct ht_conn_key *key, struct ht_conn_state *st,
                                  const struct xfer *x)
{
    __u64 pid_tgid = x->pid_tgid, src = x->buf, n = (__u64)x->ret;
    __u8 dir = x->dir & 1;
    __u64 id = st->id;
    __u64 off = __sync_fetch_and_add(&st->off[dir], n);
    __u64 skip = 0;
    struct ht_skip *sk = bpf_map_lookup_elem(&skips, key);
    if (sk && sk->id == id && off < sk->to[dir]) {
        skip = sk->to[dir] - off;
        if (skip > n)
            skip = n;
        report_unseen(pid_tgid, key->fd, id, dir, off, skip, HT_UNSEEN_SKIP);
        if (skip == n)
            return;
    }
    __u64 left = n - skip;
    if (left < SMALL_MAX && emit_one(pid_tgid, key->fd, id, dir, off + skip, src + skip,
                                     (__u32)left) >= 0)
        return;
    __u32 zero = 0;
    struct walk *w = bpf_map_lookup_elem(&walks, &zero);
    if (!w)
        return;
    __builtin_memset(w, 0, sizeof(*w));
    w->pid_tgid = pid_tgid;
    w->id = id;
    w->off = off + skip;
    w->left = left;
    w->fd = key->fd;
    w->dir = dir;
    w->base = src + skip;
    w->seg_left = left;
    bpf_loop(HT_BPF_MAX_PIECES, copy_piece, NULL, 0);
    if (w->left) {
        count(HT_CNT_CUT);
        report_unseen(pid_tgid, key->fd, id, dir, w->off, w->left, HT_UNSEEN_CUT);
    }
}

static __always_inline int ssl_enter(void *ssl, void *buf, void *nptr, __u8 dir)
{
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    if (!watched(pid_tgid >> 32))
        return 0;
    __u32 tid = (__u32)pid_tgid;
    struct ht_ssl_call c = { .ssl = (__u64)ssl, .buf = (__u64)buf, .nptr = (__u64)nptr,
                             .fd = -1, .dir = dir };
    bpf_map_update_elem(&ssl_calls, &tid, &c, BPF_ANY);
    return 0;
}

/* SSL_read/SSL_write (ret: bytes) or their _ex forms (ret 1: the count is
 * at nptr) returned: the plaintext, on the connection the SSL uses. */
static __always_inline int ssl_exit(long ret)
{
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    __u32 tgid = pid_tgid >> 32, tid = (__u32)pid_tgid;
    if (!watched(tgid))
        return 0;
    struct ht_ssl_call *cp = bpf_map_lookup_elem(&ssl_calls, &tid);
    if (!cp)
        return 0;
    struct ht_ssl_call c = *cp;
    bpf_map_delete_elem(&ssl_calls, &tid);
    __u64 n = 0;
    if (c.nptr) {
        if (ret != 1 || bpf_probe_read_user(&n, sizeof(n), (void *)c.nptr))
            return 0;
    } else if (ret > 0) {
        n = ret;
    }
    if (!n)
        return 0;
    struct ht_ssl_key sk = { .ssl = c.ssl, .tgid = tgid };
    __s32 *fdp = bpf_map_lookup_elem(&ssl_fds, &sk);
    __s32 fd = fdp ? *fdp : c.fd;
    struct ht_conn_key key = { .tgid = tgid, .fd = fd };
    struct ht_conn_state *st = fd >= 0 ? bpf_map_lookup_elem(&conns, &key) : NULL;
    if (!st) {
        count(HT_CNT_TLS_UNMAPPED);
        return 0;
    }
    st->tls = HT_TLS_YES;
    if (!st->tls_said) {
        /* The library serves this connection: said once (the session's
         * names are not read from the kernel side). */
        st->tls_said = 1;
        struct ht_rec_tls *r = bpf_ringbuf_reserve(&rb, sizeof(*r), 0);
        if (r) {
            __builtin_memset((void *)r + sizeof(r->h), 0, sizeof(*r) - sizeof(r->h));
            fill(&r->h, HT_REC_TLS, 0, pid_tgid, fd, st->id, 0, 0);
            bpf_ringbuf_submit(r, rb_flags());
        } else {
            count(HT_CNT_RB_DROPS);
        }
    }
    struct xfer x = { .pid_tgid = pid_tgid, .buf = c.buf, .ret = (long)n, .dir = c.dir };
    plain_copy(&key, st, &x);
    return 0;
}

SEC("uprobe")
int BPF_KPROBE(ssl_read, void *ssl, void *buf, int num) { return ssl_enter(ssl, buf, NULL, 0); }
SEC("uprobe")
int BPF_KPROBE(ssl_read_ex, void *ssl, void *buf, size_t num, size_t *readbytes)
{
    return ssl_enter(ssl, buf, readbytes, 0);
}
SEC("uprobe")
int BPF_KPROBE(ssl_write, void *ssl, const void *buf, int num) { return ssl_enter(ssl, (void *)buf, NULL, 1); }
SEC("uprobe")
int BPF_KPROBE(ssl_write_ex, void *ssl, const void *buf, size_t num, size_t *written)
{
    return ssl_enter(ssl, (void *)buf, written, 1);
}
/* All four return an int. */
SEC("uretprobe")
int BPF_KRETPROBE(ssl_ret, int ret) { return ssl_exit(ret); }

/* SSL_set_fd(ssl, fd): the socket, before any call shows it. */
SEC("uprobe")
int BPF_KPROBE(ssl_set_fd, void *ssl, int fd)
{
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    if (!watched(pid_tgid >> 32))
        return 0;
    struct ht_ssl_key sk = { .ssl = (__u64)ssl, .tgid = pid_tgid >> 32 };
    __s32 v = fd;
    bpf_map_update_elem(&ssl_fds, &sk, &v, BPF_ANY);
    return 0;
}

/* A tracked call returned: its arguments are still in the registers the
 * task entered the kernel with, so no entry probe is needed (and a call
 * that was already blocked when we attached, a keep-alive connection
 * waiting in read(), is seen too). */
static __always_inline int on_exit(struct trace_event_raw_sys_exit *ctx, __u8 kind, __u8 dir)
{
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    __u32 tgid = pid_tgid >> 32;
    if (!watched(tgid))
        return 0;
    long ret = ctx->ret;
    if (ret < 0)
        return 0;
    /* A trusted pointer: plain loads, no helper call per register. */
    struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
    int fd = PT_REGS_PARM1_SYSCALL(regs);
    struct ht_conn_key key = { .tgid = tgid, .fd = fd };
    struct ht_conn_state *st = bpf_map_lookup_elem(&conns, &key);
    if (!st)
        return 0;
    __u64 buf = PT_REGS_PARM2_SYSCALL(regs);
    __u64 cnt = PT_REGS_PARM3_SYSCALL(regs);
    if (kind == HT_IO_RECVFROM && (PT_REGS_PARM4_SYSCALL(regs) & MSG_PEEK))
        return 0;                   /* read again later: not a transfer */
    if (kind == HT_IO_MSG && dir == 0 && (cnt & MSG_PEEK))
        return 0;
    __u64 id = st->id;
    if (ret == 0) {
        if (dir == 0 && (kind == HT_IO_MSG || kind == HT_IO_IOV || cnt)) {
            struct ht_rec h;
            fill(&h, HT_REC_EOF, 0, pid_tgid, fd, id, st->off[0], 0);
            emit(&h, sizeof(h));
        }
        return 0;
    }
    if (st->tls != HT_TLS_PLAIN && kind != HT_IO_SENDFILE) {
        struct xfer x = { .pid_tgid = pid_tgid, .buf = buf, .cnt = cnt, .ret = ret, .kind = kind,
                          .dir = dir };
        if (tls_socket(&key, st, &x))
            return 0;
    }

    __u64 off = __sync_fetch_and_add(&st->off[dir], (__u64)ret);

    if (kind == HT_IO_SENDFILE) {
        on_sendfile(pid_tgid, fd, id, off, ret, buf, cnt);
        return 0;
    }

    /* Leading bytes user space does not need: one record, no copy. */
    __u64 skip = 0, left = ret;
    struct ht_skip *sk = skips_live ? bpf_map_lookup_elem(&skips, &key) : NULL;
    if (sk && sk->id == id && off < sk->to[dir]) {
        skip = sk->to[dir] - off;
        if (skip > (__u64)ret)
            skip = ret;
        report_unseen(pid_tgid, fd, id, dir, off, skip, HT_UNSEEN_SKIP);
        left -= skip;
        if (!left)
            return 0;
    }

    __u64 iov = 0, iovcnt = 0;
    if (kind == HT_IO_IOV) {
        iov = buf;
        iovcnt = cnt;
    } else if (kind == HT_IO_MSG) {
        struct user_msghdr m;
        if (bpf_probe_read_user(&m, sizeof(m), (void *)buf) == 0) {
            iov = (__u64)m.msg_iov;
            iovcnt = m.msg_iovlen;
        }
    }
    /* The common case, a small transfer (a request; a response head, with
     * a small body beside it for writev): one record reserved and filled
     * in place. */
    if (kind == HT_IO_BUF || kind == HT_IO_RECVFROM) {
        if (left < SMALL_MAX && emit_one(pid_tgid, fd, id, dir, off + skip, buf + skip, left) >= 0)
            return 0;
    } else if (left < 2 * SMALL_MAX) {
        struct segs sg = {};
        int done = -1;
        if (find_segs(&sg, iov, iovcnt, skip, left)) {
            if (sg.used > 1)
                done = emit_gather(pid_tgid, fd, id, dir, off + skip, &sg, left);
            else if (left < SMALL_MAX)
                done = emit_one(pid_tgid, fd, id, dir, off + skip,
                                sg.base[sg.first & (GATHER_SEGS - 1)], left);
        }
        if (done >= 0)
            return 0;
    }

    /* Anything bigger, or spread over more segments: in pieces. */
    __u32 zero = 0;
    struct walk *w = bpf_map_lookup_elem(&walks, &zero);
    if (!w)
        return 0;
    __builtin_memset(w, 0, sizeof(*w));
    w->pid_tgid = pid_tgid;
    w->id = id;
    w->off = off + skip;
    w->left = left;
    w->fd = fd;
    w->dir = dir;
    if (kind == HT_IO_BUF || kind == HT_IO_RECVFROM) {
        w->base = buf + skip;
        w->seg_left = left;
    } else {
        w->iov = iov;
        w->iovcnt = iovcnt;
        w->skip = skip;
    }
    bpf_loop(HT_BPF_MAX_PIECES + HT_BPF_MAX_IOV * 2, copy_piece, NULL, 0);
    if (w->left) {
        count(HT_CNT_CUT);
        report_unseen(pid_tgid, fd, id, dir, w->off, w->left, HT_UNSEEN_CUT);
    }
    return 0;
}

SEC("tracepoint/syscalls/sys_exit_read")
int exit_read(struct trace_event_raw_sys_exit *ctx) { return on_exit(ctx, HT_IO_BUF, 0); }
SEC("tracepoint/syscalls/sys_exit_readv")
int exit_readv(struct trace_event_raw_sys_exit *ctx) { return on_exit(ctx, HT_IO_IOV, 0); }
SEC("tracepoint/syscalls/sys_exit_recvfrom")
int exit_recvfrom(struct trace_event_raw_sys_exit *ctx) { return on_exit(ctx, HT_IO_RECVFROM, 0); }
SEC("tracepoint/syscalls/sys_exit_recvmsg")
int exit_recvmsg(struct trace_event_raw_sys_exit *ctx) { return on_exit(ctx, HT_IO_MSG, 0); }
SEC("tracepoint/syscalls/sys_exit_write")
int exit_write(struct trace_event_raw_sys_exit *ctx) { return on_exit(ctx, HT_IO_BUF, 1); }
SEC("tracepoint/syscalls/sys_exit_writev")
int exit_writev(struct trace_event_raw_sys_exit *ctx) { return on_exit(ctx, HT_IO_IOV, 1); }
SEC("tracepoint/syscalls/sys_exit_sendto")
int exit_sendto(struct trace_event_raw_sys_exit *ctx) { return on_exit(ctx, HT_IO_BUF, 1); }
SEC("tracepoint/syscalls/sys_exit_sendmsg")
int exit_sendmsg(struct trace_event_raw_sys_exit *ctx) { return on_exit(ctx, HT_IO_MSG, 1); }
SEC("tracepoint/syscalls/sys_exit_sendfile64")
int exit_sendfile64(struct trace_event_raw_sys_exit *ctx) { return on_exit(ctx, HT_IO_SENDFILE, 1); }

/* splice(2) to or from a tracked socket: counted, never seen (as in
 * preload: the bytes go from a pipe to the socket inside the kernel). */
SEC("tracepoint/syscalls/sys_exit_splice")
int exit_splice(struct trace_event_raw_sys_exit *ctx)
{
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    __u32 tgid = pid_tgid >> 32;
    long ret = ctx->ret;
    if (!watched(tgid) || ret <= 0)
        return 0;
    struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
    struct ht_conn_key key = { .tgid = tgid, .fd = PT_REGS_PARM3_SYSCALL(regs) };
    __u8 dir = 1;
    struct ht_conn_state *st = bpf_map_lookup_elem(&conns, &key);
    if (!st) {
        key.fd = PT_REGS_PARM1_SYSCALL(regs);
        dir = 0;
        st = bpf_map_lookup_elem(&conns, &key);
        if (!st)
            return 0;
    }
    __u64 off = __sync_fetch_and_add(&st->off[dir], (__u64)ret);
    report_unseen(pid_tgid, key.fd, st->id, dir, off, ret, HT_UNSEEN_SPLICE);
    return 0;
}

/* ---- close, fork, exit ---- */

SEC("tracepoint/syscalls/sys_enter_close")
int enter_close(struct trace_event_raw_sys_enter *ctx)
{
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    __u32 tgid = pid_tgid >> 32;
    if (!watched(tgid))
        return 0;
    struct ht_conn_key key = { .tgid = tgid, .fd = ctx->args[0] };
    struct ht_conn_state *st = bpf_map_lookup_elem(&conns, &key);
    if (!st)
        return 0;
    struct ht_rec_close r = { .end = { st->off[0], st->off[1] } };
    fill(&r.h, HT_REC_CLOSE, 0, pid_tgid, key.fd, st->id, 0, 0);
    bpf_map_delete_elem(&conns, &key);
    forget_skip(&key);
    emit(&r, sizeof(r));
    return 0;
}

struct inherit_ctx {
    __u32 parent;
    __u32 n;
    __s32 fd[HT_BPF_INHERIT_MAX];
};

static long collect_conn(struct bpf_map *map, struct ht_conn_key *key,
                         struct ht_conn_state *st, struct inherit_ctx *ctx)
{
    if (key->tgid != ctx->parent)
        return 0;
    if (ctx->n >= HT_BPF_INHERIT_MAX)
        return 1;
    ctx->fd[ctx->n & (HT_BPF_INHERIT_MAX - 1)] = key->fd;
    ctx->n++;
    return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
    __u32 ptgid = parent->tgid, ctgid = child->tgid;
    if (!follow_children || ptgid == ctgid || !watched(ptgid))
        return 0;
    __u8 one = 1;
    bpf_map_update_elem(&tgids, &ctgid, &one, BPF_ANY);
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    struct ht_rec h;
    fill(&h, HT_REC_FORK, 0, pid_tgid, ctgid, 0, 0, 0);
    emit(&h, sizeof(h));

    /* The child holds the parent's descriptors: its connections too. */
    struct inherit_ctx ic = { .parent = ptgid };
    bpf_for_each_map_elem(&conns, collect_conn, &ic, 0);
    for (int i = 0; i < HT_BPF_INHERIT_MAX; i++) {
        if (i >= ic.n)
            break;
        struct ht_conn_key pk = { .tgid = ptgid, .fd = ic.fd[i] };
        struct ht_conn_state *pst = bpf_map_lookup_elem(&conns, &pk);
        if (!pst)
            continue;
        struct ht_conn_key ck = { .tgid = ctgid, .fd = ic.fd[i] };
        struct ht_conn_state cst = { .id = __sync_fetch_and_add(&next_conn_id, 1) + 1 };
        if (bpf_map_update_elem(&conns, &ck, &cst, BPF_ANY)) {
            count(HT_CNT_CONNS_FULL);
            continue;
        }
        struct ht_rec_inherit r = {
            .parent_id = pst->id, .parent_off = { pst->off[0], pst->off[1] },
        };
        fill(&r.h, HT_REC_INHERIT, 0, pid_tgid, ck.fd, cst.id, 0, 0);
        r.h.tgid = ctgid;
        emit(&r, sizeof(r));
    }
    return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit_task, struct task_struct *task)
{
    __u32 tgid = task->tgid;
    /* The process is gone when its last thread goes. */
    if (!watched(tgid) || task->signal->live.counter > 0)
        return 0;
    if (follow_children && tgid != targ_tgid)
        bpf_map_delete_elem(&tgids, &tgid);
    struct ht_rec h;
    fill(&h, HT_REC_EXIT, 0, bpf_get_current_pid_tgid(), -1, 0, 0, 0);
    h.tgid = tgid;
    emit(&h, sizeof(h));
    return 0;
}
