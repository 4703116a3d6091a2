/*
 * test_actors.c - actors through the public API: the module invariant (a handler is never entered
 * by two threads, never off its home thread) under a storm from every thread, per-sender FIFO,
 * stale ids, bounded mailboxes, stop with leftovers, monitors, names, zero-copy ownership and
 * timers.
 */
#include "tests/support.h"

#include <sched.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------------------------------------- */
/* The invariant the mission rests on. */

#define MAX_SENDERS 64
enum { MSG_WORK = 1, MSG_GO = 2, MSG_DONE = 3 };

typedef struct module_state {
    int inside;             /* set while a handler runs: a second entry sees 1 */
    long violations;        /* concurrent entries or entries off the home thread */
    pthread_t first_thread; /* the only thread that may enter */
    int entered;
    long handled;
    uint32_t next[MAX_SENDERS]; /* per-sender sequence: FIFO check */
    long order_errors;
    int home;
} module_state;

typedef struct work {
    uint32_t sender;
    uint32_t sequence;
} work;

static void module_handle(spool_ctx *ctx, void *state, const spool_message *msg) {
    module_state *s = state;
    if (__atomic_exchange_n(&s->inside, 1, __ATOMIC_ACQ_REL) != 0)
        s->violations++;
    if (!s->entered) {
        s->first_thread = pthread_self();
        s->entered = 1;
    } else if (!pthread_equal(s->first_thread, pthread_self())) {
        s->violations++;
    }
    if (spool_ctx_thread(ctx) != s->home)
        s->violations++;
    if (msg->type == MSG_WORK && msg->size == sizeof(work)) {
        work w;
        memcpy(&w, msg->data, sizeof w);
        if (w.sender >= MAX_SENDERS || w.sequence != s->next[w.sender])
            s->order_errors++;
        else
            s->next[w.sender]++;
        /* Touch the state non-atomically, the way a C extension would. */
        long h = s->handled;
        for (volatile int spin = 0; spin < 20; spin++) {
        }
        s->handled = h + 1;
    }
    __atomic_store_n(&s->inside, 0, __ATOMIC_RELEASE);
}

typedef struct sender_state {
    spool_id module;
    uint32_t index;
    long count;
} sender_state;

static void sender_handle(spool_ctx *ctx, void *state, const spool_message *msg) {
    sender_state *s = state;
    if (msg->type != MSG_GO)
        return;
    for (long i = 0; i < s->count; i++) {
        work w = {s->index, (uint32_t)i};
        assert_int_equal(spool_send(spool_ctx_runtime(ctx), s->module, MSG_WORK, &w, sizeof w), 0);
    }
    spool_actor_stop(spool_ctx_runtime(ctx), spool_self(ctx), 0);
}

static const spool_behavior module_behavior = {"module", module_handle, NULL};
static const spool_behavior sender_behavior = {"sender", sender_handle, NULL};

typedef struct foreign_arg {
    spool_runtime *rt;
    spool_id module;
    uint32_t index;
    long count;
} foreign_arg;

static void *foreign_sender(void *p) {
    foreign_arg *a = p;
    for (long i = 0; i < a->count; i++) {
        work w = {a->index, (uint32_t)i};
        if (spool_send(a->rt, a->module, MSG_WORK, &w, sizeof w) != 0)
            return (void *)1;
    }
    return NULL;
}

