/*
 * runtime.c - a runtime's life: create (settings, tables, threads' state), start, graceful stop,
 * destroy; the error words and the dead-letter counters that every layer reports into.
 */
#include "actors/actors.h"
#include "actors/remote.h"
#include "scheduler/scheduler.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

const char *spool_strerror(int error) {
    switch (error) {
    case SPOOL_OK:
        return "success";
#define SPOOL_ERROR_TEXT(name, value, text)                                                        \
    case SPOOL_##name:                                                                             \
        return text;
        SPOOL_ERROR_MAP(SPOOL_ERROR_TEXT)
#undef SPOOL_ERROR_TEXT
    default:
        return "unknown error";
    }
}

static const char *const dead_reason_names[SPOOL_DEAD_REASON_COUNT] = {
    "no_receiver", "mailbox_full", "dropped_oldest",    "receiver_stopped",
    "shutdown",    "late_reply",   "unknown_node",      "node_down",
    "overload",    "too_large",    "stale_incarnation",
};

const char *spool_dead_reason_name(spool_dead_reason reason) {
    if ((unsigned)reason >= SPOOL_DEAD_REASON_COUNT)
        return "unknown";
    return dead_reason_names[reason];
}

void spool_config_init(spool_config *config) {
    if (config)
        memset(config, 0, sizeof *config);
}

static void write_error(const spool_config *config, const char *text) {
    if (config && config->error && config->error_size > 0)
        snprintf(config->error, config->error_size, "%s", text);
}

static int allocator_valid(const spool_allocator *a) { return a->alloc && a->free; }

int spool_runtime_create(const spool_config *config, spool_runtime **out) {
    if (!out)
        return SPOOL_EINVAL;
    const spool_allocator *alloc = &memory_default_allocator;
    if (config && config->allocator) {
        if (!allocator_valid(config->allocator)) {
            write_error(config, "config.allocator: alloc and free must both be set");
            return SPOOL_EINVAL;
        }
        alloc = config->allocator;
    }
    spool_runtime *rt = memory_calloc(alloc, sizeof *rt);
    if (!rt) {
        write_error(config, "out of memory");
        return SPOOL_ENOMEM;
    }
    rt->allocator = *alloc;
    char err[512] = "";
    int rc = settings_load(config, &rt->allocator, &rt->settings, err, sizeof err);
    if (rc != 0) {
        write_error(config, err[0] ? err : spool_strerror(rc));
        memory_free(alloc, rt, sizeof *rt);
        return rc;
    }
    if (config) {
        rt->on_dead_letter = config->on_dead_letter;
        rt->dead_letter_user = config->dead_letter_user;
    }
    rt->thread_count = rt->settings.threads;
    rt->threads = memory_calloc(&rt->allocator, sizeof(sched_thread) * (size_t)rt->thread_count);
    if (!rt->threads)
        goto nomem;
    for (int i = 0; i < rt->thread_count; i++) {
        sched_thread *t = &rt->threads[i];
        mpsc_init(&t->inbox);
        mpsc_init(&t->timer_inbox);
        t->index = i;
        t->rt = rt;
    }
    placement_reserve(rt);
    metrics_setup(rt);
    if (actor_table_create(rt) != 0)
        goto nomem;
    if (names_create(rt) != 0)
        goto nomem;
    if (remote_create(rt) != 0)
        goto nomem;
    if (request_tables_create(rt) != 0)
        goto nomem;
    if (pool_create(rt) != 0)
        goto nomem;
    if (metrics_threads_create(rt) != 0)
        goto nomem;
    pthread_mutex_init(&rt->life_lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&rt->life_cond, &attr);
    pthread_condattr_destroy(&attr);
    rt->state = RUNTIME_CREATED;
    *out = rt;
    return 0;

nomem:
    if (rt->threads) {
        metrics_threads_destroy(rt);
        pool_destroy(rt);
    }
    request_tables_destroy(rt);
    remote_destroy(rt);
    names_destroy(rt);
    actor_table_destroy(rt);
    memory_free(&rt->allocator, rt->threads, sizeof(sched_thread) * (size_t)rt->thread_count);
    settings_free(&rt->settings);
    memory_free(alloc, rt, sizeof *rt);
    write_error(config, "out of memory");
    return SPOOL_ENOMEM;
}

int spool_runtime_start(spool_runtime *rt) {
    if (!rt)
        return SPOOL_EINVAL;
    if (pr_load_int(&rt->state) != RUNTIME_CREATED)
        return SPOOL_ESTATE;
    pr_store_64_relaxed(&rt->start_tick, tick_now());
    int rc = sched_start(rt);
    if (rc != 0)
        return rc;
    pr_store_int(&rt->state, RUNTIME_RUNNING);
    return 0;
}

/* True when, over the pause between two looks, no thread ran anything and all were idle, and no
 * mailbox holds a message. The idle flags alone are not enough: a thread that is idle but was not
 * given the CPU (more threads than CPUs) has not yet seen the actor just scheduled on it, and
 * would look idle for as long as it is kept off the CPU. */
static int runtime_quiescent(spool_runtime *rt) {
    uint64_t before[SETTINGS_MAX_THREADS];
    for (int i = 0; i < rt->thread_count; i++) {
        if (!pr_load_int(&rt->threads[i].idle))
            return 0;
        before[i] = pr_load_64_relaxed(&rt->threads[i].activity);
    }
    struct timespec pause = {0, 1000000};
    nanosleep(&pause, NULL);
    for (int i = 0; i < rt->thread_count; i++) {
        if (!pr_load_int(&rt->threads[i].idle) ||
            pr_load_64_relaxed(&rt->threads[i].activity) != before[i])
            return 0;
    }
    return !actor_any_queued(rt);
}

