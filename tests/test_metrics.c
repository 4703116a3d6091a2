/*
 * test_metrics.c - the figures the runtime keeps: exact mailbox counters, histograms of sampled
 * messages (every message with metrics_sample = 1), thread figures, metrics off, quantiles, and
 * snapshots taken continuously from another thread that are never torn.
 */
#include "tests/support.h"

#include <math.h>
#include <string.h>
#include <time.h>

enum { MSG_WORK = 1, MSG_SLOW = 2, MSG_ASK = 3 };

static spool_runtime *metrics_runtime(int threads, int metrics, unsigned sample) {
    spool_config config;
    spool_config_init(&config);
    config.threads = threads;
    config.ignore_environment = 1;
    config.metrics = metrics;
    config.metrics_sample = sample;
    spool_runtime *rt = NULL;
    assert_int_equal(spool_runtime_create(&config, &rt), 0);
    return rt;
}

static void work_handle(spool_ctx *ctx, void *state, const spool_message *msg) {
    (void)state;
    if (msg->type == MSG_SLOW) {
        struct timespec ts = {0, 2000000}; /* 2 ms */
        nanosleep(&ts, NULL);
    }
    if (msg->request_id)
        spool_reply(spool_ctx_runtime(ctx), msg, 0, NULL, 0);
}

static const spool_behavior work_behavior = {"worker", work_handle, NULL};

static const spool_actor_metrics *find(const spool_metrics *m, spool_id id) {
    for (size_t i = 0; i < m->actor_count; i++)
        if (m->actors[i].id == id)
            return &m->actors[i];
    return NULL;
}

/* Waits until everything sent before is handled (a call queues behind it) and the turn that
 * answered has ended: the reply leaves inside the handler, the counters move at the turn's end. */
static void sync_with(spool_runtime *rt, spool_id id) {
    spool_response *r = NULL;
    assert_int_equal(spool_call_wait(rt, id, MSG_ASK, NULL, 0, 10000, &r), 0);
    spool_response_destroy(&r);
    spool_mailbox_stats stats;
    do
        assert_int_equal(spool_mailbox_stats_get(rt, id, &stats), 0);
    while (stats.depth != 0);
}