static void module_is_never_entered_by_two_threads_under_stress(void **state) {
    (void)state;
    spool_runtime *rt = support_runtime(2);
    static module_state mod;
    memset(&mod, 0, sizeof mod);
    mod.home = 0;
    spool_spawn_opts opts = spool_spawn_opts_default();
    opts.thread = 0;
    opts.name = "module";
    spool_id module;
    assert_int_equal(spool_spawn(rt, &module_behavior, &mod, &opts, &module), 0);
    assert_int_equal(spool_runtime_start(rt), 0);

    enum { ACTOR_SENDERS = 8, FOREIGN_SENDERS = 3 };
    long per_sender = support_stress(20000);
    sender_state senders[ACTOR_SENDERS];
    spool_id sender_ids[ACTOR_SENDERS];
    for (int i = 0; i < ACTOR_SENDERS; i++) {
        senders[i] = (sender_state){module, (uint32_t)i, per_sender};
        spool_spawn_opts o = spool_spawn_opts_default();
        o.thread = i % 2; /* half on the module's thread, half on the other */
        assert_int_equal(spool_spawn(rt, &sender_behavior, &senders[i], &o, &sender_ids[i]), 0);
    }
    pthread_t threads[FOREIGN_SENDERS];
    foreign_arg args[FOREIGN_SENDERS];
    for (int i = 0; i < FOREIGN_SENDERS; i++) {
        args[i] = (foreign_arg){rt, module, (uint32_t)(ACTOR_SENDERS + i), per_sender};
        assert_int_equal(pthread_create(&threads[i], NULL, foreign_sender, &args[i]), 0);
    }
    for (int i = 0; i < ACTOR_SENDERS; i++)
        assert_int_equal(spool_send(rt, sender_ids[i], MSG_GO, NULL, 0), 0);
    for (int i = 0; i < FOREIGN_SENDERS; i++) {
        void *result;
        pthread_join(threads[i], &result);
        assert_null(result);
    }
    /* Everything sent before this stop is handled first (a stop from outside queues behind). */
    long total = per_sender * (ACTOR_SENDERS + FOREIGN_SENDERS);
    spool_mailbox_stats stats;
    for (;;) { /* the senders are actors: wait until they are done before queuing the stop */
        assert_int_equal(spool_mailbox_stats_get(rt, module, &stats), 0);
        if (stats.enqueued >= (uint64_t)total)
            break;
        struct timespec pause = {0, 1000000};
        nanosleep(&pause, NULL);
    }
    assert_int_equal(spool_actor_stop(rt, module, 0), 0);
    assert_int_equal(spool_runtime_wait(rt, 60000), 0);

    assert_int_equal(mod.violations, 0);
    assert_int_equal(mod.order_errors, 0);
    assert_int_equal(mod.handled, total);
    for (int i = 0; i < ACTOR_SENDERS + FOREIGN_SENDERS; i++)
        assert_int_equal(mod.next[i], per_sender);
    for (int r = 0; r < SPOOL_DEAD_REASON_COUNT; r++)
        assert_int_equal(support_dead(rt, (spool_dead_reason)r), 0);
    spool_runtime_destroy(&rt);
    assert_null(rt);
}

/* ---------------------------------------------------------------------------------------------- */

typedef struct counter {
    long handled;
    gate *gate; /* if set, the first message waits here */
    int last_type;
    long types[16];
    int stop_on; /* message type that makes the actor stop itself */
    int stop_reason;
} counter;

static void counter_handle(spool_ctx *ctx, void *state, const spool_message *msg) {
    counter *c = state;
    if (c->gate && c->handled == 0)
        gate_pass(c->gate);
    c->handled++;
    c->last_type = (int)msg->type;
    if (msg->type < 16)
        c->types[msg->type]++;
    if (c->stop_on && (int)msg->type == c->stop_on)
        spool_actor_stop(spool_ctx_runtime(ctx), spool_self(ctx), c->stop_reason);
}

static int destroyed;
static void counter_destroy(void *state) {
    (void)state;
    __atomic_fetch_add(&destroyed, 1, __ATOMIC_RELAXED);
}

static const spool_behavior counter_behavior = {"counter", counter_handle, counter_destroy};

static void send_to_a_stale_id_is_a_dead_letter_not_a_crash(void **state) {
    (void)state;
    spool_runtime *rt = support_runtime(1);
    assert_int_equal(spool_runtime_start(rt), 0);
    counter c = {0};
    spool_id old;
    assert_int_equal(spool_spawn(rt, &counter_behavior, &c, NULL, &old), 0);
    assert_int_equal(spool_actor_stop(rt, old, 0), 0);
    assert_int_equal(spool_runtime_wait(rt, 10000), 0);
    assert_int_equal(spool_send(rt, old, 1, "x", 1), SPOOL_ENOENT);
    assert_int_equal(support_dead(rt, SPOOL_DEAD_NO_RECEIVER), 1);

    /* The slot is reused by the next actor, with the next generation: the old id still misses. */
    counter c2 = {0};
    spool_id fresh;
    assert_int_equal(spool_spawn(rt, &counter_behavior, &c2, NULL, &fresh), 0);
    assert_int_not_equal(fresh, old);
    assert_int_equal(fresh & 0xffffff, old & 0xffffff); /* same slot */
    assert_int_equal(spool_send(rt, old, 1, "x", 1), SPOOL_ENOENT);
    assert_int_equal(spool_send(rt, fresh, 1, "x", 1), 0);
    int thread;
    assert_int_equal(spool_actor_thread(rt, old, &thread), SPOOL_ENOENT);
    assert_int_equal(spool_send(rt, SPOOL_ID_NONE, 1, NULL, 0), SPOOL_ENOENT);
    assert_int_equal(spool_send(rt, (spool_id)0xdeadbeef12345ull, 1, NULL, 0), SPOOL_ENOENT);
    assert_int_equal(support_dead(rt, SPOOL_DEAD_NO_RECEIVER), 3);
    /* Its node field is 0xd: a node this process never met (and no node layer runs). */
    assert_int_equal(support_dead(rt, SPOOL_DEAD_UNKNOWN_NODE), 1);
    spool_runtime_stop(rt, 1000);
    assert_int_equal(c2.handled, 1);
    spool_runtime_destroy(&rt);
}

