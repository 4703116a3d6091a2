/*
 * unsafe_module.c - a C library with global state and no locks, made safe by spool.
 *
 * The top of this file is a tiny counter store written like an old C extension: a global table,
 * read-modify-write without locks, never meant to be entered by two threads. Its entry points carry
 * a checker that notices when that happens anyway: two calls inside at the same time, or a call
 * from another thread than the first caller.
 *
 * spool wraps the library in one actor, "unsafe_lib", pinned to thread 0: every call is a message
 * handled there, one after another. Two workers on each scheduler thread call it with spool_call
 * (no thread blocks: each reply's continuation sends the next call, 4 in flight per worker) and do
 * work of their own in parallel. A "tally" actor collects the workers' results; main waits for it
 * with spool_call_wait, asks the module for the counters and the checker's findings, stops the
 * module and waits for the runtime to empty.
 *
 *   ./unsafe_module [CALLS_PER_WORKER] [--unsafe]
 *
 * --unsafe first runs the same workload without spool (two plain pthreads calling the library
 * directly) to show the problem spool solves. Exit status: 0 when the spool run is clean (the
 * --unsafe demonstration does not count), 1 otherwise.
 */
#define _POSIX_C_SOURCE 200809L
#include <spool.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ============================================================================================== */
/* The "library": global state, no locks                                                          */
/* ============================================================================================== */

#define LIB_SLOTS 16
#define LIB_KEY_MAX 32

static char lib_keys[LIB_SLOTS][LIB_KEY_MAX]; /* "" = free slot */
static long lib_counters[LIB_SLOTS];

/* The checker: how the library notices that it is used from two threads. */
static int lib_inside;             /* calls inside right now */
static int lib_first_state;        /* 0: nobody entered yet, 1: being recorded, 2: recorded */
static pthread_t lib_first_thread; /* the thread that entered first (written once, see above) */
static long lib_concurrent;        /* entries while another call was inside */
static long lib_foreign;           /* calls from another thread than the first caller */
static char lib_seen_lock;         /* guards the two below */
static pthread_t lib_seen[8];
static int lib_seen_count;

typedef struct lib_check {
    long concurrent; /* concurrent entries detected */
    long foreign;    /* calls from a second thread */
    int threads;     /* distinct threads that entered */
    int entered;     /* non-zero once somebody entered */
    pthread_t first; /* valid when entered */
} lib_check;

/* Loud, but only the first of each kind: the counters keep the score. */
static void lib_violation(long count, const char *fn, const char *what) {
    if (count == 0)
        fprintf(stderr, "unsafe_lib: VIOLATION: %s() %s (further ones: counted, not printed)\n", fn,
                what);
}

static void lib_note_thread(pthread_t self) {
    while (__atomic_test_and_set(&lib_seen_lock, __ATOMIC_ACQUIRE))
        ;
    int known = 0;
    for (int i = 0; i < lib_seen_count && i < 8; i++)
        known |= pthread_equal(lib_seen[i], self) != 0;
    if (!known) {
        if (lib_seen_count < 8)
            lib_seen[lib_seen_count] = self;
        lib_seen_count++;
    }
    __atomic_clear(&lib_seen_lock, __ATOMIC_RELEASE);
}

/* Every entry point starts with this: an assertion that reports instead of aborting. */
static void lib_enter(const char *fn) {
    if (__atomic_fetch_add(&lib_inside, 1, __ATOMIC_ACQ_REL) != 0)
        lib_violation(__atomic_fetch_add(&lib_concurrent, 1, __ATOMIC_RELAXED), fn,
                      "entered while another call was still inside");
    pthread_t self = pthread_self();
    int expected = 0;
    if (__atomic_compare_exchange_n(&lib_first_state, &expected, 1, 0, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE)) {
        lib_first_thread = self;
        __atomic_store_n(&lib_first_state, 2, __ATOMIC_RELEASE);
        lib_note_thread(self);
        return;
    }
    while (__atomic_load_n(&lib_first_state, __ATOMIC_ACQUIRE) != 2)
        ; /* the first caller is recording itself right now */
    if (!pthread_equal(lib_first_thread, self)) {
        lib_note_thread(self);
        lib_violation(__atomic_fetch_add(&lib_foreign, 1, __ATOMIC_RELAXED), fn,
                      "called from a second thread");
    }
}

