/*
 * pingpong.c - two actors hit a ball back and forth. Ping lives on thread 0, pong on the last
 * thread (pass "same" to put both on thread 0); after N round trips ping reports the time per round
 * trip and both stop, which ends spool_runtime_wait in main.
 *
 *   ./pingpong [ROUND_TRIPS] [same|cross]
 */
#define _POSIX_C_SOURCE 200809L
#include <spool.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { MSG_START = 1, MSG_BALL = 2 };

typedef struct ping_state {
    spool_id pong;
    long left;
    long total;
    struct timespec started;
} ping_state;

static double seconds_since(const struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static void ping_handle(spool_ctx *ctx, void *state, const spool_message *msg) {
    ping_state *s = state;
    spool_runtime *rt = spool_ctx_runtime(ctx);
    if (msg->type == MSG_START)
        clock_gettime(CLOCK_MONOTONIC, &s->started);
    if (s->left-- > 0) {
        spool_send(rt, s->pong, MSG_BALL, NULL, 0);
        return;
    }
    double secs = seconds_since(&s->started);
    int pong_thread = -1;
    spool_actor_thread(rt, s->pong, &pong_thread);
    printf(
        "pingpong: %ld round trips, ping on thread %d, pong on thread %d: %.0f ns per round trip\n",
        s->total, spool_ctx_thread(ctx), pong_thread, secs * 1e9 / (double)s->total);
    spool_actor_stop(rt, s->pong, SPOOL_EXIT_NORMAL);
    spool_actor_stop(rt, spool_self(ctx), SPOOL_EXIT_NORMAL);
}

static void pong_handle(spool_ctx *ctx, void *state, const spool_message *msg) {
    (void)state;
    spool_send(spool_ctx_runtime(ctx), msg->from, MSG_BALL, NULL, 0); /* back to whoever served */
}

static const spool_behavior ping_behavior = {"ping", ping_handle, NULL};
static const spool_behavior pong_behavior = {"pong", pong_handle, NULL};

int main(int argc, char **argv) {
    long rounds = argc > 1 ? atol(argv[1]) : 1000000;
    int same = argc > 2 && strcmp(argv[2], "same") == 0;
    if (rounds <= 0) {
        fprintf(stderr, "usage: %s [ROUND_TRIPS] [same|cross]\n", argv[0]);
        return 2;
    }
    spool_config config;
    spool_config_init(&config);
    config.threads = 2;
    char error[256] = "";
    config.error = error;
    config.error_size = sizeof error;
    spool_runtime *rt = NULL;
    int rc = spool_runtime_create(&config, &rt);
    if (rc != 0) {
        fprintf(stderr, "pingpong: %s: %s\n", spool_strerror(rc), error);
        return 1;
    }
    ping_state ping = {0, rounds, rounds, {0, 0}};
    spool_spawn_opts at = spool_spawn_opts_default();
    spool_id ping_id;
    at.thread = same ? 0 : spool_runtime_threads(rt) - 1;
    rc = spool_spawn(rt, &pong_behavior, NULL, &at, &ping.pong);
    at.thread = 0;
    if (rc == 0)
        rc = spool_spawn(rt, &ping_behavior, &ping, &at, &ping_id);
    if (rc == 0)
        rc = spool_runtime_start(rt);
    if (rc == 0)
        rc = spool_send(rt, ping_id, MSG_START, NULL, 0);
    if (rc == 0)
        rc = spool_runtime_wait(rt, 60000);
    if (rc != 0)
        fprintf(stderr, "pingpong: %s\n", spool_strerror(rc));
    spool_runtime_destroy(&rt);
    return rc == 0 ? 0 : 1;
}