static void bad_arguments_return_einval(void **state) {
    (void)state;
    spool_runtime *rt = support_runtime(1);
    spool_id id;
    counter c = {0};
    assert_int_equal(spool_spawn(NULL, &counter_behavior, &c, NULL, &id), SPOOL_EINVAL);
    assert_int_equal(spool_spawn(rt, NULL, &c, NULL, &id), SPOOL_EINVAL);
    spool_behavior no_handler = {"x", NULL, NULL};
    assert_int_equal(spool_spawn(rt, &no_handler, &c, NULL, &id), SPOOL_EINVAL);
    spool_spawn_opts opts = spool_spawn_opts_default();
    opts.thread = 5;
    assert_int_equal(spool_spawn(rt, &counter_behavior, &c, &opts, &id), SPOOL_EINVAL);
    opts = spool_spawn_opts_default();
    opts.name = "";
    assert_int_equal(spool_spawn(rt, &counter_behavior, &c, &opts, &id), SPOOL_EINVAL);
    assert_int_equal(spool_spawn(rt, &counter_behavior, &c, NULL, &id), 0);
    assert_int_equal(spool_send(NULL, id, 1, NULL, 0), SPOOL_EINVAL);
    assert_int_equal(spool_send(rt, id, 1, NULL, 4), SPOOL_EINVAL);
    assert_int_equal(spool_send(rt, id, SPOOL_MSG_DOWN, NULL, 0), SPOOL_EINVAL);
    assert_int_equal(spool_send(rt, id, 1, "x", (size_t)65 << 20), SPOOL_EMSGSIZE);
    assert_int_equal(spool_monitor(NULL, id), SPOOL_EINVAL);
    assert_int_equal(spool_register(rt, NULL, id), SPOOL_EINVAL);
    assert_int_equal(spool_actor_move(rt, id, 9), SPOOL_EINVAL);
    /* A pinned actor refuses to move, even to a thread that exists. */
    counter pc = {0};
    spool_id pinned;
    opts = spool_spawn_opts_default();
    opts.pinned = 1;
    assert_int_equal(spool_spawn(rt, &counter_behavior, &pc, &opts, &pinned), 0);
    assert_int_equal(spool_actor_move(rt, pinned, 0), SPOOL_ESTATE);
    assert_int_equal(spool_runtime_create(NULL, NULL), SPOOL_EINVAL);
    assert_int_equal(spool_runtime_start(NULL), SPOOL_EINVAL);
    assert_int_equal(spool_runtime_wait(NULL, 0), SPOOL_EINVAL);
    assert_string_equal(spool_strerror(SPOOL_EFULL), "mailbox full");
    assert_string_equal(spool_strerror(12345), "unknown error");
    assert_string_equal(spool_dead_reason_name(SPOOL_DEAD_SHUTDOWN), "shutdown");
    assert_int_equal(spool_self(NULL), SPOOL_ID_NONE);
    spool_runtime_destroy(&rt);
    spool_runtime_destroy(NULL);
    /* Not a single message was accepted, so none is a dead letter. */
}

/* spool_send_self: behind what is queued, and never refused by a full bounded mailbox. */
typedef struct self_note_state {
    int seen[8];
    int count;
    int full_rc, self_rc;
    int bad; /* checks that failed inside the handler */
} self_note_state;