static void lib_leave(void) { __atomic_fetch_sub(&lib_inside, 1, __ATOMIC_RELEASE); }

/* A little work between reading and writing back a counter: the window where updates get lost. */
static void lib_pause(void) {
    for (int i = 0; i < 1000; i++)
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
}

static int lib_slot(const char *key, int insert) {
    unsigned h = 5381;
    for (const char *p = key; *p; p++)
        h = h * 33u + (unsigned char)*p;
    for (int i = 0; i < LIB_SLOTS; i++) {
        int slot = (int)((h + (unsigned)i) % LIB_SLOTS);
        if (strcmp(lib_keys[slot], key) == 0)
            return slot;
        if (lib_keys[slot][0] == '\0') {
            if (!insert)
                return -1;
            size_t n = strlen(key) < LIB_KEY_MAX - 1 ? strlen(key) : LIB_KEY_MAX - 1;
            memcpy(lib_keys[slot], key, n);
            lib_keys[slot][n] = '\0';
            return slot;
        }
    }
    return -1;
}

/* Adds n to the counter `key` (created on first use) and returns its new value; -1 if full. */
static long lib_add(const char *key, long n) {
    lib_enter("lib_add");
    long value = -1;
    int slot = lib_slot(key, 1);
    if (slot >= 0) {
        value = lib_counters[slot];
        lib_pause();
        value += n;
        lib_counters[slot] = value;
    }
    lib_leave();
    return value;
}

/* The counter `key`, 0 if it does not exist. */
static long lib_get(const char *key) {
    lib_enter("lib_get");
    int slot = lib_slot(key, 0);
    long value = slot >= 0 ? lib_counters[slot] : 0;
    lib_leave();
    return value;
}

/* Forgets everything, the checker's findings too. Only when nobody uses the library. */
static void lib_reset(void) {
    memset(lib_keys, 0, sizeof lib_keys);
    memset(lib_counters, 0, sizeof lib_counters);
    __atomic_store_n(&lib_first_state, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&lib_concurrent, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&lib_foreign, 0, __ATOMIC_RELAXED);
    lib_seen_count = 0;
}

/* What the checker found (not an entry point: it is only atomics and the guarded table). */
static void lib_check_get(lib_check *out) {
    memset(out, 0, sizeof *out);
    out->concurrent = __atomic_load_n(&lib_concurrent, __ATOMIC_RELAXED);
    out->foreign = __atomic_load_n(&lib_foreign, __ATOMIC_RELAXED);
    out->entered = __atomic_load_n(&lib_first_state, __ATOMIC_ACQUIRE) == 2;
    if (out->entered)
        out->first = lib_first_thread;
    while (__atomic_test_and_set(&lib_seen_lock, __ATOMIC_ACQUIRE))
        ;
    out->threads = lib_seen_count;
    __atomic_clear(&lib_seen_lock, __ATOMIC_RELEASE);
}

/* ============================================================================================== */
/* The demo                                                                                       */
/* ============================================================================================== */

#define THREADS 2
#define WORKERS_PER_THREAD 2
#define WORKERS (THREADS * WORKERS_PER_THREAD)
#define IN_FLIGHT 4

static const char *const keys[] = {"apples", "pears", "plums",  "figs",
                                   "limes",  "kiwis", "grapes", "dates"};
#define KEY_COUNT (sizeof keys / sizeof keys[0])

enum {
    MSG_START = 1, /* main -> worker */
    MSG_ADD,       /* request to the module: lib_request; reply MSG_VALUE */
    MSG_GET,       /* request to the module: lib_request; reply MSG_VALUE */
    MSG_CHECK,     /* request to the module; reply MSG_CHECKED (module_check) */
    MSG_DONE,      /* worker -> tally: worker_done */
    MSG_WAIT,      /* request from main to the tally; reply MSG_TOTALS (tally_totals) */
    MSG_VALUE,
    MSG_CHECKED,
    MSG_TOTALS,
};

