/*
 * files.c - the file excerpts a process sent once and then refers to
 * (files.h). Processes are kept in a small hash table by tgid; each has
 * HT_FILEDATA_SLOTS slots, each record naming its own, filled in record
 * order, which is the order the library filled its own (it marks a slot
 * only after reserving the record that carries the bytes), so a slot here
 * holds what the library's says unless a record was lost or two of its
 * threads raced: the key is checked every time, and a mismatch gives no
 * bytes rather than wrong ones.
 */
#include "collector/files.h"

#include <stdlib.h>
#include <string.h>

#define PROC_BUCKETS 256

struct slot {
    uint64_t ino, fsize, file_off;
    int64_t mtime_ns, ctime_ns;
    uint32_t dev, len;
    bool used;
    char *path;                     /* NULL when the record named none */
    uint8_t *bytes;                 /* len bytes */
};

struct proc_files {
    uint32_t tgid;
    struct proc_files *next;
    struct slot slots[HT_FILEDATA_SLOTS];
};

static struct proc_files *procs[PROC_BUCKETS];
static size_t held;                 /* bytes of paths and excerpts kept */

static struct proc_files **bucket(uint32_t tgid)
{
    return &procs[(tgid * 2654435761u) >> 24];
}

static struct proc_files *proc_of(uint32_t tgid, bool make)
{
    struct proc_files **b = bucket(tgid);
    for (struct proc_files *p = *b; p; p = p->next)
        if (p->tgid == tgid)
            return p;
    if (!make)
        return NULL;
    struct proc_files *p = calloc(1, sizeof(*p));
    if (p) {
        p->tgid = tgid;
        p->next = *b;
        *b = p;
    }
    return p;
}

static void slot_clear(struct slot *s)
{
    if (s->bytes)
        held -= s->len;
    if (s->path)
        held -= strlen(s->path) + 1;
    free(s->path);
    free(s->bytes);
    memset(s, 0, sizeof(*s));
}

static bool same_key(const struct slot *s, const struct ht_rec_filedata *r)
{
    return s->used && s->ino == r->ino && s->dev == r->dev && s->fsize == r->fsize &&
           s->mtime_ns == r->mtime_ns && s->ctime_ns == r->ctime_ns &&
           s->file_off == r->file_off && s->len == r->excerpt;
}

static void id_of(const struct ht_rec_filedata *r, const char *path, struct ht_file_id *id)
{
    *id = (struct ht_file_id){ .path = path, .ino = r->ino, .size = r->fsize, .dev = r->dev,
                               .mtime_ns = r->mtime_ns };
}

/* Keep what r carries in its slot (replacing what was there). */
static void keep(uint32_t tgid, const struct ht_rec_filedata *r, const char *path,
                 const uint8_t *bytes, size_t len)
{
    struct proc_files *p = proc_of(tgid, true);
    if (!p)
        return;
    if (r->slot >= HT_FILEDATA_SLOTS)
        return;
    struct slot *s = &p->slots[r->slot];
    slot_clear(s);
    char *pc = path ? strdup(path) : NULL;
    uint8_t *bc = len ? malloc(len) : NULL;
    if ((path && !pc) || (len && !bc)) {
        free(pc);
        free(bc);
        return;                     /* the slot stays empty: later KEPT ones find nothing */
    }
    if (len)
        memcpy(bc, bytes, len);
    *s = (struct slot){ .ino = r->ino, .fsize = r->fsize, .file_off = r->file_off,
                        .mtime_ns = r->mtime_ns, .ctime_ns = r->ctime_ns, .dev = r->dev,
                        .len = (uint32_t)len,
                        .used = true, .path = pc, .bytes = bc };
    held += len + (pc ? strlen(pc) + 1 : 0);
}

bool ht_files_take(uint32_t tgid, const struct ht_rec_filedata *r, size_t size,
                   struct ht_file_excerpt *out)
{
    static char path[HT_REC_FILE_PATH + 1];
    memset(out, 0, sizeof(*out));
    if (r->flags & HT_FILEDATA_KEPT) {
        id_of(r, NULL, &out->id);
        struct proc_files *p = proc_of(tgid, false);
        const struct slot *s =
            p && r->slot < HT_FILEDATA_SLOTS ? &p->slots[r->slot] : NULL;
        if (!s || !same_key(s, r))
            return false;
        out->id.path = s->path;
        out->bytes = s->bytes;
        out->len = s->len;
        return true;
    }
    /* A record whose path and bytes do not fit its size says nothing of
     * them (the lengths are the process's word, the size the ring's). */
    size_t room = size - sizeof(*r);
    bool fits = r->path_len <= HT_REC_FILE_PATH && r->path_len <= room &&
                r->h.len <= room - r->path_len;
    size_t pn = fits ? r->path_len : 0;
    const uint8_t *tail = (const uint8_t *)(r + 1);
    size_t len = fits ? r->h.len : 0;
    bool named = pn && !memchr(tail, 0, pn);
    if (named) {
        memcpy(path, tail, pn);
        path[pn] = 0;
    }
    id_of(r, named ? path : NULL, &out->id);
    out->bytes = tail + pn;
    out->len = len;
    /* Only what the library keeps too: the whole excerpt of a file that
     * had settled (record.h); a short read, or a file changing under the
     * read, could hold other bytes than its key says. */
    if ((r->flags & HT_FILEDATA_WHOLE) && r->ino && len == r->excerpt)
        keep(tgid, r, named ? path : NULL, tail + pn, len);
    return true;
}

void ht_files_forget(uint32_t tgid)
{
    struct proc_files **b = bucket(tgid);
    for (struct proc_files **pp = b; *pp; pp = &(*pp)->next) {
        struct proc_files *p = *pp;
        if (p->tgid != tgid)
            continue;
        for (unsigned i = 0; i < HT_FILEDATA_SLOTS; i++)
            slot_clear(&p->slots[i]);
        *pp = p->next;
        free(p);
        return;
    }
}

size_t ht_files_bytes(void) { return held; }