static void self_note_handle(spool_ctx *ctx, void *state, const spool_message *message) {
    self_note_state *s = state;
    spool_runtime *rt = spool_ctx_runtime(ctx);
    if (s->count < 8)
        s->seen[s->count++] = (int)message->type;
    if (message->type == 1) {
        if (spool_send(rt, spool_self(ctx), 2, NULL, 0) != 0) /* the mailbox is now full */
            s->bad++;
        s->full_rc = spool_send(rt, spool_self(ctx), 3, NULL, 0);
        s->self_rc = spool_send_self(ctx, 4, "x", 1);
    }
    if (message->type == 4) {
        if (message->size != 1 || ((const char *)message->data)[0] != 'x')
            s->bad++;
        spool_actor_stop(rt, spool_self(ctx), 0);
    }
}
static const spool_behavior self_note_behavior = {"self_note", self_note_handle, NULL};

static void send_self_passes_a_full_bounded_mailbox_and_comes_after_the_queue(void **state) {
    (void)state;
    spool_runtime *rt = support_runtime(1);
    self_note_state s;
    memset(&s, 0, sizeof s);
    spool_spawn_opts opts = spool_spawn_opts_default();
    opts.mailbox_capacity = 2; /* the message being handled and one more */
    spool_id id;
    assert_int_equal(spool_spawn(rt, &self_note_behavior, &s, &opts, &id), 0);
    assert_int_equal(spool_send(rt, id, 1, NULL, 0), 0);
    assert_int_equal(spool_runtime_start(rt), 0);
    assert_int_equal(spool_runtime_wait(rt, 10000), 0);
    assert_int_equal(s.bad, 0);
    assert_int_equal(s.full_rc, SPOOL_EFULL);
    assert_int_equal(s.self_rc, 0);
    assert_int_equal(s.count, 3);
    assert_int_equal(s.seen[0], 1);
    assert_int_equal(s.seen[1], 2); /* what was queued first */
    assert_int_equal(s.seen[2], 4); /* then the note */
    assert_int_equal(spool_send_self(NULL, 4, NULL, 0), SPOOL_EINVAL);
    uint64_t full = 0;
    assert_int_equal(spool_dead_letter_count(rt, SPOOL_DEAD_MAILBOX_FULL, &full), 0);
    assert_int_equal(full, 1); /* only the refused user message */
    spool_runtime_destroy(&rt);
}

static void bounded_mailbox_rejects_when_full_and_counts_it(void **state) {
    (void)state;
    spool_runtime *rt = support_runtime(1);
    gate g;
    gate_init(&g);
    counter c = {0};
    c.gate = &g;
    spool_spawn_opts opts = spool_spawn_opts_default();
    opts.mailbox_capacity = 4;
    opts.overflow = SPOOL_OVERFLOW_REJECT;
    spool_id id;
    assert_int_equal(spool_spawn(rt, &counter_behavior, &c, &opts, &id), 0);
    assert_int_equal(spool_runtime_start(rt), 0);
    assert_int_equal(spool_send(rt, id, 1, NULL, 0), 0);
    gate_await_arrival(&g); /* the first message is being handled: it still counts as queued */
    for (int i = 0; i < 3; i++)
        assert_int_equal(spool_send(rt, id, 2, NULL, 0), 0);
    assert_int_equal(spool_send(rt, id, 3, NULL, 0), SPOOL_EFULL);
    assert_int_equal(spool_send(rt, id, 3, NULL, 0), SPOOL_EFULL);
    spool_mailbox_stats stats;
    assert_int_equal(spool_mailbox_stats_get(rt, id, &stats), 0);
    assert_int_equal(stats.rejected, 2);
    assert_int_equal(stats.depth, 4);
    assert_int_equal(stats.high_water, 4);
    gate_open(&g);
    assert_int_equal(spool_actor_stop(rt, id, 0), 0); /* a notice passes the bound */
    assert_int_equal(spool_runtime_wait(rt, 10000), 0);
    assert_int_equal(c.handled, 4);
    assert_int_equal(c.types[3], 0);
    assert_int_equal(support_dead(rt, SPOOL_DEAD_MAILBOX_FULL), 2);
    spool_runtime_destroy(&rt);
}

