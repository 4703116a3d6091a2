/*
 * remote.c - spool's nodes on tcp loopback, two processes, next to bench/zmq_floor (plain libzmq
 * between two processes): the parent is node "a", the forked child node "b", each a runtime of one
 * scheduler thread made a node (insecure loopback). Each process, with its net thread and the
 * ZeroMQ I/O thread, is pinned to one CPU (a to 0, b to 1) unless "unpinned", as zmq_floor pins.
 *
 * Measured by a's driver actor against b's echo actor (found with spool_node_whereis):
 *   remote_pingpong       16 bytes there and back, ROUND_TRIPS times; us per round trip.
 *   remote_throughput     STREAM messages of 16 bytes, one way; b acknowledges every ACK_EVERY and
 *                         a keeps at most WINDOW (and WINDOW_BYTES) unacknowledged (so no queue
 *                         overflows); M msg/s from the first send to the last acknowledgement.
 *   remote_throughput_1k  the same with STREAM_1K messages of 1 KiB.
 * b checks every message's sequence number (FIFO, nothing lost); a checks every echo and the final
 * count; any mismatch, dead letter or timeout exits non-zero.
 * Args, in any order: [ROUND_TRIPS] [STREAM] [STREAM_1K] [unpinned]
 */
#define _GNU_SOURCE /* sched_setaffinity */
#define BENCH_NAME "remote"
#include "bench.h"

#include <spool_node.h>

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#define ACK_EVERY 10000
#define WINDOW 200000
/* ... and at most WINDOW_BYTES of payload unacknowledged: the window must fit the sender's
 * per-peer queue (queue_bytes, 128 MiB by default, counting 64 bytes of overhead per message),
 * else the bench measures overload refusals instead of a stream. */
#define WINDOW_BYTES ((uint64_t)32 << 20)
#define WARMUP 200
#define SMALL 16
#define LARGE 1024
#define TIMEOUT_S 60

enum { T_PING = 1, T_ITEM, T_ACK, T_RESET, T_QUIT, T_GO };

/* ---------------------------------------------------------------------------------------------- */
/* b: the echo                                                                                    */

typedef struct echo_state {
    uint64_t expected; /* next item's sequence number */
    uint64_t errors;
    atomic_int quit;
} echo_state;

static void echo_handle(spool_ctx *ctx, void *state, const spool_message *m) {
    echo_state *e = state;
    spool_runtime *rt = spool_ctx_runtime(ctx);
    switch (m->type) {
    case T_PING:
        bench_check(spool_send(rt, m->from, T_PING, m->data, m->size), "echo");
        break;
    case T_RESET:
        e->expected = 1;
        break;
    case T_ITEM: {
        uint64_t seq = 0;
        memcpy(&seq, m->data, sizeof seq);
        if (seq != e->expected)
            e->errors++;
        e->expected = seq + 1;
        if (seq % ACK_EVERY == 0)
            bench_check(spool_send(rt, m->from, T_ACK, &seq, sizeof seq), "ack");
        break;
    }
    case T_QUIT:
        atomic_store(&e->quit, e->errors ? 2 : 1);
        break;
    default:
        break;
    }
}

static const spool_behavior echo_behavior = {.name = "echo", .handle = echo_handle};

static void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
        fprintf(stderr, "%s: cannot pin to CPU %d: running unpinned\n", BENCH_NAME, cpu);
}

static spool_node *make_node(spool_runtime *rt, const char *name, const char *join) {
    spool_node_config c;
    spool_node_config_init(&c);
    c.name = name;
    c.listen = "tcp://127.0.0.1:0";
    c.insecure = 1;
    const char *joins[1] = {join};
    if (join) {
        c.join = joins;
        c.join_count = 1;
    }
    char err[256] = "";
    spool_node *node = NULL;
    int rc = spool_node_create(rt, &c, &node, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "%s: node %s: %s\n", BENCH_NAME, name, err);
        exit(1);
    }
    return node;
}

static int run_b(int pipe_out, int pinned) {
    if (pinned)
        pin(1);
    spool_runtime *rt = bench_runtime(1, NULL);
    bench_check(spool_runtime_start(rt), "start b");
    spool_node *node = make_node(rt, "b", NULL);
    static echo_state e = {.expected = 1};
    spool_spawn_opts opts = spool_spawn_opts_default();
    opts.name = "echo";
    spool_id echo;
    bench_check(spool_spawn(rt, &echo_behavior, &e, &opts, &echo), "spawn echo");
    const char *endpoint = spool_node_endpoint(node);
    if (write(pipe_out, endpoint, strlen(endpoint) + 1) < 0)
        return 1;
    close(pipe_out);
    uint64_t start = bench_now_ns();
    while (!atomic_load(&e.quit) && bench_now_ns() - start < (uint64_t)TIMEOUT_S * 3 * 1000000000u)
        usleep(1000);
    int status = atomic_load(&e.quit) == 1 ? 0 : 1;
    if (e.errors)
        fprintf(stderr, "%s (b): %llu messages out of order or missing\n", BENCH_NAME,
                (unsigned long long)e.errors);
    spool_node_destroy(&node);
    spool_runtime_destroy(&rt);
    return status;
}

