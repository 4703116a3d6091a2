/*
 * metrics.c - what the runtime measures as it runs, and the snapshot that reads it without stopping
 * anything. Counters come from the mailbox (producers' atomics, the home thread's release) and the
 * threads; the two histograms per actor (wait: enqueue -> dequeue, processing: handler time) are
 * kept by the home thread alone, for one message in `sample_every` that its sender stamped with the
 * tick clock. A snapshot copies each actor's figures under a sequence lock the home thread bumps.
 */
#include "actors/actors.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

/* 1-2.5-5 per decade from 100 ns to 10 s; the bucket after the last bound is +Inf. */
static const double histogram_bounds[SPOOL_HISTOGRAM_BUCKETS - 1] = {
    1e-7,   2.5e-7, 5e-7, 1e-6,   2.5e-6, 5e-6, 1e-5,   2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3,
    2.5e-3, 5e-3,   1e-2, 2.5e-2, 5e-2,   1e-1, 2.5e-1, 5e-1,   1.0,  2.5,  5.0,    10.0,
};

const double *spool_histogram_bounds(void) { return histogram_bounds; }

double spool_histogram_quantile(const spool_histogram *h, double q) {
    if (!h || h->count == 0)
        return 0.0;
    if (q < 0.0)
        q = 0.0;
    if (q > 1.0)
        q = 1.0;
    /* The rank of the q-th observation, 1-based: the first bucket whose cumulative count reaches
     * it. */
    uint64_t rank = (uint64_t)ceil(q * (double)h->count);
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (int i = 0; i < SPOOL_HISTOGRAM_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank)
            return histogram_bounds[i < SPOOL_HISTOGRAM_BUCKETS - 1 ? i
                                                                    : SPOOL_HISTOGRAM_BUCKETS - 2];
    }
    return histogram_bounds[SPOOL_HISTOGRAM_BUCKETS - 2];
}

/* ---------------------------------------------------------------------------------------------- */
/* The clock                                                                                      */

/* Seconds per tick of tick_now(). The TSC's rate is a constant of the machine, so it is measured
 * once per process (2 ms against CLOCK_MONOTONIC) and copied into every runtime. */
static double process_seconds_per_tick;
static pthread_once_t calibrated = PTHREAD_ONCE_INIT;

static void calibrate(void) {
#if defined(__x86_64__)
    uint64_t ns0 = sched_now_ns(), t0 = tick_now(), ns1;
    do
        ns1 = sched_now_ns();
    while (ns1 - ns0 < 2000000u);
    uint64_t t1 = tick_now();
    process_seconds_per_tick = t1 > t0 ? (double)(ns1 - ns0) / 1e9 / (double)(t1 - t0) : 1e-9;
#else
    process_seconds_per_tick = 1e-9;
#endif
}