static void drop_oldest_keeps_the_newest_and_counts_the_dropped(void **state) {
    (void)state;
    spool_runtime *rt = support_runtime(1);
    gate g;
    gate_init(&g);
    counter c = {0};
    c.gate = &g;
    spool_spawn_opts opts = spool_spawn_opts_default();
    opts.mailbox_capacity = 3;
    opts.overflow = SPOOL_OVERFLOW_DROP_OLDEST;
    spool_id id;
    assert_int_equal(spool_spawn(rt, &counter_behavior, &c, &opts, &id), 0);
    assert_int_equal(spool_runtime_start(rt), 0);
    assert_int_equal(spool_send(rt, id, 1, NULL, 0), 0);
    gate_await_arrival(&g);
    for (int type = 2; type <= 11; type++) /* 10 more while the actor is busy */
        assert_int_equal(spool_send(rt, id, (uint32_t)type, NULL, 0), 0);
    gate_open(&g);
    assert_int_equal(spool_actor_stop(rt, id, 0), 0);
    assert_int_equal(spool_runtime_wait(rt, 10000), 0);
    /* 1 was being handled; of 2..11 the 3 newest (9, 10, 11) are kept, 7 dropped. */
    assert_int_equal(c.handled, 4);
    assert_int_equal(c.types[1], 1);
    for (int type = 2; type <= 8; type++)
        assert_int_equal(c.types[type], 0);
    for (int type = 9; type <= 11; type++)
        assert_int_equal(c.types[type], 1);
    assert_int_equal(support_dead(rt, SPOOL_DEAD_DROPPED_OLDEST), 7);
    spool_runtime_destroy(&rt);
}

/* ---------------------------------------------------------------------------------------------- */
/* Stop and monitors */

typedef struct watcher_state {
    spool_id target;
    int downs;
    spool_down last;
    spool_id last_from;
} watcher_state;

static void watcher_handle(spool_ctx *ctx, void *state, const spool_message *msg) {
    watcher_state *w = state;
    if (msg->type == MSG_GO) {
        assert_int_equal(spool_monitor(ctx, w->target), 0);
        return;
    }
    if (msg->type == SPOOL_MSG_DOWN) {
        assert_int_equal(msg->size, sizeof(spool_down));
        memcpy(&w->last, msg->data, sizeof w->last);
        w->last_from = msg->from;
        w->downs++;
        spool_actor_stop(spool_ctx_runtime(ctx), spool_self(ctx), 0);
    }
}

static const spool_behavior watcher_behavior = {"watcher", watcher_handle, NULL};

static void stop_turns_leftovers_into_dead_letters_and_tells_monitors(void **state) {
    (void)state;
    spool_runtime *rt = support_runtime(2);
    gate g;
    gate_init(&g);
    counter c = {0};
    c.gate = &g;
    c.stop_on = 5;
    c.stop_reason = 42;
    destroyed = 0;
    spool_spawn_opts opts = spool_spawn_opts_default();
    opts.thread = 0;
    spool_id target;
    assert_int_equal(spool_spawn(rt, &counter_behavior, &c, &opts, &target), 0);
    watcher_state w = {target, 0, {0, 0}, 0};
    opts.thread = 1;
    spool_id watcher;
    assert_int_equal(spool_spawn(rt, &watcher_behavior, &w, &opts, &watcher), 0);
    assert_int_equal(spool_runtime_start(rt), 0);
    assert_int_equal(spool_send(rt, target, 1, NULL, 0), 0);
    gate_await_arrival(&g);
    /* The monitor request queues behind message 1, then come the stop trigger and leftovers. */
    assert_int_equal(spool_send(rt, watcher, MSG_GO, NULL, 0), 0);
    spool_mailbox_stats stats;
    do {
        assert_int_equal(spool_mailbox_stats_get(rt, target, &stats), 0);
    } while (stats.depth < 2); /* 1 (in the handler) + the monitor request */
    assert_int_equal(spool_send(rt, target, 5, NULL, 0), 0);
    for (int i = 0; i < 6; i++)
        assert_int_equal(spool_send(rt, target, 7, "abc", 3), 0);
    gate_open(&g);
    assert_int_equal(spool_runtime_wait(rt, 10000), 0);
    assert_int_equal(c.handled, 2);
    assert_int_equal(support_dead(rt, SPOOL_DEAD_RECEIVER_STOPPED), 6);
    assert_int_equal(destroyed, 1);
    assert_int_equal(w.downs, 1);
    assert_int_equal(w.last.actor, target);
    assert_int_equal(w.last.reason, 42);
    assert_int_equal(w.last_from, target);
    spool_runtime_destroy(&rt);
}

