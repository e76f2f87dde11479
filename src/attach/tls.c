/*
 * tls.c - the target's TLS library, for attach (attach_private.h): find the
 * OpenSSL it runs (libssl mapped from /proc/PID/maps, else its own
 * executable when OpenSSL is linked in statically with its symbols), and
 * put uprobes on SSL_read, SSL_read_ex, SSL_write, SSL_write_ex (entry and
 * return) and SSL_set_fd. The kernel side (httptape.bpf.c, "TLS") turns
 * them into the plaintext records the collector reads for preload too.
 *
 * Threading: the main thread only.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "attach/attach_private.h"
#include "httptape.skel.h"

#define MAX_LINKS 16

static struct bpf_link *links[MAX_LINKS];
static size_t nlinks;

/* The path (under /proc/PID/root, so a chroot or another mount namespace
 * resolves) of the libssl pid has mapped; false when none. */
static bool find_libssl(int pid, char *out, size_t cap)
{
    char path[64], line[4096];
    snprintf(path, sizeof(path), "/proc/%d/maps", pid);
    FILE *f = fopen(path, "re");
    bool found = false;
    while (f && !found && fgets(line, sizeof(line), f)) {
        char *p = strchr(line, '/');
        if (!p || !strstr(p, "/libssl.so"))
            continue;
        p[strcspn(p, "\n")] = 0;
        found = snprintf(out, cap, "/proc/%d/root%s", pid, p) < (int)cap;
    }
    if (f)
        fclose(f);
    return found;
}

static bool probe(struct bpf_program *prog, int pid, const char *bin, const char *func, bool ret)
{
    LIBBPF_OPTS(bpf_uprobe_opts, opts, .func_name = func, .retprobe = ret);
    if (nlinks == MAX_LINKS)
        return false;
    struct bpf_link *l = bpf_program__attach_uprobe_opts(prog, pid, bin, 0, &opts);
    if (!l)
        return false;
    links[nlinks++] = l;
    return true;
}

/* The probes on bin, all or none (half of them would mislead); false
 * when SSL_read is not in it. */
static bool probe_all(struct httptape_bpf *skel, int pid, const char *bin)
{
    const struct { struct bpf_program *prog; const char *func; bool ret; } want[] = {
        { skel->progs.ssl_read, "SSL_read", false },
        { skel->progs.ssl_ret, "SSL_read", true },
        { skel->progs.ssl_read_ex, "SSL_read_ex", false },
        { skel->progs.ssl_ret, "SSL_read_ex", true },
        { skel->progs.ssl_write, "SSL_write", false },
        { skel->progs.ssl_ret, "SSL_write", true },
        { skel->progs.ssl_write_ex, "SSL_write_ex", false },
        { skel->progs.ssl_ret, "SSL_write_ex", true },
        { skel->progs.ssl_set_fd, "SSL_set_fd", false },
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (!probe(want[i].prog, pid, bin, want[i].func, want[i].ret)) {
            ht_attach_tls_detach();
            return false;
        }
    return true;
}

const char *ht_attach_tls_attach(struct httptape_bpf *skel, int pid, bool children)
{
    static char bin[4200];
    /* With --children, every process that maps the library: the programs
     * keep to the ones followed. */
    int target = children ? -1 : pid;
    if (find_libssl(pid, bin, sizeof(bin)) && probe_all(skel, target, bin))
        return strrchr(bin, '/') + 1;
    snprintf(bin, sizeof(bin), "/proc/%d/exe", pid);
    if (probe_all(skel, target, bin))
        return "OpenSSL linked into the executable";
    return NULL;
}

void ht_attach_tls_detach(void)
{
    while (nlinks)
        bpf_link__destroy(links[--nlinks]);
}
