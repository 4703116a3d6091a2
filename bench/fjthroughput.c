/*
 * fjthroughput.c - Savina Fork-Join Throughput: one driver actor on thread 0 of a 2-thread runtime
 * sends MESSAGES messages to each of ACTORS workers (spread round-robin over the two threads), in
 * round-robin order over the workers, all in one handler call. Each message carries its sequence
 * number for that worker; the worker checks they arrive in order, counts them and tells the driver
 * when it has all of them. value = ACTORS * MESSAGES / (first send to the driver's receipt of the
 * last worker's report), in M msg/s.
 * Args, in any order: [MESSAGES] [ACTORS] (the first number is MESSAGES per worker) [unpinned]
 */
#define BENCH_NAME "fjthroughput"
#include "bench.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_MESSAGES 20000L
#define DEFAULT_ACTORS 60L
#define CPUS "0,1" /* scheduler threads 0 and 1 are pinned here unless "unpinned" is given */
#define TIMEOUT_MS 120000u

enum { MSG_GO = 1, MSG_WORK = 2, MSG_DONE = 3 };

typedef struct worker_state {
    spool_id driver;
    uint64_t messages, count;
    int out_of_order;
} worker_state;

typedef struct driver_state {
    long actors;
    uint64_t messages;
    spool_id *workers;
    long done;
    uint64_t t0, t1;
} driver_state;

static void worker_handle(spool_ctx *ctx, void *state, const spool_message *msg) {
    worker_state *w = state;
    uint64_t seq;
    memcpy(&seq, msg->data, sizeof seq);
    if (seq != w->count)
        w->out_of_order = 1;
    if (++w->count == w->messages)
        bench_check(spool_send(spool_ctx_runtime(ctx), w->driver, MSG_DONE, NULL, 0), "send done");
}

static void driver_handle(spool_ctx *ctx, void *state, const spool_message *msg) {
    driver_state *d = state;
    spool_runtime *rt = spool_ctx_runtime(ctx);
    if (msg->type == MSG_GO) {
        d->t0 = bench_now_ns();
        for (uint64_t seq = 0; seq < d->messages; seq++)
            for (long i = 0; i < d->actors; i++)
                bench_check(spool_send(rt, d->workers[i], MSG_WORK, &seq, sizeof seq), "send");
        return;
    }
    if (++d->done < d->actors)
        return;
    d->t1 = bench_now_ns();
    for (long i = 0; i < d->actors; i++)
        bench_check(spool_actor_stop(rt, d->workers[i], SPOOL_EXIT_NORMAL), "stop worker");
    bench_check(spool_actor_stop(rt, spool_self(ctx), SPOOL_EXIT_NORMAL), "stop driver");
}

static const spool_behavior worker_behavior = {"worker", worker_handle, NULL};
static const spool_behavior driver_behavior = {"driver", driver_handle, NULL};

int main(int argc, char **argv) {
    long numbers[2] = {DEFAULT_MESSAGES, DEFAULT_ACTORS};
    int pinned;
    if (bench_parse(argc, argv, numbers, 2, NULL, NULL, &pinned, "[MESSAGES] [ACTORS]"))
        return 2;
    long messages = numbers[0], actors = numbers[1];

    driver_state d = {0};
    d.actors = actors;
    d.messages = (uint64_t)messages;
    d.workers = calloc((size_t)actors, sizeof *d.workers);
    worker_state *w = calloc((size_t)actors, sizeof *w);
    if (!d.workers || !w) {
        fprintf(stderr, "fjthroughput: out of memory\n");
        return 1;
    }

    spool_runtime *rt = bench_runtime(2, pinned ? CPUS : NULL);
    spool_id driver;
    driver = bench_spawn_on(rt, &driver_behavior, &d, 0);
    for (long i = 0; i < actors; i++) {
        w[i].driver = driver;
        w[i].messages = (uint64_t)messages;
        d.workers[i] = bench_spawn_on(rt, &worker_behavior, &w[i], (int)(i % 2));
    }
    bench_check(spool_runtime_start(rt), "start");
    bench_check(spool_send(rt, driver, MSG_GO, NULL, 0), "send go");
    bench_check(spool_runtime_wait(rt, TIMEOUT_MS), "wait");
    spool_runtime_destroy(&rt); /* joins the threads: their writes are visible from here */

    int ok = d.done == actors;
    for (long i = 0; i < actors; i++)
        ok = ok && w[i].count == (uint64_t)messages && !w[i].out_of_order;
    free(d.workers);
    free(w);
    if (!ok) {
        fprintf(stderr, "fjthroughput: %ld of %ld workers reported, or a count/order was wrong\n",
                d.done, actors);
        return 1;
    }
    double total = (double)messages * (double)actors;
    fprintf(stderr, "fjthroughput: %ld workers x %ld messages, driver on thread 0, CPUs %s\n",
            actors, messages, pinned ? CPUS : "unpinned");
    printf("{\"name\":\"fjthroughput%s\",\"unit\":\"M msg/s\",\"value\":%.3f,\"messages\":%.0f,"
           "\"actors\":%ld,\"pinned\":%s}\n",
           bench_suffix(), total / ((double)(d.t1 - d.t0) / 1e9) / 1e6, total, actors,
           pinned ? "true" : "false");
    return 0;
}