static void monitoring_a_dead_actor_reports_noproc(void **state) {
    (void)state;
    spool_runtime *rt = support_runtime(2);
    assert_int_equal(spool_runtime_start(rt), 0);
    counter c = {0};
    spool_id gone;
    assert_int_equal(spool_spawn(rt, &counter_behavior, &c, NULL, &gone), 0);
    assert_int_equal(spool_actor_stop(rt, gone, 0), 0);
    assert_int_equal(spool_runtime_wait(rt, 10000), 0);
    watcher_state w = {gone, 0, {0, 0}, 0};
    spool_id watcher;
    assert_int_equal(spool_spawn(rt, &watcher_behavior, &w, NULL, &watcher), 0);
    assert_int_equal(spool_send(rt, watcher, MSG_GO, NULL, 0), 0);
    assert_int_equal(spool_runtime_wait(rt, 10000), 0);
    assert_int_equal(w.downs, 1);
    assert_int_equal(w.last.actor, gone);
    assert_int_equal(w.last.reason, SPOOL_EXIT_NOPROC);
    spool_runtime_destroy(&rt);
}

/* ---------------------------------------------------------------------------------------------- */

static void names_resolve_refuse_duplicates_and_are_released_at_exit(void **state) {
    (void)state;
    spool_runtime *rt = support_runtime(1);
    assert_int_equal(spool_runtime_start(rt), 0);
    counter c = {0}, d = {0};
    spool_spawn_opts opts = spool_spawn_opts_default();
    opts.name = "db";
    spool_id a, b, found;
    assert_int_equal(spool_spawn(rt, &counter_behavior, &c, &opts, &a), 0);
    assert_int_equal(spool_whereis(rt, "db", &found), 0);
    assert_int_equal(found, a);
    assert_int_equal(spool_spawn(rt, &counter_behavior, &d, &opts, &b), SPOOL_EEXIST);
    assert_int_equal(spool_spawn(rt, &counter_behavior, &d, NULL, &b), 0);
    assert_int_equal(spool_register(rt, "db", b), SPOOL_EEXIST);
    assert_int_equal(spool_register(rt, "cache", a), SPOOL_EEXIST); /* one name per actor */
    assert_int_equal(spool_register(rt, "cache", b), 0);
    assert_int_equal(spool_whereis(rt, "cache", &found), 0);
    assert_int_equal(found, b);
    assert_int_equal(spool_unregister(rt, "cache"), 0);
    assert_int_equal(spool_whereis(rt, "cache", &found), SPOOL_ENOENT);
    assert_int_equal(spool_unregister(rt, "cache"), SPOOL_ENOENT);
    assert_int_equal(spool_register(rt, "cache", b), 0);
    assert_int_equal(spool_actor_stop(rt, a, 0), 0);
    assert_int_equal(spool_actor_stop(rt, b, 0), 0);
    assert_int_equal(spool_runtime_wait(rt, 10000), 0);
    assert_int_equal(spool_whereis(rt, "db", &found), SPOOL_ENOENT);
    assert_int_equal(spool_whereis(rt, "cache", &found), SPOOL_ENOENT);
    assert_int_equal(spool_register(rt, "db", a), SPOOL_ENOENT); /* a is gone */
    spool_runtime_destroy(&rt);
}

static int owned_frees;
static void count_free(void *p) {
    __atomic_fetch_add(&owned_frees, 1, __ATOMIC_RELAXED);
    free(p);
}

static void zero_copy_payload_is_freed_exactly_once_on_every_path(void **state) {
    (void)state;
    owned_frees = 0;
    spool_runtime *rt = support_runtime(1);
    counter c = {0};
    spool_id id;
    assert_int_equal(spool_spawn(rt, &counter_behavior, &c, NULL, &id), 0);
    assert_int_equal(spool_runtime_start(rt), 0);
    assert_int_equal(spool_send_owned(rt, id, 1, malloc(100), 100, count_free), 0); /* handled */
    assert_int_equal(spool_send_owned(rt, 12345, 1, malloc(10), 10, count_free), SPOOL_ENOENT);
    assert_int_equal(spool_send_owned(rt, id, SPOOL_MSG_DOWN, malloc(10), 10, count_free),
                     SPOOL_EINVAL);
    assert_int_equal(spool_send_owned(NULL, id, 1, malloc(10), 10, count_free), SPOOL_EINVAL);
    assert_int_equal(spool_actor_stop(rt, id, 0), 0);
    assert_int_equal(spool_runtime_wait(rt, 10000), 0);
    assert_int_equal(c.handled, 1);
    assert_int_equal(owned_frees, 4);
    spool_runtime_destroy(&rt);
}

