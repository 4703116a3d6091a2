/*
 * cli.h - the one internal header of the `spool` command line: the ZeroMQ client that asks an admin
 * endpoint (include/spool_admin.h) for a metrics snapshot, the snapshot parsed out of its JSON, the
 * figures derived from two snapshots (rates, busy fraction, wait quantiles over an interval), and
 * the subcommands (stats.c, top.c, plot.c) that show them; and `spool run` (run.c), which runs a
 * Lua program in a runtime of its own (include/spool_lua.h); and `spool keygen` (keygen.c), which
 * writes a node's CURVE key pair (nodes/keys.h).
 */
#ifndef SPOOL_CLI_H
#define SPOOL_CLI_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <spool.h> /* SPOOL_HISTOGRAM_BUCKETS; stats and top use nothing else of it */

#define CLI_DEFAULT_TIMEOUT_MS 2000

/* Exit statuses of every subcommand. */
enum { CLI_EXIT_OK = 0, CLI_EXIT_FAILURE = 1, CLI_EXIT_USAGE = 2 };

/* ---------------------------------------------------------------------------------------------- */
/* client.c: one request, one reply, never longer than the timeout */
/* ---------------------------------------------------------------------------------------------- */

typedef struct cli_client cli_client;

/* Makes a client for `endpoint` (not connected yet: each request connects anew). NULL on ENOMEM. */
cli_client *cli_client_create(const char *endpoint, int timeout_ms);
void cli_client_destroy(cli_client **client);
const char *cli_client_endpoint(const cli_client *client);
int cli_client_timeout(const cli_client *client);

/*
 * Sends `request` on a fresh REQ socket and waits for the reply, at most the client's timeout in
 * all. On success *reply is the reply, NUL-terminated (free() it) and 0 is returned. On failure -1,
 * *reply is NULL and `error` holds one line saying what happened ("no answer from ... within 2000
 * ms", "the endpoint says: error: ..."), without the "spool: " prefix.
 */
int cli_request(cli_client *client, const char *request, char **reply, char *error,
                size_t error_size);

/* ---------------------------------------------------------------------------------------------- */
/* snapshot.c: the "metrics json" reply as C structs, and what two of them say together */
/* ---------------------------------------------------------------------------------------------- */

typedef struct cli_histogram {
    uint64_t count;
    double sum_seconds;
    double p50, p99; /* as the endpoint computed them, since start */
    uint64_t buckets[SPOOL_HISTOGRAM_BUCKETS];
    size_t bucket_count; /* as many as the endpoint sent, at most SPOOL_HISTOGRAM_BUCKETS */
} cli_histogram;

typedef struct cli_actor {
    char id[24]; /* decimal, as sent: a 64-bit id does not fit a JSON number safely */
    char name[64];
    char behavior[64];
    int thread;
    uint64_t depth, high_water, enqueued, dequeued, rejected, dropped, handled;
    cli_histogram wait, processing;
} cli_actor;

typedef struct cli_thread {
    int thread;
    int cpu; /* -1: not pinned */
    double busy_seconds;
    uint64_t messages, wakeups, actors, ready;
} cli_thread;

typedef struct cli_dead_letter {
    char reason[32];
    uint64_t count;
} cli_dead_letter;

/* One peer of a node, as the endpoint's "peers" array has it. */
/* Dead-letter reasons kept per peer: room for more than spool has; beyond, they are left out. */
#define CLI_PEER_DEAD_REASONS 24
typedef struct cli_peer {
    char node[64];
    char endpoint[256];
    char state[16];       /* "joining", "up", "down" */
    char incarnation[24]; /* decimal, as sent */
    uint64_t messages_in, messages_out, bytes_in, bytes_out;
    uint64_t queued_messages, queued_bytes;
    double rtt_seconds; /* the last heartbeat's round trip; 0 before the first */
    uint64_t heartbeats_missed, ups, downs;
    size_t dead_letter_count;
    cli_dead_letter dead_letters[CLI_PEER_DEAD_REASONS];
} cli_peer;

typedef struct cli_snapshot {
    double uptime_seconds;
    unsigned sample_every;
    int enabled;
    double bounds[SPOOL_HISTOGRAM_BUCKETS]; /* finite upper bounds, seconds */
    size_t bound_count;
    size_t thread_count;
    cli_thread *threads;
    size_t actor_count;
    cli_actor *actors;
    size_t dead_letter_count;
    cli_dead_letter *dead_letters;
    char node[64]; /* this node's name; "" when the runtime is no node (or the endpoint is older) */
    size_t peer_count;
    cli_peer *peers; /* sorted by name, as the endpoint sends them */
} cli_snapshot;