void metrics_setup(spool_runtime *rt) {
    pthread_once(&calibrated, calibrate);
    rt->seconds_per_tick = process_seconds_per_tick;
    rt->metrics_on = rt->settings.metrics;
    rt->sample_every = rt->settings.metrics_sample ? rt->settings.metrics_sample : 1;
    for (int i = 0; i < SPOOL_HISTOGRAM_BUCKETS - 1; i++)
        rt->bucket_ticks[i] = (uint64_t)(histogram_bounds[i] / rt->seconds_per_tick);
    rt->spin_ticks = (uint64_t)((double)SCHED_SPIN_NS * 1e-9 / rt->seconds_per_tick);
    rt->spin_min_ticks = (uint64_t)((double)SCHED_SPIN_MIN_NS * 1e-9 / rt->seconds_per_tick);
    rt->yield_ticks = (uint64_t)((double)SCHED_SPIN_BEFORE_YIELD_NS * 1e-9 / rt->seconds_per_tick);
    for (int i = 0; i < rt->thread_count; i++) {
        sched_thread *t = &rt->threads[i];
        /* Seeded from the runtime's seed: a run can be replayed; never zero (xorshift's fixed
         * point). */
        t->sample_random = (rt->settings.seed ^ (0x9E3779B97F4A7C15u * (uint64_t)(i + 1))) | 1u;
        t->sample_countdown = metrics_gap(rt, &t->sample_random);
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* The home thread's side                                                                         */

static void histogram_add(spool_runtime *rt, metrics_histogram *h, uint64_t ticks) {
    int i = 0;
    while (i < SPOOL_HISTOGRAM_BUCKETS - 1 && ticks > rt->bucket_ticks[i])
        i++;
    /* Relaxed stores: only this thread writes; readers copy under the sequence lock. */
    pr_store_64_relaxed(&h->buckets[i], h->buckets[i] + 1);
    pr_store_64_relaxed(&h->count, h->count + 1);
    pr_store_64_relaxed(&h->sum_ticks, h->sum_ticks + ticks);
}

int metrics_threads_create(spool_runtime *rt) {
    for (int i = 0; i < rt->thread_count; i++) {
        sched_thread *t = &rt->threads[i];
        t->observations =
            memory_alloc(&rt->allocator, sizeof(observation) * (size_t)rt->settings.batch);
        if (!t->observations)
            return SPOOL_ENOMEM;
    }
    return 0;
}

void metrics_threads_destroy(spool_runtime *rt) {
    for (int i = 0; i < rt->thread_count; i++) {
        memory_free(&rt->allocator, rt->threads[i].observations,
                    sizeof(observation) * (size_t)rt->settings.batch);
        rt->threads[i].observations = NULL;
    }
}

/* The actor's block, created at its first observation; NULL if there is none (no memory, or
 * nothing observed yet). */
static actor_metrics *block_for(sched_thread *t, actor *a) {
    actor_metrics *m = a->metrics;
    if (!m && t->observation_count) {
        m = memory_calloc(&t->rt->allocator, sizeof *m);
        if (m)
            pr_store_ptr(&a->metrics, m); /* release: readers see a zeroed block */
        /* else: no memory for histograms: the actor runs on unmeasured */
    }
    return m;
}

static void apply_observations(sched_thread *t, actor_metrics *m) {
    for (uint32_t i = 0; i < t->observation_count; i++) {
        histogram_add(t->rt, &m->wait, t->observations[i].wait_ticks);
        histogram_add(t->rt, &m->processing, t->observations[i].processing_ticks);
    }
    t->observation_count = 0;
}

uint64_t metrics_release_owner(sched_thread *t, actor *a, uint64_t taken, uint64_t dropped) {
    actor_metrics *m = block_for(t, a);
    if (!m) {
        t->observation_count = 0;
        return mailbox_release_owner(&a->mailbox, taken, dropped);
    }
    seq_write_begin(&m->lock);
    apply_observations(t, m);
    uint64_t remaining = mailbox_release_owner(&a->mailbox, taken, dropped);
    seq_write_end(&m->lock);
    return remaining;
}

void metrics_settle_owner(sched_thread *t, actor *a, uint64_t taken) {
    mailbox *mb = &a->mailbox;
    actor_metrics *m = block_for(t, a);
    if (m) {
        seq_write_begin(&m->lock);
        apply_observations(t, m);
    }
    pr_store_64_relaxed(&mb->dequeued, mb->dequeued + taken);
    if (m)
        seq_write_end(&m->lock);
    t->observation_count = 0;
}

static void histogram_clear(metrics_histogram *h) {
    for (int i = 0; i < SPOOL_HISTOGRAM_BUCKETS; i++)
        pr_store_64_relaxed(&h->buckets[i], 0);
    pr_store_64_relaxed(&h->count, 0);
    pr_store_64_relaxed(&h->sum_ticks, 0);
}

void metrics_reset_slot(actor *a) {
    actor_metrics *m = a->metrics;
    if (!m)
        return;
    seq_write_begin(&m->lock);
    histogram_clear(&m->wait);
    histogram_clear(&m->processing);
    seq_write_end(&m->lock);
}

void metrics_free_slot(spool_runtime *rt, actor *a) {
    memory_free(&rt->allocator, a->metrics, sizeof *a->metrics);
    a->metrics = NULL;
}

/* ---------------------------------------------------------------------------------------------- */
/* Snapshots                                                                                      */

/* What spool_metrics_snapshot hands out, with what it needs to free itself. */
typedef struct snapshot {
    spool_metrics public;
    spool_allocator allocator;
    size_t actor_capacity;
} snapshot;

static void histogram_copy(spool_histogram *out, metrics_histogram *h, double seconds_per_tick) {
    uint64_t count = 0;
    for (int i = 0; i < SPOOL_HISTOGRAM_BUCKETS; i++) {
        out->buckets[i] = pr_load_64_relaxed(&h->buckets[i]);
        count += out->buckets[i];
    }
    out->count = count; /* from the buckets: consistent with them even if h->count raced */
    out->sum_seconds = (double)pr_load_64_relaxed(&h->sum_ticks) * seconds_per_tick;
}

static void copy_name(char *out, size_t size, const char *name) {
    size_t n = name ? strlen(name) : 0;
    if (n >= size)
        n = size - 1;
    if (n)
        memcpy(out, name, n);
    out[n] = '\0';
}

/* Copies one live actor's figures; 0 if `a` held no actor (or a different one by the end). */
static int copy_actor(spool_runtime *rt, actor *a, spool_actor_metrics *out) {
    spool_id id = pr_load_64(&a->id);
    if (id == SPOOL_ID_NONE)
        return 0;
    memset(out, 0, sizeof *out);
    out->id = id;
    names_copy_actor_name(rt, a, out->name, sizeof out->name);
    const spool_behavior *behavior = pr_load_ptr(&a->behavior);
    copy_name(out->behavior, sizeof out->behavior, behavior ? behavior->name : NULL);
    out->thread = pr_load_int(&a->home);
    mailbox *mb = &a->mailbox;
    for (int attempt = 0;; attempt++) {
        /* The block appears at the actor's first sampled message: if it is not there yet, the
         * copy only counts if it is still not there afterwards. */
        actor_metrics *m = pr_load_ptr(&a->metrics);
        unsigned version = m ? seq_read_begin(&m->lock) : 0;
        out->dequeued = pr_load_64_relaxed(&mb->dequeued);
        out->dropped = pr_load_64_relaxed(&mb->dropped);
        uint64_t notices = pr_load_64_relaxed(&mb->notices_popped);
        out->depth = mailbox_depth(mb);
        out->handled = out->dequeued - out->dropped - notices;
        if (m) {
            histogram_copy(&out->wait, &m->wait, rt->seconds_per_tick);
            histogram_copy(&out->processing, &m->processing, rt->seconds_per_tick);
        }
        int consistent = m ? !seq_read_retry(&m->lock, version) : !pr_load_ptr(&a->metrics);
        /* A reader never waits for the writer; after many collisions it keeps what it read. */
        if (consistent || attempt >= 1000)
            break;
    }
    out->enqueued = out->dequeued + out->depth;
    out->high_water = pr_load_64_relaxed(&mb->high_water);
    out->rejected = pr_load_64_relaxed(&mb->rejected);
    return pr_load_64(&a->id) == id; /* still the same incarnation */
}

static int add_actor(snapshot *s, const spool_actor_metrics *am) {
    spool_metrics *m = &s->public;
    if (m->actor_count == s->actor_capacity) {
        size_t capacity = s->actor_capacity ? s->actor_capacity * 2 : 64;
        spool_actor_metrics *actors =
            memory_alloc(&s->allocator, sizeof(spool_actor_metrics) * capacity);
        if (!actors)
            return SPOOL_ENOMEM;
        if (m->actor_count)
            memcpy(actors, m->actors, sizeof(spool_actor_metrics) * m->actor_count);
        memory_free(&s->allocator, m->actors, sizeof(spool_actor_metrics) * s->actor_capacity);
        m->actors = actors;
        s->actor_capacity = capacity;
    }
    m->actors[m->actor_count++] = *am;
    return 0;
}

static void copy_threads(spool_runtime *rt, spool_metrics *m) {
    uint64_t now = tick_now();
    for (int i = 0; i < rt->thread_count; i++) {
        sched_thread *t = &rt->threads[i];
        spool_thread_metrics *out = &m->threads[i];
        out->thread = i;
        out->cpu = rt->settings.cpu_count ? rt->settings.cpus[i % rt->settings.cpu_count] : -1;
        uint64_t busy = pr_load_64_relaxed(&t->busy_ticks);
        uint64_t since = pr_load_64_relaxed(&t->busy_since);
        if (pr_load_int(&t->started) && !pr_load_int(&t->idle) && now > since)
            busy += now - since; /* the current busy spell */
        out->busy_seconds = (double)busy * rt->seconds_per_tick;
        out->messages = pr_load_64_relaxed(&t->messages);
        out->wakeups = pr_load_64_relaxed(&t->wakeups);
        out->actors = (uint64_t)pr_load_int(&t->actors);
        out->ready = pr_load_64_relaxed(&t->ready_count);
    }
}

int spool_metrics_snapshot(spool_runtime *rt, spool_metrics **out) {
    if (!rt || !out)
        return SPOOL_EINVAL;
    snapshot *s = memory_calloc(&rt->allocator, sizeof *s);
    if (!s)
        return SPOOL_ENOMEM;
    s->allocator = rt->allocator;
    spool_metrics *m = &s->public;
    m->threads =
        memory_calloc(&rt->allocator, sizeof(spool_thread_metrics) * (size_t)rt->thread_count);
    if (!m->threads) {
        spool_metrics_destroy(&m);
        return SPOOL_ENOMEM;
    }
    m->thread_count = (size_t)rt->thread_count;
    m->enabled = rt->metrics_on;
    m->sample_every = rt->sample_every;
    uint64_t start = pr_load_64_relaxed(&rt->start_tick);
    m->uptime_seconds = start ? (double)(tick_now() - start) * rt->seconds_per_tick : 0.0;
    copy_threads(rt, m);
    for (int r = 0; r < SPOOL_DEAD_REASON_COUNT; r++)
        m->dead_letters[r] = pr_load_64(&rt->dead_letters[r]);

    uint32_t slots = actor_table_slots(rt);
    for (uint32_t i = 0; i < slots; i++) {
        actor *a = actor_slot(rt, (spool_id)i);
        spool_actor_metrics am;
        if (a && copy_actor(rt, a, &am) && add_actor(s, &am) != 0) {
            spool_metrics_destroy(&m);
            return SPOOL_ENOMEM;
        }
    }
    *out = m;
    return 0;
}

void spool_metrics_destroy(spool_metrics **metrics) {
    if (!metrics || !*metrics)
        return;
    snapshot *s = (snapshot *)*metrics; /* public is the first member */
    spool_allocator allocator = s->allocator;
    memory_free(&allocator, s->public.threads,
                sizeof(spool_thread_metrics) * s->public.thread_count);
    memory_free(&allocator, s->public.actors, sizeof(spool_actor_metrics) * s->actor_capacity);
    memory_free(&allocator, s, sizeof *s);
    *metrics = NULL;
}
