/*
 * stats.c - `spool stats`: one snapshot of a running program (with its peers when it is a node),
 * as a table for people (default), as the endpoint's JSON (--json) or Prometheus text (--prom) for
 * other programs; or, with --plot, a few seconds of snapshots drawn into an SVG file (plot.c).
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static const char stats_usage[] =
    "usage: spool stats [--json|--prom] [--timeout MS] ENDPOINT\n"
    "       spool stats --plot FILE.svg --seconds N [--interval MS] [--timeout MS] ENDPOINT\n"
    "\n"
    "Prints one metrics snapshot of the program serving ENDPOINT (its admin endpoint):\n"
    "  (default)         a table of threads and actors: busy share of uptime, messages, mailbox\n"
    "                    depth and high-water, counters, and p50/p99 of the wait in the mailbox\n"
    "                    and of the handler's time, since start; for a node, a line per peer:\n"
    "                    state, heartbeat round trip, messages and bytes in and out, its send\n"
    "                    queue, missed heartbeats and the dead letters sent its way, by reason\n"
    "  --json            the snapshot as JSON, as the endpoint sends it (\"metrics json\")\n"
    "  --prom            the snapshot in the Prometheus text format (\"metrics prometheus\")\n"
    "  --plot FILE.svg   sample the endpoint every --interval MS (default 250) for --seconds N\n"
    "                    and write an SVG plot of mailbox depth and p99 wait over time for the\n"
    "                    five actors with the deepest mailboxes\n"
    "  --timeout MS      give up when the endpoint does not answer within MS ms (default 2000)\n"
    "\n"
    "Exit status: 0 ok, 1 no answer or a bad answer, 2 usage.\n";

enum stats_format { STATS_TABLE, STATS_JSON, STATS_PROMETHEUS };

/* Prints `text` as it came, with a final newline if it has none. */
static void print_reply(const char *text) {
    size_t length = strlen(text);
    fputs(text, stdout);
    if (length == 0 || text[length - 1] != '\n')
        putchar('\n');
}

/* A node's peers, one line each; nothing when the runtime is no node. */
static void print_peers(FILE *out, const cli_snapshot *s) {
    if (s->node[0] == '\0' && s->peer_count == 0)
        return;
    size_t up = 0;
    int name_width = 4;
    for (size_t i = 0; i < s->peer_count; i++) {
        up += strcmp(s->peers[i].state, "up") == 0;
        int length = (int)strlen(s->peers[i].node);
        name_width = length > name_width ? length : name_width;
    }
    fprintf(out, "\nnode %s: %zu peer%s, %zu up\n", s->node[0] != '\0' ? s->node : "?",
            s->peer_count, s->peer_count == 1 ? "" : "s", up);
    if (s->peer_count == 0)
        return;
    fprintf(out, "%-*s %-7s %8s %10s %10s %12s %12s %7s %10s %6s %s\n", name_width, "PEER", "STATE",
            "RTT", "MSGS_IN", "MSGS_OUT", "BYTES_IN", "BYTES_OUT", "QUEUED", "Q_BYTES", "MISSED",
            "DEAD_LETTERS");
    for (size_t i = 0; i < s->peer_count; i++) {
        const cli_peer *p = &s->peers[i];
        char rtt[32];
        fprintf(out, "%-*s %-7s %8s %10llu %10llu %12llu %12llu %7llu %10llu %6llu ", name_width,
                p->node, p->state[0] != '\0' ? p->state : "?",
                cli_format_seconds(p->rtt_seconds > 0 ? p->rtt_seconds : -1, rtt, sizeof rtt),
                (unsigned long long)p->messages_in, (unsigned long long)p->messages_out,
                (unsigned long long)p->bytes_in, (unsigned long long)p->bytes_out,
                (unsigned long long)p->queued_messages, (unsigned long long)p->queued_bytes,
                (unsigned long long)p->heartbeats_missed);
        /* Only the reasons that happened, as reason=N: one word, the last column. */
        int any = 0;
        for (size_t d = 0; d < p->dead_letter_count; d++) {
            if (p->dead_letters[d].count == 0)
                continue;
            fprintf(out, "%s%s=%llu", any ? "," : "", p->dead_letters[d].reason,
                    (unsigned long long)p->dead_letters[d].count);
            any = 1;
        }
        fprintf(out, "%s\n", any ? "" : "-");
    }
}

