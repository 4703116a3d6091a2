/*
 * demo_target.c - something for `spool stats` and `spool top` to look at: a runtime of two threads
 * with an admin endpoint and four named actors that pass messages at a steady rate for a while.
 *
 *   producer (thread 0)  every 20 ms a burst of 10 messages to each worker (500 msgs/s each)
 *   worker1  (thread 0)  ~100 us of work per message, then forwards it to sink
 *   worker2  (thread 1)  the same, sharing its thread with sink
 *   sink     (thread 1)  handles at most 800 msgs/s (it sleeps between messages) of the 1000/s it
 *                        gets, so its mailbox builds a backlog of ~200 messages more every second
 *
 *   spool_demo_target ENDPOINT SECONDS
 *
 * Prints one line when the endpoint is up, stops after SECONDS (or on SIGINT/SIGTERM).
 */
#include <spool.h>
#include <spool_admin.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { MSG_TICK = 1, MSG_WORK = 2 };
enum { TICK_MS = 20, BURST = 10, WORK_NS = 100000, SINK_PER_SECOND = 800 };

typedef struct producer_state {
    spool_id workers[2];
    uint64_t sent;
} producer_state;

typedef struct worker_state {
    spool_id sink;
} worker_state;

typedef struct sink_state {
    struct timespec next; /* when it may take the next message */
    uint64_t handled;
} sink_state;

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void producer_handle(spool_ctx *ctx, void *state, const spool_message *message) {
    producer_state *p = state;
    spool_runtime *rt = spool_ctx_runtime(ctx);
    if (message->type != MSG_TICK)
        return;
    /* Each worker's burst in one run: histograms sample every Nth message a thread sends, and
       alternating w1, w2, w1, ... with an even N would never sample worker1's messages. */
    for (int w = 0; w < 2; w++)
        for (int i = 0; i < BURST; i++) {
            uint64_t n = p->sent++;
            spool_send(rt, p->workers[w], MSG_WORK, &n, sizeof n);
        }
    spool_send_after(rt, spool_self(ctx), TICK_MS, MSG_TICK, NULL, 0, NULL);
}

static void worker_handle(spool_ctx *ctx, void *state, const spool_message *message) {
    worker_state *w = state;
    uint64_t until = now_ns() + WORK_NS;
    while (now_ns() < until) /* stands for real work */
        ;
    spool_send(spool_ctx_runtime(ctx), w->sink, MSG_WORK, message->data, message->size);
}

static void sink_handle(spool_ctx *ctx, void *state, const spool_message *message) {
    (void)ctx;
    (void)message;
    sink_state *s = state;
    /* A slow consumer: one message per 1/SINK_PER_SECOND s, kept by the clock, not by the work. */
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (s->next.tv_sec < now.tv_sec ||
        (s->next.tv_sec == now.tv_sec && s->next.tv_nsec < now.tv_nsec))
        s->next = now;
    s->next.tv_nsec += 1000000000L / SINK_PER_SECOND;
    if (s->next.tv_nsec >= 1000000000L) {
        s->next.tv_sec++;
        s->next.tv_nsec -= 1000000000L;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &s->next, NULL) == EINTR)
        ;
    s->handled++;
}

static const spool_behavior producer_behavior = {"producer", producer_handle, NULL};
static const spool_behavior worker_behavior = {"worker", worker_handle, NULL};
static const spool_behavior sink_behavior = {"sink", sink_handle, NULL};

static volatile sig_atomic_t stop_requested;

static void on_signal(int signal_number) {
    (void)signal_number;
    stop_requested = 1;
}

static int spawn(spool_runtime *rt, const spool_behavior *behavior, void *state, const char *name,
                 int thread, spool_id *out) {
    spool_spawn_opts opts = spool_spawn_opts_default();
    opts.name = name;
    opts.thread = thread;
    int rc = spool_spawn(rt, behavior, state, &opts, out);
    if (rc != 0)
        fprintf(stderr, "spool_demo_target: spawning %s: %s\n", name, spool_strerror(rc));
    return rc;
}

int main(int argc, char **argv) {
    /* spool_demo_target ENDPOINT SECONDS | --admin ENDPOINT SECONDS | SECONDS (SPOOL_ADMIN) */
    const char *endpoint = NULL;
    const char *duration = NULL;
    if (argc == 4 && strcmp(argv[1], "--admin") == 0) {
        endpoint = argv[2];
        duration = argv[3];
    } else if (argc == 3) {
        endpoint = argv[1];
        duration = argv[2];
    } else if (argc == 2) {
        duration = argv[1];
    }
    double seconds = duration ? atof(duration) : 0;
    if (seconds <= 0) {
        fprintf(stderr,
                "usage: %s [--admin] ENDPOINT SECONDS\n       %s SECONDS   (endpoint from "
                "SPOOL_ADMIN)\n",
                argv[0], argv[0]);
        return 2;
    }
    struct sigaction action = {0};
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);

    spool_config config;
    spool_config_init(&config);
    config.threads = 2;
    config.metrics = 1;
    config.metrics_sample = 4; /* waits of 1 message in 4: enough for short plot intervals */
    config.admin = endpoint;   /* NULL: SPOOL_ADMIN or the config file's [runtime] admin */
    char error[256] = "";
    config.error = error;
    config.error_size = sizeof error;
    spool_runtime *rt = NULL;
    int rc = spool_runtime_create(&config, &rt);
    if (rc != 0) {
        fprintf(stderr, "spool_demo_target: %s: %s\n", spool_strerror(rc), error);
        return 1;
    }
    spool_admin *admin = NULL;
    endpoint = spool_runtime_admin(rt);
    rc = spool_admin_start(rt, endpoint, &admin);
    if (rc != 0) {
        fprintf(stderr, "spool_demo_target: admin endpoint '%s': %s\n", endpoint,
                spool_strerror(rc));
        spool_runtime_destroy(&rt);
        return 1;
    }

    static producer_state producer;
    static worker_state workers[2];
    static sink_state sink;
    spool_id producer_id, sink_id;
    if (spawn(rt, &sink_behavior, &sink, "sink", 1, &sink_id) != 0)
        goto done;
    workers[0].sink = workers[1].sink = sink_id;
    if (spawn(rt, &worker_behavior, &workers[0], "worker1", 0, &producer.workers[0]) != 0 ||
        spawn(rt, &worker_behavior, &workers[1], "worker2", 1, &producer.workers[1]) != 0 ||
        spawn(rt, &producer_behavior, &producer, "producer", 0, &producer_id) != 0)
        goto done;
    rc = spool_runtime_start(rt);
    if (rc != 0) {
        fprintf(stderr, "spool_demo_target: start: %s\n", spool_strerror(rc));
        goto done;
    }
    spool_send(rt, producer_id, MSG_TICK, NULL, 0);
    printf("spool_demo_target: serving %s for %g s\n", endpoint, seconds);
    fflush(stdout);

    uint64_t end = now_ns() + (uint64_t)(seconds * 1e9);
    while (!stop_requested && now_ns() < end) {
        struct timespec tick = {0, 50 * 1000000L};
        nanosleep(&tick, NULL);
    }
done:
    spool_admin_stop(&admin);
    spool_runtime_stop(rt, 0);
    spool_runtime_destroy(&rt);
    return rc == 0 ? 0 : 1;
}
