/*
 * files.h - what the preloaded library says of the files a process sent
 * with sendfile (FILEDATA records, capture/record.h): each file's name and
 * identity, and the excerpt it read back, which it sends once per file,
 * offset and length; later records say KEPT and the collector supplies the
 * bytes it kept. Per process, HT_FILEDATA_SLOTS slots, as the library's.
 *
 * Nothing in a record is trusted to be more than the process's word about
 * its own traffic: the bytes are what it read, the path what it named. The
 * collector never opens a path a process gave it (a process could name a
 * file only the collector may read).
 *
 * One thread only (the collector's loop).
 */
#ifndef HT_COLLECTOR_FILES_H
#define HT_COLLECTOR_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "capture/record.h"
#include "core/exchange.h"

struct ht_file_excerpt {
    struct ht_file_id id;           /* id.path points into the record or the slot */
    const uint8_t *bytes;           /* the excerpt: the first len bytes sent */
    size_t len;
};

/* A FILEDATA record of process tgid (size bytes in all, header included):
 * its file and excerpt in *out. One that carries them is kept for later
 * KEPT ones (what cannot be kept, for want of memory, is still given);
 * a KEPT one is answered from the slot. false when a KEPT record finds its
 * slot empty or holding another file, offset or length (out->len is then
 * 0 and out->id what the record says). */
bool ht_files_take(uint32_t tgid, const struct ht_rec_filedata *r, size_t size,
                   struct ht_file_excerpt *out);

/* Process tgid is gone (or was replaced by a new ring): drop its slots. */
void ht_files_forget(uint32_t tgid);

/* Bytes the slots hold now (for the tests and the docs' memory figure). */
size_t ht_files_bytes(void);

#endif