void cli_stats_print_table(FILE *out, const char *endpoint, const cli_snapshot *s) {
    char a[32], b[32], c[32];
    fprintf(out, "spool at %s: up %s, %zu threads, %zu actors, %llu messages, %llu dead letters\n",
            endpoint, cli_format_uptime(s->uptime_seconds, a, sizeof a), s->thread_count,
            s->actor_count, (unsigned long long)cli_snapshot_messages(s),
            (unsigned long long)cli_snapshot_dead_letters(s));
    if (s->enabled)
        fprintf(out, "metrics on; wait and handler times sample 1 message in %u\n",
                s->sample_every);
    else
        fprintf(out, "metrics off in this runtime (SPOOL_METRICS=off): figures stay at zero\n");

    fprintf(out, "\n%6s %4s %7s %12s %10s %7s %6s\n", "THREAD", "CPU", "BUSY", "MESSAGES",
            "WAKEUPS", "ACTORS", "READY");
    for (size_t i = 0; i < s->thread_count; i++) {
        const cli_thread *t = &s->threads[i];
        char cpu[16] = "-";
        if (t->cpu >= 0)
            snprintf(cpu, sizeof cpu, "%d", t->cpu);
        double busy = s->uptime_seconds > 0 ? 100.0 * t->busy_seconds / s->uptime_seconds : 0;
        fprintf(out, "%6d %4s %6.1f%% %12llu %10llu %7llu %6llu\n", t->thread, cpu, busy,
                (unsigned long long)t->messages, (unsigned long long)t->wakeups,
                (unsigned long long)t->actors, (unsigned long long)t->ready);
    }

    /* Column widths that fit the longest id, name and behavior. */
    int id_width = 2, name_width = 4, behavior_width = 8;
    for (size_t i = 0; i < s->actor_count; i++) {
        const cli_actor *x = &s->actors[i];
        int length = (int)strlen(x->id);
        id_width = length > id_width ? length : id_width;
        length = (int)strlen(x->name);
        name_width = length > name_width ? length : name_width;
        length = (int)strlen(x->behavior);
        behavior_width = length > behavior_width ? length : behavior_width;
    }
    fprintf(out, "\n%-*s %-*s %-*s %6s %8s %8s %12s %12s %8s %8s %8s %8s %8s\n", id_width, "ID",
            name_width, "NAME", behavior_width, "BEHAVIOR", "THREAD", "DEPTH", "HIGH", "ENQUEUED",
            "DEQUEUED", "REJECTED", "DROPPED", "WAIT50", "WAIT99", "PROC99");
    for (size_t i = 0; i < s->actor_count; i++) {
        const cli_actor *x = &s->actors[i];
        fprintf(out, "%-*s %-*s %-*s %6d %8llu %8llu %12llu %12llu %8llu %8llu %8s %8s %8s\n",
                id_width, x->id, name_width, x->name[0] != '\0' ? x->name : "-", behavior_width,
                x->behavior, x->thread, (unsigned long long)x->depth,
                (unsigned long long)x->high_water, (unsigned long long)x->enqueued,
                (unsigned long long)x->dequeued, (unsigned long long)x->rejected,
                (unsigned long long)x->dropped,
                cli_format_seconds(x->wait.count > 0 ? x->wait.p50 : -1, a, sizeof a),
                cli_format_seconds(x->wait.count > 0 ? x->wait.p99 : -1, b, sizeof b),
                cli_format_seconds(x->processing.count > 0 ? x->processing.p99 : -1, c, sizeof c));
    }
    if (s->actor_count == 0)
        fprintf(out, "(no live actors)\n");

    if (s->dead_letter_count > 0) {
        fprintf(out, "\ndead letters:");
        for (size_t i = 0; i < s->dead_letter_count; i++)
            fprintf(out, " %s %llu", s->dead_letters[i].reason,
                    (unsigned long long)s->dead_letters[i].count);
        fprintf(out, "\n");
    }
    print_peers(out, s);
}