typedef struct lib_request {
    char key[LIB_KEY_MAX];
    long amount;
} lib_request;

typedef struct module_check {
    lib_check check;
    int home_thread;   /* the module's thread in the runtime */
    int first_is_home; /* the library's first caller is the module's thread */
} module_check;

typedef struct worker_done {
    int thread;
    long answered;
    long failed;
    uint64_t checksum;
} worker_done;

typedef struct tally_totals {
    long calls[THREADS]; /* answered calls, by worker thread */
    long failed;
    uint64_t checksum;
} tally_totals;

typedef struct worker_state {
    spool_id module;
    spool_id tally;
    int index;
    long calls;
    long sent;
    long answered;
    long failed;
    int in_flight;
    uint64_t checksum;
} worker_state;

typedef struct tally_state {
    int done;
    tally_totals totals;
    int waiting;          /* main's MSG_WAIT has arrived */
    spool_message waiter; /* a copy of it (from and request_id) to answer later */
} tally_state;

static long errors; /* spool errors seen inside handlers (atomic) */

static void handler_error(const char *what, int rc) {
    fprintf(stderr, "unsafe_module: %s: %s\n", what, spool_strerror(rc));
    __atomic_fetch_add(&errors, 1, __ATOMIC_RELAXED);
}

/* A worker's own work, outside the module: it runs in parallel on every thread. */
static uint64_t mix(uint64_t h, long value) {
    h ^= (uint64_t)value + 0x9e3779b97f4a7c15u;
    for (int i = 0; i < 16; i++) {
        h ^= h << 13;
        h ^= h >> 7;
        h ^= h << 17;
    }
    return h;
}

/* The key of a worker's i-th call: a scramble, so that two workers often hit the same counter. */
static const char *key_of(int worker, long i) {
    uint64_t h = ((uint64_t)i + 1) * 0x9e3779b97f4a7c15u + (uint64_t)worker * 0xbf58476d1ce4e5b9u;
    return keys[(h >> 32) % KEY_COUNT];
}

