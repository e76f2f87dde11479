/*
 * files.c - the files a process sent with sendfile, opened again by us to
 * read the body excerpt (attach_private.h). The kernel side records the
 * file's device, inode and offset, and its path the first time it sees it;
 * we open it by path (it works after the process closed it), else through
 * /proc/PID/fd, accept it only if device and inode match, and keep it open
 * for the next response that sends it.
 *
 * Main thread only.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "attach/attach_private.h"

/* Files sendfile sent from, opened by us through /proc/PID/fd/N and kept
 * by device and inode: a server sends the same files again and again, and
 * its own descriptor is usually closed by the time the record is read.
 * Only the very file the kernel saw will do, so a reused fd number is
 * caught; entries unused for FILES_IDLE_NS are closed (a deleted file's
 * space is not held for long). */
#define FILES_MAX 64
#define FILES_IDLE_NS (10 * 1000000000LL)

static struct open_file {
    uint64_t ino;
    uint32_t dev;
    int fd;                         /* -1: free */
    int64_t used;
    char *path;                     /* as the process sees it, for the event; or NULL */
} files[FILES_MAX] = { [0 ... FILES_MAX - 1] = { .fd = -1 } };

static bool same_file(const struct stat *st, uint64_t ino, uint32_t dev)
{
    return st->st_ino == ino && major(st->st_dev) == dev >> 20 &&
           minor(st->st_dev) == (dev & 0xfffff);
}

/* The kernel side sends no path for files we hold (map "files"). */
static void file_known(const struct open_file *f, bool known)
{
    struct ht_file_key k = { .ino = f->ino, .dev = f->dev };
    uint8_t one = 1;
    if (known)
        bpf_map_update_elem(ht_attach.files_fd, &k, &one, BPF_ANY);
    else
        bpf_map_delete_elem(ht_attach.files_fd, &k);
}

static void file_drop(struct open_file *f)
{
    file_known(f, false);
    close(f->fd);
    f->fd = -1;
    free(f->path);
    f->path = NULL;
}


void ht_attach_files_expire(int64_t now, bool all)
{
    for (int i = 0; i < FILES_MAX; i++)
        if (files[i].fd >= 0 && (all || now - files[i].used > FILES_IDLE_NS))
            file_drop(&files[i]);
}

/* The file's path as the kernel side walked it (components from the file
 * up): under /proc/PID/root when proc, else as the process sees it; false
 * when the walk was cut short. */
static bool file_path(const struct ht_rec_sendfile *r, size_t size, bool proc, char *out,
                      size_t outlen)
{
    const uint8_t *comp[HT_BPF_PATH_DEPTH];
    size_t n = 0, len = r->path_len, avail = size - offsetof(struct ht_rec_sendfile, path);
    if (!r->path_ok || !len || len > avail || len > HT_BPF_FILE_PATH)
        return false;
    for (size_t i = 0; i < len && n < HT_BPF_PATH_DEPTH; i += 1 + (uint8_t)r->path[i])
        comp[n++] = (const uint8_t *)&r->path[i];
    if (!outlen)
        return false;
    out[0] = 0;
    int o = proc ? snprintf(out, outlen, "/proc/%u/root", r->h.tgid) : 0;
    while (n-- > 0 && o >= 0 && (size_t)o < outlen)
        o += snprintf(out + o, outlen - (size_t)o, "/%.*s", comp[n][0], (const char *)comp[n] + 1);
    return o > 0 && (size_t)o < outlen;
}

/* Our own descriptor of the file r was sent from (and the path it was
 * first named by): one we hold already, else opened by its path (the
 * process may have closed it), else through the process's fd (a file with
 * no path: deleted, or a path too long). NULL when it cannot be had. */
static const struct open_file *file_for(const struct ht_rec_sendfile *r, size_t size, int64_t now)
{
    struct open_file *slot = &files[0];
    for (int i = 0; i < FILES_MAX; i++) {
        if (files[i].fd >= 0 && files[i].ino == r->ino && files[i].dev == r->dev) {
            files[i].used = now;
            return &files[i];
        }
        if (files[i].fd < 0 || (slot->fd >= 0 && files[i].used < slot->used))
            slot = &files[i];
    }
    char path[HT_BPF_FILE_PATH + 64];
    struct stat st;
    int fd = -1;
    if (file_path(r, size, true, path, sizeof(path)))
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd >= 0 && (fstat(fd, &st) || !same_file(&st, r->ino, r->dev))) {
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        snprintf(path, sizeof(path), "/proc/%u/fd/%d", r->h.tgid, r->in_fd);
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd >= 0 && (fstat(fd, &st) || !same_file(&st, r->ino, r->dev))) {
            close(fd);
            fd = -1;
        }
    }
    if (fd < 0)
        return NULL;
    if (slot->fd >= 0)
        file_drop(slot);
    char name[HT_BPF_FILE_PATH + 1];
    *slot = (struct open_file){ .ino = r->ino, .dev = r->dev, .fd = fd, .used = now,
                                .path = file_path(r, size, false, name, sizeof(name)) ? strdup(name)
                                                                                      : NULL };
    file_known(slot, true);
    return slot;
}

size_t ht_attach_fetch_file(void *ctx, uint64_t off, uint8_t *buf, size_t len)
{
    struct ht_attach_fetch *f = ctx;
    if (f->fd == -2) {
        const struct open_file *of = file_for(f->r, f->size, (int64_t)f->r->h.ts_ns);
        f->fd = of ? of->fd : -1;
    }
    if (f->fd < 0)
        return 0;
    ssize_t got = pread(f->fd, buf, len, (off_t)(f->r->file_off + off));
    return got > 0 ? (size_t)got : 0;
}

bool ht_attach_file_id(const struct ht_rec_sendfile *r, size_t size, struct ht_file_id *id)
{
    const struct open_file *of = file_for(r, size, (int64_t)r->h.ts_ns);
    struct stat st;
    if (!of || fstat(of->fd, &st))
        return false;
    /* Only the first record of a file carries its path (the kernel side
     * sends none for files we hold): the one we opened it by. */
    *id = (struct ht_file_id){ .path = of->path, .ino = r->ino, .dev = r->dev,
                               .size = (uint64_t)st.st_size,
                               .mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 +
                                           st.st_mtim.tv_nsec };
    return true;
}