static void snapshot_counts_every_message_exactly(void **state) {
    (void)state;
    spool_runtime *rt = metrics_runtime(2, 0, 1);
    spool_spawn_opts opts = spool_spawn_opts_default();
    opts.name = "counted";
    opts.thread = 1;
    spool_id id;
    assert_int_equal(spool_spawn(rt, &work_behavior, NULL, &opts, &id), 0);
    assert_int_equal(spool_runtime_start(rt), 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(spool_send(rt, id, MSG_WORK, &i, sizeof i), 0);
    sync_with(rt, id);
    spool_metrics *m = NULL;
    assert_int_equal(spool_metrics_snapshot(rt, &m), 0);
    assert_int_equal(m->enabled, 1);
    assert_int_equal(m->sample_every, 1);
    assert_int_equal(m->thread_count, 2);
    const spool_actor_metrics *a = find(m, id);
    assert_non_null(a);
    assert_string_equal(a->name, "counted");
    assert_string_equal(a->behavior, "worker");
    assert_int_equal(a->thread, 1);
    assert_int_equal(a->handled, 1001); /* 1000 + the call */
    assert_int_equal(a->dequeued, 1001);
    assert_int_equal(a->enqueued, 1001);
    assert_int_equal(a->depth, 0);
    assert_true(a->high_water >= 1 && a->high_water <= 1001);
    assert_int_equal(a->rejected, 0);
    /* Sampling 1 in 1: every message is in both histograms. */
    assert_int_equal(a->wait.count, 1001);
    assert_int_equal(a->processing.count, 1001);
    uint64_t sum = 0;
    for (int b = 0; b < SPOOL_HISTOGRAM_BUCKETS; b++)
        sum += a->wait.buckets[b];
    assert_int_equal(sum, 1001);
    assert_true(a->wait.sum_seconds > 0.0);
    assert_true(m->threads[1].messages >= 1001);
    assert_int_equal(m->threads[1].actors, 1);
    assert_true(m->threads[1].busy_seconds > 0.0);
    assert_true(m->threads[1].busy_seconds <= m->uptime_seconds + 0.01);
    assert_int_equal(m->threads[0].cpu, -1);
    spool_metrics_destroy(&m);
    assert_null(m);
    support_finish(&rt, NO_DEAD_LETTERS);
}

static void processing_histogram_sees_a_slow_handler(void **state) {
    (void)state;
    spool_runtime *rt = metrics_runtime(1, 0, 1);
    spool_id id;
    assert_int_equal(spool_spawn(rt, &work_behavior, NULL, NULL, &id), 0);
    assert_int_equal(spool_runtime_start(rt), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(spool_send(rt, id, MSG_SLOW, NULL, 0), 0);
    sync_with(rt, id);
    spool_metrics *m = NULL;
    assert_int_equal(spool_metrics_snapshot(rt, &m), 0);
    const spool_actor_metrics *a = find(m, id);
    assert_non_null(a);
    assert_int_equal(a->processing.count, 11);
    /* Ten handlers of >= 2 ms: the median is in the 2.5 ms bucket or above, the sum >= 20 ms. */
    assert_true(spool_histogram_quantile(&a->processing, 0.5) >= 2.5e-3);
    assert_true(a->processing.sum_seconds >= 0.020);
    assert_true(a->processing.sum_seconds < 5.0);
    /* The messages behind a slow one waited: the slowest waited ~18 ms. */
    assert_true(spool_histogram_quantile(&a->wait, 0.99) >= 1e-2);
    spool_metrics_destroy(&m);
    support_finish(&rt, NO_DEAD_LETTERS);
}

typedef struct sender {
    spool_id to;
    int count;
} sender;

static void sender_handle(spool_ctx *ctx, void *state, const spool_message *msg) {
    sender *s = state;
    (void)msg;
    for (int i = 0; i < s->count; i++)
        spool_send(spool_ctx_runtime(ctx), s->to, MSG_WORK, NULL, 0);
    spool_actor_stop(spool_ctx_runtime(ctx), spool_self(ctx), 0);
}

static const spool_behavior sender_behavior = {"sender", sender_handle, NULL};

static void histograms_sample_one_message_in_n(void **state) {
    (void)state;
    spool_runtime *rt = metrics_runtime(2, 0, 64);
    spool_spawn_opts opts = spool_spawn_opts_default();
    opts.thread = 1;
    spool_id sink, from;
    assert_int_equal(spool_spawn(rt, &work_behavior, NULL, &opts, &sink), 0);
    sender s = {sink, 6400};
    opts.thread = 0;
    assert_int_equal(spool_spawn(rt, &sender_behavior, &s, &opts, &from), 0);
    assert_int_equal(spool_runtime_start(rt), 0);
    assert_int_equal(spool_send(rt, from, MSG_WORK, NULL, 0), 0);
    spool_mailbox_stats stats;
    do
        assert_int_equal(spool_mailbox_stats_get(rt, sink, &stats), 0);
    while (stats.dequeued < 6400);
    spool_metrics *m = NULL;
    assert_int_equal(spool_metrics_snapshot(rt, &m), 0);
    const spool_actor_metrics *a = find(m, sink);
    assert_non_null(a);
    assert_int_equal(m->sample_every, 64);
    assert_int_equal(a->handled, 6400);
    /* One thread sent all 6400, with gaps uniform in 1..127: about 100 sampled (sd ~6). */
    print_message("sampling: %llu of 6400 observed\n", (unsigned long long)a->wait.count);
    assert_true(a->wait.count >= 70 && a->wait.count <= 130);
    assert_int_equal(a->processing.count, a->wait.count);
    spool_metrics_destroy(&m);
    support_finish(&rt, NO_DEAD_LETTERS);
}

static void metrics_off_keeps_counters_and_no_histograms(void **state) {
    (void)state;
    spool_runtime *rt = metrics_runtime(1, -1, 1);
    spool_id id;
    assert_int_equal(spool_spawn(rt, &work_behavior, NULL, NULL, &id), 0);
    assert_int_equal(spool_runtime_start(rt), 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(spool_send(rt, id, MSG_WORK, NULL, 0), 0);
    sync_with(rt, id);
    spool_metrics *m = NULL;
    assert_int_equal(spool_metrics_snapshot(rt, &m), 0);
    assert_int_equal(m->enabled, 0);
    const spool_actor_metrics *a = find(m, id);
    assert_non_null(a);
    assert_int_equal(a->handled, 101);
    assert_int_equal(a->wait.count, 0);
    assert_int_equal(a->processing.count, 0);
    spool_metrics_destroy(&m);
    support_finish(&rt, NO_DEAD_LETTERS);
}

static void snapshot_reports_dead_letters_and_forgets_dead_actors(void **state) {
    (void)state;
    spool_runtime *rt = metrics_runtime(1, 0, 0);
    spool_id id;
    assert_int_equal(spool_spawn(rt, &work_behavior, NULL, NULL, &id), 0);
    assert_int_equal(spool_runtime_start(rt), 0);
    assert_int_equal(spool_actor_stop(rt, id, 0), 0);
    assert_int_equal(spool_runtime_wait(rt, 10000), 0);
    assert_int_equal(spool_send(rt, id, MSG_WORK, NULL, 0), SPOOL_ENOENT);
    spool_metrics *m = NULL;
    assert_int_equal(spool_metrics_snapshot(rt, &m), 0);
    assert_null(find(m, id));
    assert_int_equal(m->actor_count, 0);
    assert_int_equal(m->dead_letters[SPOOL_DEAD_NO_RECEIVER], 1);
    /* The slot's next actor starts from zero. */
    spool_id next;
    assert_int_equal(spool_spawn(rt, &work_behavior, NULL, NULL, &next), 0);
    spool_metrics_destroy(&m);
    assert_int_equal(spool_metrics_snapshot(rt, &m), 0);
    const spool_actor_metrics *a = find(m, next);
    assert_non_null(a);
    assert_int_equal(a->handled, 0);
    assert_int_equal(a->wait.count, 0);
    assert_int_equal(spool_metrics_snapshot(NULL, &m), SPOOL_EINVAL);
    spool_metrics_destroy(&m);
    spool_metrics_destroy(NULL);
    support_finish(&rt, DEAD(1));
}

/* A sender that alternates between two receivers must not starve one of samples (a fixed gap of
 * an even N would). */
typedef struct alternator {
    spool_id to[2];
    int count;
} alternator;

static void alternator_handle(spool_ctx *ctx, void *state, const spool_message *msg) {
    alternator *s = state;
    (void)msg;
    for (int i = 0; i < s->count; i++)
        spool_send(spool_ctx_runtime(ctx), s->to[i % 2], MSG_WORK, NULL, 0);
    spool_actor_stop(spool_ctx_runtime(ctx), spool_self(ctx), 0);
}

static const spool_behavior alternator_behavior = {"alternator", alternator_handle, NULL};

static void sampling_reaches_every_receiver_of_a_patterned_sender(void **state) {
    (void)state;
    spool_runtime *rt = metrics_runtime(2, 0, 4);
    spool_spawn_opts opts = spool_spawn_opts_default();
    opts.thread = 1;
    spool_id a, b, from;
    assert_int_equal(spool_spawn(rt, &work_behavior, NULL, &opts, &a), 0);
    assert_int_equal(spool_spawn(rt, &work_behavior, NULL, &opts, &b), 0);
    alternator s = {{a, b}, 4000};
    opts.thread = 0;
    assert_int_equal(spool_spawn(rt, &alternator_behavior, &s, &opts, &from), 0);
    assert_int_equal(spool_runtime_start(rt), 0);
    assert_int_equal(spool_send(rt, from, MSG_WORK, NULL, 0), 0);
    spool_mailbox_stats sa, sb;
    do {
        assert_int_equal(spool_mailbox_stats_get(rt, a, &sa), 0);
        assert_int_equal(spool_mailbox_stats_get(rt, b, &sb), 0);
    } while (sa.dequeued < 2000 || sb.dequeued < 2000 || sa.depth || sb.depth);
    spool_metrics *m = NULL;
    assert_int_equal(spool_metrics_snapshot(rt, &m), 0);
    uint64_t na = find(m, a)->wait.count, nb = find(m, b)->wait.count;
    print_message("sampling: %llu and %llu of 2000 each observed\n", (unsigned long long)na,
                  (unsigned long long)nb);
    assert_true(na >= 350 && na <= 650); /* ~500 each */
    assert_true(nb >= 350 && nb <= 650);
    spool_metrics_destroy(&m);
    support_finish(&rt, NO_DEAD_LETTERS);
}

static void quantiles_come_from_bucket_bounds(void **state) {
    (void)state;
    const double *bounds = spool_histogram_bounds();
    assert_true(fabs(bounds[0] - 1e-7) < 1e-12);
    assert_true(fabs(bounds[SPOOL_HISTOGRAM_BUCKETS - 2] - 10.0) < 1e-9);
    spool_histogram h;
    memset(&h, 0, sizeof h);
    assert_true(spool_histogram_quantile(&h, 0.5) == 0.0);
    assert_true(spool_histogram_quantile(NULL, 0.5) == 0.0);
    h.buckets[3] = 90;                          /* <= 1 us */
    h.buckets[12] = 9;                          /* <= 1 ms */
    h.buckets[SPOOL_HISTOGRAM_BUCKETS - 1] = 1; /* > 10 s */
    h.count = 100;
    assert_true(spool_histogram_quantile(&h, 0.5) == bounds[3]);
    assert_true(spool_histogram_quantile(&h, 0.9) == bounds[3]);
    assert_true(spool_histogram_quantile(&h, 0.95) == bounds[12]);
    assert_true(spool_histogram_quantile(&h, 1.0) == bounds[SPOOL_HISTOGRAM_BUCKETS - 2]);
    assert_true(spool_histogram_quantile(&h, -1.0) == bounds[3]);
}

/* ---------------------------------------------------------------------------------------------- */

typedef struct reader_arg {
    spool_runtime *rt;
    int stop;
    long snapshots;
    long torn;
    long behind;
} reader_arg;

static void *reader(void *p) {
    reader_arg *r = p;
    while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
        spool_metrics *m = NULL;
        if (spool_metrics_snapshot(r->rt, &m) != 0)
            continue;
        for (size_t i = 0; i < m->actor_count; i++) {
            const spool_actor_metrics *a = &m->actors[i];
            /* Both histograms change in one locked section: a torn read would split them. */
            if (a->wait.count != a->processing.count)
                r->torn++;
            /* Histograms and counters move together at each turn's end (sampling 1 in 1). */
            if (a->wait.count != a->handled)
                r->behind++;
        }
        r->snapshots++;
        spool_metrics_destroy(&m);
    }
    return NULL;
}

static void snapshots_taken_while_actors_run_are_never_torn(void **state) {
    (void)state;
    spool_runtime *rt = metrics_runtime(2, 0, 1);
    spool_id sinks[2], senders[4];
    sender s[4];
    for (int i = 0; i < 2; i++) {
        spool_spawn_opts opts = spool_spawn_opts_default();
        opts.thread = i;
        assert_int_equal(spool_spawn(rt, &work_behavior, NULL, &opts, &sinks[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        s[i] = (sender){sinks[i % 2], (int)support_stress(20000)};
        spool_spawn_opts opts = spool_spawn_opts_default();
        opts.thread = (i / 2) % 2;
        assert_int_equal(spool_spawn(rt, &sender_behavior, &s[i], &opts, &senders[i]), 0);
    }
    assert_int_equal(spool_runtime_start(rt), 0);
    reader_arg r = {rt, 0, 0, 0, 0};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, reader, &r), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(spool_send(rt, senders[i], MSG_WORK, NULL, 0), 0);
    long expected = 2 * support_stress(20000);
    for (int i = 0; i < 2; i++) {
        spool_mailbox_stats stats;
        do
            assert_int_equal(spool_mailbox_stats_get(rt, sinks[i], &stats), 0);
        while (stats.dequeued < (uint64_t)expected);
    }
    __atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
    pthread_join(thread, NULL);
    print_message("metrics: %ld snapshots while 80000 messages ran\n", r.snapshots);
    assert_true(r.snapshots > 0);
    assert_int_equal(r.torn, 0);
    assert_int_equal(r.behind, 0);
    support_finish(&rt, NO_DEAD_LETTERS);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(snapshot_counts_every_message_exactly),
        cmocka_unit_test(processing_histogram_sees_a_slow_handler),
        cmocka_unit_test(histograms_sample_one_message_in_n),
        cmocka_unit_test(metrics_off_keeps_counters_and_no_histograms),
        cmocka_unit_test(snapshot_reports_dead_letters_and_forgets_dead_actors),
        cmocka_unit_test(sampling_reaches_every_receiver_of_a_patterned_sender),
        cmocka_unit_test(quantiles_come_from_bucket_bounds),
        cmocka_unit_test(snapshots_taken_while_actors_run_are_never_torn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