static double seconds_since(const struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* --- the module actor: the only code that calls the library ------------------------------------
 */

static void module_handle(spool_ctx *ctx, void *state, const spool_message *msg) {
    (void)state;
    spool_runtime *rt = spool_ctx_runtime(ctx);
    int rc;
    if (msg->type == MSG_ADD || msg->type == MSG_GET) {
        lib_request req;
        if (msg->size != sizeof req) {
            handler_error("unsafe_lib: malformed request", SPOOL_EINVAL);
            return;
        }
        memcpy(&req, msg->data, sizeof req);
        req.key[LIB_KEY_MAX - 1] = '\0';
        long value = msg->type == MSG_ADD ? lib_add(req.key, req.amount) : lib_get(req.key);
        rc = spool_reply(rt, msg, MSG_VALUE, &value, sizeof value);
    } else if (msg->type == MSG_CHECK) {
        module_check mc;
        lib_check_get(&mc.check);
        mc.home_thread = spool_ctx_thread(ctx);
        mc.first_is_home = mc.check.entered && pthread_equal(mc.check.first, pthread_self());
        rc = spool_reply(rt, msg, MSG_CHECKED, &mc, sizeof mc);
    } else {
        return;
    }
    if (rc != 0)
        handler_error("unsafe_lib: spool_reply", rc);
}

/* --- workers -----------------------------------------------------------------------------------
 */

static void worker_reply(spool_ctx *ctx, void *state, int status, const spool_message *reply,
                         void *arg);

/* Keeps IN_FLIGHT calls out; when the last one is answered, reports to the tally and stops. */
static void worker_pump(spool_ctx *ctx, worker_state *w) {
    spool_runtime *rt = spool_ctx_runtime(ctx);
    while (w->in_flight < IN_FLIGHT && w->sent < w->calls) {
        lib_request req;
        memset(&req, 0, sizeof req);
        strcpy(req.key, key_of(w->index, w->sent));
        req.amount = 1;
        w->sent++;
        int rc = spool_call(ctx, w->module, MSG_ADD, &req, sizeof req, 0, worker_reply, NULL);
        if (rc == 0) {
            w->in_flight++;
        } else {
            w->failed++;
            handler_error("worker: spool_call", rc);
        }
    }
    if (w->in_flight == 0 && w->sent == w->calls) {
        worker_done done = {spool_ctx_thread(ctx), w->answered, w->failed, w->checksum};
        int rc = spool_send(rt, w->tally, MSG_DONE, &done, sizeof done);
        if (rc != 0)
            handler_error("worker: spool_send", rc);
        rc = spool_actor_stop(rt, spool_self(ctx), SPOOL_EXIT_NORMAL);
        if (rc != 0)
            handler_error("worker: spool_actor_stop", rc);
    }
}

static void worker_reply(spool_ctx *ctx, void *state, int status, const spool_message *reply,
                         void *arg) {
    (void)arg;
    worker_state *w = state;
    w->in_flight--;
    long value;
    if (status == 0 && reply->size == sizeof value) {
        memcpy(&value, reply->data, sizeof value);
        w->answered++;
        w->checksum = mix(w->checksum, value);
    } else {
        w->failed++;
        handler_error("worker: call to unsafe_lib", status != 0 ? status : SPOOL_EINVAL);
    }
    worker_pump(ctx, w);
}

static void worker_handle(spool_ctx *ctx, void *state, const spool_message *msg) {
    if (msg->type == MSG_START)
        worker_pump(ctx, state);
}

/* --- tally: collects the workers' results, answers main when all are in -------------------------
 */

static void tally_maybe_answer(spool_ctx *ctx, tally_state *t) {
    if (!t->waiting || t->done < WORKERS)
        return;
    spool_runtime *rt = spool_ctx_runtime(ctx);
    int rc = spool_reply(rt, &t->waiter, MSG_TOTALS, &t->totals, sizeof t->totals);
    if (rc != 0)
        handler_error("tally: spool_reply", rc);
    rc = spool_actor_stop(rt, spool_self(ctx), SPOOL_EXIT_NORMAL);
    if (rc != 0)
        handler_error("tally: spool_actor_stop", rc);
}

static void tally_handle(spool_ctx *ctx, void *state, const spool_message *msg) {
    tally_state *t = state;
    if (msg->type == MSG_DONE && msg->size == sizeof(worker_done)) {
        worker_done d;
        memcpy(&d, msg->data, sizeof d);
        if (d.thread >= 0 && d.thread < THREADS)
            t->totals.calls[d.thread] += d.answered;
        t->totals.failed += d.failed;
        t->totals.checksum ^= d.checksum;
        t->done++;
    } else if (msg->type == MSG_WAIT && msg->request_id != 0) {
        t->waiter = *msg;
        t->waiter.data = NULL;
        t->waiter.size = 0;
        t->waiting = 1;
    }
    tally_maybe_answer(ctx, t);
}

static const spool_behavior module_behavior = {"unsafe_lib", module_handle, NULL};
static const spool_behavior worker_behavior = {"worker", worker_handle, NULL};
static const spool_behavior tally_behavior = {"tally", tally_handle, NULL};

/* --- without spool: two plain threads call the library directly ---------------------------------
 */

typedef struct plain_thread {
    pthread_t thread;
    int index;
    long calls;
    uint64_t checksum;
} plain_thread;

static pthread_barrier_t plain_start;

static void *plain_main(void *arg) {
    plain_thread *p = arg;
    pthread_barrier_wait(&plain_start); /* start together */
    for (long i = 0; i < p->calls; i++)
        p->checksum = mix(p->checksum, lib_add(key_of(p->index, i), 1));
    return NULL;
}

static int run_without_spool(long calls_per_worker) {
    long per_thread = calls_per_worker * WORKERS_PER_THREAD;
    long expected = per_thread * THREADS;
    printf("without spool: %d plain pthreads call the library directly, %ld calls each\n", THREADS,
           per_thread);
    fflush(stdout);
    plain_thread threads[THREADS];
    int err = pthread_barrier_init(&plain_start, NULL, THREADS);
    for (int i = 0; i < THREADS && err == 0; i++) {
        threads[i] = (plain_thread){.index = i, .calls = per_thread};
        err = pthread_create(&threads[i].thread, NULL, plain_main, &threads[i]);
    }
    if (err != 0) { /* the threads already made wait at the barrier forever: just exit */
        fprintf(stderr, "unsafe_module: cannot start threads: %s\n", strerror(err));
        return -1;
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i].thread, NULL);
    pthread_barrier_destroy(&plain_start);
    lib_check check;
    lib_check_get(&check); /* before main itself enters the library below */
    long counted = 0;
    for (size_t k = 0; k < KEY_COUNT; k++)
        counted += lib_get(keys[k]);
    fflush(stderr);
    printf("  the library counted %ld of %ld updates: %ld lost\n", counted, expected,
           expected - counted);
    printf("  library entered by %d threads, concurrent entries detected: %ld, calls from a second "
           "thread: %ld\n\n",
           check.threads, check.concurrent, check.foreign);
    lib_reset();
    return 0;
}

