/*
 * run.c - `spool run SCRIPT.lua [ARGS...]`: a Lua program as the main actor of a fresh runtime
 * (include/spool_lua.h). Reads spool's own options from anywhere before `--`, makes the runtime
 * and its Lua layer with the script's directory on package.path, serves the admin endpoint if one
 * is configured, and exits with the program's status once every Lua actor is done.
 */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spool_admin.h>
#include <spool_lua.h>
#include <spool_node.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char run_usage[] =
    "usage: spool run SCRIPT.lua [ARGS...] [--threads N] [--cpus LIST] [--config FILE]\n"
    "                 [--admin ENDPOINT]\n"
    "       spool run [OPTIONS] [--] SCRIPT.lua [ARGS...]\n"
    "\n"
    "Runs SCRIPT.lua as the main actor of a new runtime, on thread 0, and waits until the program\n"
    "is over: the main actor has ended and every other Lua actor is done (none sleeping, waiting\n"
    "for a reply or in a timed receive, and every message handled). Then the runtime stops.\n"
    "\n"
    "Options (recognised anywhere before a `--`; --name=VALUE works too):\n"
    "  --threads N        scheduler threads (default: one per CPU)\n"
    "  --cpus LIST        pin thread i to the i-th CPU of LIST, e.g. 0-3,6 (default: not pinned)\n"
    "  --config FILE      read [runtime] and [placement] from this INI file (docs/placement.md)\n"
    "  --admin ENDPOINT   serve the admin endpoint there while the program runs, for spool stats\n"
    "                     and spool top (e.g. ipc:///tmp/app.sock); --admin '' serves none\n"
    "Nodes (docs/nodes.md; the same keys as the config file's [node] section, which they "
    "override):\n"
    "  --node NAME        make this process the node NAME ([A-Za-z0-9_.-], up to 63 bytes)\n"
    "  --listen ENDPOINT  where it listens, tcp://HOST:PORT (port 0: any free one)\n"
    "  --join MEMBER      NAME@tcp://HOST:PORT of a member; repeat for more (one is enough)\n"
    "  --keys DIR         CURVE keys: DIR/NAME.key, DIR/NAME.pub, and DIR/*.pub the nodes allowed\n"
    "                     in (made by spool keygen DIR --name NAME)\n"
    "  --insecure         plain connections instead of keys, loopback only (development)\n"
    "  -h, --help         this help\n"
    "\n"
    "What the script sees:\n"
    "  ...        ARGS as strings, in order: every word after SCRIPT that is not one of the\n"
    "             options above, and every word after `--`\n"
    "  arg        the same as a table, like the lua command: arg[0] is SCRIPT as given, arg[1]\n"
    "             the first argument\n"
    "  require    finds modules next to the script, whatever the current directory:\n"
    "             package.path starts with DIR/?.lua;DIR/?/init.lua, DIR being SCRIPT's directory\n"
    "  spool      local spool = require \"spool\" (docs/lua.md)\n"
    "To hand the script a word that looks like one of spool's options, put it after `--`:\n"
    "  spool run main.lua --threads 2 -- --threads 8   (2 threads; the script gets --threads 8)\n"
    "\n"
    "Environment: SPOOL_THREADS, SPOOL_CPUS, SPOOL_CONFIG and SPOOL_ADMIN set what --threads,\n"
    "--cpus, --config and --admin do (SPOOL_BATCH, SPOOL_METRICS, SPOOL_METRICS_SAMPLE are read\n"
    "too: docs/placement.md, docs/metrics.md). An option given here wins over the environment,\n"
    "which wins over the config file, which wins over the defaults.\n"
    "\n"
    "Exit status:\n"
    "  N   the integer the main chunk returned (0 if it returned none; outside 0..255: 255)\n"
    "  1   the script failed: its error message and traceback are printed on stderr; or the\n"
    "      runtime could not run it (threads, CPUs, admin endpoint)\n"
    "  2   usage: a bad option, no script, no such script, a configuration the runtime refuses\n"
    "\n"
    "Example:\n"
    "  spool run main.lua input.txt --threads 4 --admin ipc:///tmp/app.sock\n"
    "  spool top ipc:///tmp/app.sock          # from another terminal, while it runs\n";

typedef struct run_options {
    const char *script;
    const char **args; /* the script's arguments, in order: argc - 1 slots at most */
    int arg_count;
    int threads; /* 0: not given */
    const char *cpus, *config_file, *admin;
    const char *node, *listen, *keys; /* NULL: not given */
    const char **joins;               /* argc - 1 slots at most */
    size_t join_count;
    int insecure;
} run_options;