int spool_runtime_stop(spool_runtime *rt, unsigned deadline_ms) {
    if (!rt)
        return SPOOL_EINVAL;
    if (sched_current())
        return SPOOL_EDEADLK;
    int state = pr_load_int(&rt->state);
    if (state == RUNTIME_STOPPED || state == RUNTIME_STOPPING)
        return 0;
    pr_store_int(&rt->state, RUNTIME_STOPPING);
    /* Dekker with the foreign senders (message.c): they announce themselves, then read the state;
     * we wrote the state, fence, then wait until none is in flight. Afterwards every send from
     * outside sees STOPPING and is refused, so nothing arrives behind the final drain. */
    pr_fence_seq_cst();
    while (pr_load_64(&rt->foreign_senders) != 0)
        pr_stall();

    if (state == RUNTIME_RUNNING) {
        uint64_t deadline = sched_now_ns() + (uint64_t)deadline_ms * 1000000u;
        int quiet_rounds = 0;
        while (deadline_ms > 0 && sched_now_ns() < deadline) {
            quiet_rounds = runtime_quiescent(rt) ? quiet_rounds + 1 : 0;
            if (quiet_rounds >= 2)
                break;
        }
        sched_halt_and_join(rt);
    }
    /* The scheduler threads are gone: this thread now owns every actor and every timer. */
    for (int i = 0; i < rt->thread_count; i++)
        timers_discard(&rt->threads[i]);
    actor_terminate_all(rt);
    request_fail_waiters(rt, SPOOL_ESTOPPED);
    pr_store_int(&rt->state, RUNTIME_STOPPED);
    pthread_mutex_lock(&rt->life_lock);
    pthread_cond_broadcast(&rt->life_cond);
    pthread_mutex_unlock(&rt->life_lock);
    return 0;
}

void spool_runtime_destroy(spool_runtime **rtp) {
    if (!rtp || !*rtp)
        return;
    spool_runtime *rt = *rtp;
    if (sched_current())
        return; /* refusing beats destroying the thread we run on */
    spool_runtime_stop(rt, 0);
    pool_destroy(rt);
    metrics_threads_destroy(rt);
    request_tables_destroy(rt);
    remote_destroy(rt);
    names_destroy(rt);
    actor_table_destroy(rt);
    pthread_cond_destroy(&rt->life_cond);
    pthread_mutex_destroy(&rt->life_lock);
    spool_allocator alloc = rt->allocator;
    memory_free(&alloc, rt->threads, sizeof(sched_thread) * (size_t)rt->thread_count);
    settings_free(&rt->settings);
    memory_free(&alloc, rt, sizeof *rt);
    *rtp = NULL;
}

void runtime_actor_born(spool_runtime *rt) { pr_faa_64(&rt->live_actors, 1); }

void runtime_actor_died(spool_runtime *rt) {
    /* Take the lock only on the edge to zero, which is what waiters wait for. */
    if (pr_faa_64(&rt->live_actors, (uint64_t)-1) == 1) {
        pthread_mutex_lock(&rt->life_lock);
        pthread_cond_broadcast(&rt->life_cond);
        pthread_mutex_unlock(&rt->life_lock);
    }
}

int spool_runtime_wait(spool_runtime *rt, unsigned timeout_ms) {
    if (!rt)
        return SPOOL_EINVAL;
    if (sched_current())
        return SPOOL_EDEADLK;
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    int rc = 0;
    pthread_mutex_lock(&rt->life_lock);
    while (pr_load_64(&rt->live_actors) != 0 && pr_load_int(&rt->state) != RUNTIME_STOPPED) {
        if (timeout_ms == UINT32_MAX) {
            pthread_cond_wait(&rt->life_cond, &rt->life_lock);
        } else if (pthread_cond_timedwait(&rt->life_cond, &rt->life_lock, &until) == ETIMEDOUT) {
            rc = pr_load_64(&rt->live_actors) == 0 ? 0 : SPOOL_ETIMEDOUT;
            break;
        }
    }
    pthread_mutex_unlock(&rt->life_lock);
    return rc;
}

int spool_runtime_threads(const spool_runtime *rt) { return rt ? rt->thread_count : 0; }

int spool_runtime_batch(const spool_runtime *rt) { return rt ? rt->settings.batch : 0; }

const char *spool_runtime_default_policy(const spool_runtime *rt) {
    return rt ? placement_kind_name(rt->settings.default_policy) : "";
}

size_t spool_runtime_placement(const spool_runtime *rt, spool_placement_info *out, size_t max) {
    if (!rt)
        return 0;
    const runtime_settings *s = &rt->settings;
    for (size_t i = 0; i < s->rule_count && i < max && out; i++) {
        const placement_rule *r = &s->rules[i];
        out[i].pattern = r->pattern;
        out[i].policy = placement_kind_name(r->kind);
        out[i].thread = r->kind == PLACE_THREAD || r->kind == PLACE_DEDICATED ? r->thread : -1;
        out[i].near = r->kind == PLACE_NEAR ? r->near : NULL;
        out[i].source = r->source;
    }
    return s->rule_count;
}

const char *spool_runtime_admin(const spool_runtime *rt) {
    return rt && rt->settings.admin ? rt->settings.admin : "";
}

int spool_dead_letter_count(const spool_runtime *rt, spool_dead_reason reason, uint64_t *out) {
    if (!rt || !out || (unsigned)reason >= SPOOL_DEAD_REASON_COUNT)
        return SPOOL_EINVAL;
    *out = pr_load_64((uint64_t *)&rt->dead_letters[reason]);
    return 0;
}
