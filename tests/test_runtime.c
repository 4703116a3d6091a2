/*
 * test_runtime.c - the runtime as a whole: an idle runtime burns no CPU and wakes on the first
 * message; a graceful stop handles or counts every message ever accepted; memory goes through the
 * configured allocator, nothing leaks, and every out-of-memory path returns SPOOL_ENOMEM cleanly.
 */
#include "tests/support.h"

#include <dirent.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static spool_runtime *runtime_with(int threads, const spool_allocator *allocator) {
    spool_config config;
    spool_config_init(&config);
    config.threads = threads;
    config.ignore_environment = 1;
    config.allocator = allocator;
    spool_runtime *rt = NULL;
    assert_int_equal(spool_runtime_create(&config, &rt), 0);
    return rt;
}

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

enum { MSG_ECHO = 1, MSG_COUNT = 2, MSG_SLOW = 3 };

typedef struct tally {
    long handled;
    long slow_us;
} tally;

static void tally_handle(spool_ctx *ctx, void *state, const spool_message *msg) {
    tally *t = state;
    t->handled++;
    if (msg->type == MSG_SLOW && t->slow_us)
        sleep_ms(t->slow_us / 1000);
    if (msg->request_id)
        spool_reply(spool_ctx_runtime(ctx), msg, MSG_ECHO, msg->data, msg->size);
}

static const spool_behavior tally_behavior = {"tally", tally_handle, NULL};

static void idle_runtime_burns_no_cpu_and_wakes_on_the_first_message(void **state) {
    (void)state;
    spool_runtime *rt = runtime_with(2, NULL);
    tally t = {0, 0};
    spool_id id;
    assert_int_equal(spool_spawn(rt, &tally_behavior, &t, NULL, &id), 0);
    assert_int_equal(spool_runtime_start(rt), 0);
    spool_response *r = NULL;
    assert_int_equal(spool_call_wait(rt, id, MSG_ECHO, "hi", 2, 5000, &r), 0);
    spool_response_destroy(&r);

    sleep_ms(20); /* past the short spin: both threads asleep */
    double before = cpu_seconds();
    sleep_ms(200);
    double used = cpu_seconds() - before;
    print_message("idle: %.2f ms of CPU in 200 ms\n", used * 1e3);
    assert_true(used < 0.010); /* under 5 % of one core */

    /* The first message wakes the sleeping home thread. */
    assert_int_equal(spool_call_wait(rt, id, MSG_ECHO, "again", 5, 5000, &r), 0);
    assert_int_equal(spool_response_message(r)->size, 5);
    assert_memory_equal(spool_response_message(r)->data, "again", 5);
    spool_response_destroy(&r);
    spool_runtime_destroy(&rt);
}

static void scheduler_threads_are_named_spool_n(void **state) {
    (void)state;
    spool_runtime *rt = runtime_with(2, NULL);
    assert_int_equal(spool_runtime_start(rt), 0);
    int seen[2] = {0, 0};
    DIR *dir = opendir("/proc/self/task");
    assert_non_null(dir);
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        char path[300], comm[32] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        if (fgets(comm, sizeof comm, f)) {
            if (strcmp(comm, "spool/0\n") == 0)
                seen[0]++;
            if (strcmp(comm, "spool/1\n") == 0)
                seen[1]++;
        }
        fclose(f);
    }
    closedir(dir);
    assert_int_equal(seen[0], 1);
    assert_int_equal(seen[1], 1);
    spool_runtime_destroy(&rt);
}

/* ---------------------------------------------------------------------------------------------- */

typedef struct flood_arg {
    spool_runtime *rt;
    spool_id to;
    long accepted;
    long refused;
    long other;
} flood_arg;

static void *flood(void *p) {
    flood_arg *a = p;
    for (;;) {
        int rc = spool_send(a->rt, a->to, MSG_COUNT, &a->accepted, sizeof a->accepted);
        if (rc == 0)
            a->accepted++;
        else if (rc == SPOOL_ESTOPPED)
            break;
        else
            a->other++;
        if (a->accepted % 1024 == 0)
            sched_yield();
    }
    /* After the stop every send is refused, and counted. */
    for (int i = 0; i < 10; i++)
        if (spool_send(a->rt, a->to, MSG_COUNT, NULL, 0) == SPOOL_ESTOPPED)
            a->refused++;
    return NULL;
}

