/*
 * spawn.c - a collector for this process (spawn.h).
 *
 * Everything after the first clone runs in a copy of a possibly
 * multi-threaded process whose other threads may hold libc's locks: only
 * raw system calls there, on memory prepared before the clone.
 */
#include "preload/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/close_range.h>

#define ENV_MAX 64

static _Noreturn void grandchild(const char *bin, char *const *argv, char *const *envp, int ring_fd,
                                 int pidfd)
{
    syscall(SYS_setsid);
    /* Signals were blocked across the clones (no handler of the app may
     * run in a copy of it); the collector starts with none blocked. */
    uint64_t none = 0;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof(none));
    /* Out of the way first, so that neither lands on the other's number. */
    long r = syscall(SYS_fcntl, ring_fd, F_DUPFD, 10L);
    long p = syscall(SYS_fcntl, pidfd, F_DUPFD, 10L);
    long null = syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDWR);
    /* stdout stays the app's: the log is there when HTTPTAPE_LOG is "-"
     * (the collector writes nothing else on it). */
    if (r < 0 || p < 0 || null < 0 || syscall(SYS_dup3, r, 3, 0) < 0 || syscall(SYS_dup3, p, 4, 0) < 0 ||
        syscall(SYS_dup3, null, 0, 0) < 0)
        syscall(SYS_exit_group, 126);
    syscall(SYS_close_range, 5, ~0u, 0);
    syscall(SYS_execve, bin, argv, envp);
    syscall(SYS_exit_group, 127);
    __builtin_unreachable();
}

int ht_spawn_collector(const char *bin, char *const *env, const struct ht_reg_addr *a, int ring_fd)
{
    if (!bin || !bin[0])
        return -ENOENT;
    static char coll[HT_REG_NAME_MAX + 2 * HT_REG_TOKEN_LEN + 32], pidarg[24];
    char *envp[ENV_MAX + 2];
    size_t n = 0;
    memcpy(coll, "HTTPTAPE_COLLECTOR=", 19);
    ht_reg_format(a, coll + 19, sizeof(coll) - 19);
    for (; env && env[n] && n < ENV_MAX; n++)
        envp[n] = env[n];
    envp[n++] = coll;
    envp[n] = NULL;
    snprintf(pidarg, sizeof(pidarg), "%ld", (long)syscall(SYS_getpid));
    char *argv[] = { "httptape", "collect", "--for", pidarg, NULL };

    int pidfd = (int)syscall(SYS_pidfd_open, (long)syscall(SYS_getpid), 0);
    if (pidfd < 0)
        return -errno;
    uint64_t all = ~0ull, old = 0;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, sizeof(all));
    /* Exit signal 0: no SIGCHLD for the app, and its wait() skips it. */
    long mid = syscall(SYS_clone, 0L, 0L, 0L, 0L, 0L);
    if (mid == 0) {
        long g = syscall(SYS_clone, (long)SIGCHLD, 0L, 0L, 0L, 0L);
        if (g == 0)
            grandchild(bin, argv, envp, ring_fd, pidfd);
        syscall(SYS_exit_group, g < 0 ? 1 : 0);
    }
    int rc = mid < 0 ? -errno : 0;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, NULL, sizeof(old));
    if (mid > 0) {
        int st = 0;
        long w;
        do
            w = syscall(SYS_wait4, mid, &st, __WCLONE, NULL);
        while (w < 0 && errno == EINTR);
        if (w == mid && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
            rc = -ECHILD;
    }
    syscall(SYS_close, pidfd);
    return rc;
}
