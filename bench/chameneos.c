/*
 * chameneos.c - Savina Chameneos (chameneos-redux): CHAMENEOS creatures, spread round-robin over
 * the two threads of a 2-thread runtime, each with a colour, and a mall actor on thread 0. Every
 * chameneo asks the mall for a meeting; the mall pairs two requests and tells each its partner and
 * the partner's colour; both take the complement colour, count the meeting and ask again. After
 * MEETINGS meetings the mall answers every request with "stop"; each chameneo then reports how
 * many meetings it had and stops. value = ns from the mall's first request to its MEETINGS-th
 * pairing / MEETINGS. Checks that the chameneos' meetings add up to 2 * MEETINGS, none met itself.
 * Args, in any order: [MEETINGS] [CHAMENEOS] (the first number is MEETINGS) [unpinned]
 */
#define BENCH_NAME "chameneos"
#include "bench.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_MEETINGS 1000000L
#define DEFAULT_CHAMENEOS 10L
#define CPUS "0,1" /* scheduler threads 0 and 1 are pinned here unless "unpinned" is given */
#define TIMEOUT_MS 120000u

enum { MSG_START = 1, MSG_MEET = 2, MSG_MATE = 3, MSG_STOP = 4, MSG_FADED = 5 };
enum { BLUE = 0, RED = 1, YELLOW = 2 };

typedef struct mate_msg {
    spool_id partner;
    uint32_t colour;
} mate_msg;

typedef struct faded_msg {
    uint64_t meetings, self_meetings;
} faded_msg;

typedef struct mall_state {
    uint64_t meetings_left, meetings;
    long chameneos, faded;
    spool_id waiting;
    uint32_t waiting_colour;
    uint64_t total_meetings, self_meetings;
    uint64_t t0, t1;
} mall_state;

typedef struct chameneo_state {
    spool_id mall;
    uint32_t colour;
    uint64_t meetings, self_meetings;
} chameneo_state;

static uint32_t complement(uint32_t a, uint32_t b) { return a == b ? a : 3 - a - b; }

static void chameneo_handle(spool_ctx *ctx, void *state, const spool_message *msg) {
    chameneo_state *c = state;
    spool_runtime *rt = spool_ctx_runtime(ctx);
    if (msg->type == MSG_MATE) {
        mate_msg m;
        memcpy(&m, msg->data, sizeof m);
        c->colour = complement(c->colour, m.colour);
        c->meetings++;
        if (m.partner == spool_self(ctx))
            c->self_meetings++;
    } else if (msg->type == MSG_STOP) {
        faded_msg f = {c->meetings, c->self_meetings};
        bench_check(spool_send(rt, c->mall, MSG_FADED, &f, sizeof f), "send faded");
        bench_check(spool_actor_stop(rt, spool_self(ctx), SPOOL_EXIT_NORMAL), "stop self");
        return;
    }
    /* MSG_START or after a meeting: ask for the next one */
    bench_check(spool_send(rt, c->mall, MSG_MEET, &c->colour, sizeof c->colour), "send meet");
}

static void mall_handle(spool_ctx *ctx, void *state, const spool_message *msg) {
    mall_state *m = state;
    spool_runtime *rt = spool_ctx_runtime(ctx);
    if (msg->type == MSG_FADED) {
        faded_msg f;
        memcpy(&f, msg->data, sizeof f);
        m->total_meetings += f.meetings;
        m->self_meetings += f.self_meetings;
        if (++m->faded == m->chameneos)
            bench_check(spool_actor_stop(rt, spool_self(ctx), SPOOL_EXIT_NORMAL), "stop mall");
        return;
    }
    if (m->t0 == 0)
        m->t0 = bench_now_ns();
    if (m->meetings_left == 0) {
        bench_check(spool_send(rt, msg->from, MSG_STOP, NULL, 0), "send stop");
        return;
    }
    uint32_t colour;
    memcpy(&colour, msg->data, sizeof colour);
    if (m->waiting == SPOOL_ID_NONE) {
        m->waiting = msg->from;
        m->waiting_colour = colour;
        return;
    }
    mate_msg to_waiting = {msg->from, colour}, to_sender = {m->waiting, m->waiting_colour};
    bench_check(spool_send(rt, m->waiting, MSG_MATE, &to_waiting, sizeof to_waiting), "send mate");
    bench_check(spool_send(rt, msg->from, MSG_MATE, &to_sender, sizeof to_sender), "send mate");
    m->waiting = SPOOL_ID_NONE;
    m->meetings++;
    if (--m->meetings_left == 0)
        m->t1 = bench_now_ns();
}