/* ---------------------------------------------------------------------------------------------- */
/* a: the driver                                                                                  */

typedef struct driver {
    spool_id echo;
    long round_trips, stream, stream_1k;
    /* the phase now */
    int phase; /* 0 whereis, 1 warmup+pingpong, 2 stream, 3 stream 1k, 4 done */
    long done_trips;
    uint64_t sent, acked, total;
    size_t size;
    uint64_t phase_start;
    double results[3];
    atomic_int finished; /* 1 ok, 2 failed */
} driver;

static void finish(driver *d, int ok) { atomic_store(&d->finished, ok ? 1 : 2); }

static void send_ping(spool_ctx *ctx, driver *d) {
    char payload[SMALL] = {0};
    memcpy(payload, &d->done_trips, sizeof d->done_trips);
    bench_check(spool_send(spool_ctx_runtime(ctx), d->echo, T_PING, payload, sizeof payload),
                "ping");
}

/* Sends items until the window is full or all are sent. */
static void fill(spool_ctx *ctx, driver *d) {
    static char payload[LARGE];
    spool_runtime *rt = spool_ctx_runtime(ctx);
    uint64_t window = WINDOW_BYTES / d->size < WINDOW ? WINDOW_BYTES / d->size : WINDOW;
    while (d->sent < d->total && d->sent - d->acked < window) {
        uint64_t seq = ++d->sent;
        memcpy(payload, &seq, sizeof seq);
        int rc = spool_send(rt, d->echo, T_ITEM, payload, d->size);
        if (rc != 0) {
            fprintf(stderr, "%s: send: %s\n", BENCH_NAME, spool_strerror(rc));
            finish(d, 0);
            return;
        }
    }
}

static void start_stream(spool_ctx *ctx, driver *d, uint64_t total, size_t size) {
    d->sent = d->acked = 0;
    d->total = total;
    d->size = size;
    bench_check(spool_send(spool_ctx_runtime(ctx), d->echo, T_RESET, NULL, 0), "reset");
    d->phase_start = bench_now_ns();
    fill(ctx, d);
}

/* A stream of `total` is acknowledged at its last multiple of ACK_EVERY: totals are rounded. */
static uint64_t round_total(long n) {
    uint64_t t = (uint64_t)n / ACK_EVERY * ACK_EVERY;
    return t ? t : ACK_EVERY;
}

static void next_phase(spool_ctx *ctx, driver *d) {
    uint64_t now = bench_now_ns();
    double seconds = (double)(now - d->phase_start) / 1e9;
    if (d->phase == 1) {
        d->results[0] = seconds * 1e6 / (double)d->round_trips;
        d->phase = 2;
        start_stream(ctx, d, round_total(d->stream), SMALL);
    } else if (d->phase == 2) {
        d->results[1] = (double)d->total / seconds / 1e6;
        d->phase = 3;
        start_stream(ctx, d, round_total(d->stream_1k), LARGE);
    } else {
        d->results[2] = (double)d->total / seconds / 1e6;
        d->phase = 4;
        spool_send(spool_ctx_runtime(ctx), d->echo, T_QUIT, NULL, 0);
        finish(d, 1);
    }
}

static void found_echo(spool_ctx *ctx, void *state, int status, const spool_message *reply,
                       void *arg) {
    driver *d = state;
    if (status != 0 || reply->size != sizeof(spool_id)) {
        fprintf(stderr, "%s: whereis echo on b: %s\n", BENCH_NAME, spool_strerror(status));
        finish(d, 0);
        return;
    }
    memcpy(&d->echo, reply->data, sizeof d->echo);
    d->phase = 1;
    d->done_trips = -WARMUP;
    send_ping(ctx, d);
}

static void driver_handle(spool_ctx *ctx, void *state, const spool_message *m) {
    driver *d = state;
    switch (m->type) {
    case T_GO:
        if (spool_node_whereis(ctx, "b", "echo", 5000, found_echo, NULL) != 0)
            finish(d, 0);
        break;
    case T_PING: {
        long seq;
        memcpy(&seq, m->data, sizeof seq);
        if (seq != d->done_trips) {
            fprintf(stderr, "%s: echo %ld, expected %ld\n", BENCH_NAME, seq, d->done_trips);
            finish(d, 0);
            return;
        }
        if (++d->done_trips == 0)
            d->phase_start = bench_now_ns();
        if (d->done_trips == d->round_trips)
            next_phase(ctx, d);
        else
            send_ping(ctx, d);
        break;
    }
    case T_ACK: {
        uint64_t seq;
        memcpy(&seq, m->data, sizeof seq);
        d->acked = seq;
        if (d->acked == d->total)
            next_phase(ctx, d);
        else
            fill(ctx, d);
        break;
    }
    default:
        break;
    }
}

