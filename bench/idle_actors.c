/*
 * idle_actors.c - the cost of an idle actor: ACTORS actors (no state, no message, so the handler
 * never runs) are spawned from the main thread into a started 2-thread runtime, placed by the
 * default policy (round robin). Two results: "idle_actor_bytes" = growth of VmRSS
 * (/proc/self/status) across the spawns / ACTORS, and "idle_actor_spawn" = ns per spawn. The
 * brief's budget: at most 256 bytes per actor, a million in under a second. Checks that every
 * spawn gave a distinct id and that the handler never ran.
 * Args, in any order: [ACTORS] [unpinned]
 */
#define BENCH_NAME "idle_actors"
#include "bench.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_ACTORS 1000000L
#define CPUS "0,1" /* scheduler threads 0 and 1 are pinned here unless "unpinned" is given */

static _Atomic uint64_t handled;

static void idle_handle(spool_ctx *ctx, void *state, const spool_message *msg) {
    (void)ctx;
    (void)state;
    (void)msg;
    atomic_fetch_add(&handled, 1);
}

static const spool_behavior idle_behavior = {"idle", idle_handle, NULL};

/* Resident set size in bytes from /proc/self/status, or exits. */
static uint64_t rss_bytes(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long kb = 0;
    int found = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %llu kB", &kb) == 1) {
            found = 1;
            break;
        }
    if (f)
        fclose(f);
    if (!found) {
        fprintf(stderr, "idle_actors: no VmRSS in /proc/self/status\n");
        exit(1);
    }
    return (uint64_t)kb * 1024u;
}

static int cmp_id(const void *a, const void *b) {
    spool_id x = *(const spool_id *)a, y = *(const spool_id *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    long actors = DEFAULT_ACTORS;
    int pinned;
    if (bench_parse(argc, argv, &actors, 1, NULL, NULL, &pinned, "[ACTORS]"))
        return 2;
    /* the ids array is touched before the first RSS reading so it does not count (0xFF, not 0:
     * malloc + memset 0 may become calloc, which leaves the pages untouched) */
    spool_id *ids = malloc((size_t)actors * sizeof *ids);
    if (!ids) {
        fprintf(stderr, "idle_actors: out of memory\n");
        return 1;
    }
    memset(ids, 0xFF, (size_t)actors * sizeof *ids);

    spool_runtime *rt = bench_runtime(2, pinned ? CPUS : NULL);
    bench_check(spool_runtime_start(rt), "start");
    uint64_t rss0 = rss_bytes();
    uint64_t t0 = bench_now_ns();
    for (long i = 0; i < actors; i++)
        bench_check(spool_spawn(rt, &idle_behavior, NULL, NULL, &ids[i]), "spawn");
    uint64_t t1 = bench_now_ns();
    uint64_t rss1 = rss_bytes();
    bench_check(spool_runtime_stop(rt, 0), "stop");
    spool_runtime_destroy(&rt);

    qsort(ids, (size_t)actors, sizeof *ids, cmp_id);
    int ok = ids[0] != SPOOL_ID_NONE && atomic_load(&handled) == 0;
    for (long i = 1; ok && i < actors; i++)
        ok = ids[i] != ids[i - 1];
    free(ids);
    if (!ok) {
        fprintf(stderr, "idle_actors: duplicate or missing ids, or a handler ran (%llu)\n",
                (unsigned long long)atomic_load(&handled));
        return 1;
    }
    double bytes = rss1 > rss0 ? (double)(rss1 - rss0) / (double)actors : 0.0;
    double ns = (double)(t1 - t0) / (double)actors;
    fprintf(stderr,
            "idle_actors: %ld idle actors, RSS %.1f -> %.1f MiB, spawn %.3f s, CPUs %s; budget "
            "<= 256 bytes/actor (%s), 1 M in < 1 s (%s)\n",
            actors, (double)rss0 / 1048576.0, (double)rss1 / 1048576.0, (double)(t1 - t0) / 1e9,
            pinned ? CPUS : "unpinned", bytes <= 256.0 ? "met" : "MISSED",
            ns * 1e6 < 1e9 ? "met" : "MISSED");
    printf(
        "{\"name\":\"idle_actor_bytes%s\",\"unit\":\"bytes/actor\",\"value\":%.1f,\"actors\":%ld,"
        "\"pinned\":%s}\n",
        bench_suffix(), bytes, actors, pinned ? "true" : "false");
    printf("{\"name\":\"idle_actor_spawn%s\",\"unit\":\"ns/actor\",\"value\":%.2f,\"actors\":%ld,"
           "\"pinned\":%s}\n",
           bench_suffix(), ns, actors, pinned ? "true" : "false");
    return 0;
}