static void graceful_stop_handles_everything_accepted_and_counts_the_rest(void **state) {
    (void)state;
    spool_runtime *rt = runtime_with(2, NULL);
    tally t[2] = {{0, 0}, {0, 0}};
    spool_id ids[2];
    for (int i = 0; i < 2; i++) {
        spool_spawn_opts opts = spool_spawn_opts_default();
        opts.thread = i;
        assert_int_equal(spool_spawn(rt, &tally_behavior, &t[i], &opts, &ids[i]), 0);
    }
    assert_int_equal(spool_runtime_start(rt), 0);
    pthread_t threads[3];
    flood_arg args[3];
    for (int i = 0; i < 3; i++) {
        args[i] = (flood_arg){rt, ids[i % 2], 0, 0, 0};
        assert_int_equal(pthread_create(&threads[i], NULL, flood, &args[i]), 0);
    }
    sleep_ms(100);
    assert_int_equal(spool_runtime_stop(rt, 10000), 0); /* ample time to drain */
    long accepted = 0, refused = 0;
    for (int i = 0; i < 3; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(args[i].other, 0);
        accepted += args[i].accepted;
        refused += args[i].refused;
    }
    print_message("stop: %ld accepted, all handled before the deadline\n", accepted);
    assert_true(accepted > 0);
    assert_int_equal(t[0].handled + t[1].handled, accepted);
    /* The refused sends: the stop-time ESTOPPED of each flood loop + the 10 after it. */
    assert_int_equal(support_dead(rt, SPOOL_DEAD_SHUTDOWN), refused + 3);
    assert_int_equal(support_dead(rt, SPOOL_DEAD_NO_RECEIVER), 0);
    assert_int_equal(spool_runtime_stop(rt, 0), 0); /* idempotent */
    spool_runtime_destroy(&rt);
}

static void stop_at_deadline_counts_every_leftover_as_shutdown(void **state) {
    (void)state;
    spool_runtime *rt = runtime_with(1, NULL);
    tally t = {0, 2000}; /* 2 ms per message */
    spool_id id;
    assert_int_equal(spool_spawn(rt, &tally_behavior, &t, NULL, &id), 0);
    assert_int_equal(spool_runtime_start(rt), 0);
    for (int i = 0; i < 200; i++)
        assert_int_equal(spool_send(rt, id, MSG_SLOW, NULL, 0), 0);
    assert_int_equal(spool_runtime_stop(rt, 20), 0);
    print_message("deadline: %ld handled, %llu left as dead letters\n", t.handled,
                  (unsigned long long)support_dead(rt, SPOOL_DEAD_SHUTDOWN));
    assert_true(t.handled < 200);
    assert_int_equal((uint64_t)t.handled + support_dead(rt, SPOOL_DEAD_SHUTDOWN), 200);
    assert_int_equal(spool_send(rt, id, MSG_COUNT, NULL, 0), SPOOL_ESTOPPED);
    assert_int_equal(spool_spawn(rt, &tally_behavior, &t, NULL, &id), SPOOL_ESTOPPED);
    spool_runtime_destroy(&rt);
}

static void lifecycle_misuse_returns_errors(void **state) {
    (void)state;
    spool_runtime *rt = runtime_with(1, NULL);
    assert_int_equal(spool_runtime_wait(rt, 10), 0); /* no actor alive */
    tally t = {0, 0};
    spool_id id;
    assert_int_equal(spool_spawn(rt, &tally_behavior, &t, NULL, &id), 0);
    assert_int_equal(spool_runtime_wait(rt, 20), SPOOL_ETIMEDOUT);
    assert_int_equal(spool_runtime_start(rt), 0);
    assert_int_equal(spool_runtime_start(rt), SPOOL_ESTATE);
    assert_int_equal(spool_runtime_threads(rt), 1);
    assert_string_equal(spool_runtime_admin(rt), "");
    spool_runtime_destroy(&rt);
    assert_null(rt);

    spool_config config;
    spool_config_init(&config);
    config.ignore_environment = 1;
    spool_allocator half = {NULL, NULL, NULL};
    config.allocator = &half;
    char error[128] = "";
    config.error = error;
    config.error_size = sizeof error;
    assert_int_equal(spool_runtime_create(&config, &rt), SPOOL_EINVAL);
    assert_non_null(strstr(error, "allocator"));
}

/* ---------------------------------------------------------------------------------------------- */
/* Memory through one door                                                                        */

typedef struct counting {
    long live_bytes;
    long live_blocks;
    long calls;
    long fail_at; /* fail exactly this call (1-based); 0 = never */
    long failures;
} counting;

static void *counting_alloc(void *user, size_t size) {
    counting *c = user;
    long n = __atomic_add_fetch(&c->calls, 1, __ATOMIC_RELAXED);
    if (n == __atomic_load_n(&c->fail_at, __ATOMIC_RELAXED)) {
        __atomic_fetch_add(&c->failures, 1, __ATOMIC_RELAXED);
        return NULL;
    }
    void *p = malloc(size);
    if (p) {
        __atomic_fetch_add(&c->live_bytes, (long)size, __ATOMIC_RELAXED);
        __atomic_fetch_add(&c->live_blocks, 1, __ATOMIC_RELAXED);
    }
    return p;
}