static const spool_behavior driver_behavior = {.name = "driver", .handle = driver_handle};

static int member(spool_runtime *rt, const char *name) {
    char names[4][SPOOL_NODE_NAME_MAX + 1];
    size_t n = 0;
    if (spool_node_members(rt, names, 4, &n) != 0)
        return 0;
    for (size_t i = 0; i < n && i < 4; i++)
        if (strcmp(names[i], name) == 0)
            return 1;
    return 0;
}

int main(int argc, char **argv) {
    long numbers[3] = {10000, 2000000, 1000000};
    int pinned = 1;
    if (bench_parse(argc, argv, numbers, 3, NULL, NULL, &pinned,
                    "[ROUND_TRIPS] [STREAM] [STREAM_1K]") != 0)
        return 2;
    int fds[2];
    if (pipe(fds) != 0)
        return 1;
    fflush(stdout);
    pid_t child = fork();
    if (child < 0)
        return 1;
    if (child == 0) {
        close(fds[0]);
        _exit(run_b(fds[1], pinned));
    }
    close(fds[1]);
    char endpoint[256] = "";
    size_t got = 0;
    while (got < sizeof endpoint - 1) {
        ssize_t r = read(fds[0], endpoint + got, sizeof endpoint - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
        if (memchr(endpoint, 0, got))
            break;
    }
    close(fds[0]);
    if (!endpoint[0]) {
        fprintf(stderr, "%s: b did not start\n", BENCH_NAME);
        return 1;
    }
    if (pinned)
        pin(0);
    spool_runtime *rt = bench_runtime(1, NULL);
    bench_check(spool_runtime_start(rt), "start a");
    char join[300];
    snprintf(join, sizeof join, "b@%s", endpoint);
    spool_node *node = make_node(rt, "a", join);
    uint64_t start = bench_now_ns();
    while (!member(rt, "b")) {
        if (bench_now_ns() - start > 10000000000u) {
            fprintf(stderr, "%s: b never came up\n", BENCH_NAME);
            kill(child, SIGKILL);
            return 1;
        }
        usleep(1000);
    }
    static driver d;
    d.round_trips = numbers[0];
    d.stream = numbers[1];
    d.stream_1k = numbers[2];
    spool_id id = bench_spawn_on(rt, &driver_behavior, &d, 0);
    bench_check(spool_send(rt, id, T_GO, NULL, 0), "go");
    start = bench_now_ns();
    while (!atomic_load(&d.finished) && bench_now_ns() - start < (uint64_t)TIMEOUT_S * 1000000000u)
        usleep(1000);
    int ok = atomic_load(&d.finished) == 1;
    for (int r = 0; r < SPOOL_DEAD_REASON_COUNT; r++) {
        uint64_t n = 0;
        spool_dead_letter_count(rt, (spool_dead_reason)r, &n);
        if (n) {
            fprintf(stderr, "%s: %llu dead letters '%s'\n", BENCH_NAME, (unsigned long long)n,
                    spool_dead_reason_name((spool_dead_reason)r));
            ok = 0;
        }
    }
    int status = 1;
    if (ok && waitpid(child, &status, 0) == child && WIFEXITED(status) &&
        WEXITSTATUS(status) == 0) {
        printf("{\"name\":\"remote_pingpong\",\"unit\":\"us/roundtrip\",\"value\":%.2f,"
               "\"round_trips\":%ld}\n",
               d.results[0], d.round_trips);
        printf("{\"name\":\"remote_throughput\",\"unit\":\"M msg/s\",\"value\":%.3f,"
               "\"messages\":%llu,\"bytes\":%d}\n",
               d.results[1], (unsigned long long)round_total(d.stream), SMALL);
        printf("{\"name\":\"remote_throughput_1k\",\"unit\":\"M msg/s\",\"value\":%.3f,"
               "\"messages\":%llu,\"bytes\":%d}\n",
               d.results[2], (unsigned long long)round_total(d.stream_1k), LARGE);
        status = 0;
    } else {
        if (!ok)
            fprintf(stderr, "%s: failed or timed out (phase %d)\n", BENCH_NAME, d.phase);
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        status = 1;
    }
    spool_node_destroy(&node);
    spool_runtime_destroy(&rt);
    return status;
}
