/*
 * spool.c - the `spool` command line: reads the subcommand and hands over to it. `spool run`
 * (run.c) runs a Lua program in a runtime of its own; `spool stats` (stats.c, plot.c) and
 * `spool top` (top.c) talk to a running program's admin endpoint (include/spool_admin.h) over
 * ZeroMQ; `spool keygen` (keygen.c) writes a node's CURVE key pair (nodes/keys.h).
 *
 * Exit status: 0 done, 1 the endpoint did not answer or answered nonsense (keygen: the keys could
 * not be written), 2 usage; `spool run` exits with the Lua program's own status.
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: spool COMMAND [OPTIONS]\n"
    "\n"
    "Commands:\n"
    "  stats [--json|--prom] ENDPOINT   print one metrics snapshot of a running program\n"
    "  stats --plot FILE.svg --seconds N ENDPOINT\n"
    "                                   sample it for N seconds and draw mailbox depth and p99\n"
    "                                   wait of the busiest actors into an SVG file\n"
    "  top ENDPOINT                     live view of threads and the busiest mailboxes\n"
    "  run SCRIPT.lua [ARGS...]         run a Lua program, SCRIPT.lua as its main actor\n"
    "      [--threads N] [--cpus LIST] [--config FILE] [--admin ENDPOINT]\n"
    "  keygen DIR [--name NAME] [--force]\n"
    "                                   write a node's CURVE key pair: DIR/NAME.key (secret,\n"
    "                                   mode 0600) and DIR/NAME.pub\n"
    "\n"
    "ENDPOINT is the program's admin endpoint (spool_admin_start, SPOOL_ADMIN, [runtime] admin),\n"
    "e.g. ipc:///tmp/spool.sock or tcp://127.0.0.1:5555.\n"
    "\n"
    "Options for every command that talks to an endpoint:\n"
    "  --timeout MS   give up on an endpoint that does not answer within MS ms (default 2000)\n"
    "\n"
    "spool COMMAND --help says more about a command. Exit status: 0 ok, 1 failed, 2 usage.\n";

int cli_option(int argc, char **argv, int *i, const char *name, const char **value) {
    size_t length = strlen(name);
    const char *arg = argv[*i];
    if (strncmp(arg, name, length) != 0)
        return 0;
    if (arg[length] == '=') {
        *value = arg + length + 1;
        return 1;
    }
    if (arg[length] != '\0')
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "spool: %s wants a value\n", name);
        return -1;
    }
    *value = argv[++*i];
    return 1;
}

int cli_parse_seconds(const char *option, const char *value, double min, double max, double *out) {
    char *end;
    errno = 0;
    double number = strtod(value, &end);
    if (*value == '\0' || *end != '\0' || errno != 0 || !(number >= min && number <= max)) {
        fprintf(stderr, "spool: %s wants a number of seconds from %g to %g, not '%s'\n", option,
                min, max, value);
        return -1;
    }
    *out = number;
    return 0;
}

int cli_parse_int(const char *option, const char *value, int min, int max, int *out) {
    char *end;
    errno = 0;
    long number = value != NULL ? strtol(value, &end, 10) : 0;
    if (value == NULL || *value == '\0' || *end != '\0' || errno != 0 || number < min ||
        number > max) {
        fprintf(stderr, "spool: %s wants a whole number from %d to %d, not '%s'\n", option, min,
                max, value != NULL ? value : "");
        return -1;
    }
    *out = (int)number;
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fputs(usage, stderr);
        return CLI_EXIT_USAGE;
    }
    const char *command = argv[1];
    if (strcmp(command, "--help") == 0 || strcmp(command, "-h") == 0 ||
        strcmp(command, "help") == 0) {
        fputs(usage, stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(command, "--version") == 0) {
        printf("spool %d.%d.%d\n", SPOOL_VERSION_MAJOR, SPOOL_VERSION_MINOR, SPOOL_VERSION_PATCH);
        return CLI_EXIT_OK;
    }
    if (strcmp(command, "stats") == 0)
        return cli_stats_main(argc - 1, argv + 1);
    if (strcmp(command, "top") == 0)
        return cli_top_main(argc - 1, argv + 1);
    if (strcmp(command, "run") == 0)
        return cli_run_main(argc - 1, argv + 1);
    if (strcmp(command, "keygen") == 0)
        return cli_keygen_main(argc - 1, argv + 1);
    fprintf(stderr, "spool: unknown command '%s'\n\n%s", command, usage);
    return CLI_EXIT_USAGE;
}