static void counting_free(void *user, void *ptr, size_t size) {
    counting *c = user;
    __atomic_fetch_sub(&c->live_bytes, (long)size, __ATOMIC_RELAXED);
    __atomic_fetch_sub(&c->live_blocks, 1, __ATOMIC_RELAXED);
    free(ptr);
}

typedef struct worker {
    spool_id peer;
    long handled;
} worker;

static void worker_handle(spool_ctx *ctx, void *state, const spool_message *msg) {
    worker *w = state;
    spool_runtime *rt = spool_ctx_runtime(ctx);
    w->handled++;
    if (msg->request_id) {
        spool_reply(rt, msg, MSG_ECHO, msg->data, msg->size);
        return;
    }
    if (msg->type == MSG_COUNT && w->peer) {
        char big[200] = {0}; /* bigger than a pooled block */
        spool_send(rt, w->peer, MSG_COUNT + 10, big, sizeof big);
        spool_send_after(rt, w->peer, 1, MSG_COUNT + 10, NULL, 0, NULL);
        spool_monitor(ctx, w->peer);
    }
}

static void worker_destroy(void *state) { free(state); }

static const spool_behavior worker_behavior = {"worker", worker_handle, worker_destroy};

/* A whole little program; every step may fail with SPOOL_ENOMEM, and nothing else. */
static int run_workload(const spool_allocator *allocator, long *failures_seen) {
    spool_config config;
    spool_config_init(&config);
    config.threads = 2;
    config.ignore_environment = 1;
    config.allocator = allocator;
    spool_runtime *rt = NULL;
    int rc = spool_runtime_create(&config, &rt);
    if (rc != 0) {
        assert_int_equal(rc, SPOOL_ENOMEM);
        assert_null(rt);
        (*failures_seen)++;
        return rc;
    }
    assert_int_equal(spool_runtime_start(rt), 0);
    spool_id ids[4] = {0};
    for (int i = 0; i < 4; i++) {
        worker *w = calloc(1, sizeof *w);
        spool_spawn_opts opts = spool_spawn_opts_default();
        char name[16];
        snprintf(name, sizeof name, "w%d", i);
        opts.name = name;
        rc = spool_spawn(rt, &worker_behavior, w, &opts, &ids[i]);
        if (rc != 0) {
            assert_int_equal(rc, SPOOL_ENOMEM);
            (*failures_seen)++;
            free(w);
            ids[i] = 0;
        } else if (i > 0) {
            w->peer = ids[i - 1];
        }
    }
    for (int i = 0; i < 4; i++) {
        if (!ids[i])
            continue;
        for (int k = 0; k < 20; k++) {
            rc = spool_send(rt, ids[i], MSG_COUNT, "payload", 7);
            if (rc != 0) {
                assert_int_equal(rc, SPOOL_ENOMEM);
                (*failures_seen)++;
            }
        }
        spool_response *r = NULL;
        rc = spool_call_wait(rt, ids[i], MSG_ECHO, "x", 1, 5000, &r);
        if (rc != 0) {
            assert_true(rc == SPOOL_ENOMEM || rc == SPOOL_ENOENT);
            (*failures_seen)++;
        }
        spool_response_destroy(&r);
        rc = spool_send_after(rt, ids[i], 3600000, MSG_COUNT, NULL, 0, NULL);
        if (rc != 0) {
            assert_int_equal(rc, SPOOL_ENOMEM);
            (*failures_seen)++;
        }
    }
    if (ids[3])
        spool_actor_stop(rt, ids[3], 0);
    spool_runtime_stop(rt, 200);
    spool_runtime_destroy(&rt);
    return 0;
}

static void every_byte_goes_through_the_allocator_and_comes_back(void **state) {
    (void)state;
    counting c = {0, 0, 0, 0, 0};
    spool_allocator allocator = {counting_alloc, counting_free, &c};
    long failures = 0;
    assert_int_equal(run_workload(&allocator, &failures), 0);
    assert_int_equal(failures, 0);
    assert_true(c.calls > 10);
    assert_int_equal(c.live_blocks, 0);
    assert_int_equal(c.live_bytes, 0);
}

