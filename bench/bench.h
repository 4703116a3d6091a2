/*
 * bench.h - what every benchmark program shares: a monotonic clock, a check that exits on a spool
 * error, and a runtime set up for measuring (given threads, pinned or not). Define BENCH_NAME
 * before including it; messages go to stderr prefixed with it, results to stdout as one JSON line.
 */
#ifndef SPOOL_BENCH_H
#define SPOOL_BENCH_H

#define _POSIX_C_SOURCE 200809L
#include <spool.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline uint64_t bench_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Exits with status 1 and the error's words if rc is not 0. */
static inline void bench_check(int rc, const char *what) {
    if (rc != 0) {
        fprintf(stderr, "%s: %s: %s\n", BENCH_NAME, what, spool_strerror(rc));
        exit(1);
    }
}

/* Set by the argument "metrics_off": the run measures the runtime with metrics off, and its
 * result's name gets the suffix "_metrics_off" (bench/run puts the two side by side). */
static int bench_metrics_off;

/* True (and remembered) if `arg` is an option every benchmark takes. */
static inline int bench_common_option(const char *arg) {
    if (strcmp(arg, "metrics_off") == 0) {
        bench_metrics_off = 1;
        return 1;
    }
    return 0;
}

static inline const char *bench_suffix(void) { return bench_metrics_off ? "_metrics_off" : ""; }

/* Prints "usage: PROGRAM USAGE [unpinned] [metrics_off]" and returns 2 (the exit status). */
static inline int bench_usage(const char *program, const char *usage) {
    fprintf(stderr, "usage: %s %s [unpinned] [metrics_off]\n", program, usage);
    return 2;
}

/*
 * The arguments every benchmark takes, in any order: up to `count` positive numbers, in order, into
 * numbers[] (which holds the defaults); "unpinned" (clears *pinned, which starts at 1);
 * "metrics_off"; and any of `words` (NULL-terminated, or NULL): *word gets the index of the last
 * one given. Returns 0, or prints the usage and returns 2.
 */
static inline int bench_parse(int argc, char **argv, long *numbers, int count,
                              const char *const *words, int *word, int *pinned, const char *usage) {
    int given = 0;
    *pinned = 1;
    for (int i = 1; i < argc; i++) {
        if (bench_common_option(argv[i]))
            continue;
        if (strcmp(argv[i], "unpinned") == 0) {
            *pinned = 0;
            continue;
        }
        int matched = 0;
        for (int w = 0; words && words[w]; w++)
            if (strcmp(argv[i], words[w]) == 0) {
                *word = w;
                matched = 1;
            }
        if (matched)
            continue;
        long v = atol(argv[i]);
        if (v <= 0 || given == count)
            return bench_usage(argv[0], usage);
        numbers[given++] = v;
    }
    return 0;
}

/* A runtime with `threads` threads, pinned to `cpus` (NULL: not pinned), deaf to SPOOL_*. */
static inline spool_runtime *bench_runtime(int threads, const char *cpus) {
    spool_config config;
    spool_config_init(&config);
    config.threads = threads;
    config.cpus = cpus;
    config.ignore_environment = 1;
    config.metrics = bench_metrics_off ? -1 : 1;
    char error[256] = "";
    config.error = error;
    config.error_size = sizeof error;
    spool_runtime *rt = NULL;
    int rc = spool_runtime_create(&config, &rt);
    if (rc != 0) {
        fprintf(stderr, "%s: runtime create: %s: %s\n", BENCH_NAME, spool_strerror(rc), error);
        exit(1);
    }
    return rt;
}

/* Spawns an actor on `thread`, or exits with the error (naming the behavior). */
static inline spool_id bench_spawn_on(spool_runtime *rt, const spool_behavior *behavior,
                                      void *state, int thread) {
    spool_spawn_opts opts = spool_spawn_opts_default();
    opts.thread = thread;
    spool_id id = SPOOL_ID_NONE;
    int rc = spool_spawn(rt, behavior, state, &opts, &id);
    if (rc != 0) {
        fprintf(stderr, "%s: spawn %s on thread %d: %s\n", BENCH_NAME, behavior->name, thread,
                spool_strerror(rc));
        exit(1);
    }
    return id;
}

#endif
