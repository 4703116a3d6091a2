/*
 * fjcreation.c - Savina Fork-Join Creation: a driver actor on thread 0 of a 2-thread runtime spawns
 * ACTORS actors (placed by the default policy, round robin over the two threads) and sends each one
 * message, one actor after the other, in one handler call. Each actor handles its message, counts
 * it in a shared atomic counter and stops itself. value = ns from the first spawn until the counter
 * reaches ACTORS / ACTORS (spawn + first message + stop per actor). Checks the count and that the
 * runtime then has no actor left (spool_runtime_wait returns).
 * Args, in any order: [ACTORS] [unpinned]
 */
#define BENCH_NAME "fjcreation"
#include "bench.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_ACTORS 200000L
#define CPUS "0,1" /* scheduler threads 0 and 1 are pinned here unless "unpinned" is given */
#define TIMEOUT_MS 120000u

enum { MSG_GO = 1, MSG_WORK = 2 };

typedef struct shared_state {
    uint64_t actors;
    _Atomic uint64_t handled;
    uint64_t t0;            /* written by the driver before the first spawn */
    _Atomic uint64_t t1;    /* written by the actor that counts the last message */
    _Atomic uint64_t wrong; /* messages with a wrong payload */
} shared_state;

static void worker_handle(spool_ctx *ctx, void *state, const spool_message *msg) {
    shared_state *s = state;
    uint64_t v;
    if (msg->size != sizeof v || (memcpy(&v, msg->data, sizeof v), v >= s->actors))
        atomic_fetch_add(&s->wrong, 1);
    if (atomic_fetch_add(&s->handled, 1) + 1 == s->actors)
        atomic_store(&s->t1, bench_now_ns());
    bench_check(spool_actor_stop(spool_ctx_runtime(ctx), spool_self(ctx), SPOOL_EXIT_NORMAL),
                "stop self");
}

static const spool_behavior worker_behavior = {"worker", worker_handle, NULL};

static void driver_handle(spool_ctx *ctx, void *state, const spool_message *msg) {
    shared_state *s = state;
    spool_runtime *rt = spool_ctx_runtime(ctx);
    s->t0 = bench_now_ns();
    for (uint64_t i = 0; i < s->actors; i++) {
        spool_id id;
        bench_check(spool_spawn(rt, &worker_behavior, s, NULL, &id), "spawn worker");
        bench_check(spool_send(rt, id, MSG_WORK, &i, sizeof i), "send");
    }
    bench_check(spool_actor_stop(rt, spool_self(ctx), SPOOL_EXIT_NORMAL), "stop driver");
}

static const spool_behavior driver_behavior = {"driver", driver_handle, NULL};

int main(int argc, char **argv) {
    long actors = DEFAULT_ACTORS;
    int pinned;
    if (bench_parse(argc, argv, &actors, 1, NULL, NULL, &pinned, "[ACTORS]"))
        return 2;

    static shared_state s; /* outlives the runtime: the workers point at it */
    s.actors = (uint64_t)actors;

    spool_runtime *rt = bench_runtime(2, pinned ? CPUS : NULL);
    spool_id driver;
    driver = bench_spawn_on(rt, &driver_behavior, &s, 0);
    bench_check(spool_runtime_start(rt), "start");
    bench_check(spool_send(rt, driver, MSG_GO, NULL, 0), "send go");
    bench_check(spool_runtime_wait(rt, TIMEOUT_MS), "wait");
    uint64_t dead = 0, d;
    for (int r = 0; r < SPOOL_DEAD_REASON_COUNT; r++) {
        bench_check(spool_dead_letter_count(rt, (spool_dead_reason)r, &d), "dead letters");
        dead += d;
    }
    spool_runtime_destroy(&rt); /* joins the threads: their writes are visible from here */

    uint64_t handled = atomic_load(&s.handled), t1 = atomic_load(&s.t1);
    if (handled != s.actors || atomic_load(&s.wrong) != 0 || dead != 0 || t1 < s.t0) {
        fprintf(stderr, "fjcreation: %llu of %llu handled, %llu wrong, %llu dead letters\n",
                (unsigned long long)handled, (unsigned long long)s.actors,
                (unsigned long long)atomic_load(&s.wrong), (unsigned long long)dead);
        return 1;
    }
    fprintf(stderr, "fjcreation: %ld actors spawned by a driver on thread 0, CPUs %s\n", actors,
            pinned ? CPUS : "unpinned");
    printf("{\"name\":\"fjcreation%s\",\"unit\":\"ns/actor\",\"value\":%.2f,\"actors\":%ld,"
           "\"pinned\":%s}\n",
           bench_suffix(), (double)(t1 - s.t0) / (double)actors, actors, pinned ? "true" : "false");
    return 0;
}