static void every_out_of_memory_path_returns_enomem_and_leaks_nothing(void **state) {
    (void)state;
    long max = getenv("SPOOL_STRESS") ? 400 : 120;
    long create_failures = 0, later_failures = 0;
    for (long n = 1; n <= max; n++) {
        counting c = {0, 0, 0, n, 0};
        spool_allocator allocator = {counting_alloc, counting_free, &c};
        long failures = 0;
        if (run_workload(&allocator, &failures) != 0)
            create_failures++;
        else
            later_failures += failures;
        assert_int_equal(c.live_blocks, 0); /* whatever failed, nothing leaked */
        assert_int_equal(c.live_bytes, 0);
    }
    print_message("oom: create refused %ld times, later calls reported %ld ENOMEM\n",
                  create_failures, later_failures);
    assert_true(create_failures > 0);
    assert_true(later_failures > 0);
}

/* A one-way flow across threads: producer on thread 0, consumer on thread 1, in credit windows. */
enum { FLOW_GO = 20, FLOW_ITEM = 21, FLOW_CREDIT = 22, FLOW_WINDOW = 500 };

typedef struct flow {
    spool_id peer;
    long total;
    long sent;
    long received;
    long order_errors;
} flow;

static void flow_producer(spool_ctx *ctx, void *state, const spool_message *msg) {
    flow *f = state;
    spool_runtime *rt = spool_ctx_runtime(ctx);
    (void)msg; /* FLOW_GO or FLOW_CREDIT: send the next window */
    for (int i = 0; i < FLOW_WINDOW && f->sent < f->total; i++, f->sent++)
        assert_int_equal(spool_send(rt, f->peer, FLOW_ITEM, &f->sent, sizeof f->sent), 0);
    if (f->sent == f->total)
        spool_actor_stop(rt, spool_self(ctx), 0);
}

static void flow_consumer(spool_ctx *ctx, void *state, const spool_message *msg) {
    flow *f = state;
    long seq;
    memcpy(&seq, msg->data, sizeof seq);
    if (seq != f->received)
        f->order_errors++;
    f->received++;
    if (f->received % FLOW_WINDOW == 0 && f->received < f->total)
        spool_send(spool_ctx_runtime(ctx), f->peer, FLOW_CREDIT, NULL, 0);
    if (f->received == f->total)
        spool_actor_stop(spool_ctx_runtime(ctx), spool_self(ctx), 0);
}

static const spool_behavior producer_behavior = {"producer", flow_producer, NULL};
static const spool_behavior consumer_behavior = {"consumer", flow_consumer, NULL};

static void one_way_flow_recycles_message_blocks_instead_of_allocating(void **state) {
    (void)state;
    counting c = {0, 0, 0, 0, 0};
    spool_allocator allocator = {counting_alloc, counting_free, &c};
    spool_runtime *rt = runtime_with(2, &allocator);
    long total = support_stress(200000);
    flow producer = {0, total, 0, 0, 0}, consumer = {0, total, 0, 0, 0};
    spool_spawn_opts opts = spool_spawn_opts_default();
    spool_id pid, cid;
    opts.thread = 0;
    assert_int_equal(spool_spawn(rt, &producer_behavior, &producer, &opts, &pid), 0);
    opts.thread = 1;
    assert_int_equal(spool_spawn(rt, &consumer_behavior, &consumer, &opts, &cid), 0);
    producer.peer = cid;
    consumer.peer = pid;
    assert_int_equal(spool_runtime_start(rt), 0);
    long calls_before = c.calls;
    assert_int_equal(spool_send(rt, pid, FLOW_GO, NULL, 0), 0);
    assert_int_equal(spool_runtime_wait(rt, 60000), 0);
    long calls = c.calls - calls_before;
    print_message("flow: %ld messages across threads, %ld allocator calls\n", total, calls);
    assert_int_equal(consumer.received, total);
    assert_int_equal(consumer.order_errors, 0);
    /* Without blocks going home, every message would be one allocation on the producer's thread. */
    assert_true(calls < total / 20);
    support_finish(&rt, NO_DEAD_LETTERS);
    assert_int_equal(c.live_blocks, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(idle_runtime_burns_no_cpu_and_wakes_on_the_first_message),
        cmocka_unit_test(scheduler_threads_are_named_spool_n),
        cmocka_unit_test(graceful_stop_handles_everything_accepted_and_counts_the_rest),
        cmocka_unit_test(stop_at_deadline_counts_every_leftover_as_shutdown),
        cmocka_unit_test(lifecycle_misuse_returns_errors),
        cmocka_unit_test(every_byte_goes_through_the_allocator_and_comes_back),
        cmocka_unit_test(every_out_of_memory_path_returns_enomem_and_leaks_nothing),
        cmocka_unit_test(one_way_flow_recycles_message_blocks_instead_of_allocating),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
