/*
 * placement.c - picks the home thread of a new actor: an explicit thread, near another actor, the
 * config's rule for its name, a policy named at spawn, or the config's default policy. Runs once
 * per spawn, on the spawning thread; it reads the threads' published load and never blocks them.
 */
#include "actors/actors.h"
#include "scheduler/scheduler.h"

#include <string.h>

/* Thread flags in sched_thread.dedicated. */
#define DEDICATED_NONE 0
#define DEDICATED_RESERVED 1 /* reserved by a config rule for its actor */
#define DEDICATED_TAKEN 2    /* taken at spawn by an actor asking for "dedicated" */

static int thread_free(spool_runtime *rt, int i) {
    return pr_load_int(&rt->threads[i].dedicated) == DEDICATED_NONE;
}

/*
 * Takes a seat on thread i: counts the actor there, then checks that no dedicated actor holds the
 * thread. take_dedicated does the mirror image (flag, then count), and both steps are full-fence
 * atomics, so of a racing spawn and a dedicated spawn at most one gets the thread.
 */
static int claim_seat(spool_runtime *rt, int i) {
    pr_faa_int(&rt->threads[i].actors, 1);
    if (!thread_free(rt, i)) {
        pr_faa_int(&rt->threads[i].actors, -1);
        return SPOOL_EBUSY;
    }
    return 0;
}

static int round_robin(spool_runtime *rt, int *out) {
    for (int tries = 0; tries < rt->thread_count; tries++) {
        int i = (int)(pr_faa_64(&rt->round_robin, 1) % (uint64_t)rt->thread_count);
        if (claim_seat(rt, i) == 0) {
            *out = i;
            return 0;
        }
    }
    return SPOOL_EBUSY;
}

/* Fewest messages waiting in ready actors, then fewest actors. */
static int least_loaded(spool_runtime *rt, int *out) {
    for (int tries = 0; tries < rt->thread_count; tries++) {
        int best = -1;
        uint64_t best_backlog = 0;
        int best_actors = 0;
        for (int i = 0; i < rt->thread_count; i++) {
            if (!thread_free(rt, i))
                continue;
            uint64_t backlog = pr_load_64_relaxed(&rt->threads[i].backlog);
            int actors = pr_load_int(&rt->threads[i].actors);
            if (best < 0 || backlog < best_backlog ||
                (backlog == best_backlog && actors < best_actors)) {
                best = i;
                best_backlog = backlog;
                best_actors = actors;
            }
        }
        if (best < 0)
            return SPOOL_EBUSY;
        if (claim_seat(rt, best) == 0) {
            *out = best;
            return 0;
        }
    }
    return SPOOL_EBUSY;
}

/* FNV-1a of the name; a dedicated thread passes the actor on to the next free one. */
static int hash_place(spool_runtime *rt, const char *name, int *out) {
    if (!name || !*name)
        return SPOOL_EINVAL;
    uint64_t h = 1469598103934665603u ^ rt->settings.seed;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 1099511628211u;
    for (int k = 0; k < rt->thread_count; k++) {
        int i = (int)((h + (uint64_t)k) % (uint64_t)rt->thread_count);
        if (claim_seat(rt, i) == 0) {
            *out = i;
            return 0;
        }
    }
    return SPOOL_EBUSY;
}

/* Threads nothing owns; a dedicated spawn must leave at least one for everybody else. */
static int free_threads(spool_runtime *rt) {
    int n = 0;
    for (int i = 0; i < rt->thread_count; i++)
        n += thread_free(rt, i);
    return n;
}

/*
 * A thread of its own: thread `wanted` ("dedicated:K"), or else the highest-numbered thread with no
 * actor and no reservation.
 */
static int take_dedicated(spool_runtime *rt, int wanted, int *out) {
    if (wanted >= rt->thread_count)
        return SPOOL_EINVAL;
    if (free_threads(rt) < 2)
        return SPOOL_EBUSY;
    for (int i = rt->thread_count - 1; i >= 0; i--) {
        if (wanted >= 0 && i != wanted)
            continue;
        sched_thread *t = &rt->threads[i];
        int expected = DEDICATED_NONE;
        if (!pr_cas_int(&t->dedicated, &expected, DEDICATED_TAKEN))
            continue;
        if (pr_load_int(&t->actors) != 0) { /* someone sits there: give the flag back */
            pr_store_int(&t->dedicated, DEDICATED_NONE);
            continue;
        }
        pr_faa_int(&t->actors, 1);
        *out = i;
        return 0;
    }
    return SPOOL_EBUSY;
}

