/*
 * module_call.c - pinned-module calls from C: a "module" actor on thread 0 (it owns a counter, as a
 * C library's state would be owned) answers requests from CALLERS actors on thread 1, each keeping
 * IN_FLIGHT spool_call()s outstanding and issuing the next one from the previous one's
 * continuation. value = calls answered per second (call + reply), in M calls/s; every reply is
 * checked against the module's count. Args: [CALLS per caller] [CALLERS] [IN_FLIGHT] [unpinned]
 */
#define BENCH_NAME "module_call"
#include "bench.h"

#define DEFAULT_CALLS 200000L
#define DEFAULT_CALLERS 4L
#define DEFAULT_IN_FLIGHT 8L
#define CPUS "0,1"
#define TIMEOUT_MS 120000u

enum { MSG_GO = 1, MSG_ADD = 2 };

typedef struct module_state {
    uint64_t total; /* the "library's" state: touched only on thread 0 */
} module_state;

typedef struct caller_state {
    spool_id module;
    long calls, in_flight, sent, answered, errors;
    uint64_t last_total;
    uint64_t t0, t1;
} caller_state;

static void module_handle(spool_ctx *ctx, void *state, const spool_message *msg) {
    module_state *m = state;
    if (msg->type != MSG_ADD || !msg->request_id)
        return;
    m->total++;
    bench_check(spool_reply(spool_ctx_runtime(ctx), msg, 0, &m->total, sizeof m->total), "reply");
}

static void call_next(spool_ctx *ctx, caller_state *c);

static void on_reply(spool_ctx *ctx, void *state, int status, const spool_message *reply,
                     void *arg) {
    caller_state *c = state;
    (void)arg;
    if (status != 0 || reply->size != sizeof(uint64_t)) {
        c->errors++;
    } else {
        uint64_t total;
        memcpy(&total, reply->data, sizeof total);
        if (total <=
            c->last_total) /* the module's count only grows, and our replies come in order */
            c->errors++;
        c->last_total = total;
    }
    if (++c->answered == c->calls) {
        c->t1 = bench_now_ns();
        spool_actor_stop(spool_ctx_runtime(ctx), spool_self(ctx), 0);
        return;
    }
    call_next(ctx, c);
}

static void call_next(spool_ctx *ctx, caller_state *c) {
    if (c->sent == c->calls)
        return;
    c->sent++;
    bench_check(spool_call(ctx, c->module, MSG_ADD, NULL, 0, 0, on_reply, NULL), "call");
}

static void caller_handle(spool_ctx *ctx, void *state, const spool_message *msg) {
    caller_state *c = state;
    if (msg->type != MSG_GO)
        return;
    c->t0 = bench_now_ns();
    for (long i = 0; i < c->in_flight && i < c->calls; i++)
        call_next(ctx, c);
}

static const spool_behavior module_behavior = {"module", module_handle, NULL};
static const spool_behavior caller_behavior = {"caller", caller_handle, NULL};

int main(int argc, char **argv) {
    long numbers[3] = {DEFAULT_CALLS, DEFAULT_CALLERS, DEFAULT_IN_FLIGHT};
    int pinned;
    if (bench_parse(argc, argv, numbers, 3, NULL, NULL, &pinned, "[CALLS] [CALLERS] [IN_FLIGHT]"))
        return 2;
    long calls = numbers[0], callers = numbers[1], in_flight = numbers[2];

    spool_runtime *rt = bench_runtime(2, pinned ? CPUS : NULL);
    static module_state module;
    spool_id module_id;
    module_id = bench_spawn_on(rt, &module_behavior, &module, 0);
    caller_state *c = calloc((size_t)callers, sizeof *c);
    spool_id *ids = calloc((size_t)callers, sizeof *ids);
    if (!c || !ids)
        return 1;
    for (long i = 0; i < callers; i++) {
        c[i].module = module_id;
        c[i].calls = calls;
        c[i].in_flight = in_flight;
        ids[i] = bench_spawn_on(rt, &caller_behavior, &c[i], 1);
    }
    bench_check(spool_runtime_start(rt), "start");
    for (long i = 0; i < callers; i++)
        bench_check(spool_send(rt, ids[i], MSG_GO, NULL, 0), "send go");
    /* Wait for the callers; then stop the module and wait for it too. */
    for (long i = 0; i < callers; i++) {
        int thread;
        while (spool_actor_thread(rt, ids[i], &thread) == 0) {
            struct timespec pause = {0, 1000000};
            nanosleep(&pause, NULL);
        }
    }
    bench_check(spool_actor_stop(rt, module_id, 0), "stop module");
    bench_check(spool_runtime_wait(rt, TIMEOUT_MS), "wait");
    spool_runtime_destroy(&rt); /* joins the threads: their writes are visible from here */

    uint64_t first = UINT64_MAX, last = 0;
    long errors = 0;
    for (long i = 0; i < callers; i++) {
        errors += c[i].errors + (c[i].answered != calls);
        first = c[i].t0 < first ? c[i].t0 : first;
        last = c[i].t1 > last ? c[i].t1 : last;
    }
    uint64_t total = (uint64_t)(calls * callers);
    if (errors || module.total != total) {
        fprintf(stderr, "module_call: %ld errors; the module counted %llu of %llu calls\n", errors,
                (unsigned long long)module.total, (unsigned long long)total);
        return 1;
    }
    fprintf(stderr,
            "module_call: %ld callers on thread 1 x %ld calls, %ld in flight each, module "
            "on thread 0, CPUs %s\n",
            callers, calls, in_flight, pinned ? CPUS : "unpinned");
    printf("{\"name\":\"module_call%s\",\"unit\":\"M calls/s\",\"value\":%.3f,\"calls\":%llu,"
           "\"callers\":%ld,\"pinned\":%s}\n",
           bench_suffix(), (double)total / ((double)(last - first) / 1e9) / 1e6,
           (unsigned long long)total, callers, pinned ? "true" : "false");
    free(c);
    free(ids);
    return 0;
}
