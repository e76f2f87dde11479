/*
 * logpath.c - the log path walked and checked one directory at a time, and
 * the log file opened and checked by what was opened (logpath.h).
 *
 * No state; safe from any thread.
 */
#include "core/logpath.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define PATH_BUF 4096

static const char *kind(mode_t m)
{
    return S_ISFIFO(m) ? "a FIFO" : S_ISDIR(m) ? "a directory" : S_ISLNK(m) ? "a symbolic link" :
           S_ISSOCK(m) ? "a socket" : S_ISCHR(m) || S_ISBLK(m) ? "a device" : "not a plain file";
}

/* Is the directory st (shown as shown) one the log may sit in? */
static int check_dir(const struct stat *st, const char *shown, char *why, size_t whylen)
{
    uid_t euid = geteuid();
    if (st->st_uid != 0 && st->st_uid != euid) {
        snprintf(why, whylen, "directory %s is owned by uid %u, neither root nor this process's "
                 "uid %u", shown, (unsigned)st->st_uid, (unsigned)euid);
        return -EPERM;
    }
    if ((st->st_mode & (S_IWGRP | S_IWOTH)) && !(st->st_mode & S_ISVTX)) {
        snprintf(why, whylen, "directory %s (mode %04o) is writable by %s and has no sticky bit",
                 shown, (unsigned)(st->st_mode & 07777),
                 st->st_mode & S_IWOTH ? "others" : "its group");
        return -EPERM;
    }
    return 0;
}

/* Step from directory fd into its entry comp (shown as shown): the new
 * directory's fd, checked, or -errno. */
static int step(int fd, const char *comp, const char *shown, char *why, size_t whylen)
{
    struct stat st;
    int nfd = openat(fd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (nfd < 0) {
        int e = errno;
        if (fstatat(fd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
            snprintf(why, whylen, "%s is a symbolic link; give the real directory", shown);
        else
            snprintf(why, whylen, "directory %s: %s", shown, strerror(e));
        return -e;
    }
    if (fstat(nfd, &st) || !S_ISDIR(st.st_mode)) {
        snprintf(why, whylen, "%s is %s, not a directory", shown, kind(st.st_mode));
        close(nfd);
        return -ENOTDIR;
    }
    int rc = check_dir(&st, shown, why, whylen);
    if (rc) {
        close(nfd);
        return rc;
    }
    return nfd;
}

int ht_logpath_dir(const char *path, const char **name, char *why, size_t whylen)
{
    char shown[PATH_BUF];
    bool abs = path[0] == '/';
    size_t len = strlen(path), o = 0;
    if (len == 0 || len >= PATH_BUF) {
        snprintf(why, whylen, "%s", len ? "path too long" : "empty path");
        return -ENAMETOOLONG;
    }
    if (len && path[len - 1] == '/') {
        snprintf(why, whylen, "%s names a directory; give a file path", path);
        return -EISDIR;
    }
    int rc = step(AT_FDCWD, abs ? "/" : ".", abs ? "/" : ".", why, whylen);
    if (rc < 0)
        return rc;
    int fd = rc;
    const char *last = strrchr(path, '/');
    last = last ? last + 1 : path;
    const char *p = path;
    if (!abs) {
        shown[0] = '.';
        o = 1;
    }
    while (p < last) {
        while (*p == '/')
            p++;
        const char *end = strchr(p, '/');
        if (!end || p >= last)
            break;
        size_t n = (size_t)(end - p);
        char comp[PATH_BUF];
        memcpy(comp, p, n);
        comp[n] = 0;
        p = end;
        if (n == 0 || !strcmp(comp, "."))
            continue;
        o += (size_t)snprintf(shown + o, sizeof(shown) - o, "/%s", comp);
        rc = step(fd, comp, shown, why, whylen);
        close(fd);
        if (rc < 0)
            return rc;
        fd = rc;
    }
    *name = last;
    return fd;
}

int ht_logpath_check_file(const struct stat *st, char *why, size_t whylen)
{
    uid_t euid = geteuid();
    if (!S_ISREG(st->st_mode)) {
        snprintf(why, whylen, "it is %s, not a regular file", kind(st->st_mode));
        return -EINVAL;
    }
    if (st->st_uid != euid) {
        snprintf(why, whylen, "it is owned by uid %u, not by this process's uid %u",
                 (unsigned)st->st_uid, (unsigned)euid);
        return -EPERM;
    }
    if (st->st_nlink != 1) {
        snprintf(why, whylen, "it has %lu links (a hard link); the log must have one",
                 (unsigned long)st->st_nlink);
        return -EMLINK;
    }
    return 0;
}

int ht_logpath_open(int dir, const char *name, mode_t mode, struct stat *st,
                    char *why, size_t whylen)
{
    /* Judge what is there before opening it (opening a device or a FIFO
     * may do something); what was opened is judged again below. */
    if (fstatat(dir, name, st, AT_SYMLINK_NOFOLLOW) == 0) {
        int rc = ht_logpath_check_file(st, why, whylen);
        if (rc)
            return rc;
    }
    int fd = openat(dir, name, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW |
                    O_NONBLOCK | O_NOCTTY, mode);
    if (fd < 0) {
        int e = errno;
        snprintf(why, whylen, "%s", e == ELOOP ? "it is a symbolic link" :
                 e == ENXIO ? "it is not a regular file" : strerror(e));
        return -e;
    }
    int rc;
    if (fstat(fd, st)) {
        rc = -errno;
        snprintf(why, whylen, "%s", strerror(errno));
    } else if ((rc = ht_logpath_check_file(st, why, whylen)) == 0 &&
               fcntl(fd, F_SETFL, O_APPEND)) {
        rc = -errno;                    /* O_NONBLOCK was for the open only */
        snprintf(why, whylen, "%s", strerror(errno));
    }
    if (rc) {
        close(fd);
        return rc;
    }
    return fd;
}
