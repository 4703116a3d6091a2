/*
 * threadring.c - Savina ThreadRing: ACTORS actors in a ring, spread round-robin over the two
 * threads of a 2-thread runtime (actor i on thread i % 2, so every hop crosses threads when ACTORS
 * is even). A token carrying a count starts at actor 0 with HOPS; each actor forwards it to the
 * next with the count decremented, and the actor that receives 0 ends the run. value = ns from the
 * first receipt to the last / HOPS. Checks that HOPS + 1 receipts happened and that the token
 * ended at actor HOPS % ACTORS.
 * Args, in any order: [HOPS] [ACTORS] (the first number is HOPS, the second ACTORS) [unpinned]
 */
#define BENCH_NAME "threadring"
#include "bench.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_HOPS 1000000L
#define DEFAULT_ACTORS 100L
#define CPUS "0,1" /* scheduler threads 0 and 1 are pinned here unless "unpinned" is given */
#define TIMEOUT_MS 120000u

enum { MSG_TOKEN = 1 };

typedef struct ring ring;

typedef struct ring_actor {
    ring *ring;
    long index;
    spool_id next;
    uint64_t received; /* written only on this actor's home thread */
} ring_actor;

struct ring {
    long actors;
    spool_id *ids;
    ring_actor *members;
    uint64_t t0; /* first receipt (actor 0's thread) */
    uint64_t t1; /* last receipt (the last actor's thread) */
    long last;   /* index of the actor that got count 0 */
};

static void ring_handle(spool_ctx *ctx, void *state, const spool_message *msg) {
    ring_actor *a = state;
    spool_runtime *rt = spool_ctx_runtime(ctx);
    int64_t count;
    if (msg->size != sizeof count) {
        fprintf(stderr, "threadring: token of %zu bytes\n", msg->size);
        exit(1);
    }
    memcpy(&count, msg->data, sizeof count);
    if (a->received++ == 0 && a->index == 0 && msg->from == SPOOL_ID_NONE)
        a->ring->t0 = bench_now_ns();
    if (count == 0) {
        ring *r = a->ring;
        r->t1 = bench_now_ns();
        r->last = a->index;
        for (long i = 0; i < r->actors; i++)
            bench_check(spool_actor_stop(rt, r->ids[i], SPOOL_EXIT_NORMAL), "stop");
        return;
    }
    count--;
    bench_check(spool_send(rt, a->next, MSG_TOKEN, &count, sizeof count), "send token");
}

static const spool_behavior ring_behavior = {"ring", ring_handle, NULL};

int main(int argc, char **argv) {
    long numbers[2] = {DEFAULT_HOPS, DEFAULT_ACTORS};
    int pinned;
    if (bench_parse(argc, argv, numbers, 2, NULL, NULL, &pinned, "[HOPS] [ACTORS>=2]"))
        return 2;
    if (numbers[1] < 2)
        return bench_usage(argv[0], "[HOPS] [ACTORS>=2]");
    long hops = numbers[0], actors = numbers[1];

    ring r = {0};
    r.actors = actors;
    r.last = -1;
    r.ids = calloc((size_t)actors, sizeof *r.ids);
    r.members = calloc((size_t)actors, sizeof *r.members);
    if (!r.ids || !r.members) {
        fprintf(stderr, "threadring: out of memory\n");
        return 1;
    }

    spool_runtime *rt = bench_runtime(2, pinned ? CPUS : NULL);
    for (long i = 0; i < actors; i++) {
        r.members[i].ring = &r;
        r.members[i].index = i;
        r.ids[i] = bench_spawn_on(rt, &ring_behavior, &r.members[i], (int)(i % 2));
    }
    for (long i = 0; i < actors; i++)
        r.members[i].next = r.ids[(i + 1) % actors];
    bench_check(spool_runtime_start(rt), "start");
    int64_t count = hops;
    bench_check(spool_send(rt, r.ids[0], MSG_TOKEN, &count, sizeof count), "send token");
    bench_check(spool_runtime_wait(rt, TIMEOUT_MS), "wait");
    spool_runtime_destroy(&rt); /* joins the threads: their writes are visible from here */

    uint64_t received = 0;
    for (long i = 0; i < actors; i++)
        received += r.members[i].received;
    int ok = received == (uint64_t)hops + 1 && r.last == hops % actors && r.t1 >= r.t0 && r.t0;
    free(r.ids);
    free(r.members);
    if (!ok) {
        fprintf(stderr, "threadring: %llu receipts, token ended at actor %ld; expected %llu, %ld\n",
                (unsigned long long)received, r.last, (unsigned long long)hops + 1, hops % actors);
        return 1;
    }
    fprintf(stderr, "threadring: %ld hops around %ld actors on 2 threads, CPUs %s\n", hops, actors,
            pinned ? CPUS : "unpinned");
    printf("{\"name\":\"threadring%s\",\"unit\":\"ns/hop\",\"value\":%.2f,\"hops\":%ld,"
           "\"actors\":%ld,\"pinned\":%s}\n",
           bench_suffix(), (double)(r.t1 - r.t0) / (double)hops, hops, actors,
           pinned ? "true" : "false");
    return 0;
}
