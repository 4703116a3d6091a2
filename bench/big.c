/*
 * big.c - Savina Big: ACTORS actors, spread round-robin over the two threads of a 2-thread runtime,
 * each sends PINGS pings, one at a time, to peers it picks at random (a xorshift64 generator per
 * actor, fixed seeds, never itself) and waits for the pong before the next; every actor answers
 * every ping it receives with a pong. An actor is done when it has its PINGS pongs; the last one
 * done stops them all. value = 2 * ACTORS * PINGS messages (pings + pongs) / (start to the last
 * actor done), in M msg/s. Checks every actor got its pongs and that the pings received add up.
 * Args, in any order: [PINGS] [ACTORS] (the first number is PINGS per actor) [unpinned]
 */
#define BENCH_NAME "big"
#include "bench.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_PINGS 5000L
#define DEFAULT_ACTORS 120L
#define CPUS "0,1" /* scheduler threads 0 and 1 are pinned here unless "unpinned" is given */
#define TIMEOUT_MS 120000u

enum { MSG_START = 1, MSG_PING = 2, MSG_PONG = 3 };

typedef struct big big;

typedef struct big_actor {
    big *big;
    long index;
    uint64_t rng;
    uint64_t pongs, pings_received;
    int bad_pong; /* a pong from a peer we did not ping */
    spool_id waiting_for;
} big_actor;

struct big {
    long actors;
    uint64_t pings;
    spool_id *ids;
    _Atomic long done;
    _Atomic uint64_t t1;
};

static uint64_t xorshift64(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void send_ping(spool_runtime *rt, big_actor *a) {
    big *b = a->big;
    long peer = (long)(xorshift64(&a->rng) % (uint64_t)(b->actors - 1));
    if (peer >= a->index)
        peer++;
    a->waiting_for = b->ids[peer];
    bench_check(spool_send(rt, a->waiting_for, MSG_PING, NULL, 0), "send ping");
}

static void big_handle(spool_ctx *ctx, void *state, const spool_message *msg) {
    big_actor *a = state;
    big *b = a->big;
    spool_runtime *rt = spool_ctx_runtime(ctx);
    switch (msg->type) {
    case MSG_PING:
        a->pings_received++;
        bench_check(spool_send(rt, msg->from, MSG_PONG, NULL, 0), "send pong");
        return;
    case MSG_PONG:
        if (msg->from != a->waiting_for)
            a->bad_pong = 1;
        if (++a->pongs < b->pings) {
            send_ping(rt, a);
            return;
        }
        if (atomic_fetch_add(&b->done, 1) + 1 == b->actors) {
            atomic_store(&b->t1, bench_now_ns());
            for (long i = 0; i < b->actors; i++)
                bench_check(spool_actor_stop(rt, b->ids[i], SPOOL_EXIT_NORMAL), "stop");
        }
        return;
    default: /* MSG_START */
        send_ping(rt, a);
    }
}

static const spool_behavior big_behavior = {"big", big_handle, NULL};

int main(int argc, char **argv) {
    long numbers[2] = {DEFAULT_PINGS, DEFAULT_ACTORS};
    int pinned;
    if (bench_parse(argc, argv, numbers, 2, NULL, NULL, &pinned, "[PINGS] [ACTORS>=2]"))
        return 2;
    if (numbers[1] < 2)
        return bench_usage(argv[0], "[PINGS] [ACTORS>=2]");
    long pings = numbers[0], actors = numbers[1];

    static big b; /* outlives the runtime: the actors point at it */
    b.actors = actors;
    b.pings = (uint64_t)pings;
    b.ids = calloc((size_t)actors, sizeof *b.ids);
    big_actor *a = calloc((size_t)actors, sizeof *a);
    if (!b.ids || !a) {
        fprintf(stderr, "big: out of memory\n");
        return 1;
    }

    spool_runtime *rt = bench_runtime(2, pinned ? CPUS : NULL);
    for (long i = 0; i < actors; i++) {
        a[i].big = &b;
        a[i].index = i;
        a[i].rng = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1); /* never 0 */
        b.ids[i] = bench_spawn_on(rt, &big_behavior, &a[i], (int)(i % 2));
    }
    bench_check(spool_runtime_start(rt), "start");
    uint64_t t0 = bench_now_ns();
    for (long i = 0; i < actors; i++)
        bench_check(spool_send(rt, b.ids[i], MSG_START, NULL, 0), "send start");
    bench_check(spool_runtime_wait(rt, TIMEOUT_MS), "wait");
    spool_runtime_destroy(&rt); /* joins the threads: their writes are visible from here */

    uint64_t received = 0;
    int ok = atomic_load(&b.done) == actors;
    for (long i = 0; i < actors; i++) {
        received += a[i].pings_received;
        ok = ok && a[i].pongs == (uint64_t)pings && !a[i].bad_pong;
    }
    free(b.ids);
    free(a);
    uint64_t want = (uint64_t)actors * (uint64_t)pings;
    if (!ok || received != want) {
        fprintf(stderr, "big: %ld of %ld actors done, %llu pings received of %llu\n",
                atomic_load(&b.done), actors, (unsigned long long)received,
                (unsigned long long)want);
        return 1;
    }
    double total = 2.0 * (double)want;
    fprintf(stderr, "big: %ld actors x %ld pings, CPUs %s\n", actors, pings,
            pinned ? CPUS : "unpinned");
    printf("{\"name\":\"big%s\",\"unit\":\"M msg/s\",\"value\":%.3f,\"messages\":%.0f,"
           "\"actors\":%ld,\"pinned\":%s}\n",
           bench_suffix(), total / ((double)(atomic_load(&b.t1) - t0) / 1e9) / 1e6, total, actors,
           pinned ? "true" : "false");
    return 0;
}
