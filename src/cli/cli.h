/*
 * cli.h - the httptape command's subcommands.
 *
 * Each subcommand gets argv starting at its own name (argv[0] == "run", ...)
 * and returns the process exit status: 0 success, 1 runtime failure,
 * 2 usage error (bad flag or value; message already printed on stderr).
 * Single-threaded; they may exit() or exec().
 */
#ifndef HT_CLI_H
#define HT_CLI_H

#include <stdbool.h>

#include "capture/register.h"

struct ht_config;

int ht_cmd_run(int argc, char **argv);
int ht_cmd_collect(int argc, char **argv);
int ht_cmd_tail(int argc, char **argv);
int ht_cmd_replay(int argc, char **argv);
int ht_cmd_attach(int argc, char **argv);
int ht_cmd_export(int argc, char **argv);
int ht_cmd_stats(int argc, char **argv);

/* The collector (cmd_collect.c), also run by `httptape run` in a process
 * of its own. */
struct ht_collect_opts {
    struct ht_reg_addr addr;        /* where recorded processes register */
    int wait_pidfd;                 /* the process to wait for, or -1 */
    int for_pid;                    /* the process the log speaks for (%p), or 0 */
    int ring_fd, ring_pidfd;        /* a ring handed over directly, or -1 */
    int ready_fd;                   /* written one byte once listening, or -1 */
    bool standing;                  /* until SIGTERM, not until processes end */
};
int ht_collect(const struct ht_config *cfg, const struct ht_collect_opts *co);

#endif
