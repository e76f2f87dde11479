/*
 * main.c - the httptape command: dispatch to a subcommand.
 *
 * Exit codes (all subcommands): 0 success, 1 runtime failure, 2 usage error.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "version.h"              /* generated: $(BUILD)/gen (mk/version.mk) */

/* libhttptape.so stays inert in this program (its collector, attach),
 * also when an outer `httptape run` preloaded it here. */
__attribute__((visibility("default"))) const int httptape_no_capture = 1;

static const char usage[] =
    "usage: httptape <command> [options]\n"
    "\n"
    "commands:\n"
    "  run [--log FILE] [--max-body BYTES] -- CMD [ARGS...]\n"
    "                      run CMD with the tap preloaded (see 'httptape run --help')\n"
    "  attach --pid PID [--log FILE] [--max-body BYTES] [--duration SECONDS] [--children]\n"
    "                      record a running process with eBPF, no restart\n"
    "  tail [-f] [-n N] [--json] [--status LIST] [--path GLOB] ... FILE...\n"
    "                      show a log one exchange per line\n"
    "  export [--format har|curl|otlp] [-o FILE] [--status LIST] ... FILE...\n"
    "                      write exchanges as HAR, curl commands or OTLP/JSON logs\n"
    "  stats [-f] [--json] [--top N] [--status LIST] ... FILE...\n"
    "                      requests, errors, bytes, latency percentiles by path\n"
    "  replay [--max-body BYTES] CLIENT_STREAM SERVER_STREAM\n"
    "                      parse one captured TCP connection, print its events\n"
    "  collect [--log FILE] [--address NAME:TOKEN]\n"
    "                      a standing collector that several servers hand records to\n"
    "  version, --version  print httptape's version\n"
    "\n"
    "'httptape <command> --help' describes a command. Exit codes: 0 success,\n"
    "1 failure, 2 usage error.\n";

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(usage, stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("httptape %s\n", HT_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "run"))
        return ht_cmd_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "tail"))
        return ht_cmd_tail(argc - 1, argv + 1);
    if (!strcmp(cmd, "attach"))
        return ht_cmd_attach(argc - 1, argv + 1);
    if (!strcmp(cmd, "export"))
        return ht_cmd_export(argc - 1, argv + 1);
    if (!strcmp(cmd, "stats"))
        return ht_cmd_stats(argc - 1, argv + 1);
    if (!strcmp(cmd, "replay"))
        return ht_cmd_replay(argc - 1, argv + 1);
    if (!strcmp(cmd, "collect"))
        return ht_cmd_collect(argc - 1, argv + 1);
    fprintf(stderr, "httptape: unknown command '%s'\n%s", cmd, usage);
    return 2;
}
