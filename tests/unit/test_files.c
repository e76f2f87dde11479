/*
 * test_files.c - the file excerpts the collector keeps per process for
 * FILEDATA records marked KEPT (collector/files.c): a kept record gets the
 * bytes and path of the one that carried them only when its whole key is
 * the same, and never another process's; only records the library says
 * are whole (and of a settled file) are kept.
 */
#include <stdlib.h>
#include <string.h>

#include "collector/files.h"
#include "tap.h"

/* A FILEDATA record in buf: path and bytes after the header, or KEPT. */
static const struct ht_rec_filedata *rec(uint8_t *buf, size_t *size, uint64_t ino, int64_t mtime,
                                         uint64_t file_off, const char *path, const char *bytes,
                                         uint32_t kept_len)
{
    struct ht_rec_filedata *r = (struct ht_rec_filedata *)buf;
    memset(r, 0, sizeof(*r));
    r->h.type = HT_REC_FILEDATA;
    r->ino = ino;
    r->dev = 254u << 20 | 1;
    r->fsize = 20480;
    r->mtime_ns = mtime;
    r->ctime_ns = 500;
    r->file_off = file_off;
    size_t pn = path ? strlen(path) : 0, bn = bytes ? strlen(bytes) : 0;
    if (!path && !bytes) {
        r->flags = HT_FILEDATA_KEPT;
        r->excerpt = kept_len;
    } else {
        r->path_len = (uint16_t)pn;
        r->h.len = (uint32_t)bn;
        r->excerpt = (uint32_t)bn;
        r->flags = HT_FILEDATA_WHOLE;
        memcpy(buf + sizeof(*r), path, pn);
        memcpy(buf + sizeof(*r) + pn, bytes, bn);
    }
    *size = sizeof(*r) + pn + bn;
    return r;
}

static uint8_t buf[256];
static unsigned slot_next;          /* the slot the next record names */

/* ht_files_take of such a record for process tgid. */
static bool take(uint32_t tgid, uint64_t ino, int64_t mtime, uint64_t file_off, const char *path,
                 const char *bytes, uint32_t kept_len, struct ht_file_excerpt *x)
{
    size_t size;
    struct ht_rec_filedata *r =
        (struct ht_rec_filedata *)rec(buf, &size, ino, mtime, file_off, path, bytes, kept_len);
    r->slot = (uint8_t)slot_next;
    return ht_files_take(tgid, r, size, x);
}

static bool got(const struct ht_file_excerpt *x, const char *path, const char *bytes)
{
    return x->len == strlen(bytes) && !memcmp(x->bytes, bytes, x->len) && x->id.path &&
           !strcmp(x->id.path, path);
}

int main(void)
{
    struct ht_file_excerpt x;
    size_t size;

    tap_ok(!take(7, 11, 100, 0, NULL, NULL, 5, &x) && x.len == 0,
           "files: a kept record before any that carried bytes gets none");
    tap_ok(take(7, 11, 100, 0, "/srv/a.bin", "hello", 0, &x) &&
           got(&x, "/srv/a.bin", "hello") && x.id.ino == 11 && x.id.size == 20480,
           "files: a record with path and bytes gives them, and its file's identity");
    tap_ok(take(7, 11, 100, 0, NULL, NULL, 5, &x) &&      /* the record's memory is reused */
           got(&x, "/srv/a.bin", "hello"),
           "files: a later kept record for the same file, offset and length gets them from the slot");
    tap_ok(!take(7, 11, 101, 0, NULL, NULL, 5, &x) && x.len == 0,
           "files: not when the file's mtime differs (changed in place)");
    const struct ht_rec_filedata *k = rec(buf, &size, 11, 100, 0, NULL, NULL, 5);
    ((struct ht_rec_filedata *)buf)->ctime_ns = 501;
    tap_ok(!ht_files_take(7, k, size, &x) && x.len == 0,
           "files: nor when its ctime differs (changed in place, mtime put back)");
    tap_ok(!take(7, 11, 100, 4096, NULL, NULL, 5, &x),
           "files: nor for another offset");
    tap_ok(!take(7, 11, 100, 0, NULL, NULL, 4, &x),
           "files: nor for another length");
    tap_ok(!take(8, 11, 100, 0, NULL, NULL, 5, &x),
           "files: nor for another process");
    ht_files_forget(7);
    tap_ok(!take(7, 11, 100, 0, NULL, NULL, 5, &x) &&
               ht_files_bytes() == 0,
           "files: a process gone takes its slots with it");
    /* A record that is not whole (a short read, a file that changed
     * lately) gives its bytes, but is not kept for later ones. */
    const struct ht_rec_filedata *w = rec(buf, &size, 13, 100, 0, "/srv/b.bin", "hello", 0);
    ((struct ht_rec_filedata *)buf)->flags = 0;
    tap_ok(ht_files_take(7, w, size, &x) && got(&x, "/srv/b.bin", "hello") &&
               !take(7, 13, 100, 0, NULL, NULL, 5, &x),
           "files: a record not marked whole is given but not kept");
    ht_files_forget(7);
    /* A path claiming more bytes than the record has is not read. */
    const struct ht_rec_filedata *r = rec(buf, &size, 12, 100, 0, "/p", "xy", 0);
    ((struct ht_rec_filedata *)buf)->path_len = 200;
    tap_ok(ht_files_take(9, r, size, &x) && !x.id.path && x.len == 0,
           "files: a path longer than the record is ignored, and so are the bytes after it");
    ht_files_forget(9);
    /* Two files in the slots their records name, both kept; a slot out of
     * range keeps nothing and finds nothing. */
    slot_next = 3;
    take(10, 21, 100, 0, "/srv/one", "one", 0, &x);
    slot_next = 4;
    take(10, 22, 100, 0, "/srv/two", "two", 0, &x);
    slot_next = 3;
    bool one = take(10, 21, 100, 0, NULL, NULL, 3, &x) && got(&x, "/srv/one", "one");
    slot_next = 4;
    bool two = take(10, 22, 100, 0, NULL, NULL, 3, &x) && got(&x, "/srv/two", "two");
    tap_ok(one && two, "files: two files in the two slots their records name are both kept");
    slot_next = HT_FILEDATA_SLOTS;
    take(10, 23, 100, 0, "/srv/three", "three", 0, &x);
    tap_ok(!take(10, 23, 100, 0, NULL, NULL, 5, &x),
           "files: a slot out of range keeps nothing and finds nothing");
    ht_files_forget(10);
    slot_next = 0;
    return tap_done();
}