static const spool_behavior chameneo_behavior = {"chameneo", chameneo_handle, NULL};
static const spool_behavior mall_behavior = {"mall", mall_handle, NULL};

int main(int argc, char **argv) {
    long numbers[2] = {DEFAULT_MEETINGS, DEFAULT_CHAMENEOS};
    int pinned;
    if (bench_parse(argc, argv, numbers, 2, NULL, NULL, &pinned, "[MEETINGS] [CHAMENEOS>=2]"))
        return 2;
    if (numbers[1] < 2)
        return bench_usage(argv[0], "[MEETINGS] [CHAMENEOS>=2]");
    long meetings = numbers[0], chameneos = numbers[1];

    mall_state mall = {0};
    mall.meetings_left = (uint64_t)meetings;
    mall.chameneos = chameneos;
    chameneo_state *c = calloc((size_t)chameneos, sizeof *c);
    spool_id *ids = calloc((size_t)chameneos, sizeof *ids);
    if (!c || !ids) {
        fprintf(stderr, "chameneos: out of memory\n");
        return 1;
    }

    spool_runtime *rt = bench_runtime(2, pinned ? CPUS : NULL);
    spool_id mall_id;
    mall_id = bench_spawn_on(rt, &mall_behavior, &mall, 0);
    for (long i = 0; i < chameneos; i++) {
        c[i].mall = mall_id;
        c[i].colour = (uint32_t)(i % 3);
        ids[i] = bench_spawn_on(rt, &chameneo_behavior, &c[i], (int)(i % 2));
    }
    bench_check(spool_runtime_start(rt), "start");
    for (long i = 0; i < chameneos; i++)
        bench_check(spool_send(rt, ids[i], MSG_START, NULL, 0), "send start");
    bench_check(spool_runtime_wait(rt, TIMEOUT_MS), "wait");
    spool_runtime_destroy(&rt); /* joins the threads: their writes are visible from here */

    uint64_t sum = 0;
    for (long i = 0; i < chameneos; i++)
        sum += c[i].meetings;
    free(c);
    free(ids);
    uint64_t want = 2 * (uint64_t)meetings;
    if (sum != want || mall.total_meetings != want || mall.self_meetings != 0 ||
        mall.meetings != (uint64_t)meetings || mall.faded != chameneos) {
        fprintf(stderr,
                "chameneos: meetings sum to %llu (reported %llu), %llu self meetings, %ld of %ld "
                "faded; expected %llu\n",
                (unsigned long long)sum, (unsigned long long)mall.total_meetings,
                (unsigned long long)mall.self_meetings, mall.faded, chameneos,
                (unsigned long long)want);
        return 1;
    }
    fprintf(stderr, "chameneos: %ld meetings of %ld chameneos, mall on thread 0, CPUs %s\n",
            meetings, chameneos, pinned ? CPUS : "unpinned");
    printf("{\"name\":\"chameneos%s\",\"unit\":\"ns/meeting\",\"value\":%.2f,\"meetings\":%ld,"
           "\"chameneos\":%ld,\"pinned\":%s}\n",
           bench_suffix(), (double)(mall.t1 - mall.t0) / (double)meetings, meetings, chameneos,
           pinned ? "true" : "false");
    return 0;
}
