/*
 * cmd_run.c - `httptape run`: validate the flags, start the collector (a
 * process of its own, as the invoking user, that owns the log), put
 * libhttptape.so in front of LD_PRELOAD (once), set the HTTPTAPE_*
 * variables and exec the command, so the server keeps our pid and
 * receives signals directly. The collector ends after the server and every
 * recorded process it started are gone, once it has written their
 * exchanges.
 *
 * The library is found at $HTTPTAPE_LIBRARY, else beside this executable
 * (build/), else where `make install` puts it: first relative to this
 * executable (../lib/TRIPLET/httptape/ from PREFIX/bin, so an install under
 * DESTDIR, or moved whole, works), then at the PKGLIBDIR compiled in
 * (paths.h, mk/install.mk).
 *
 * A command the dynamic loader will not preload into (setuid/setgid to
 * someone else, file capabilities, statically linked) still runs, after
 * one warning line that points to `httptape attach`.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "capture/register.h"
#include "cli/cli.h"
#include "core/config.h"
#include "core/rules.h"
#include "paths.h"                /* generated: $(BUILD)/gen (mk/install.mk) */

static const char usage[] =
    "usage: httptape run [--log FILE] [--max-body BYTES] [--max-header BYTES]\n"
    "                    [--queue N] -- CMD [ARGS...]\n"
    "\n"
    "Run CMD with libhttptape.so preloaded: every HTTP/1.x exchange on the\n"
    "connections it accepts is appended to FILE, one JSON object per line.\n"
    "CMD replaces httptape (same pid, signals go straight to it).\n"
    "\n"
    "  --log FILE          log path (default ./httptape.jsonl; %p = pid), - (the\n"
    "                      collector's stdout), unix:PATH (a Unix stream socket) or\n"
    "                      fd:N (a descriptor of run's, which the server does not get)\n"
    "  --max-body BYTES    body excerpt cap per message (default 4096; 0 = sizes\n"
    "                      only; suffixes k, m: 64k, 1m)\n"
    "  --max-header BYTES  head size limit per message (default 64k)\n"
    "  --queue N           exchanges buffered for the writer (default 4096)\n"
    "\n"
    "Other settings (rotation, statistics interval, inheritance) are HTTPTAPE_*\n"
    "variables: see docs/configuration.md.\n"
    "\n"
    "Flags become HTTPTAPE_LOG, HTTPTAPE_MAX_BODY, HTTPTAPE_MAX_HEADER and\n"
    "HTTPTAPE_QUEUE in CMD's environment; variables already set apply when a\n"
    "flag is not given. Exit: 2 on a bad flag, 127 if CMD cannot be run;\n"
    "otherwise CMD's own status.\n";

/* Where libhttptape.so is; 0 or -ENOENT. */
static int find_library(char *out, size_t outlen)
{
    const char *env = getenv("HTTPTAPE_LIBRARY");
    if (env && env[0]) {
        if (!realpath(env, out) || access(out, R_OK))
            return -ENOENT;
        return 0;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return -ENOENT;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash)
        return -ENOENT;
    *slash = 0;
    static const char *const rel[] = { ".", HT_PKGLIBDIR_FROM_BIN };
    char cand[PATH_MAX * 2];
    for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
        snprintf(cand, sizeof(cand), "%s/%s/libhttptape.so", exe, rel[i]);
        if (realpath(cand, out) && access(out, R_OK) == 0)
            return 0;
    }
    snprintf(cand, sizeof(cand), "%s/libhttptape.so", HT_PKGLIBDIR);
    if (realpath(cand, out) && access(out, R_OK) == 0)
        return 0;
    (void)outlen;
    return -ENOENT;
}

/* Is lib (a real path) one of the entries of an LD_PRELOAD value? Entries
 * are separated by spaces or colons (ld.so(8)) and may be relative. */
static bool preload_has(const char *list, const char *lib)
{
    char *copy = strdup(list), *save = NULL;
    bool found = false;
    for (char *e = copy ? strtok_r(copy, " :", &save) : NULL; e && !found;
         e = strtok_r(NULL, " :", &save)) {
        char real[PATH_MAX];
        found = !strcmp(e, lib) || (realpath(e, real) && !strcmp(real, lib));
    }
    free(copy);
    return found;
}

