/*
 * test_request.c - request/reply through the public API: spool_call continuations (reply, timeout,
 * callee gone, deferred answer), blocking spool_call_wait from plain threads (reply, timeout, dead
 * callee, refusal in a handler, 4 callers at once), argument checks, and the exact dead letters.
 */
#include "tests/support.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

enum {
    T_START = 1,   /* caller: make the call */
    T_REQ,         /* a request */
    T_ANSWER,      /* the type of every reply */
    T_REPLY_NOW,   /* holder: answer the request kept earlier */
    T_DONE,        /* holder -> caller: the late answer went out before this */
    T_CHECK,       /* caller -> itself: everything queued before has run */
    T_STOP_SELF,   /* the receiver stops itself while handling it */
    T_BLOCK,       /* blocker: wait on the gate, then stop */
    T_VALIDATE,    /* validator: a plain message it tries to answer */
    T_WAIT_INSIDE, /* inside: call spool_call_wait from a handler */
};

#define WAIT_MS 5000u
#define ANSWER 4242

/* Failed checks on scheduler threads (cmocka's asserts only work on the test's own thread). */
static int handler_failures;

#define CHECK(cond) check_at((cond), #cond, __LINE__)

static void check_at(int ok, const char *what, int line) {
    if (ok)
        return;
    fprintf(stderr, "test_request.c:%d: handler check failed: %s\n", line, what);
    __atomic_add_fetch(&handler_failures, 1, __ATOMIC_RELAXED);
}

/* ---------------------------------------------------------------------------------------------- */
/* Helpers                                                                                        */
/* ---------------------------------------------------------------------------------------------- */

static spool_runtime *start_runtime(void) {
    spool_runtime *rt = support_runtime(2);
    assert_int_equal(spool_runtime_start(rt), 0);
    return rt;
}

/* Stops and destroys the runtime after checking the handlers' checks and every dead letter. */
static void finish(spool_runtime **rt, const uint64_t expected[SPOOL_DEAD_REASON_COUNT]) {
    assert_int_equal(__atomic_exchange_n(&handler_failures, 0, __ATOMIC_RELAXED), 0);
    support_finish(rt, expected);
}

static spool_id spawn_on(spool_runtime *rt, const spool_behavior *behavior, void *state,
                         int thread) {
    spool_spawn_opts opts = spool_spawn_opts_default();
    opts.thread = thread;
    spool_id id = SPOOL_ID_NONE;
    assert_int_equal(spool_spawn(rt, behavior, state, &opts, &id), 0);
    assert_true(id != SPOOL_ID_NONE);
    return id;
}

