/*
 * proc.c - what is already there when attach starts, found in /proc
 * (attach_private.h): the process's descendants (with --children), and the
 * connections each has accepted and still holds, which are joined: the
 * kernel side starts following them, and conns.c logs them from their next
 * message on. A connection is one the process accepted when it is an
 * established TCP socket on a port the process listens on, or a connected
 * Unix stream socket on a path it listens on. Addresses come from
 * /proc/PID/net/tcp, tcp6 and unix.
 *
 * Main thread only.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "attach/attach_private.h"

struct sockfd {
    unsigned long ino;
    int fd;
};

struct procsocks {
    struct sockfd *v;
    size_t n, cap;
};

static int sock_fd(const struct procsocks *ps, unsigned long ino)
{
    for (size_t i = 0; i < ps->n; i++)
        if (ps->v[i].ino == ino)
            return ps->v[i].fd;
    return -1;
}

static int list_socket_fds(int tgid, struct procsocks *ps)
{
    char path[64], link[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", tgid);
    DIR *d = opendir(path);
    if (!d)
        return -errno;
    struct dirent *e;
    while ((e = readdir(d))) {
        char lp[384];
        unsigned long ino;
        if (e->d_name[0] == '.')
            continue;
        snprintf(lp, sizeof(lp), "%s/%s", path, e->d_name);
        ssize_t n = readlink(lp, link, sizeof(link) - 1);
        if (n <= 0)
            continue;
        link[n] = 0;
        if (sscanf(link, "socket:[%lu]", &ino) != 1)
            continue;
        if (ps->n == ps->cap) {
            size_t cap = ps->cap ? ps->cap * 2 : 64;
            struct sockfd *v = realloc(ps->v, cap * sizeof(*v));
            if (!v)
                break;
            ps->v = v;
            ps->cap = cap;
        }
        ps->v[ps->n++] = (struct sockfd){ .ino = ino, .fd = atoi(e->d_name) };
    }
    closedir(d);
    return 0;
}

/* /proc/net/tcp prints each 32-bit word of an address as the host-order
 * hex of its bytes in memory. */
static void proc_addr(const char *hex, uint8_t *out, size_t words)
{
    for (size_t w = 0; w < words; w++) {
        char part[9];
        memcpy(part, hex + 8 * w, 8);
        part[8] = 0;
        uint32_t v = (uint32_t)strtoul(part, NULL, 16);
        memcpy(out + 4 * w, &v, 4);
    }
}

/* Try to make fd of tgid a tracked (joined) connection. */
static void join_one(int tgid, int fd, unsigned long ino, const struct ht_endpoints *ep)
{
    static uint64_t joined_seq;
    struct ht_conn_key key = { .tgid = (uint32_t)tgid, .fd = fd };
    struct ht_conn_state st = { .id = HT_ID_JOINED | ++joined_seq };
    if (bpf_map_update_elem(ht_attach.conns_fd, &key, &st, BPF_NOEXIST))
        return;                     /* accepted after we attached: tracked already */
    /* The fd may have been closed and reused since we listed it. */
    char path[64], link[64], want[64];
    snprintf(path, sizeof(path), "/proc/%d/fd/%d", tgid, fd);
    snprintf(want, sizeof(want), "socket:[%lu]", ino);
    ssize_t n = readlink(path, link, sizeof(link) - 1);
    if (n <= 0 || (link[n] = 0, strcmp(link, want))) {
        struct ht_conn_state cur;
        if (bpf_map_lookup_elem(ht_attach.conns_fd, &key, &cur) == 0 && cur.id == st.id)
            bpf_map_delete_elem(ht_attach.conns_fd, &key);
        return;
    }
    ht_feed_join(st.id, (uint32_t)tgid, fd, ep);
}

static void join_inet(int tgid, const struct procsocks *ps, const char *file, int family)
{
    char path[64], line[512];
    snprintf(path, sizeof(path), "/proc/%d/net/%s", tgid, file);
    size_t words = family == AF_INET ? 1 : 4;
    int listen_ports[256], nlisten = 0;
    for (int pass = 0; pass < 2; pass++) {
        FILE *f = fopen(path, "re");
        if (!f)
            return;
        if (!fgets(line, sizeof(line), f)) {
            fclose(f);
            return;
        }
        while (fgets(line, sizeof(line), f)) {
            char la[40], ra[40];
            unsigned lport, rport, state;
            unsigned long ino;
            if (sscanf(line, " %*d: %39[0-9A-Fa-f]:%x %39[0-9A-Fa-f]:%x %x %*s %*s %*s %*s %*s %lu",
                       la, &lport, ra, &rport, &state, &ino) != 6)
                continue;
            int fd = sock_fd(ps, ino);
            if (fd < 0)
                continue;
            if (pass == 0 && state == 0x0A && nlisten < 256) {
                listen_ports[nlisten++] = (int)lport;
            } else if (pass == 1 && state == 0x01) {
                bool server = false;
                for (int i = 0; i < nlisten && !server; i++)
                    server = listen_ports[i] == (int)lport;
                if (!server)
                    continue;       /* a connection it made, not one it accepted */
                uint8_t l[16] = { 0 }, r[16] = { 0 };
                proc_addr(la, l, words);
                proc_addr(ra, r, words);
                struct ht_endpoints ep = { 0 };
                ht_feed_ep_inet(&ep, family, l, (int)lport, r, (int)rport);
                join_one(tgid, fd, ino, &ep);
            }
        }
        fclose(f);
    }
}

