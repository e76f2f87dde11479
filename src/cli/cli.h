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

int ht_cmd_run(int argc, char **argv);
int ht_cmd_tail(int argc, char **argv);
int ht_cmd_replay(int argc, char **argv);
int ht_cmd_attach(int argc, char **argv);

#endif
