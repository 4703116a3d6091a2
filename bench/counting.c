/*
 * counting.c - Savina Counting: a producer actor on thread 0 of a 2-thread runtime sends MESSAGES
 * 8-byte integers 1..MESSAGES in one handler call to a counter actor on thread 1, which sums them
 * and checks the total. value = MESSAGES / (first send to last receipt), in M msg/s.
 * Args: [MESSAGES] [unpinned]
 */
#define BENCH_NAME "counting"
#include "bench.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_MESSAGES 10000000L
#define CPUS "0,1" /* scheduler threads 0 and 1 are pinned here unless "unpinned" is given */
#define TIMEOUT_MS 120000u

enum { MSG_GO = 1, MSG_NUMBER = 2 };

typedef struct producer_state {
    spool_id counter;
    uint64_t messages;
    uint64_t t0; /* written on thread 0 */
} producer_state;

typedef struct counter_state {
    spool_id producer, self;
    uint64_t messages, count, sum;
    uint64_t t1; /* written on thread 1 */
    uint64_t high_water;
} counter_state;

static void producer_handle(spool_ctx *ctx, void *state, const spool_message *msg) {
    producer_state *p = state;
    spool_runtime *rt = spool_ctx_runtime(ctx);
    p->t0 = bench_now_ns();
    for (uint64_t i = 1; i <= p->messages; i++)
        bench_check(spool_send(rt, p->counter, MSG_NUMBER, &i, sizeof i), "send");
}

static void counter_handle(spool_ctx *ctx, void *state, const spool_message *msg) {
    counter_state *c = state;
    spool_runtime *rt = spool_ctx_runtime(ctx);
    uint64_t v;
    memcpy(&v, msg->data, sizeof v);
    c->sum += v;
    if (++c->count < c->messages)
        return;
    c->t1 = bench_now_ns();
    spool_mailbox_stats stats;
    bench_check(spool_mailbox_stats_get(rt, c->self, &stats), "mailbox stats");
    c->high_water = stats.high_water;
    bench_check(spool_actor_stop(rt, c->producer, SPOOL_EXIT_NORMAL), "stop producer");
    bench_check(spool_actor_stop(rt, c->self, SPOOL_EXIT_NORMAL), "stop counter");
}

static const spool_behavior producer_behavior = {"producer", producer_handle, NULL};
static const spool_behavior counter_behavior = {"counter", counter_handle, NULL};

int main(int argc, char **argv) {
    long messages = DEFAULT_MESSAGES;
    int pinned;
    if (bench_parse(argc, argv, &messages, 1, NULL, NULL, &pinned, "[MESSAGES]"))
        return 2;
    producer_state p = {0};
    counter_state c = {0};
    p.messages = c.messages = (uint64_t)messages;

    spool_runtime *rt = bench_runtime(2, pinned ? CPUS : NULL);
    c.self = bench_spawn_on(rt, &counter_behavior, &c, 1);
    c.producer = bench_spawn_on(rt, &producer_behavior, &p, 0);
    p.counter = c.self;
    bench_check(spool_runtime_start(rt), "start");
    bench_check(spool_send(rt, c.producer, MSG_GO, NULL, 0), "send go");
    bench_check(spool_runtime_wait(rt, TIMEOUT_MS), "wait");
    spool_runtime_destroy(&rt); /* joins the threads: their writes are visible from here */

    uint64_t n = c.messages;
    if (c.count != n || c.sum != n * (n + 1) / 2) {
        fprintf(stderr, "counting: counted %llu messages summing to %llu, expected %llu and %llu\n",
                (unsigned long long)c.count, (unsigned long long)c.sum, (unsigned long long)n,
                (unsigned long long)(n * (n + 1) / 2));
        return 1;
    }
    fprintf(stderr, "counting: %llu messages, CPUs %s, counter mailbox high water %llu\n",
            (unsigned long long)n, pinned ? CPUS : "unpinned", (unsigned long long)c.high_water);
    printf("{\"name\":\"counting%s\",\"unit\":\"M msg/s\",\"value\":%.3f,\"messages\":%llu,"
           "\"pinned\":%s}\n",
           bench_suffix(), (double)n / ((double)(c.t1 - p.t0) / 1e9) / 1e6, (unsigned long long)n,
           pinned ? "true" : "false");
    return 0;
}
