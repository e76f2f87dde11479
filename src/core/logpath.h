/*
 * logpath.h - opening the log file without trusting anything another user
 * controls (the rule is in docs/security.md, "The log file").
 *
 * A log path is walked one component at a time from "/" (or from the
 * working directory for a relative path), each directory opened with
 * O_PATH|O_DIRECTORY|O_NOFOLLOW and judged by fstat on what was opened, so
 * nothing can be swapped between the check and the use. A directory on the
 * way is trusted when it is owned by root or by the writing user (euid) and
 * nobody else can write to it, unless it has the sticky bit. The file is
 * opened relative to the last directory (O_NOFOLLOW|O_NONBLOCK: a FIFO never
 * blocks us) and must be a regular file owned by euid with one link.
 *
 * Threading: no state; safe from any thread. Each call makes a few system
 * calls per path component: not for a hot path.
 */
#ifndef HT_LOGPATH_H
#define HT_LOGPATH_H

#include <stddef.h>
#include <sys/stat.h>

/* Room for a reason: a sentence that may name a directory of the path. */
#define HT_LOGPATH_WHY 4352

/* The directory that holds path's last component, after checking every
 * directory on the way: an O_PATH fd the caller closes, with *name pointing
 * at the last component inside path. -errno on failure, with why filled
 * (one sentence, no newline). */
int ht_logpath_dir(const char *path, const char **name, char *why, size_t whylen);

/* Open (creating with mode) the log file name in dir, for appending, and
 * check what was opened. The fd (O_CLOEXEC, blocking again), with *st its
 * fstat, or -errno with why filled. */
int ht_logpath_open(int dir, const char *name, mode_t mode, struct stat *st,
                    char *why, size_t whylen);

/* Is st (of the log file) acceptable: a regular file owned by euid with
 * one link? 0, or -errno with why filled. */
int ht_logpath_check_file(const struct stat *st, char *why, size_t whylen);

#endif