enum { RUN_PARSED, RUN_HELP, RUN_BAD_USAGE };

/* After a usage error has been said in one line. */
static int bad_usage(void) {
    fputs("try: spool run --help\n", stderr);
    return RUN_BAD_USAGE;
}

static int parse_threads(const char *value, int *out) {
    char *end;
    errno = 0;
    long number = strtol(value, &end, 10);
    if (*value == '\0' || *end != '\0' || errno != 0 || number < 1 || number > INT_MAX) {
        fprintf(stderr,
                "spool run: --threads wants a whole number of threads, 1 or more, not '%s'\n",
                value);
        return -1;
    }
    *out = (int)number;
    return 0;
}

/*
 * Reads argv (argv[0] is "run"): spool's options wherever they are before `--`; the first other
 * word is the script, the rest its arguments. `options->args` must have room for argc - 1 words.
 */
static int parse_options(int argc, char **argv, run_options *options) {
    static const char *const valued[] = {"--threads", "--cpus",   "--config", "--admin",
                                         "--node",    "--listen", "--join",   "--keys"};
    int options_end = 0; /* set by `--`: every word after it is the script's */
    for (int i = 1; i < argc; i++) {
        const char *word = argv[i];
        if (!options_end && strcmp(word, "--") == 0) {
            options_end = 1;
            continue;
        }
        if (!options_end && (strcmp(word, "--help") == 0 || strcmp(word, "-h") == 0)) {
            fputs(run_usage, stdout);
            return RUN_HELP;
        }
        if (!options_end && strcmp(word, "--insecure") == 0) {
            options->insecure = 1;
            continue;
        }
        int matched = 0;
        const char *value = NULL;
        size_t k = 0;
        for (; !options_end && k < sizeof valued / sizeof valued[0]; k++) {
            matched = cli_option(argc, argv, &i, valued[k], &value);
            if (matched != 0)
                break;
        }
        if (matched < 0) /* cli_option said which option wants a value */
            return bad_usage();
        if (matched > 0) {
            if (strcmp(valued[k], "--threads") == 0) {
                if (parse_threads(value, &options->threads) != 0)
                    return bad_usage();
            } else if (strcmp(valued[k], "--cpus") == 0) {
                options->cpus = value;
            } else if (strcmp(valued[k], "--config") == 0) {
                options->config_file = value;
            } else if (strcmp(valued[k], "--node") == 0) {
                options->node = value;
            } else if (strcmp(valued[k], "--listen") == 0) {
                options->listen = value;
            } else if (strcmp(valued[k], "--join") == 0) {
                options->joins[options->join_count++] = value;
            } else if (strcmp(valued[k], "--keys") == 0) {
                options->keys = value;
            } else {
                options->admin = value;
            }
            continue;
        }
        /* An unknown --option is a mistake anywhere before `--`; a -x is one before the script
         * only (after it, it is the script's: `spool run grep.lua -v`). A lone "-" is a word. */
        int dashed = word[0] == '-' && word[1] != '\0';
        if (!options_end && dashed && (word[1] == '-' || options->script == NULL)) {
            fprintf(stderr, "spool run: unknown option '%s'\n", word);
            return bad_usage();
        }
        if (options->script == NULL)
            options->script = word;
        else
            options->args[options->arg_count++] = word;
    }
    if (options->script == NULL) {
        fputs("spool run: which script? (spool run SCRIPT.lua [ARGS...])\n", stderr);
        return bad_usage();
    }
    return RUN_PARSED;
}

/*
 * The package.path entries for the script's directory: "DIR/?.lua;DIR/?/init.lua", DIR as given
 * ("." for a bare file name, "" for the root: "/?.lua"). NULL when it cannot be said in a Lua path
 * template (a ';' or '?' in the directory), after a warning; NULL too on ENOMEM. free() it.
 */