/* ---------------------------------------------------------------------------------------------- */
/* Timers */

typedef struct timed {
    struct timespec started;
    double elapsed_ms[4];
    int fired;
    spool_timer cancel_me;
    int cancel_result;
} timed;

static double ms_since(const struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static void timed_handle(spool_ctx *ctx, void *state, const spool_message *msg) {
    timed *t = state;
    spool_runtime *rt = spool_ctx_runtime(ctx);
    if (msg->type == MSG_GO) {
        clock_gettime(CLOCK_MONOTONIC, &t->started);
        assert_int_equal(spool_send_after(rt, spool_self(ctx), 30, 10, NULL, 0, NULL), 0);
        assert_int_equal(spool_send_after(rt, spool_self(ctx), 60, 11, NULL, 0, NULL), 0);
        assert_int_equal(spool_send_after(rt, spool_self(ctx), 40, 12, NULL, 0, &t->cancel_me), 0);
        t->cancel_result = spool_timer_cancel(rt, t->cancel_me); /* same thread: exact */
        return;
    }
    if (msg->type >= 10 && msg->type <= 12)
        t->elapsed_ms[msg->type - 10] = ms_since(&t->started);
    t->fired++;
    if (msg->type == 11) {
        assert_int_equal(spool_timer_cancel(rt, t->cancel_me), SPOOL_ENOENT);
        spool_actor_stop(rt, spool_self(ctx), 0);
    }
}

static const spool_behavior timed_behavior = {"timed", timed_handle, NULL};

static void timers_fire_after_their_delay_in_order_and_cancel_exactly(void **state) {
    (void)state;
    spool_runtime *rt = support_runtime(2);
    timed t;
    memset(&t, 0, sizeof t);
    spool_id id;
    assert_int_equal(spool_spawn(rt, &timed_behavior, &t, NULL, &id), 0);
    assert_int_equal(spool_runtime_start(rt), 0);
    assert_int_equal(spool_send(rt, id, MSG_GO, NULL, 0), 0);
    assert_int_equal(spool_runtime_wait(rt, 10000), 0);
    assert_int_equal(t.cancel_result, 0);
    assert_int_equal(t.fired, 2);
    assert_true(t.elapsed_ms[0] >= 30.0);
    assert_true(t.elapsed_ms[1] >= 60.0);
    assert_true(t.elapsed_ms[1] > t.elapsed_ms[0]);
    assert_true(t.elapsed_ms[2] == 0.0); /* cancelled */
    spool_runtime_destroy(&rt);
}

static void timers_from_outside_fire_and_pending_ones_die_with_the_runtime(void **state) {
    (void)state;
    spool_runtime *rt = support_runtime(2);
    counter c = {0};
    c.stop_on = 4;
    spool_id id;
    assert_int_equal(spool_spawn(rt, &counter_behavior, &c, NULL, &id), 0);
    assert_int_equal(spool_runtime_start(rt), 0);
    spool_timer far, cancelled;
    assert_int_equal(spool_send_after(rt, id, 3600 * 1000, 9, NULL, 0, &far), 0);
    assert_int_equal(spool_send_after(rt, id, 10, 3, NULL, 0, &cancelled), 0);
    assert_int_equal(spool_timer_cancel(rt, cancelled), 0);
    assert_int_equal(spool_send_after(rt, id, 20, 4, NULL, 0, NULL), 0);
    assert_int_equal(spool_timer_cancel(rt, 0), SPOOL_EINVAL);
    assert_int_equal(spool_runtime_wait(rt, 10000), 0);
    assert_int_equal(c.handled, 1);
    assert_int_equal(c.last_type, 4);
    assert_int_equal(spool_runtime_stop(rt, 100), 0);
    /* The hour-long timer never fired: it is a shutdown dead letter, counted, not lost. */
    assert_int_equal(support_dead(rt, SPOOL_DEAD_SHUTDOWN), 1);
    assert_int_equal(spool_send_after(rt, id, 1, 1, NULL, 0, NULL), SPOOL_ESTOPPED);
    spool_runtime_destroy(&rt);
}

/* ---------------------------------------------------------------------------------------------- */
/* The dead-letter hook */

typedef struct hook_log {
    long calls[SPOOL_DEAD_REASON_COUNT];
    spool_id last_to;
    uint32_t last_type;
    char last_data[8];
    spool_runtime *rt;
    spool_id forward_to; /* the hook may send: it forwards what it sees here */
} hook_log;

static void record_dead_letter(void *user, spool_dead_reason reason, spool_id to,
                               const spool_message *message) {
    hook_log *log = user;
    __atomic_fetch_add(&log->calls[reason], 1, __ATOMIC_RELAXED);
    log->last_to = to;
    log->last_type = message->type;
    memset(log->last_data, 0, sizeof log->last_data);
    memcpy(log->last_data, message->data,
           message->size < sizeof log->last_data ? message->size : sizeof log->last_data - 1);
    if (log->forward_to)
        spool_send(log->rt, log->forward_to, message->type, message->data, message->size);
}

static void dead_letter_hook_sees_every_dead_letter_with_its_reason(void **state) {
    (void)state;
    static hook_log log;
    memset(&log, 0, sizeof log);
    spool_config config;
    spool_config_init(&config);
    config.threads = 1;
    config.ignore_environment = 1;
    config.on_dead_letter = record_dead_letter;
    config.dead_letter_user = &log;
    spool_runtime *rt = NULL;
    assert_int_equal(spool_runtime_create(&config, &rt), 0);
    log.rt = rt;
    counter sink = {0};
    spool_id sink_id, gone;
    assert_int_equal(spool_spawn(rt, &counter_behavior, &sink, NULL, &sink_id), 0);
    counter c = {0};
    assert_int_equal(spool_spawn(rt, &counter_behavior, &c, NULL, &gone), 0);
    assert_int_equal(spool_runtime_start(rt), 0);
    assert_int_equal(spool_actor_stop(rt, gone, 0), 0);
    int thread;
    while (spool_actor_thread(rt, gone, &thread) == 0)
        sched_yield();

    log.forward_to = sink_id;
    assert_int_equal(spool_send(rt, gone, 9, "lost", 4), SPOOL_ENOENT);
    assert_int_equal(log.calls[SPOOL_DEAD_NO_RECEIVER], 1);
    assert_int_equal(log.last_to, gone);
    assert_int_equal(log.last_type, 9);
    assert_string_equal(log.last_data, "lost");

    assert_int_equal(spool_actor_stop(rt, sink_id, 0), 0);
    assert_int_equal(spool_runtime_wait(rt, 10000), 0);
    assert_int_equal(sink.handled, 1); /* what the hook forwarded arrived */
    assert_int_equal(sink.last_type, 9);
    log.forward_to = 0;
    assert_int_equal(spool_runtime_stop(rt, 0), 0);
    assert_int_equal(spool_send(rt, sink_id, 3, NULL, 0), SPOOL_ESTOPPED);
    assert_int_equal(log.calls[SPOOL_DEAD_SHUTDOWN], 1);
    assert_int_equal(support_dead(rt, SPOOL_DEAD_SHUTDOWN), 1);
    assert_int_equal(support_dead(rt, SPOOL_DEAD_NO_RECEIVER), 1);
    spool_runtime_destroy(&rt);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(module_is_never_entered_by_two_threads_under_stress),
        cmocka_unit_test(send_to_a_stale_id_is_a_dead_letter_not_a_crash),
        cmocka_unit_test(bad_arguments_return_einval),
        cmocka_unit_test(bounded_mailbox_rejects_when_full_and_counts_it),
        cmocka_unit_test(send_self_passes_a_full_bounded_mailbox_and_comes_after_the_queue),
        cmocka_unit_test(drop_oldest_keeps_the_newest_and_counts_the_dropped),
        cmocka_unit_test(stop_turns_leftovers_into_dead_letters_and_tells_monitors),
        cmocka_unit_test(monitoring_a_dead_actor_reports_noproc),
        cmocka_unit_test(names_resolve_refuse_duplicates_and_are_released_at_exit),
        cmocka_unit_test(zero_copy_payload_is_freed_exactly_once_on_every_path),
        cmocka_unit_test(timers_fire_after_their_delay_in_order_and_cancel_exactly),
        cmocka_unit_test(timers_from_outside_fire_and_pending_ones_die_with_the_runtime),
        cmocka_unit_test(dead_letter_hook_sees_every_dead_letter_with_its_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