/*
 * Parses the JSON of a "metrics json" reply. Returns NULL with a reason in `error` when it is not
 * JSON or lacks a key this tool relies on.
 */
cli_snapshot *cli_snapshot_parse(const char *json, char *error, size_t error_size);
void cli_snapshot_destroy(cli_snapshot **snapshot);

/* Asks the endpoint for "metrics json" and parses it: cli_request + cli_snapshot_parse. */
cli_snapshot *cli_snapshot_fetch(cli_client *client, char *error, size_t error_size);

/* The actor with this id in `snapshot`, or NULL. */
const cli_actor *cli_snapshot_find_actor(const cli_snapshot *snapshot, const char *id);

/* The peer named `node` in `snapshot`, or NULL. */
const cli_peer *cli_snapshot_find_peer(const cli_snapshot *snapshot, const char *node);

/* Sum of every thread's messages / dead letters of every reason. */
uint64_t cli_snapshot_messages(const cli_snapshot *snapshot);
uint64_t cli_snapshot_dead_letters(const cli_snapshot *snapshot);

/*
 * The quantile q (0..1) of the observations counted in `now` but not yet in `before` (NULL: all of
 * them), the way the runtime reads a histogram: the upper bound of the bucket in which the q-th
 * observation falls, the last finite bound for the +Inf bucket. Returns -1 when there are none.
 */
double cli_histogram_quantile(const cli_snapshot *snapshot, const cli_histogram *now,
                              const cli_histogram *before, double q);

/* The peer's dead letters, every reason. */
uint64_t cli_peer_dead_letters(const cli_peer *peer);

/* `now` - `before`, never negative (a counter that went back means the actor is a new one). */
static inline uint64_t cli_delta(uint64_t now, uint64_t before) {
    return now > before ? now - before : 0;
}

/* The label people know an actor by: its name, else "(behavior)". */
const char *cli_actor_label(const cli_actor *actor, char *buffer, size_t size);

/* ---------------------------------------------------------------------------------------------- */
/* format.c: numbers for people                                                                   */
/* ---------------------------------------------------------------------------------------------- */

/* "850ns", "12.5us", "3.2ms", "1.50s"; "-" for a negative value (no observation). */
const char *cli_format_seconds(double seconds, char *buffer, size_t size);
/* "1h02m03s", "4m05s", "12.3s". */
const char *cli_format_uptime(double seconds, char *buffer, size_t size);
/* "950", "12.3k", "4.56M". */
const char *cli_format_count(double value, char *buffer, size_t size);

/* Monotonic clock in seconds. */
double cli_now(void);
/* Sleeps `seconds` (restarting after signals unless *stop becomes non-zero; stop may be NULL). */
void cli_sleep(double seconds, volatile sig_atomic_t *stop);

/* ---------------------------------------------------------------------------------------------- */
/* subcommands: each parses its own arguments (argv[0] is the subcommand) and returns an exit code
 */
/* ---------------------------------------------------------------------------------------------- */

int cli_stats_main(int argc, char **argv);
int cli_top_main(int argc, char **argv);
/* run.c: `spool run SCRIPT.lua [ARGS...]`, the one subcommand that runs a runtime itself. */
int cli_run_main(int argc, char **argv);
/* keygen.c: `spool keygen DIR [--name NAME] [--force]`. */
int cli_keygen_main(int argc, char **argv);

/* stats.c: the readable table of one snapshot. */
void cli_stats_print_table(FILE *out, const char *endpoint, const cli_snapshot *snapshot);

/* plot.c: `spool stats --plot FILE.svg --seconds N [--interval MS] ENDPOINT`. */
int cli_plot_run(cli_client *client, const char *path, double seconds, int interval_ms);

/*
 * spool.c: options. cli_option matches argv[*i] against "--name VALUE" or "--name=VALUE": it
 * returns 1 and sets *value (advancing *i past a separate value) when it matches, 0 when it does
 * not, -1 (after saying so) when the value is missing. cli_parse_int / cli_parse_seconds print
 * "spool: ..." and return -1 when the value is bad.
 */
int cli_option(int argc, char **argv, int *i, const char *name, const char **value);
int cli_parse_int(const char *option, const char *value, int min, int max, int *out);
int cli_parse_seconds(const char *option, const char *value, double min, double max, double *out);

#endif