static char *script_path_templates(const char *script) {
    const char *directory = ".";
    size_t length = 1;
    const char *slash = strrchr(script, '/');
    if (slash != NULL) {
        directory = script;
        length = (size_t)(slash - script);
        while (length > 0 && script[length - 1] == '/') /* "lib//main.lua"; "/main.lua": "" */
            length--;
    }
    if (memchr(directory, ';', length) != NULL || memchr(directory, '?', length) != NULL) {
        fprintf(stderr,
                "spool run: warning: '%.*s' cannot go on package.path (';' or '?' in it): "
                "modules next to the script will not be found\n",
                (int)length, directory);
        return NULL;
    }
    static const char format[] = "%.*s/?.lua;%.*s/?/init.lua";
    int size = snprintf(NULL, 0, format, (int)length, directory, (int)length, directory);
    char *templates = size >= 0 ? malloc((size_t)size + 1) : NULL;
    if (templates != NULL)
        snprintf(templates, (size_t)size + 1, format, (int)length, directory, (int)length,
                 directory);
    return templates;
}

/* Prints `text` on stderr after `prefix`, with a final newline if it has none. */
static void print_error_text(const char *prefix, const char *text) {
    size_t length = strlen(text);
    fprintf(stderr, "%s%s%s", prefix, text, length > 0 && text[length - 1] == '\n' ? "" : "\n");
}

/* Runs the script in `lua` and says how it went: the exit status. */
static int run_script(spool_lua *lua, const run_options *options) {
    /* Big enough for a message and a deep traceback; the Lua layer truncates past it. */
    char error[16384] = "";
    int status = 0;
    int rc = spool_lua_run(lua, options->script, options->args, options->arg_count, &status, error,
                           sizeof error);
    if (rc != 0) {
        const char *reason = rc == SPOOL_ENOENT ? "no such script" : spool_strerror(rc);
        fprintf(stderr, "spool run: %s: %s\n", options->script, reason);
        if (error[0] != '\0')
            print_error_text("", error);
        return rc == SPOOL_ENOENT ? CLI_EXIT_USAGE : CLI_EXIT_FAILURE;
    }
    if (error[0] != '\0') /* the main actor failed: "message\ntraceback" */
        print_error_text("spool run: ", error);
    return status >= 0 && status <= 255 ? status : 255;
}