/* LD_PRELOAD with lib in front, unless it is already listed. */
static int set_preload(const char *lib)
{
    const char *old = getenv("LD_PRELOAD");
    if (!old || !old[0])
        return setenv("LD_PRELOAD", lib, 1);
    if (preload_has(old, lib))
        return 0;
    size_t n = strlen(lib) + 1 + strlen(old) + 1;
    char *v = malloc(n);
    if (!v)
        return -1;
    snprintf(v, n, "%s %s", lib, old);
    int rc = setenv("LD_PRELOAD", v, 1);
    free(v);
    return rc;
}

/* The log's directory must exist and the path must not be a directory, or
 * the app would run unrecorded. A directory made per process (%p in it)
 * can only be checked by the library, later. */
static int check_log_path(const char *path)
{
    char dir[4096];
    struct stat st;
    if (!ht_config_log_is_file(path)) {
        if (ht_config_log_fd_open(path, dir, sizeof(dir)) == 0)
            return 0;
        fprintf(stderr, "httptape run: --log: %s\n", dir);
        return -1;
    }
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        fprintf(stderr, "httptape run: --log: %s is a directory; give a file path\n", path);
        return -1;
    }
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || strstr(dir, "%p"))
        return 0;
    if (slash == dir)
        slash[1] = 0;
    else
        *slash = 0;
    if (stat(dir, &st) || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "httptape run: --log: directory %s does not exist\n", dir);
        return -1;
    }
    return 0;
}

/* The file execvp would run for cmd: cmd itself when it has a slash, else
 * the first executable regular file of that name along PATH. */
static bool resolve_command(const char *cmd, char *out, size_t outlen)
{
    struct stat st;
    if (strchr(cmd, '/'))
        return (size_t)snprintf(out, outlen, "%s", cmd) < outlen;
    const char *path = getenv("PATH");
    if (!path)
        path = "/bin:/usr/bin";
    while (*path) {
        size_t n = strcspn(path, ":");
        int w = n ? snprintf(out, outlen, "%.*s/%s", (int)n, path, cmd)
                  : snprintf(out, outlen, "%s", cmd);          /* "" is the cwd */
        if (w > 0 && (size_t)w < outlen && stat(out, &st) == 0 && S_ISREG(st.st_mode) &&
            access(out, X_OK) == 0)
            return true;
        path += n;
        path += *path == ':';
    }
    return false;
}

/* An ELF file without a program interpreter: no ld.so runs, so nothing
 * reads LD_PRELOAD. false for anything that is not ELF or not readable. */
static bool elf_static(int fd, bool *is_elf)
{
    unsigned char id[EI_NIDENT];
    *is_elf = pread(fd, id, sizeof(id), 0) == (ssize_t)sizeof(id) && !memcmp(id, ELFMAG, SELFMAG);
    if (!*is_elf)
        return false;
    uint64_t phoff;
    unsigned phnum, phentsize;
    if (id[EI_CLASS] == ELFCLASS64) {
        Elf64_Ehdr eh;
        if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh))
            return false;
        phoff = eh.e_phoff, phnum = eh.e_phnum, phentsize = eh.e_phentsize;
    } else if (id[EI_CLASS] == ELFCLASS32) {
        Elf32_Ehdr eh;
        if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh))
            return false;
        phoff = eh.e_phoff, phnum = eh.e_phnum, phentsize = eh.e_phentsize;
    } else {
        return false;
    }
    /* p_type is the first 4-byte member of both Elf32_Phdr and Elf64_Phdr;
     * a foreign byte order is left to exec to refuse. */
    if (phentsize < sizeof(uint32_t) || phnum > 4096)
        return false;
    for (unsigned i = 0; i < phnum; i++) {
        uint32_t type;
        if (pread(fd, &type, sizeof(type), (off_t)(phoff + (uint64_t)i * phentsize)) !=
            (ssize_t)sizeof(type))
            return false;
        if (type == PT_INTERP)
            return false;
    }
    return true;
}

/* Warn (one line, on stderr) when cmd is a program ld.so will not preload
 * into. Only ELF files: the kernel ignores set-id bits and capabilities on
 * scripts, whose interpreter is what runs. */
