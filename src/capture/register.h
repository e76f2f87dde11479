/*
 * register.h - how a recorded process hands its ring to the collector.
 *
 * The collector listens on an abstract Unix socket ("\0httptape-<name>")
 * and knows a 128-bit token; both travel to recorded processes in
 * HTTPTAPE_COLLECTOR="<name>:<token hex>" (or in memory, to forked
 * children). A process registers once: it connects, sends one hello with
 * its ring's memfd and a pidfd of itself (SCM_RIGHTS), and closes the
 * socket. Nothing of ours stays open in the process: the ring lives on in
 * its mapping, the collector learns of the process's exit from the pidfd.
 *
 * The token is what the collector trusts: abstract socket names are
 * visible in /proc/net/unix, so anyone may connect, but only a process
 * that was given the token (through the environment or memory of a
 * recorded process) can have its ring read into the log.
 *
 * Client side: raw system calls only, no allocation, never blocks (a full
 * backlog is a failed registration); safe in a hook and in a forked child
 * of a multi-threaded process. Server side: the collector's one thread.
 */
#ifndef HT_CAPTURE_REGISTER_H
#define HT_CAPTURE_REGISTER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HT_REG_NAME_MAX 48          /* name part of the address */
#define HT_REG_TOKEN_LEN 16

struct ht_reg_addr {
    char name[HT_REG_NAME_MAX + 1];
    uint8_t token[HT_REG_TOKEN_LEN];
};

/* The value of HTTPTAPE_COLLECTOR for a, into out (at least
 * HT_REG_NAME_MAX + 2 * HT_REG_TOKEN_LEN + 2 bytes). */
void ht_reg_format(const struct ht_reg_addr *a, char *out, size_t outlen);

/* Parse an HTTPTAPE_COLLECTOR value. 0 or -EINVAL. */
int ht_reg_parse(const char *s, struct ht_reg_addr *a);

/* A new address: name from pid and random bytes, a random token
 * (getrandom). 0 or -errno. */
int ht_reg_new(struct ht_reg_addr *a, int pid);

/* ---- recorded process ---- */

struct ht_ring;

/* After the ring in the same memfd: the skip table, written by the
 * collector, read by the recorded process. A connection's slot (its id
 * modulo HT_SKIP_SLOTS) says that body bytes before stream offsets to[]
 * are past the excerpt cap: the process need not copy them into the ring,
 * only count them. The collector writes id 0, then to[], then the id; a
 * reader trusts to[] only when it read the same id before and after. */
#define HT_SKIP_SLOTS 1024
struct ht_skip_slot {
    _Atomic uint64_t id;
    _Atomic uint64_t to[2];
};
#define HT_SKIP_BYTES (HT_SKIP_SLOTS * sizeof(struct ht_skip_slot))

/* Bytes of the memfd of a ring of data_size bytes: ring, then skips. */
size_t ht_reg_map_size(uint32_t data_size);

/* The skip table of a mapping of ht_reg_map_size(data_size) bytes. */
struct ht_skip_slot *ht_reg_skips(void *map, uint32_t data_size);

/* A new ring of data_size bytes in a sealed memfd (it can no longer shrink
 * or grow), mapped and formatted for pid. 0 with *r, *map and *fd set, or
 * -errno. Raw system calls; the fd is close-on-exec. */
int ht_reg_ring_new(uint32_t data_size, int pid, struct ht_ring *r, void **map, int *fd);

/* Register a ring (ring_fd: its memfd, data_size bytes of data) for the
 * calling process with the collector at a. 0 or -errno (-ECONNREFUSED:
 * no collector listens there any more). Closes nothing of the caller's. */
int ht_reg_send(const struct ht_reg_addr *a, int ring_fd, uint32_t data_size);

/* ---- collector ---- */

/* Listen at a: the socket fd (non-blocking, close-on-exec) or -errno. */
int ht_reg_listen(const struct ht_reg_addr *a);

struct ht_reg_hello {
    int ring_fd, pid_fd;            /* owned by the caller now; -1 if absent */
    int32_t pid;                    /* as the kernel says (SO_PEERCRED) */
    uint32_t uid;
    uint32_t data_size;
};

/* Take one registration off the listening socket. 1 with *h filled, 0 when
 * none is waiting, -EPERM for a caller without the token (its fds closed),
 * other -errno on failure. */
int ht_reg_accept(int lfd, const struct ht_reg_addr *a, struct ht_reg_hello *h);

#endif