static void join_unix(int tgid, const struct procsocks *ps)
{
    char path[64], line[512];
    snprintf(path, sizeof(path), "/proc/%d/net/unix", tgid);
    char (*listening)[HT_BPF_PATH_MAX] = calloc(64, HT_BPF_PATH_MAX);
    int nlisten = 0;
    if (!listening)
        return;
    for (int pass = 0; pass < 2; pass++) {
        FILE *f = fopen(path, "re");
        if (!f)
            break;
        if (!fgets(line, sizeof(line), f)) {
            fclose(f);
            break;
        }
        while (fgets(line, sizeof(line), f)) {
            unsigned flags, type, st;
            unsigned long ino;
            char sp[HT_BPF_PATH_MAX] = "";
            if (sscanf(line, "%*s %*s %*s %x %x %x %lu %107s", &flags, &type, &st, &ino, sp) < 4 ||
                type != 1 || sp[0] != '/')
                continue;
            int fd = sock_fd(ps, ino);
            if (fd < 0)
                continue;
            if (pass == 0 && (flags & 0x10000) && nlisten < 64) {
                snprintf(listening[nlisten++], HT_BPF_PATH_MAX, "%s", sp);
            } else if (pass == 1 && st == 3 && !(flags & 0x10000)) {
                bool server = false;
                for (int i = 0; i < nlisten && !server; i++)
                    server = !strcmp(listening[i], sp);
                if (!server)
                    continue;
                struct ht_endpoints ep = { 0 };
                ht_feed_ep_unix(&ep, sp);
                join_one(tgid, fd, ino, &ep);
            }
        }
        fclose(f);
    }
    free(listening);
}

/* The connections tgid had already accepted when we attached. */
/* pid's children (/proc/PID/task/TID/children lists them per thread), up
 * to max into out; how many. */
static size_t children_of(int pid, int *out, size_t max)
{
    char path[64];
    size_t n = 0;
    snprintf(path, sizeof(path), "/proc/%d/task", pid);
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && n < max && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char cp[384];
        snprintf(cp, sizeof(cp), "%s/%s/children", path, e->d_name);
        FILE *f = fopen(cp, "re");
        int child;
        while (f && n < max && fscanf(f, "%d", &child) == 1)
            out[n++] = child;
        if (f)
            fclose(f);
    }
    if (d)
        closedir(d);
    return n;
}

/* The inodes of the TCP sockets tgid listens on (/proc/TGID/net/tcp, tcp6
 * state 0A), among its fds ps; up to max. */
static size_t listening_inodes(int tgid, const struct procsocks *ps, unsigned long *out, size_t max)
{
    static const char *const files[] = { "tcp", "tcp6" };
    size_t n = 0;
    for (int k = 0; k < 2; k++) {
        char path[64], line[512];
        snprintf(path, sizeof(path), "/proc/%d/net/%s", tgid, files[k]);
        FILE *f = fopen(path, "re");
        if (!f)
            continue;
        while (fgets(line, sizeof(line), f) && n < max) {
            unsigned state;
            unsigned long ino;
            if (sscanf(line, " %*d: %*[0-9A-Fa-f]:%*x %*[0-9A-Fa-f]:%*x %x %*s %*s %*s %*s %*s %lu",
                       &state, &ino) == 2 && state == 0x0A && sock_fd(ps, ino) >= 0)
                out[n++] = ino;
        }
        fclose(f);
    }
    return n;
}

size_t ht_attach_accepting_children(int pid, int *out, size_t max)
{
    struct procsocks ps = { 0 };
    unsigned long listen[64];
    size_t nl = 0, nk = 0;
    if (list_socket_fds(pid, &ps) == 0)
        nl = listening_inodes(pid, &ps, listen, 64);
    free(ps.v);
    if (!nl)
        return 0;
    int kids[256];
    size_t nc = children_of(pid, kids, 256);
    for (size_t c = 0; c < nc && nk < max; c++) {
        struct procsocks cs = { 0 };
        bool shares = false;
        if (list_socket_fds(kids[c], &cs) == 0)
            for (size_t i = 0; i < nl && !shares; i++)
                shares = sock_fd(&cs, listen[i]) >= 0;
        free(cs.v);
        if (shares)
            out[nk++] = kids[c];
    }
    return nk;
}

static void join_existing(int tgid)
{
    struct procsocks ps = { 0 };
    if (list_socket_fds(tgid, &ps)) {
        ht_attach_say("cannot list the open files of pid %d (%s): connections already open "
                      "are not recorded", tgid, strerror(errno));
        return;
    }
    join_inet(tgid, &ps, "tcp", AF_INET);
    join_inet(tgid, &ps, "tcp6", AF_INET6);
    join_unix(tgid, &ps);
    free(ps.v);
}

/* pid and, with --children, its descendants now alive; each is followed
 * and its open connections are joined. */
void ht_attach_follow_existing(int pid, bool children)
{
    int *todo = malloc(sizeof(int) * 4096);
    size_t n = 0;
    if (!todo)
        return;
    todo[n++] = pid;
    for (size_t i = 0; i < n; i++) {
        if (children) {
            uint8_t one = 1;
            uint32_t t = (uint32_t)todo[i];
            bpf_map_update_elem(ht_attach.tgids_fd, &t, &one, BPF_ANY);
        }
        join_existing(todo[i]);
        if (!children)
            continue;
        n += children_of(todo[i], todo + n, 4096 - n);
    }
    free(todo);
}