/* Prints why the runtime refused its configuration, naming the option rather than the field. */
static void print_config_error(const char *error) {
    static const struct {
        const char *field, *option;
    } names[] = {{"config.threads", "--threads"},
                 {"config.cpus", "--cpus"},
                 {"config.config_file", "--config"},
                 {"config.admin", "--admin"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        size_t length = strlen(names[i].field);
        if (strncmp(error, names[i].field, length) == 0 && error[length] == ':') {
            fprintf(stderr, "spool run: %s%s\n", names[i].option, error + length);
            return;
        }
    }
    fprintf(stderr, "spool run: %s\n", error);
}

/* ---------------------------------------------------------------------------------------------- */
/* The node, and SIGINT/SIGTERM                                                                   */

/* The node and runtime of this process, shared with the signal thread: when SIGINT or SIGTERM
 * comes it leaves the cluster (GOODBYE to every peer) and stops the runtime, so spool_lua_run
 * returns and the program ends as after its main actor. */
static pthread_mutex_t node_lock = PTHREAD_MUTEX_INITIALIZER;
static spool_node *node;
static spool_runtime *signal_runtime; /* NULL once the runtime is going away */

static void stop_node(void) {
    pthread_mutex_lock(&node_lock);
    spool_node_destroy(&node);
    signal_runtime = NULL;
    pthread_mutex_unlock(&node_lock);
}

static void *signal_thread(void *set) {
    int sig = 0;
    if (sigwait(set, &sig) != 0)
        return NULL;
    pthread_mutex_lock(&node_lock);
    if (signal_runtime) {
        fprintf(stderr, "spool run: %s: stopping\n", strsignal(sig));
        spool_node_destroy(&node);
        spool_runtime_stop(signal_runtime, 1000);
    }
    pthread_mutex_unlock(&node_lock);
    return NULL;
}

/* Blocks SIGINT and SIGTERM in this thread and every thread made after it, and starts the thread
 * that waits for them. Before the runtime's threads exist. */
static void catch_signals(spool_runtime *rt) {
    static sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal_runtime = rt;
    pthread_t thread;
    if (pthread_create(&thread, NULL, signal_thread, &set) == 0)
        pthread_detach(thread);
}

/* Starts the node if --node, a [node] name or --listen asks for one: 0, or the exit status. */
static int start_node(spool_runtime *rt, const run_options *options) {
    spool_node_config config;
    spool_node_config_init(&config);
    char err[512] = "";
    int rc = 0;
    if (options->config_file &&
        (rc = spool_node_config_load(&config, options->config_file, err, sizeof err)) != 0) {
        fprintf(stderr, "spool run: %s\n", err);
        spool_node_config_clear(&config);
        return CLI_EXIT_USAGE;
    }
    if (options->node)
        config.name = options->node;
    if (options->listen)
        config.listen = options->listen;
    if (options->keys) {
        config.keys = options->keys;
        config.insecure = 0;
    }
    if (options->insecure) {
        config.insecure = 1;
        config.keys = NULL;
    }
    /* --join adds to the file's joins. */
    const char **joins = NULL;
    if (options->join_count) {
        joins = calloc(config.join_count + options->join_count, sizeof *joins);
        if (!joins) {
            spool_node_config_clear(&config);
            return CLI_EXIT_FAILURE;
        }
        for (size_t i = 0; i < config.join_count; i++)
            joins[i] = config.join[i];
        for (size_t i = 0; i < options->join_count; i++)
            joins[config.join_count + i] = options->joins[i];
        config.join = joins;
        config.join_count += options->join_count;
    }
    int wanted = config.name != NULL || config.listen != NULL || config.join_count > 0 ||
                 options->keys || options->insecure;
    if (wanted) {
        pthread_mutex_lock(&node_lock);
        rc = spool_node_create(rt, &config, &node, err, sizeof err);
        pthread_mutex_unlock(&node_lock);
        if (rc != 0)
            fprintf(stderr, "spool run: cannot start the node: %s\n",
                    err[0] ? err : spool_strerror(rc));
    }
    free(joins);
    spool_node_config_clear(&config);
    if (!wanted || rc != 0)
        return rc == 0 ? 0
                       : (rc == SPOOL_EINVAL || rc == SPOOL_ECONFIG ? CLI_EXIT_USAGE
                                                                    : CLI_EXIT_FAILURE);
    return 0;
}

/* Makes the runtime, its Lua layer and the admin endpoint, runs the script, undoes them. */
static int run_program(const run_options *options) {
    char config_error[512] = "";
    spool_config config;
    spool_config_init(&config);
    config.threads = options->threads;
    config.cpus = options->cpus;
    config.config_file = options->config_file;
    config.admin = options->admin;
    config.error = config_error;
    config.error_size = sizeof config_error;

    spool_runtime *rt = NULL;
    int rc = spool_runtime_create(&config, &rt);
    if (rc != 0) {
        print_config_error(config_error[0] != '\0' ? config_error : spool_strerror(rc));
        return rc == SPOOL_ECONFIG || rc == SPOOL_EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_FAILURE;
    }
    catch_signals(rt);

    int status = CLI_EXIT_FAILURE;
    char *templates = script_path_templates(options->script);
    spool_lua_config lua_config;
    spool_lua_config_init(&lua_config);
    lua_config.path = templates;
    spool_lua *lua = NULL;
    spool_admin *admin = NULL;
    const char *endpoint = spool_runtime_admin(rt);
    if ((rc = spool_lua_create(rt, &lua_config, &lua)) != 0) {
        fprintf(stderr, "spool run: cannot prepare Lua: %s\n", spool_strerror(rc));
    } else if (endpoint != NULL && endpoint[0] != '\0' &&
               (rc = spool_admin_start(rt, endpoint, &admin)) != 0) {
        fprintf(stderr, "spool run: cannot serve the admin endpoint %s: %s\n", endpoint,
                spool_strerror(rc));
    } else if ((rc = start_node(rt, options)) != 0) {
        status = rc;
    } else {
        status = run_script(lua, options);
    }

    stop_node();
    spool_admin_stop(&admin); /* before the runtime it reads from goes */
    spool_lua_destroy(&lua);
    spool_runtime_destroy(&rt);
    free(templates);
    return status;
}

int cli_run_main(int argc, char **argv) {
    run_options options = {0};
    options.args = calloc(argc > 1 ? (size_t)argc - 1 : 1, sizeof *options.args);
    options.joins = calloc(argc > 1 ? (size_t)argc - 1 : 1, sizeof *options.joins);
    if (options.args == NULL || options.joins == NULL) {
        free(options.args);
        free(options.joins);
        fputs("spool run: out of memory\n", stderr);
        return CLI_EXIT_FAILURE;
    }
    int parsed = parse_options(argc, argv, &options);
    int status = parsed == RUN_HELP        ? CLI_EXIT_OK
                 : parsed == RUN_BAD_USAGE ? CLI_EXIT_USAGE
                                           : run_program(&options);
    free(options.args);
    free(options.joins);
    return status;
}
