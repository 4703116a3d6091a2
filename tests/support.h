/*
 * support.h - what every test file needs: stress sizes from SPOOL_STRESS, a runtime that ignores
 * the environment, exact dead-letter checks at the end of a test, and a gate a handler can wait at.
 */
#ifndef SPOOL_TEST_SUPPORT_H
#define SPOOL_TEST_SUPPORT_H

#include "spool.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

/* Stress sizes scale with SPOOL_STRESS (default 1), so CI stays fast and a developer can turn it
 * up. */
static inline long support_stress(long base) {
    const char *s = getenv("SPOOL_STRESS");
    long k = s ? atol(s) : 1;
    return base * (k > 0 ? k : 1);
}

/* A runtime with `threads` threads, created (not started), deaf to SPOOL_* variables. */
static inline spool_runtime *support_runtime(int threads) {
    spool_config config;
    spool_config_init(&config);
    config.threads = threads;
    config.ignore_environment = 1;
    spool_runtime *rt = NULL;
    assert_int_equal(spool_runtime_create(&config, &rt), 0);
    assert_non_null(rt);
    return rt;
}

static inline uint64_t support_dead(spool_runtime *rt, spool_dead_reason reason) {
    uint64_t n = UINT64_MAX;
    assert_int_equal(spool_dead_letter_count(rt, reason, &n), 0);
    return n;
}

/* Expected dead letters per reason, in spool_dead_reason order: DEAD(0, 0, 0, 0, 3) */
#define DEAD(...) ((const uint64_t[SPOOL_DEAD_REASON_COUNT]){__VA_ARGS__})
#define NO_DEAD_LETTERS DEAD(0)

/* Stops (deadline 0) and destroys the runtime after checking every dead-letter counter exactly. */
static inline void support_finish(spool_runtime **rt,
                                  const uint64_t expected[SPOOL_DEAD_REASON_COUNT]) {
    assert_int_equal(spool_runtime_stop(*rt, 0), 0);
    for (int r = 0; r < SPOOL_DEAD_REASON_COUNT; r++) {
        uint64_t n = support_dead(*rt, (spool_dead_reason)r);
        if (n != expected[r])
            print_error("dead letters '%s': %llu, expected %llu\n",
                        spool_dead_reason_name((spool_dead_reason)r), (unsigned long long)n,
                        (unsigned long long)expected[r]);
        assert_int_equal(n, expected[r]);
    }
    spool_runtime_destroy(rt);
    assert_null(*rt);
}

/* A one-shot gate: a handler passes it once the test opens it; the test can wait for arrival. */
typedef struct gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int open;
    int arrived;
} gate;

static inline void gate_init(gate *g) {
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, NULL);
    g->open = 0;
    g->arrived = 0;
}

static inline void gate_pass(gate *g) {
    pthread_mutex_lock(&g->lock);
    g->arrived = 1;
    pthread_cond_broadcast(&g->cond);
    while (!g->open)
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
}

static inline void gate_await_arrival(gate *g) {
    pthread_mutex_lock(&g->lock);
    while (!g->arrived)
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
}

static inline void gate_open(gate *g) {
    pthread_mutex_lock(&g->lock);
    g->open = 1;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

static inline void gate_destroy(gate *g) {
    pthread_cond_destroy(&g->cond);
    pthread_mutex_destroy(&g->lock);
}

#endif