static void wait_all_ended(spool_runtime *rt) {
    assert_int_equal(spool_runtime_wait(rt, WAIT_MS), 0);
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void stop_self(spool_ctx *ctx) {
    CHECK(spool_actor_stop(spool_ctx_runtime(ctx), spool_self(ctx), 0) == 0);
}

/* An id that was valid once: its actor has ended (and no other actor is alive). */
static void stopper_handle(spool_ctx *ctx, void *state, const spool_message *message) {
    (void)state;
    (void)message;
    stop_self(ctx);
}
static const spool_behavior stopper_behavior = {"stopper", stopper_handle, NULL};

static spool_id dead_id(spool_runtime *rt) {
    spool_id id = spawn_on(rt, &stopper_behavior, NULL, 0);
    assert_int_equal(spool_send(rt, id, T_STOP_SELF, NULL, 0), 0);
    wait_all_ended(rt);
    int thread = -1;
    assert_int_equal(spool_actor_thread(rt, id, &thread), SPOOL_ENOENT);
    return id;
}

/* ---------------------------------------------------------------------------------------------- */
/* Actors                                                                                         */
/* ---------------------------------------------------------------------------------------------- */

/* Echo: answers every request with its own bytes. */
typedef struct echo_state {
    long requests;
    long bad_replies;
} echo_state;

static void echo_handle(spool_ctx *ctx, void *state, const spool_message *message) {
    echo_state *s = state;
    if (message->request_id == 0)
        return;
    int rc = spool_reply(spool_ctx_runtime(ctx), message, T_ANSWER, message->data, message->size);
    if (s) {
        s->requests++;
        if (rc != 0)
            s->bad_replies++;
    }
}
static const spool_behavior echo_behavior = {"echo", echo_handle, NULL};

/* Holder: keeps a copy of the request and answers it only on T_REPLY_NOW. */
typedef struct holder_state {
    spool_message kept;
    int have;
    int requests;
    int reply_rc;
    int notify_caller; /* send T_DONE to the caller after answering */
} holder_state;

static void holder_handle(spool_ctx *ctx, void *state, const spool_message *message) {
    holder_state *s = state;
    spool_runtime *rt = spool_ctx_runtime(ctx);
    switch (message->type) {
    case T_REQ:
        s->requests++;
        s->kept = *message;
        s->kept.data = NULL; /* the payload is gone once the handler returns */
        s->kept.size = 0;
        s->kept.type = 0;
        s->have = 1;
        break;
    case T_REPLY_NOW: {
        int answer = ANSWER;
        CHECK(s->have);
        s->reply_rc = spool_reply(rt, &s->kept, T_ANSWER, &answer, sizeof answer);
        if (s->notify_caller)
            CHECK(spool_send(rt, s->kept.from, T_DONE, NULL, 0) == 0);
        break;
    }
    case T_STOP_SELF:
        stop_self(ctx);
        break;
    default:
        break;
    }
}
static const spool_behavior holder_behavior = {"holder", holder_handle, NULL};

/*
 * Caller: on T_START calls `callee` once and records everything the continuation sees. On status 0
 * or SPOOL_ENOENT it finishes (stops the callee if asked, then itself); on SPOOL_ETIMEDOUT it asks
 * the callee to answer late and finishes on the T_DONE that follows that answer.
 */
typedef struct caller_state {
    spool_id callee;
    unsigned timeout_ms;
    int payload;
    int stop_callee_first; /* send T_STOP_SELF to the callee just before the call */
    int go_after;          /* send T_REPLY_NOW to the callee just after the call */
    int stop_callee_after; /* send T_STOP_SELF to the callee just after the call */
    int ask_late_reply;    /* on SPOOL_ETIMEDOUT, ask the callee to answer anyway */
    int stop_callee_at_end;

    int call_rc;
    int start_thread;
    pthread_t start_pthread;
    uint64_t called_ns;

    int conts;
    int status;
    int reply_null;
    uint32_t reply_type;
    size_t reply_size;
    int reply_value;
    spool_id reply_from;
    void *cont_state;
    void *cont_arg;
    int cont_thread;
    pthread_t cont_pthread;
    spool_id cont_self;
    uint64_t cont_ns;
    int done_messages;
} caller_state;

static void caller_finish(spool_ctx *ctx, caller_state *s) {
    if (s->stop_callee_at_end)
        CHECK(spool_actor_stop(spool_ctx_runtime(ctx), s->callee, 0) == 0);
    stop_self(ctx);
}

static void caller_continue(spool_ctx *ctx, void *state, int status, const spool_message *reply,
                            void *arg) {
    caller_state *s = state;
    s->conts++;
    s->status = status;
    s->cont_state = state;
    s->cont_arg = arg;
    s->cont_thread = spool_ctx_thread(ctx);
    s->cont_pthread = pthread_self();
    s->cont_self = spool_self(ctx);
    s->cont_ns = now_ns();
    s->reply_null = reply == NULL;
    if (reply) {
        s->reply_type = reply->type;
        s->reply_size = reply->size;
        s->reply_from = reply->from;
        if (reply->size == sizeof(int))
            memcpy(&s->reply_value, reply->data, sizeof(int));
    }
    if (status == SPOOL_ETIMEDOUT && s->ask_late_reply)
        CHECK(spool_send(spool_ctx_runtime(ctx), s->callee, T_REPLY_NOW, NULL, 0) == 0);
    else
        caller_finish(ctx, s);
}

static void caller_handle(spool_ctx *ctx, void *state, const spool_message *message) {
    caller_state *s = state;
    spool_runtime *rt = spool_ctx_runtime(ctx);
    switch (message->type) {
    case T_START:
        s->start_thread = spool_ctx_thread(ctx);
        s->start_pthread = pthread_self();
        if (s->stop_callee_first)
            CHECK(spool_send(rt, s->callee, T_STOP_SELF, NULL, 0) == 0);
        s->called_ns = now_ns();
        s->call_rc = spool_call(ctx, s->callee, T_REQ, &s->payload, sizeof s->payload,
                                s->timeout_ms, caller_continue, &s->payload);
        if (s->go_after)
            CHECK(spool_send(rt, s->callee, T_REPLY_NOW, NULL, 0) == 0);
        if (s->stop_callee_after)
            CHECK(spool_send(rt, s->callee, T_STOP_SELF, NULL, 0) == 0);
        if (s->call_rc != 0) /* anything the failed call queued runs before this */
            CHECK(spool_send(rt, spool_self(ctx), T_CHECK, NULL, 0) == 0);
        break;
    case T_CHECK:
        caller_finish(ctx, s);
        break;
    case T_DONE:
        s->done_messages++;
        caller_finish(ctx, s);
        break;
    default:
        break;
    }
}
static const spool_behavior caller_behavior = {"caller", caller_handle, NULL};

static caller_state caller_for(spool_id callee, int payload) {
    caller_state s;
    memset(&s, 0, sizeof s);
    s.callee = callee;
    s.payload = payload;
    s.call_rc = 1;
    s.start_thread = -1;
    s.cont_thread = -1;
    return s;
}

/* ---------------------------------------------------------------------------------------------- */
/* spool_call                                                                                     */
/* ---------------------------------------------------------------------------------------------- */

static void call_in_actor_gets_reply_through_continuation_with_status_0(void **state) {
    (void)state;
    spool_runtime *rt = start_runtime();
    echo_state echo = {0, 0};
    spool_id callee = spawn_on(rt, &echo_behavior, &echo, 1);
    caller_state s = caller_for(callee, 1234567);
    s.stop_callee_at_end = 1;
    spool_id caller = spawn_on(rt, &caller_behavior, &s, 0);

    assert_int_equal(spool_send(rt, caller, T_START, NULL, 0), 0);
    wait_all_ended(rt);

    assert_int_equal(s.call_rc, 0);
    assert_int_equal(s.conts, 1);
    assert_int_equal(s.status, 0);
    assert_false(s.reply_null);
    assert_int_equal(s.reply_type, T_ANSWER);
    assert_int_equal(s.reply_size, sizeof(int));
    assert_int_equal(s.reply_value, 1234567);
    assert_true(s.reply_from == callee);
    assert_ptr_equal(s.cont_arg, &s.payload);
    assert_int_equal(echo.requests, 1);
    assert_int_equal(echo.bad_replies, 0);
    finish(&rt, NO_DEAD_LETTERS);
}

static void continuation_runs_on_callers_home_thread_with_callers_state(void **state) {
    (void)state;
    spool_runtime *rt = start_runtime();
    spool_id callee = spawn_on(rt, &echo_behavior, NULL, 0);
    caller_state s = caller_for(callee, 7);
    s.stop_callee_at_end = 1;
    spool_id caller = spawn_on(rt, &caller_behavior, &s, 1);
    int spawned_on = -1;
    assert_int_equal(spool_actor_thread(rt, caller, &spawned_on), 0);
    assert_int_equal(spawned_on, 1);

    assert_int_equal(spool_send(rt, caller, T_START, NULL, 0), 0);
    wait_all_ended(rt);

    assert_int_equal(s.conts, 1);
    assert_int_equal(s.status, 0);
    assert_int_equal(s.start_thread, spawned_on);
    assert_int_equal(s.cont_thread, spawned_on);
    assert_true(pthread_equal(s.cont_pthread, s.start_pthread));
    assert_ptr_equal(s.cont_state, &s);
    assert_true(s.cont_self == caller);
    finish(&rt, NO_DEAD_LETTERS);
}

static void call_with_timeout_gets_etimedout_once_and_late_reply_is_one_dead_letter(void **state) {
    (void)state;
    spool_runtime *rt = start_runtime();
    holder_state holder;
    memset(&holder, 0, sizeof holder);
    holder.notify_caller = 1;
    spool_id callee = spawn_on(rt, &holder_behavior, &holder, 1);
    caller_state s = caller_for(callee, 5);
    s.timeout_ms = 50;
    s.ask_late_reply = 1;
    s.stop_callee_at_end = 1;
    spool_id caller = spawn_on(rt, &caller_behavior, &s, 0);

    assert_int_equal(spool_send(rt, caller, T_START, NULL, 0), 0);
    wait_all_ended(rt);

    assert_int_equal(s.call_rc, 0);
    assert_int_equal(holder.requests, 1);
    assert_int_equal(s.conts, 1); /* the late reply did not run it again */
    assert_int_equal(s.status, SPOOL_ETIMEDOUT);
    assert_true(s.reply_null);
    assert_true(s.cont_ns - s.called_ns >= 50u * 1000000u);
    assert_true(s.cont_ns - s.called_ns < 2000u * 1000000u);
    assert_int_equal(s.done_messages, 1); /* the late reply was handled before T_DONE */
    finish(&rt, DEAD([SPOOL_DEAD_LATE_REPLY] = 1));
}

static void call_to_stale_id_fails_with_enoent_and_continuation_never_runs(void **state) {
    (void)state;
    spool_runtime *rt = start_runtime();
    spool_id stale = dead_id(rt);
    caller_state s = caller_for(stale, 1);
    spool_id caller = spawn_on(rt, &caller_behavior, &s, 0); /* may reuse the stale id's slot */
    assert_true(caller != stale);

    assert_int_equal(spool_send(rt, caller, T_START, NULL, 0), 0);
    wait_all_ended(rt);

    assert_int_equal(s.call_rc, SPOOL_ENOENT);
    assert_int_equal(s.conts, 0);
    finish(&rt, DEAD([SPOOL_DEAD_NO_RECEIVER] = 1));
}

static void call_gets_enoent_when_callee_stops_with_request_queued(void **state) {
    (void)state;
    spool_runtime *rt = start_runtime();
    holder_state holder;
    memset(&holder, 0, sizeof holder);
    /* Both on thread 0: the callee cannot run before the caller's turn has queued T_STOP_SELF and
     * then the request behind it. */
    spool_id callee = spawn_on(rt, &holder_behavior, &holder, 0);
    caller_state s = caller_for(callee, 9);
    s.stop_callee_first = 1;
    spool_id caller = spawn_on(rt, &caller_behavior, &s, 0);

    assert_int_equal(spool_send(rt, caller, T_START, NULL, 0), 0);
    wait_all_ended(rt);

    assert_int_equal(s.call_rc, 0);
    assert_int_equal(holder.requests, 0);
    assert_int_equal(s.conts, 1);
    assert_int_equal(s.status, SPOOL_ENOENT);
    assert_true(s.reply_null);
    finish(&rt, DEAD([SPOOL_DEAD_RECEIVER_STOPPED] = 1));
}

static void call_gets_enoent_when_callee_ends_without_answering_a_handled_request(void **state) {
    (void)state;
    spool_runtime *rt = start_runtime();
    holder_state holder;
    memset(&holder, 0, sizeof holder);
    spool_id callee = spawn_on(rt, &holder_behavior, &holder, 1);
    caller_state s = caller_for(callee, 11);
    s.stop_callee_after = 1; /* the callee keeps the request, then ends without answering */
    s.timeout_ms = 1000;     /* only so that a broken runtime ends the test */
    spool_id caller = spawn_on(rt, &caller_behavior, &s, 0);

    assert_int_equal(spool_send(rt, caller, T_START, NULL, 0), 0);
    wait_all_ended(rt);

    assert_int_equal(s.call_rc, 0);
    assert_int_equal(holder.requests, 1);
    assert_int_equal(s.conts, 1);
    assert_true(s.reply_null);
    finish(&rt, NO_DEAD_LETTERS);
    /* A request the callee took and left unanswered is answered with an error when it ends. */
    assert_int_equal(s.status, SPOOL_ENOENT);
}

static void call_gets_enoent_when_callee_stops_itself_while_handling_the_request(void **state) {
    (void)state;
    spool_runtime *rt = start_runtime();
    spool_id callee = spawn_on(rt, &stopper_behavior, NULL, 1); /* stops inside the request */
    caller_state s = caller_for(callee, 12);
    s.timeout_ms = 5000; /* only so that a broken runtime ends the test */
    spool_id caller = spawn_on(rt, &caller_behavior, &s, 0);

    assert_int_equal(spool_send(rt, caller, T_START, NULL, 0), 0);
    wait_all_ended(rt);

    assert_int_equal(s.call_rc, 0);
    assert_int_equal(s.conts, 1);
    assert_true(s.reply_null);
    finish(&rt, NO_DEAD_LETTERS);
    /* Its end answers the request it was handling: an error at once, not the timeout. */
    assert_int_equal(s.status, SPOOL_ENOENT);
}

static void deferred_reply_from_copied_request_reaches_the_caller(void **state) {
    (void)state;
    spool_runtime *rt = start_runtime();
    holder_state holder;
    memset(&holder, 0, sizeof holder);
    spool_id callee = spawn_on(rt, &holder_behavior, &holder, 1);
    caller_state s = caller_for(callee, 3);
    s.go_after = 1;
    s.stop_callee_at_end = 1;
    spool_id caller = spawn_on(rt, &caller_behavior, &s, 0);

    assert_int_equal(spool_send(rt, caller, T_START, NULL, 0), 0);
    wait_all_ended(rt);

    assert_int_equal(s.call_rc, 0);
    assert_int_equal(holder.requests, 1);
    assert_int_equal(holder.reply_rc, 0);
    assert_int_equal(s.conts, 1);
    assert_int_equal(s.status, 0);
    assert_int_equal(s.reply_type, T_ANSWER);
    assert_int_equal(s.reply_value, ANSWER);
    assert_true(s.reply_from == callee);
    finish(&rt, NO_DEAD_LETTERS);
}

/* ---------------------------------------------------------------------------------------------- */
/* spool_call_wait                                                                                */
/* ---------------------------------------------------------------------------------------------- */

static void call_wait_from_main_thread_gets_the_reply(void **state) {
    (void)state;
    spool_runtime *rt = start_runtime();
    echo_state echo = {0, 0};
    spool_id callee = spawn_on(rt, &echo_behavior, &echo, 1);

    unsigned timeouts[] = {1000, 0}; /* bounded, then forever */
    for (int i = 0; i < 2; i++) {
        long payload = 0x1122334455L + i;
        spool_response *response = NULL;
        assert_int_equal(
            spool_call_wait(rt, callee, T_REQ, &payload, sizeof payload, timeouts[i], &response),
            0);
        assert_non_null(response);
        const spool_message *reply = spool_response_message(response);
        assert_non_null(reply);
        assert_int_equal(reply->type, T_ANSWER);
        assert_true(reply->from == callee);
        assert_int_equal(reply->size, sizeof payload);
        assert_memory_equal(reply->data, &payload, sizeof payload);
        spool_response_destroy(&response);
        assert_null(response);
    }
    spool_response_destroy(NULL);
    assert_null(spool_response_message(NULL));

    assert_int_equal(spool_actor_stop(rt, callee, 0), 0);
    wait_all_ended(rt);
    assert_int_equal(echo.requests, 2);
    finish(&rt, NO_DEAD_LETTERS);
}

static void call_wait_times_out_within_a_reasonable_window(void **state) {
    (void)state;
    spool_runtime *rt = start_runtime();
    holder_state holder;
    memset(&holder, 0, sizeof holder);
    spool_id callee = spawn_on(rt, &holder_behavior, &holder, 1);

    spool_response *response = NULL;
    int payload = 1;
    uint64_t before = now_ns();
    assert_int_equal(spool_call_wait(rt, callee, T_REQ, &payload, sizeof payload, 50, &response),
                     SPOOL_ETIMEDOUT);
    uint64_t waited = now_ns() - before;
    assert_null(response);
    assert_true(waited >= 50u * 1000000u);
    assert_true(waited < 2000u * 1000000u);

    /* The answer comes after nobody waits: one late-reply dead letter, then the stop. */
    assert_int_equal(spool_send(rt, callee, T_REPLY_NOW, NULL, 0), 0);
    assert_int_equal(spool_actor_stop(rt, callee, 0), 0);
    wait_all_ended(rt);
    assert_int_equal(holder.requests, 1);
    finish(&rt, DEAD([SPOOL_DEAD_LATE_REPLY] = 1));
}

static void call_wait_to_dead_id_gets_enoent(void **state) {
    (void)state;
    spool_runtime *rt = start_runtime();
    spool_id stale = dead_id(rt);
    spool_response *response = NULL;
    assert_int_equal(spool_call_wait(rt, stale, T_REQ, NULL, 0, 1000, &response), SPOOL_ENOENT);
    assert_null(response);
    /* With no timeout too: the error comes at once, it does not wait forever. */
    assert_int_equal(spool_call_wait(rt, stale, T_REQ, NULL, 0, 0, &response), SPOOL_ENOENT);
    assert_null(response);
    finish(&rt, DEAD([SPOOL_DEAD_NO_RECEIVER] = 2));
}

/* Waits (bounded) until the request sits in `id`'s mailbox behind the message being handled. */
static int wait_for_depth(spool_runtime *rt, spool_id id, uint64_t depth) {
    for (int i = 0; i < 5000; i++) {
        spool_mailbox_stats stats;
        if (spool_mailbox_stats_get(rt, id, &stats) != 0)
            return 0;
        if (stats.depth >= depth)
            return 1;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    return 0;
}

typedef struct unblocker {
    spool_runtime *rt;
    spool_id stale;
    gate *gate;
    int saw_stop;
} unblocker;

/* Opens the gate once the runtime refuses outside requests, i.e. once spool_runtime_stop began. */
static void *unblock_when_stopping(void *p) {
    unblocker *u = p;
    for (int i = 0; i < 5000 && !u->saw_stop; i++) {
        if (spool_actor_stop(u->rt, u->stale, 0) == SPOOL_ESTOPPED)
            u->saw_stop = 1;
        else
            nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    gate_open(u->gate);
    return NULL;
}

/* Blocker: T_BLOCK waits on the gate, then the actor stops itself. */
typedef struct blocker_state {
    gate *gate;
    int requests;
    int stay; /* do not stop after the gate */
} blocker_state;

static void blocker_handle(spool_ctx *ctx, void *state, const spool_message *message) {
    blocker_state *s = state;
    if (message->type == T_BLOCK) {
        gate_pass(s->gate);
        if (!s->stay)
            stop_self(ctx);
    } else if (message->request_id) {
        s->requests++;
        spool_reply(spool_ctx_runtime(ctx), message, T_ANSWER, NULL, 0);
    }
}
static const spool_behavior blocker_behavior = {"blocker", blocker_handle, NULL};

typedef struct waiting_call {
    spool_runtime *rt;
    spool_id to;
    unsigned timeout_ms;
    int rc;
    spool_response *response;
} waiting_call;

static void *call_wait_thread(void *p) {
    waiting_call *w = p;
    w->rc = spool_call_wait(w->rt, w->to, T_REQ, NULL, 0, w->timeout_ms, &w->response);
    return NULL;
}

static void call_wait_gets_enoent_when_callee_stops_with_request_queued(void **state) {
    (void)state;
    spool_runtime *rt = start_runtime();
    gate g;
    gate_init(&g);
    blocker_state blocker = {&g, 0, 0};
    spool_id callee = spawn_on(rt, &blocker_behavior, &blocker, 0);
    assert_int_equal(spool_send(rt, callee, T_BLOCK, NULL, 0), 0);

    waiting_call w = {rt, callee, WAIT_MS, 1, NULL};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, call_wait_thread, &w), 0);
    int queued = wait_for_depth(rt, callee, 2); /* the request waits behind T_BLOCK */
    gate_open(&g);
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_true(queued);
    assert_int_equal(w.rc, SPOOL_ENOENT);
    assert_null(w.response);
    wait_all_ended(rt);
    assert_int_equal(blocker.requests, 0);
    gate_destroy(&g);
    finish(&rt, DEAD([SPOOL_DEAD_RECEIVER_STOPPED] = 1));
}

static void call_wait_returns_an_error_when_runtime_stops_with_request_queued(void **state) {
    (void)state;
    spool_config config;
    spool_config_init(&config);
    config.ignore_environment = 1;
    config.threads = 2;
    config.batch = 1; /* the turn that handled T_BLOCK ends before the request */
    spool_runtime *rt = NULL;
    assert_int_equal(spool_runtime_create(&config, &rt), 0);
    assert_int_equal(spool_runtime_start(rt), 0);
    spool_id stale = dead_id(rt);
    gate g;
    gate_init(&g);
    blocker_state blocker = {&g, 0, 1};
    spool_id callee = spawn_on(rt, &blocker_behavior, &blocker, 0);
    assert_int_equal(spool_send(rt, callee, T_BLOCK, NULL, 0), 0);
    /* T_BLOCK is in its handler before the request comes: else a stop on a loaded machine can
     * find both still queued, and count T_BLOCK as a shutdown dead letter too. */
    gate_await_arrival(&g);

    waiting_call w = {rt, callee, 1000, 1, NULL};
    pthread_t caller, opener;
    assert_int_equal(pthread_create(&caller, NULL, call_wait_thread, &w), 0);
    int queued = wait_for_depth(rt, callee, 2);
    unblocker u = {rt, stale, &g, 0};
    assert_int_equal(pthread_create(&opener, NULL, unblock_when_stopping, &u), 0);
    assert_int_equal(spool_runtime_stop(rt, 0), 0); /* the request is still queued: shutdown */
    assert_int_equal(pthread_join(opener, NULL), 0);
    assert_int_equal(pthread_join(caller, NULL), 0);
    assert_true(queued);
    assert_true(u.saw_stop);
    assert_int_equal(blocker.requests, 0);
    assert_null(w.response);
    gate_destroy(&g);
    finish(&rt, DEAD([SPOOL_DEAD_SHUTDOWN] = 1));
    /* The stop releases a blocked caller whose request was still queued. */
    assert_true(w.rc == SPOOL_ENOENT || w.rc == SPOOL_ESTOPPED);
}

/* Inside: tries a blocking call from its own handler. */
typedef struct inside_state {
    int rc;
    spool_response *response;
} inside_state;

static void inside_handle(spool_ctx *ctx, void *state, const spool_message *message) {
    inside_state *s = state;
    if (message->type != T_WAIT_INSIDE)
        return;
    s->rc =
        spool_call_wait(spool_ctx_runtime(ctx), spool_self(ctx), T_REQ, NULL, 0, 100, &s->response);
    stop_self(ctx); /* a request it had sent to itself would now be a dead letter */
}
static const spool_behavior inside_behavior = {"inside", inside_handle, NULL};

static void call_wait_inside_a_handler_is_refused_with_edeadlk(void **state) {
    (void)state;
    spool_runtime *rt = start_runtime();
    inside_state s = {1, NULL};
    spool_id id = spawn_on(rt, &inside_behavior, &s, 1);
    assert_int_equal(spool_send(rt, id, T_WAIT_INSIDE, NULL, 0), 0);
    wait_all_ended(rt);
    assert_int_equal(s.rc, SPOOL_EDEADLK);
    assert_null(s.response);
    finish(&rt, NO_DEAD_LETTERS);
}

typedef struct ticket {
    uint32_t worker;
    uint32_t sequence;
    uint64_t cookie;
} ticket;

typedef struct worker {
    spool_runtime *rt;
    spool_id echo;
    uint32_t index;
    int calls;
    int ok;
    int failed;
    int wrong;
} worker;

static void *worker_thread(void *p) {
    worker *w = p;
    for (int i = 0; i < w->calls; i++) {
        ticket mine = {w->index, (uint32_t)i,
                       ((uint64_t)w->index << 32) ^ (uint64_t)i * 2654435761u};
        spool_response *response = NULL;
        int rc = spool_call_wait(w->rt, w->echo, T_REQ, &mine, sizeof mine, WAIT_MS, &response);
        if (rc != 0) {
            w->failed++;
            continue;
        }
        const spool_message *reply = spool_response_message(response);
        if (reply->type == T_ANSWER && reply->size == sizeof mine &&
            memcmp(reply->data, &mine, sizeof mine) == 0)
            w->ok++;
        else
            w->wrong++;
        spool_response_destroy(&response);
    }
    return NULL;
}

static void concurrent_call_waits_from_four_threads_each_get_their_own_answer(void **state) {
    (void)state;
    enum { WORKERS = 4, CALLS = 1000 };
    spool_runtime *rt = start_runtime();
    echo_state echo = {0, 0};
    spool_id callee = spawn_on(rt, &echo_behavior, &echo, 0);
    worker workers[WORKERS];
    pthread_t threads[WORKERS];
    for (uint32_t i = 0; i < WORKERS; i++) {
        workers[i] = (worker){rt, callee, i, CALLS, 0, 0, 0};
        assert_int_equal(pthread_create(&threads[i], NULL, worker_thread, &workers[i]), 0);
    }
    for (int i = 0; i < WORKERS; i++)
        assert_int_equal(pthread_join(threads[i], NULL), 0);
    for (int i = 0; i < WORKERS; i++) {
        assert_int_equal(workers[i].failed, 0);
        assert_int_equal(workers[i].wrong, 0);
        assert_int_equal(workers[i].ok, CALLS);
    }
    assert_int_equal(spool_actor_stop(rt, callee, 0), 0);
    wait_all_ended(rt);
    assert_int_equal(echo.requests, WORKERS * CALLS);
    assert_int_equal(echo.bad_replies, 0);
    finish(&rt, NO_DEAD_LETTERS);
}

/* ---------------------------------------------------------------------------------------------- */
/* Argument checks                                                                                */
/* ---------------------------------------------------------------------------------------------- */

static void never_called(spool_ctx *ctx, void *state, int status, const spool_message *reply,
                         void *arg) {
    (void)ctx;
    (void)state;
    (void)status;
    (void)reply;
    (void)arg;
    CHECK(!"a refused call's continuation ran");
}

typedef struct validator_state {
    int call_null_ctx;
    int call_null_cont;
    int call_reserved;
    int call_down;
    int call_null_data;
    int reply_null_rt;
    int reply_null_request;
    int reply_not_request;
    int reply_reserved;
    int reply_null_data;
    int reply_ok;
    spool_ctx *saved_ctx;
} validator_state;

static void validator_handle(spool_ctx *ctx, void *state, const spool_message *message) {
    validator_state *s = state;
    spool_runtime *rt = spool_ctx_runtime(ctx);
    spool_id self = spool_self(ctx);
    if (message->type == T_VALIDATE) { /* a plain message, not a request */
        s->reply_not_request = spool_reply(rt, message, T_ANSWER, NULL, 0);
        return;
    }
    if (message->type != T_REQ)
        return;
    s->saved_ctx = ctx;
    s->call_null_ctx = spool_call(NULL, self, T_REQ, NULL, 0, 0, never_called, NULL);
    s->call_null_cont = spool_call(ctx, self, T_REQ, NULL, 0, 0, NULL, NULL);
    s->call_reserved = spool_call(ctx, self, SPOOL_MSG_RESERVED, NULL, 0, 0, never_called, NULL);
    s->call_down = spool_call(ctx, self, SPOOL_MSG_DOWN, NULL, 0, 0, never_called, NULL);
    s->call_null_data = spool_call(ctx, self, T_REQ, NULL, 4, 0, never_called, NULL);
    s->reply_null_rt = spool_reply(NULL, message, T_ANSWER, NULL, 0);
    s->reply_null_request = spool_reply(rt, NULL, T_ANSWER, NULL, 0);
    s->reply_reserved = spool_reply(rt, message, SPOOL_MSG_RESERVED, NULL, 0);
    s->reply_null_data = spool_reply(rt, message, T_ANSWER, NULL, 4);
    s->reply_ok = spool_reply(rt, message, T_ANSWER, NULL, 0);
}
static const spool_behavior validator_behavior = {"validator", validator_handle, NULL};

static void call_and_reply_refuse_invalid_arguments_with_einval(void **state) {
    (void)state;
    spool_runtime *rt = start_runtime();
    validator_state s;
    memset(&s, 0x55, sizeof s);
    s.saved_ctx = NULL;
    spool_id id = spawn_on(rt, &validator_behavior, &s, 1);

    spool_response *response = NULL;
    assert_int_equal(spool_call_wait(rt, id, T_REQ, NULL, 0, WAIT_MS, &response), 0);
    assert_int_equal(spool_response_message(response)->type, T_ANSWER);
    spool_response_destroy(&response);
    assert_int_equal(s.call_null_ctx, SPOOL_EINVAL);
    assert_int_equal(s.call_null_cont, SPOOL_EINVAL);
    assert_int_equal(s.call_reserved, SPOOL_EINVAL);
    assert_int_equal(s.call_down, SPOOL_EINVAL);
    assert_int_equal(s.call_null_data, SPOOL_EINVAL);
    assert_int_equal(s.reply_null_rt, SPOOL_EINVAL);
    assert_int_equal(s.reply_null_request, SPOOL_EINVAL);
    assert_int_equal(s.reply_reserved, SPOOL_EINVAL);
    assert_int_equal(s.reply_null_data, SPOOL_EINVAL);
    assert_non_null(s.saved_ctx);

    /* A ctx used outside its handler: not in a handler. */
    assert_int_equal(spool_call(s.saved_ctx, id, T_REQ, NULL, 0, 0, never_called, &s),
                     SPOOL_EINVAL);
    /* A reply to a message that is not a request, from inside a handler. */
    assert_int_equal(spool_send(rt, id, T_VALIDATE, NULL, 0), 0);
    /* From outside: a message without request_id is not a request. */
    spool_message plain = {id, T_REQ, 0, NULL, 0, 0};
    assert_int_equal(spool_reply(rt, &plain, T_ANSWER, NULL, 0), SPOOL_EINVAL);
    /* spool_call_wait checks its arguments before it sends anything. */
    assert_int_equal(spool_call_wait(NULL, id, T_REQ, NULL, 0, 10, &response), SPOOL_EINVAL);
    assert_int_equal(spool_call_wait(rt, id, T_REQ, NULL, 0, 10, NULL), SPOOL_EINVAL);
    assert_int_equal(spool_call_wait(rt, id, SPOOL_MSG_RESERVED, NULL, 0, 10, &response),
                     SPOOL_EINVAL);
    assert_int_equal(spool_call_wait(rt, id, T_REQ, NULL, 8, 10, &response), SPOOL_EINVAL);
    assert_null(response);

    assert_int_equal(spool_actor_stop(rt, id, 0), 0); /* queued behind T_VALIDATE */
    wait_all_ended(rt);
    assert_int_equal(s.reply_ok, 0); /* written after the answer went out: read it now */
    assert_int_equal(s.reply_not_request, SPOOL_EINVAL);
    finish(&rt, NO_DEAD_LETTERS);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(call_in_actor_gets_reply_through_continuation_with_status_0),
        cmocka_unit_test(continuation_runs_on_callers_home_thread_with_callers_state),
        cmocka_unit_test(call_with_timeout_gets_etimedout_once_and_late_reply_is_one_dead_letter),
        cmocka_unit_test(call_to_stale_id_fails_with_enoent_and_continuation_never_runs),
        cmocka_unit_test(call_gets_enoent_when_callee_stops_with_request_queued),
        cmocka_unit_test(call_gets_enoent_when_callee_ends_without_answering_a_handled_request),
        cmocka_unit_test(call_gets_enoent_when_callee_stops_itself_while_handling_the_request),
        cmocka_unit_test(deferred_reply_from_copied_request_reaches_the_caller),
        cmocka_unit_test(call_wait_from_main_thread_gets_the_reply),
        cmocka_unit_test(call_wait_times_out_within_a_reasonable_window),
        cmocka_unit_test(call_wait_to_dead_id_gets_enoent),
        cmocka_unit_test(call_wait_gets_enoent_when_callee_stops_with_request_queued),
        cmocka_unit_test(call_wait_returns_an_error_when_runtime_stops_with_request_queued),
        cmocka_unit_test(call_wait_inside_a_handler_is_refused_with_edeadlk),
        cmocka_unit_test(concurrent_call_waits_from_four_threads_each_get_their_own_answer),
        cmocka_unit_test(call_and_reply_refuse_invalid_arguments_with_einval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