/* The thread a config rule reserved for this very actor: free only while nobody sits there. */
static int take_reserved(spool_runtime *rt, int thread, int *out) {
    if (pr_faa_int(&rt->threads[thread].actors, 1) != 0) {
        pr_faa_int(&rt->threads[thread].actors, -1);
        return SPOOL_EBUSY;
    }
    *out = thread;
    return 0;
}

static int explicit_thread(spool_runtime *rt, int thread, int *out) {
    if (thread < 0 || thread >= rt->thread_count)
        return SPOOL_EINVAL;
    int rc = claim_seat(rt, thread);
    if (rc == 0)
        *out = thread;
    return rc;
}

/* Next to another actor (which must not own its thread). */
static int near_actor(spool_runtime *rt, spool_id other, int *out) {
    int thread;
    int rc = spool_actor_thread(rt, other, &thread);
    if (rc != 0)
        return rc;
    return explicit_thread(rt, thread, out);
}

static int near_name(spool_runtime *rt, const char *name, size_t len, int *out) {
    char buf[256];
    if (len == 0 || len >= sizeof buf)
        return SPOOL_EINVAL;
    memcpy(buf, name, len);
    buf[len] = '\0';
    spool_id other;
    int rc = spool_whereis(rt, buf, &other);
    if (rc != 0)
        return rc;
    return near_actor(rt, other, out);
}

static int apply(spool_runtime *rt, placement_kind kind, int thread, const char *near,
                 size_t near_len, const char *name, int *out, int *dedicated) {
    switch (kind) {
    case PLACE_THREAD:
        return explicit_thread(rt, thread, out);
    case PLACE_LEAST_LOADED:
        return least_loaded(rt, out);
    case PLACE_HASH:
        return hash_place(rt, name, out);
    case PLACE_NEAR:
        return near_name(rt, near, near_len, out);
    case PLACE_DEDICATED:
        *dedicated = 1;
        return take_dedicated(rt, thread, out);
    case PLACE_ROUND_ROBIN:
    case PLACE_NONE:
    default:
        return round_robin(rt, out);
    }
}

int placement_choose(spool_runtime *rt, const spool_spawn_opts *opts, int *out, int *dedicated) {
    *dedicated = 0;
    if (opts->thread != SPOOL_THREAD_ANY)
        return explicit_thread(rt, opts->thread, out);
    if (opts->near != SPOOL_ID_NONE)
        return near_actor(rt, opts->near, out);
    const placement_rule *rule = settings_match(&rt->settings, opts->name);
    if (rule) {
        if (rule->kind == PLACE_DEDICATED) /* the config reserved rule->thread at create */
            return take_reserved(rt, rule->thread, out);
        return apply(rt, rule->kind, rule->thread, rule->near, rule->near ? strlen(rule->near) : 0,
                     opts->name, out, dedicated);
    }
    if (opts->placement) {
        placement_kind kind;
        int thread = -1;
        const char *near = NULL;
        size_t near_len = 0;
        if (placement_parse(opts->placement, &kind, &thread, &near, &near_len, NULL, 0) != 0)
            return SPOOL_EINVAL;
        return apply(rt, kind, thread, near, near_len, opts->name, out, dedicated);
    }
    return apply(rt, rt->settings.default_policy, -1, NULL, 0, opts->name, out, dedicated);
}

/* Marks the threads that config rules dedicate (at create). */
void placement_reserve(spool_runtime *rt) {
    for (size_t i = 0; i < rt->settings.rule_count; i++) {
        const placement_rule *r = &rt->settings.rules[i];
        if (r->kind == PLACE_DEDICATED)
            rt->threads[r->thread].dedicated = DEDICATED_RESERVED;
    }
}

/* Gives back the seat placement_choose took (a spawn that failed later). */
void placement_unclaim(spool_runtime *rt, int thread, int dedicated) {
    pr_faa_int(&rt->threads[thread].actors, -1);
    if (dedicated)
        placement_release(rt, thread);
}

/* A dedicated actor ended: its thread is free again unless the config reserved it. */
void placement_release(spool_runtime *rt, int thread) {
    int expected = DEDICATED_TAKEN;
    pr_cas_int(&rt->threads[thread].dedicated, &expected, DEDICATED_NONE);
}
