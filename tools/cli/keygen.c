/*
 * keygen.c - `spool keygen DIR [--name NAME] [--force]`: makes a node's CURVE key pair and writes
 * DIR/NAME.key (the secret, mode 0600) and DIR/NAME.pub (nodes/keys.h says how, and how a node
 * loads them and its allowlist), then prints both paths and the public key.
 */
#include "cli.h"

#include "nodes/keys.h"

#include <limits.h>
#include <string.h>
#include <unistd.h>

static const char keygen_usage[] =
    "usage: spool keygen DIR [--name NAME] [--force]\n"
    "\n"
    "Makes a CURVE key pair for the node NAME and writes it into DIR (created, mode 0700, when\n"
    "missing):\n"
    "  DIR/NAME.key   the secret key, mode 0600; it stays on this machine, and a node refuses it\n"
    "                 once group or others may read it\n"
    "  DIR/NAME.pub   the public key, mode 0644\n"
    "DIR is also the node's allowlist: each NAME.pub in it lets the holder of that key in as the\n"
    "node NAME and as no other. Copy NAME.pub into the key directory of every node that should\n"
    "accept this one.\n"
    "\n"
    "Prints both paths, then the public key alone on the last line.\n"
    "\n"
    "Options (--name=NAME works too):\n"
    "  --name NAME   the node's name: 1 to 63 letters, digits, '_', '.' or '-', not beginning\n"
    "                with '.' or '-' (default: this machine's host name)\n"
    "  --force       replace a key pair that is already there; every node that has the old\n"
    "                NAME.pub then needs the new one\n"
    "  -h, --help    this help\n"
    "\n"
    "Exit status: 0 written, 1 failed (a key already there, a file that cannot be written),\n"
    "2 usage.\n";

static int keygen_usage_error(void) {
    fprintf(stderr, "\n%s", keygen_usage);
    return CLI_EXIT_USAGE;
}

int cli_keygen_main(int argc, char **argv) {
    const char *dir = NULL;
    const char *name = NULL;
    int force = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = NULL;
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            fputs(keygen_usage, stdout);
            return CLI_EXIT_OK;
        }
        if (strcmp(arg, "--force") == 0) {
            force = 1;
            continue;
        }
        int matched = cli_option(argc, argv, &i, "--name", &value);
        if (matched < 0)
            return keygen_usage_error();
        if (matched > 0) {
            name = value;
            continue;
        }
        if (arg[0] == '-' && arg[1] != '\0') {
            fprintf(stderr, "spool keygen: unknown option '%s'\n", arg);
            return keygen_usage_error();
        }
        if (dir != NULL) {
            fprintf(stderr, "spool keygen: one directory only, not '%s' and '%s'\n", dir, arg);
            return keygen_usage_error();
        }
        dir = arg;
    }
    if (dir == NULL || dir[0] == '\0') {
        fputs("spool keygen: which directory?\n", stderr);
        return keygen_usage_error();
    }

    char host[HOST_NAME_MAX + 1];
    int from_host = name == NULL;
    if (from_host) {
        if (gethostname(host, sizeof host) != 0) {
            perror("spool keygen: cannot read the host name (give --name NAME)");
            return CLI_EXIT_FAILURE;
        }
        host[sizeof host - 1] = '\0';
        name = host;
    }
    char err[PATH_MAX + 256];
    if (keys_name_check(name, err, sizeof err) != 0) {
        fprintf(stderr, "spool keygen: %s%s\n", err,
                from_host ? " (that is the host name: give --name NAME)" : "");
        return CLI_EXIT_USAGE;
    }

    keys_pair pair;
    if (keys_generate(dir, name, force, &pair, err, sizeof err) != 0) {
        fprintf(stderr, "spool keygen: %s\n", err);
        return CLI_EXIT_FAILURE;
    }
    const char *slash = dir[strlen(dir) - 1] == '/' ? "" : "/";
    printf("secret key: %s%s%s.key (mode 0600: keep it on this machine)\n", dir, slash, name);
    printf("public key: %s%s%s.pub (copy it to every node that should accept %s)\n", dir, slash,
           name, name);
    printf("%s\n", pair.public_key);
    keys_pair_wipe(&pair);
    return CLI_EXIT_OK;
}
