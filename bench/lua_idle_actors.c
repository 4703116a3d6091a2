/*
 * lua_idle_actors.c - the cost of an idle Lua actor. ACTORS Lua actors are spawned from the main
 * thread (spool_lua_spawn) into a started 2-thread runtime, placed by the default policy (round
 * robin), and the driver waits until every one has run its script:
 *   process  bench/lua/idle_process.lua: blocks in spool.receive() (its coroutine stays)
 *   object   bench/lua/idle_object.lua: returns a table of one function (an object actor)
 * Before and after, each thread's interpreter runs a full collection (bench/lua/collect.lua), and
 * one actor of the kind already ran on each thread (the interpreters exist, the script is
 * compiled). Results, per kind (lua_idle_process_*, lua_idle_object_*):
 *   _bytes      growth of the resident set (/proc/self/statm) / ACTORS (brief: <= 4 KiB)
 *   _lua_bytes  growth of the interpreters' memory (spool_lua_stats_get memory_bytes) / ACTORS
 *   _spawn      ns per actor from the first spawn until every one has started
 * Each kind runs in its own process (fork), so one kind's freed memory cannot hide the other's.
 * Args, in any order: [ACTORS] [process|object|both] [unpinned]
 */
#define BENCH_NAME "lua_idle_actors"
#include "lua_bench.h"

#include <sys/wait.h>

#define DEFAULT_ACTORS 100000L
#define CPUS "0,1" /* scheduler threads 0 and 1 are pinned here unless "unpinned" is given */
#define BUDGET_BYTES 4096.0
#define WAIT_S 120

/* Resident set size in bytes (/proc/self/statm, second field), or exits. */
static uint64_t rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, resident = 0;
    int ok = f && fscanf(f, "%llu %llu", &size, &resident) == 2;
    if (f)
        fclose(f);
    if (!ok) {
        fprintf(stderr, "lua_idle_actors: cannot read /proc/self/statm\n");
        exit(1);
    }
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static uint64_t lua_memory(spool_lua *lua) {
    spool_lua_stats s;
    bench_check(spool_lua_stats_get(lua, &s), "lua stats");
    return s.memory_bytes;
}

/* Waits until benchlib.tick() has been called `ticks` times in all, or exits. */
static void wait_ticks(long ticks, spool_lua *lua) {
    uint64_t deadline = bench_now_ns() + (uint64_t)WAIT_S * 1000000000u;
    while (atomic_load_explicit(&bench_lua_ticks, memory_order_acquire) < ticks) {
        spool_lua_stats s;
        spool_lua_stats_get(lua, &s);
        if (s.failed || bench_now_ns() > deadline) {
            fprintf(stderr, "lua_idle_actors: %ld of %ld actors started, %llu failed\n",
                    atomic_load(&bench_lua_ticks), ticks, (unsigned long long)s.failed);
            exit(1);
        }
        struct timespec pause = {0, 200000};
        nanosleep(&pause, NULL);
    }
}

static void spawn_on(spool_lua *lua, const char *script, int thread, spool_id *id) {
    spool_spawn_opts opts = spool_spawn_opts_default();
    opts.thread = thread;
    bench_check(spool_lua_spawn(lua, script, NULL, 0, 0, thread < 0 ? NULL : &opts, id), script);
}

/* A full collection in both interpreters; `ticks` counts what has ticked so far (updated). */
static void collect(spool_lua *lua, long *ticks) {
    for (int thread = 0; thread < 2; thread++)
        spawn_on(lua, "collect", thread, NULL);
    *ticks += 2;
    wait_ticks(*ticks, lua);
    /* the collectors end right after their tick: let them go before anything is read */
    struct timespec pause = {0, 20000000};
    nanosleep(&pause, NULL);
}