static void warn_unpreloadable(const char *cmd)
{
    char path[PATH_MAX];
    struct stat st;
    struct statvfs vfs;
    if (!resolve_command(cmd, path, sizeof(path)) || stat(path, &st))
        return;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    bool is_elf = false, is_static = fd >= 0 && elf_static(fd, &is_elf);
    if (fd >= 0)
        close(fd);
    if (fd >= 0 && !is_elf)
        return;
    /* Set-id bits take effect unless the file system is mounted nosuid;
     * file capabilities make the process "secure" unless we are root. */
    bool nosuid = statvfs(path, &vfs) == 0 && (vfs.f_flag & ST_NOSUID);
    bool setuid = !nosuid && (st.st_mode & S_ISUID) && st.st_uid != getuid();
    bool setgid = !nosuid && (st.st_mode & S_ISGID) && (st.st_mode & S_IXGRP) &&
                  st.st_gid != getgid();
    bool caps = !nosuid && getuid() != 0 && getxattr(path, "security.capability", NULL, 0) > 0;
    const char *why = setuid ? "is setuid" : setgid ? "is setgid" :
                      caps ? "has file capabilities" : is_static ? "is statically linked" : NULL;
    if (!why)
        return;
    fprintf(stderr, "httptape run: warning: %s %s, so libhttptape.so cannot be preloaded "
            "into it and nothing will be recorded; starting it anyway (record it with "
            "'httptape attach' instead)\n", path, why);
}

/* Start the collector for the process we are about to become (our pid
 * stays the server's), wait until it listens (bounded), and tell the
 * library where it is (HTTPTAPE_COLLECTOR). It is our grandchild, so the
 * server never has it as a child, in a session of its own, so the
 * terminal's signals are the server's. 0, or -1 when it did not start (the
 * library then starts a collector of its own). */
/* Standard input, output and error open (on /dev/null if they were
 * closed), so that no descriptor of ours takes their numbers. */
static void std_fds_open(void)
{
    for (int fd = 0; fd < 3; fd++)
        if (fcntl(fd, F_GETFD) < 0) {
            int n = open("/dev/null", O_RDWR);
            if (n >= 0 && n != fd) {
                dup2(n, fd);
                close(n);
            }
        }
}

static int start_collector(const struct ht_config *cfg)
{
    struct ht_collect_opts co = { .wait_pidfd = -1, .ring_fd = -1, .ring_pidfd = -1,
                                  .for_pid = getpid() };
    int ready[2], rc = -1, log_fd = ht_config_log_fd(cfg->log_path);
    std_fds_open();
    int me = (int)syscall(SYS_pidfd_open, getpid(), 0);
    if (me < 0 || ht_reg_new(&co.addr, getpid()) || pipe2(ready, O_CLOEXEC)) {
        if (me >= 0)
            close(me);
        return -1;
    }
    fflush(NULL);
    pid_t mid = fork();
    if (mid == 0) {
        if (fork() == 0) {
            setsid();
            prctl(PR_SET_NAME, "httptape-coll");
            /* Only what it needs: stdio, the ready pipe, the server's
             * pidfd, both moved out of the way before anything lands on
             * a low number (either may be 0-2 if run was started with
             * those closed). */
            int r = fcntl(ready[1], F_DUPFD, 10), m = fcntl(me, F_DUPFD, 10);
            int l = log_fd >= 0 ? fcntl(log_fd, F_DUPFD, 10) : -1;
            if (r < 0 || m < 0 || dup2(r, 3) < 0 || dup2(m, 4) < 0 ||
                (l >= 0 && dup2(l, 5) < 0))
                _exit(1);
            int null = open("/dev/null", O_RDWR);
            if (null >= 0 && null != STDIN_FILENO)
                dup2(null, STDIN_FILENO);
            syscall(SYS_close_range, l >= 0 ? 6 : 5, ~0u, 0);
            co.ready_fd = 3;
            co.wait_pidfd = 4;
            /* An fd:N log is ours as fd 5 now; the server will not have it. */
            static struct ht_config ccfg;
            ccfg = *cfg;
            if (l >= 0)
                snprintf(ccfg.log_path, sizeof(ccfg.log_path), "fd:5");
            _exit(ht_collect(&ccfg, &co));
        }
        _exit(0);
    }
    close(ready[1]);
    close(me);
    if (mid > 0)
        waitpid(mid, NULL, 0);
    struct pollfd p = { .fd = ready[0], .events = POLLIN };
    char b;
    if (mid > 0 && poll(&p, 1, 5000) == 1 && read(ready[0], &b, 1) == 1) {
        char v[128];
        ht_reg_format(&co.addr, v, sizeof(v));
        setenv("HTTPTAPE_COLLECTOR", v, 1);
        rc = 0;
    }
    close(ready[0]);
    return rc;
}