int cli_stats_main(int argc, char **argv) {
    enum stats_format format = STATS_TABLE;
    const char *endpoint = NULL, *plot_path = NULL, *value;
    int timeout_ms = CLI_DEFAULT_TIMEOUT_MS, interval_ms = 250;
    double seconds = -1;
    for (int i = 1; i < argc; i++) {
        int matched;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(stats_usage, stdout);
            return CLI_EXIT_OK;
        } else if (strcmp(argv[i], "--json") == 0) {
            format = STATS_JSON;
        } else if (strcmp(argv[i], "--prom") == 0 || strcmp(argv[i], "--prometheus") == 0) {
            format = STATS_PROMETHEUS;
        } else if ((matched = cli_option(argc, argv, &i, "--timeout", &value)) != 0) {
            if (matched < 0 || cli_parse_int("--timeout", value, 1, 3600000, &timeout_ms) != 0)
                return CLI_EXIT_USAGE;
        } else if ((matched = cli_option(argc, argv, &i, "--interval", &value)) != 0) {
            if (matched < 0 || cli_parse_int("--interval", value, 10, 3600000, &interval_ms) != 0)
                return CLI_EXIT_USAGE;
        } else if ((matched = cli_option(argc, argv, &i, "--seconds", &value)) != 0) {
            if (matched < 0 || cli_parse_seconds("--seconds", value, 0.01, 86400, &seconds) != 0)
                return CLI_EXIT_USAGE;
        } else if ((matched = cli_option(argc, argv, &i, "--plot", &value)) != 0) {
            if (matched < 0)
                return CLI_EXIT_USAGE;
            plot_path = value;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "spool stats: unknown option '%s'\n\n%s", argv[i], stats_usage);
            return CLI_EXIT_USAGE;
        } else if (endpoint == NULL) {
            endpoint = argv[i];
        } else {
            fprintf(stderr, "spool stats: one endpoint only ('%s' and '%s')\n", endpoint, argv[i]);
            return CLI_EXIT_USAGE;
        }
    }
    if (endpoint == NULL) {
        fprintf(stderr, "spool stats: which endpoint?\n\n%s", stats_usage);
        return CLI_EXIT_USAGE;
    }
    if (plot_path != NULL && (format != STATS_TABLE || seconds < 0)) {
        fprintf(stderr, "spool stats: --plot takes --seconds N and neither --json nor --prom\n");
        return CLI_EXIT_USAGE;
    }
    if (plot_path == NULL && seconds >= 0) {
        fprintf(stderr, "spool stats: --seconds goes with --plot FILE.svg\n");
        return CLI_EXIT_USAGE;
    }

    cli_client *client = cli_client_create(endpoint, timeout_ms);
    if (client == NULL) {
        fprintf(stderr, "spool: out of memory\n");
        return CLI_EXIT_FAILURE;
    }
    int status = CLI_EXIT_OK;
    char error[512];
    if (plot_path != NULL) {
        status = cli_plot_run(client, plot_path, seconds, interval_ms);
    } else if (format == STATS_TABLE) {
        cli_snapshot *snapshot = cli_snapshot_fetch(client, error, sizeof error);
        if (snapshot == NULL) {
            fprintf(stderr, "spool: %s\n", error);
            status = CLI_EXIT_FAILURE;
        } else {
            cli_stats_print_table(stdout, endpoint, snapshot);
            cli_snapshot_destroy(&snapshot);
        }
    } else {
        char *reply;
        const char *request = format == STATS_JSON ? "metrics json" : "metrics prometheus";
        if (cli_request(client, request, &reply, error, sizeof error) != 0) {
            fprintf(stderr, "spool: %s\n", error);
            status = CLI_EXIT_FAILURE;
        } else {
            print_reply(reply);
            free(reply);
        }
    }
    cli_client_destroy(&client);
    if (fflush(stdout) != 0 && status == CLI_EXIT_OK) {
        perror("spool: writing the output");
        status = CLI_EXIT_FAILURE;
    }
    return status;
}