static int measure(const char *kind, long actors, int pinned) {
    const char *script = strcmp(kind, "process") == 0 ? "idle_process" : "idle_object";
    /* touched before the first reading so that it does not count (0xFF: not calloc's zero pages) */
    spool_id *ids = malloc((size_t)actors * sizeof *ids);
    if (!ids) {
        fprintf(stderr, "lua_idle_actors: out of memory\n");
        return 1;
    }
    memset(ids, 0xFF, (size_t)actors * sizeof *ids);

    spool_runtime *rt = bench_runtime(2, pinned ? CPUS : NULL);
    spool_lua *lua = bench_lua_create(rt);
    bench_check(spool_runtime_start(rt), "start");
    long ticks = 0;
    for (int thread = 0; thread < 2; thread++) /* interpreters made, script compiled on both */
        spawn_on(lua, script, thread, NULL);
    ticks += 2;
    wait_ticks(ticks, lua);
    collect(lua, &ticks);

    uint64_t rss0 = rss_bytes(), mem0 = lua_memory(lua);
    uint64_t t0 = bench_now_ns();
    for (long i = 0; i < actors; i++)
        spawn_on(lua, script, -1, &ids[i]);
    ticks += actors;
    wait_ticks(ticks, lua);
    uint64_t t1 = bench_now_ns();
    collect(lua, &ticks);
    uint64_t rss1 = rss_bytes(), mem1 = lua_memory(lua);

    spool_lua_stats stats;
    bench_check(spool_lua_stats_get(lua, &stats), "lua stats");
    long expected = actors + 2; /* and the first two, one per thread */
    spool_lua_destroy(&lua);
    spool_runtime_destroy(&rt);
    free(ids);
    if (stats.failed != 0 || (long)stats.actors < expected) {
        fprintf(stderr, "lua_idle_actors: %llu actors alive (expected %ld), %llu failed\n",
                (unsigned long long)stats.actors, expected, (unsigned long long)stats.failed);
        return 1;
    }

    double bytes = rss1 > rss0 ? (double)(rss1 - rss0) / (double)actors : 0.0;
    double lua_bytes = mem1 > mem0 ? (double)(mem1 - mem0) / (double)actors : 0.0;
    double ns = (double)(t1 - t0) / (double)actors;
    fprintf(stderr,
            "lua_idle_actors: %ld idle Lua %s actors, RSS %.1f -> %.1f MiB, Lua memory %.1f -> "
            "%.1f MiB, spawn + start %.3f s, CPUs %s; budget <= 4 KiB/actor (%s)\n",
            actors, kind, (double)rss0 / 1048576.0, (double)rss1 / 1048576.0,
            (double)mem0 / 1048576.0, (double)mem1 / 1048576.0, (double)(t1 - t0) / 1e9,
            pinned ? CPUS : "unpinned", bytes <= BUDGET_BYTES ? "met" : "MISSED");
    const char *pin = pinned ? "true" : "false";
    printf("{\"name\":\"lua_idle_%s_bytes%s\",\"unit\":\"bytes/actor\",\"value\":%.1f,"
           "\"actors\":%ld,\"pinned\":%s}\n",
           kind, bench_suffix(), bytes, actors, pin);
    printf("{\"name\":\"lua_idle_%s_lua_bytes%s\",\"unit\":\"bytes/actor\",\"value\":%.1f,"
           "\"actors\":%ld,\"pinned\":%s}\n",
           kind, bench_suffix(), lua_bytes, actors, pin);
    printf("{\"name\":\"lua_idle_%s_spawn%s\",\"unit\":\"ns/actor\",\"value\":%.2f,"
           "\"actors\":%ld,\"pinned\":%s}\n",
           kind, bench_suffix(), ns, actors, pin);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv) {
    long actors = DEFAULT_ACTORS;
    int pinned, which = 2;
    static const char *const kinds[] = {"process", "object", "both", NULL};
    if (bench_parse(argc, argv, &actors, 1, kinds, &which, &pinned,
                    "[ACTORS] [process|object|both]"))
        return 2;
    if (which != 2)
        return measure(kinds[which], actors, pinned);
    /* Each kind in a child of its own, one after the other (no thread exists yet to fork). */
    int status = 0;
    for (int k = 0; k < 2; k++) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0) {
            perror("lua_idle_actors: fork");
            return 1;
        }
        if (pid == 0)
            _exit(measure(kinds[k], actors, pinned));
        int ws;
        if (waitpid(pid, &ws, 0) < 0 || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
            status = 1;
    }
    return status;
}
