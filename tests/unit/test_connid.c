/*
 * test_connid.c - core/connid.c: "<pid>-<session>-<n>" connection ids.
 *
 * Two capture sessions are two processes (forked before either draws its
 * tag): the same pid and counter must still give different ids. Within a
 * session the tag is stable and ids are unique per counter, also when
 * threads race on the first call.
 */
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/connid.h"
#include "tap.h"

/* A child process: a fresh capture session; sends the id it makes for
 * pid 4242, connection 1. */
static int child_id(char *out, size_t outlen)
{
    int p[2];
    if (pipe(p))
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        char id[32];
        int n = ht_connid_format(id, sizeof(id), 4242, 1);
        ssize_t w = write(p[1], id, (size_t)n);
        _exit(w == n ? 0 : 1);
    }
    close(p[1]);
    ssize_t r = read(p[0], out, outlen - 1);
    close(p[0]);
    int st;
    waitpid(pid, &st, 0);
    if (r <= 0)
        return -1;
    out[r] = 0;
    return 0;
}

static void test_sessions_differ(void)
{
    char a[32] = "", b[32] = "";
    int ok = !child_id(a, sizeof(a)) && !child_id(b, sizeof(b));
    tap_ok(ok && strcmp(a, b) != 0,
           "two capture sessions of one pid give connection 1 different ids ('%s', '%s')", a, b);
}

static void *race(void *arg)
{
    *(uint32_t *)arg = ht_connid_session();
    return NULL;
}

static void test_format_and_stability(void)
{
    uint32_t seen[8];
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        pthread_create(&t[i], NULL, race, &seen[i]);
    int same = 1;
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        same &= seen[i] == seen[0];
    }
    tap_ok(same && ht_connid_session() == seen[0],
           "threads racing on the first call all get one session tag");

    char id[32], id2[32];
    int n = ht_connid_format(id, sizeof(id), 41977, 1);
    regex_t re;
    regcomp(&re, "^41977-[0-9a-f]{8}-1$", REG_EXTENDED | REG_NOSUB);
    tap_ok(n == (int)strlen(id) && regexec(&re, id, 0, NULL, 0) == 0,
           "format: <pid>-<8 hex digits>-<n>: %s", id);
    regfree(&re);
    char tag[9];
    snprintf(tag, sizeof(tag), "%08x", (unsigned)ht_connid_session());
    tap_ok(strstr(id, tag) != NULL, "the tag in the id is this session's (%s)", tag);
    ht_connid_format(id2, sizeof(id2), 41977, 2);
    tap_ok(strcmp(id, id2) != 0, "format: counters 1 and 2 give different ids");

    n = ht_connid_format(id, sizeof(id), 4194304, 9999999999999ULL);
    tap_ok(n < (int)sizeof(id) && (size_t)n == strlen(id),
           "format: the largest pid and a 13-digit counter fit 32 bytes (%s)", id);
    n = ht_connid_format(id, 8, 4194304, 1);
    tap_ok(strlen(id) == 7 && n > 7, "format: cut to the buffer, NUL-terminated");
}

int main(void)
{
    test_sessions_differ();         /* first: the parent has drawn no tag yet */
    test_format_and_stability();
    return tap_done();
}