/* --- main --------------------------------------------------------------------------------------
 */

static int fail(const char *what, int rc) {
    fprintf(stderr, "unsafe_module: %s: %s\n", what, spool_strerror(rc));
    return 1;
}

/* spool_call_wait to `to`; copies a reply of exactly `size` bytes of type `type` into `out`. */
static int call_wait(spool_runtime *rt, spool_id to, uint32_t msg_type, const void *data,
                     size_t size, uint32_t type, void *out, size_t out_size) {
    spool_response *response = NULL;
    int rc = spool_call_wait(rt, to, msg_type, data, size, 60000, &response);
    if (rc != 0)
        return rc;
    const spool_message *reply = spool_response_message(response);
    if (reply->type == type && reply->size == out_size)
        memcpy(out, reply->data, out_size);
    else
        rc = SPOOL_EINVAL;
    spool_response_destroy(&response);
    return rc;
}

static int run_with_spool(long calls_per_worker) {
    spool_config config;
    spool_config_init(&config);
    config.threads = THREADS;
    char error[256] = "";
    config.error = error;
    config.error_size = sizeof error;
    spool_runtime *rt = NULL;
    int rc = spool_runtime_create(&config, &rt);
    if (rc != 0) {
        fprintf(stderr, "unsafe_module: spool_runtime_create: %s: %s\n", spool_strerror(rc), error);
        return 1;
    }
    if (spool_runtime_threads(rt) != THREADS) {
        fprintf(stderr, "unsafe_module: expected %d threads, got %d\n", THREADS,
                spool_runtime_threads(rt));
        spool_runtime_destroy(&rt);
        return 1;
    }

    /* The module: pinned to thread 0 under a name, so anybody can find it. */
    spool_spawn_opts opts = spool_spawn_opts_default();
    opts.thread = 0;
    opts.name = "unsafe_lib";
    spool_id module;
    if ((rc = spool_spawn(rt, &module_behavior, NULL, &opts, &module)) != 0)
        goto fail_spawn;

    static tally_state tally;
    spool_id tally_id;
    opts = spool_spawn_opts_default();
    opts.thread = THREADS - 1;
    opts.name = "tally";
    if ((rc = spool_spawn(rt, &tally_behavior, &tally, &opts, &tally_id)) != 0)
        goto fail_spawn;

    static worker_state workers[WORKERS];
    spool_id worker_ids[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        workers[i] = (worker_state){
            .module = module, .tally = tally_id, .index = i, .calls = calls_per_worker};
        opts = spool_spawn_opts_default();
        opts.thread = i % THREADS; /* two per thread, on every thread */
        if ((rc = spool_spawn(rt, &worker_behavior, &workers[i], &opts, &worker_ids[i])) != 0)
            goto fail_spawn;
    }

    const char *what = "spool_runtime_start";
    struct timespec started;
    clock_gettime(CLOCK_MONOTONIC, &started);
    if ((rc = spool_runtime_start(rt)) != 0)
        goto fail;
    what = "spool_send";
    for (int i = 0; i < WORKERS; i++)
        if ((rc = spool_send(rt, worker_ids[i], MSG_START, NULL, 0)) != 0)
            goto fail;

    /* Main is outside the runtime, so it may block: first until the workers are done... */
    tally_totals totals;
    what = "spool_call_wait(tally)";
    rc = call_wait(rt, tally_id, MSG_WAIT, NULL, 0, MSG_TOTALS, &totals, sizeof totals);
    if (rc != 0)
        goto fail;
    double secs = seconds_since(&started);

    /* ...then it asks the module for the counters and for what the checker saw. */
    long counted = 0;
    what = "spool_call_wait(unsafe_lib, get)";
    for (size_t k = 0; k < KEY_COUNT; k++) {
        lib_request req;
        memset(&req, 0, sizeof req);
        strcpy(req.key, keys[k]);
        long value;
        rc = call_wait(rt, module, MSG_GET, &req, sizeof req, MSG_VALUE, &value, sizeof value);
        if (rc != 0)
            goto fail;
        counted += value;
    }
    module_check mc;
    what = "spool_call_wait(unsafe_lib, check)";
    rc = call_wait(rt, module, MSG_CHECK, NULL, 0, MSG_CHECKED, &mc, sizeof mc);
    if (rc != 0)
        goto fail;

    /* Workers and tally stopped themselves; the module is the last one. */
    what = "spool_actor_stop";
    if ((rc = spool_actor_stop(rt, module, SPOOL_EXIT_NORMAL)) != 0)
        goto fail;
    what = "spool_runtime_wait";
    if ((rc = spool_runtime_wait(rt, 60000)) != 0)
        goto fail;
    spool_runtime_destroy(&rt);

    long calls = 0;
    for (int t = 0; t < THREADS; t++)
        calls += totals.calls[t];
    long expected = calls_per_worker * WORKERS;
    long handler_errors = __atomic_load_n(&errors, __ATOMIC_RELAXED);
    int ok = counted == expected && calls == expected && totals.failed == 0 &&
             handler_errors == 0 && mc.check.concurrent == 0 && mc.check.foreign == 0 &&
             mc.check.threads == 1 && mc.first_is_home;

    printf("unsafe_module: a C library with global state and no locks, pinned to thread %d as "
           "actor \"unsafe_lib\"\n",
           mc.home_thread);
    printf("  %d workers on %d threads made %ld calls in %.2f s; the library counted %ld "
           "(expected %ld)\n",
           WORKERS, THREADS, calls, secs, counted, expected);
    printf("  library entered by %d thread%s (%s thread %d of the runtime), concurrent entries "
           "detected: %ld\n",
           mc.check.threads, mc.check.threads == 1 ? "" : "s",
           mc.first_is_home ? "first and only:" : "first NOT the module's", mc.home_thread,
           mc.check.concurrent);
    printf("  per worker thread:");
    for (int t = 0; t < THREADS; t++)
        printf("%s thread %d: %ld calls", t ? "," : "", t, totals.calls[t]);
    printf("\n");
    if (ok)
        printf("  OK: the module was never entered by two threads, no update was lost\n");
    else
        printf("  FAILED: %ld calls failed, %ld spool errors, %ld calls from a second thread, "
               "%ld updates lost\n",
               totals.failed, handler_errors, mc.check.foreign, expected - counted);
    return ok ? 0 : 1;

fail_spawn:
    spool_runtime_destroy(&rt);
    return fail("spool_spawn", rc);
fail:
    spool_runtime_destroy(&rt);
    return fail(what, rc);
}

int main(int argc, char **argv) {
    long calls = 20000;
    int unsafe = 0;
    for (int i = 1; i < argc; i++) {
        char *end;
        if (strcmp(argv[i], "--unsafe") == 0) {
            unsafe = 1;
            continue;
        }
        calls = strtol(argv[i], &end, 10);
        if (end == argv[i] || *end != '\0' || calls <= 0) {
            fprintf(stderr, "usage: %s [CALLS_PER_WORKER] [--unsafe]\n", argv[0]);
            return 2;
        }
    }
    if (unsafe && run_without_spool(calls) != 0)
        return 1;
    return run_with_spool(calls);
}
