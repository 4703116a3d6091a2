/*
 * send_same_thread.c - one spool_send plus one handler call, sender and receiver on the same
 * scheduler thread (1-thread runtime): a driver sends MESSAGES 8-byte messages to a sink in chunks
 * of CHUNK, the sink handing a credit back after each chunk, so at most one chunk waits. value =
 * ns from "go" to the sink's last message / MESSAGES. Args: [MESSAGES] [CHUNK] [unpinned]
 */
#define BENCH_NAME "send_same_thread"
#include "bench.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_MESSAGES 10000000L
#define DEFAULT_CHUNK 1000L
#define CPUS "0" /* the scheduler thread is pinned here unless "unpinned" is given */
#define TIMEOUT_MS 120000u

enum { MSG_GO = 1, MSG_CREDIT = 2, MSG_ITEM = 3 };

/* Shared by both actors; they run on the same thread, so there are no races. */
typedef struct bench {
    long messages, chunk;
    spool_id driver, sink;
    long sent, received;
    long credit_in; /* the sink: messages until it hands the next credit back */
    uint64_t t0, t1;
    uint64_t high_water; /* the sink's largest mailbox depth */
} bench;

/* On "go" and on each credit: send the next chunk. */
static void driver_handle(spool_ctx *ctx, void *state, const spool_message *msg) {
    bench *b = state;
    spool_runtime *rt = spool_ctx_runtime(ctx);
    if (msg->type == MSG_GO)
        b->t0 = bench_now_ns();
    long n = b->messages - b->sent < b->chunk ? b->messages - b->sent : b->chunk;
    for (long i = 0; i < n; i++, b->sent++)
        bench_check(spool_send(rt, b->sink, MSG_ITEM, &b->sent, sizeof b->sent), "send item");
}

static void sink_handle(spool_ctx *ctx, void *state, const spool_message *msg) {
    bench *b = state;
    long seq;
    memcpy(&seq, msg->data, sizeof seq);
    if (seq != b->received) {
        fprintf(stderr, "send_same_thread: got message %ld, expected %ld\n", seq, b->received);
        exit(1);
    }
    b->received++;
    if (b->received < b->messages) {
        if (--b->credit_in == 0) {
            b->credit_in = b->chunk;
            bench_check(spool_send(spool_ctx_runtime(ctx), b->driver, MSG_CREDIT, NULL, 0),
                        "credit");
        }
        return;
    }
    spool_runtime *rt = spool_ctx_runtime(ctx);
    b->t1 = bench_now_ns();
    spool_mailbox_stats stats;
    bench_check(spool_mailbox_stats_get(rt, b->sink, &stats), "mailbox stats");
    b->high_water = stats.high_water;
    bench_check(spool_actor_stop(rt, b->driver, SPOOL_EXIT_NORMAL), "stop driver");
    bench_check(spool_actor_stop(rt, b->sink, SPOOL_EXIT_NORMAL), "stop sink");
}

static const spool_behavior driver_behavior = {"driver", driver_handle, NULL};
static const spool_behavior sink_behavior = {"sink", sink_handle, NULL};

int main(int argc, char **argv) {
    bench b = {0};
    long numbers[2] = {DEFAULT_MESSAGES, DEFAULT_CHUNK};
    int pinned;
    if (bench_parse(argc, argv, numbers, 2, NULL, NULL, &pinned, "[MESSAGES] [CHUNK]"))
        return 2;
    b.messages = numbers[0];
    b.chunk = b.credit_in = numbers[1];

    spool_runtime *rt = bench_runtime(1, pinned ? CPUS : NULL);
    b.sink = bench_spawn_on(rt, &sink_behavior, &b, 0);
    b.driver = bench_spawn_on(rt, &driver_behavior, &b, 0);
    bench_check(spool_runtime_start(rt), "start");
    bench_check(spool_send(rt, b.driver, MSG_GO, NULL, 0), "send go");
    bench_check(spool_runtime_wait(rt, TIMEOUT_MS), "wait");
    spool_runtime_destroy(&rt); /* joins the thread: its writes to b are visible from here */

    fprintf(stderr,
            "send_same_thread: %ld messages, chunk %ld, CPU %s, sink mailbox high water %llu\n",
            b.messages, b.chunk, pinned ? CPUS : "unpinned", (unsigned long long)b.high_water);
    printf("{\"name\":\"send_same_thread%s\",\"unit\":\"ns/msg\",\"value\":%.2f,\"messages\":%ld,"
           "\"chunk\":%ld,\"pinned\":%s}\n",
           bench_suffix(), (double)(b.t1 - b.t0) / (double)b.messages, b.messages, b.chunk,
           pinned ? "true" : "false");
    return 0;
}
