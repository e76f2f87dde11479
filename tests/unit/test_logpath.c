/*
 * test_logpath.c - the log path rule (core/logpath.h, docs/security.md):
 * in a scratch directory, what is opened and what is refused, and why.
 * Ownership by another user needs root and is left to security.bats.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/logpath.h"
#include "tap.h"

static char top[64];
static char why[HT_LOGPATH_WHY];

/* Open top/rel as the log: the fd, or -errno with why filled. */
static int open_log(const char *rel)
{
    char path[256];
    const char *name;
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", top, rel);
    why[0] = 0;
    int dir = ht_logpath_dir(path, &name, why, sizeof(why));
    if (dir < 0)
        return dir;
    int fd = ht_logpath_open(dir, name, 0600, &st, why, sizeof(why));
    close(dir);
    return fd;
}

static void in(const char *rel, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", top, rel);
}

static void refused(const char *rel, const char *reason)
{
    int fd = open_log(rel);
    tap_ok(fd < 0 && strstr(why, reason), "%s is refused: %s", rel, reason);
    if (fd >= 0)
        close(fd);
    else if (!strstr(why, reason))
        tap_diag("why: %s", why);
}

int main(void)
{
    char a[256], b[256];
    snprintf(top, sizeof(top), "/tmp/ht-logpath.XXXXXX");
    if (!mkdtemp(top))
        return 1;
    umask(022);

    int fd = open_log("fresh.jsonl");
    struct stat st;
    tap_ok(fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0600,
           "a new log is created 0600 (%s)", why);
    tap_ok(fd >= 0 && !(fcntl(fd, F_GETFL) & O_NONBLOCK), "the log fd is blocking again");
    if (fd >= 0)
        close(fd);
    fd = open_log("fresh.jsonl");
    tap_ok(fd >= 0, "an existing log of ours is opened again");
    if (fd >= 0)
        close(fd);

    in("fifo", a, sizeof(a));
    mkfifo(a, 0600);
    refused("fifo", "it is a FIFO, not a regular file");

    in("fresh.jsonl", a, sizeof(a));
    in("hard", b, sizeof(b));
    (void)!link(a, b);
    refused("hard", "it has 2 links");

    in("sym", b, sizeof(b));
    (void)!symlink(a, b);
    refused("sym", "it is a symbolic link");

    in("real", a, sizeof(a));
    mkdir(a, 0755);
    in("linkdir", b, sizeof(b));
    (void)!symlink(a, b);
    refused("linkdir/x.jsonl", "linkdir is a symbolic link");

    in("open", a, sizeof(a));
    mkdir(a, 0755);
    chmod(a, 0777);
    refused("open/x.jsonl", "(mode 0777) is writable by others and has no sticky bit");
    chmod(a, 0775);
    refused("open/x.jsonl", "(mode 0775) is writable by its group");
    chmod(a, 01777);
    fd = open_log("open/x.jsonl");
    tap_ok(fd >= 0, "a sticky world-writable directory (like /tmp) is fine (%s)", why);
    if (fd >= 0)
        close(fd);
    fd = open_log("./real/../open//x.jsonl");
    tap_ok(fd >= 0, "'.', '..' and '//' components are walked (%s)", why);
    if (fd >= 0)
        close(fd);
    refused("real/", "names a directory");
    refused("missing/x.jsonl", "No such file or directory");

    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
    (void)!system(cmd);
    return tap_done();
}