int ht_cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        { "log", required_argument, NULL, 'l' },
        { "max-body", required_argument, NULL, 'b' },
        { "max-header", required_argument, NULL, 'H' },
        { "queue", required_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    struct ht_config cfg;
    char err[512];
    int c;

    memset(&cfg, 0, sizeof(cfg));
    optind = 1;
    /* "+": stop at the first non-option, which is the command. */
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        const char *var = c == 'l' ? "HTTPTAPE_LOG" : c == 'b' ? "HTTPTAPE_MAX_BODY" :
                          c == 'H' ? "HTTPTAPE_MAX_HEADER" : "HTTPTAPE_QUEUE";
        const char *flag = c == 'l' ? "--log" : c == 'b' ? "--max-body" :
                           c == 'H' ? "--max-header" : "--queue";
        switch (c) {
        case 'l': case 'b': case 'H': case 'q':
            if (ht_config_set(&cfg, var, optarg, err, sizeof(err))) {
                /* err reads "HTTPTAPE_X: reason"; name the flag instead. */
                const char *why = strchr(err, ':');
                fprintf(stderr, "httptape run: %s%s\n", flag, why ? why : err);
                return 2;
            }
            if (c == 'l') {
                if (check_log_path(cfg.log_path))
                    return 2;
                setenv(var, cfg.log_path, 1);
            } else {
                setenv(var, optarg, 1);
            }
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs("httptape run: see 'httptape run --help'\n", stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        fputs("httptape run: no command given\n", stderr);
        fputs(usage, stderr);
        return 2;
    }

    /* Settings from the environment must be valid too: the library would
     * otherwise only say so from inside the app. */
    struct ht_config envcfg;
    if (ht_config_from_env(&envcfg, err, sizeof(err)) || ht_rules_load(err, sizeof(err))) {
        fprintf(stderr, "httptape run: %s\n", err);
        return 2;
    }

    char lib[PATH_MAX];
    if (find_library(lib, sizeof(lib))) {
        fputs("httptape run: cannot find libhttptape.so (beside this program, in "
              HT_PKGLIBDIR_FROM_BIN "/ from it, in " HT_PKGLIBDIR
              "/, or at $HTTPTAPE_LIBRARY)\n", stderr);
        return 1;
    }
    /* ld.so splits LD_PRELOAD at spaces and colons, with no quoting. */
    if (strpbrk(lib, " :")) {
        fprintf(stderr, "httptape run: the library path '%s' contains a space or colon, "
                "which LD_PRELOAD cannot carry; install httptape elsewhere\n", lib);
        return 1;
    }
    if (set_preload(lib)) {
        perror("httptape run: LD_PRELOAD");
        return 1;
    }
    warn_unpreloadable(argv[optind]);
    if (getpid() == 1)
        fputs("httptape run: warning: this is PID 1 (a container's init): when the server "
              "exits, the kernel ends every process of the namespace, the collector too, "
              "before it has written what it holds; run it under an init (docker run --init, "
              "tini)\n", stderr);
    if (start_collector(&envcfg))
        fputs("httptape run: the collector did not start; the server's processes start "
              "their own\n", stderr);
    /* The audit log's descriptor is the collector's alone (a collector the
     * library starts cannot use it: it says so and counts the drops).
     * 0-2 are the server's own standard streams. */
    int log_fd = ht_config_log_fd(envcfg.log_path);
    if (log_fd > 2)
        close(log_fd);
    execvp(argv[optind], argv + optind);
    fprintf(stderr, "httptape run: %s: %s\n", argv[optind], strerror(errno));
    return 127;
}
