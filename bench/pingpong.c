/*
 * pingpong.c - Savina PingPong: ROUND_TRIPS messages bounce between two actors of a 2-thread
 * runtime, ping on thread 0 and pong on thread 1 ("cross", default) or both on thread 0 ("same").
 * value = ns from the first serve to the last return / ROUND_TRIPS.
 * Args, in any order: [ROUND_TRIPS] [cross|same] [unpinned]
 */
#define BENCH_NAME "pingpong"
#include "bench.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_ROUND_TRIPS 1000000L
#define CPUS "0,1" /* scheduler threads 0 and 1 are pinned here unless "unpinned" is given */
#define TIMEOUT_MS 120000u

enum { MSG_GO = 1, MSG_BALL = 2 };

typedef struct ping_state {
    spool_id pong;
    long rounds, done;
    uint64_t t0, t1;
} ping_state;

static void ping_handle(spool_ctx *ctx, void *state, const spool_message *msg) {
    ping_state *s = state;
    spool_runtime *rt = spool_ctx_runtime(ctx);
    if (msg->type == MSG_GO)
        s->t0 = bench_now_ns();
    else if (++s->done == s->rounds) {
        s->t1 = bench_now_ns();
        bench_check(spool_actor_stop(rt, s->pong, SPOOL_EXIT_NORMAL), "stop pong");
        bench_check(spool_actor_stop(rt, spool_self(ctx), SPOOL_EXIT_NORMAL), "stop ping");
        return;
    }
    bench_check(spool_send(rt, s->pong, MSG_BALL, NULL, 0), "send to pong");
}

static void pong_handle(spool_ctx *ctx, void *state, const spool_message *msg) {
    (void)state;
    bench_check(spool_send(spool_ctx_runtime(ctx), msg->from, MSG_BALL, NULL, 0), "send to ping");
}

static const spool_behavior ping_behavior = {"ping", ping_handle, NULL};
static const spool_behavior pong_behavior = {"pong", pong_handle, NULL};

int main(int argc, char **argv) {
    ping_state ping = {0};
    ping.rounds = DEFAULT_ROUND_TRIPS;
    static const char *const modes[] = {"cross", "same", NULL};
    int same = 0, pinned;
    if (bench_parse(argc, argv, &ping.rounds, 1, modes, &same, &pinned,
                    "[ROUND_TRIPS] [cross|same]"))
        return 2;

    spool_runtime *rt = bench_runtime(2, pinned ? CPUS : NULL);
    spool_id ping_id;
    ping.pong = bench_spawn_on(rt, &pong_behavior, NULL, same ? 0 : 1);
    ping_id = bench_spawn_on(rt, &ping_behavior, &ping, 0);
    bench_check(spool_runtime_start(rt), "start");
    bench_check(spool_send(rt, ping_id, MSG_GO, NULL, 0), "send go");
    bench_check(spool_runtime_wait(rt, TIMEOUT_MS), "wait");
    spool_runtime_destroy(&rt); /* joins the threads: their writes to ping are visible from here */

    fprintf(stderr, "pingpong: %ld round trips, ping on thread 0, pong on thread %d, CPUs %s\n",
            ping.rounds, same ? 0 : 1, pinned ? CPUS : "unpinned");
    /* The Savina name for two threads is plain "pingpong"; one thread is spool's own extra. */
    printf("{\"name\":\"pingpong%s%s\",\"unit\":\"ns/roundtrip\",\"value\":%.2f,"
           "\"round_trips\":%ld,\"pinned\":%s}\n",
           same ? "_same" : "", bench_suffix(), (double)(ping.t1 - ping.t0) / (double)ping.rounds,
           ping.rounds, pinned ? "true" : "false");
    return 0;
}
