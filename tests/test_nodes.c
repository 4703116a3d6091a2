/*
 * test_nodes.c - two runtimes in one process made nodes (spool_node.h) over tcp loopback: remote
 * send (exact counts, FIFO per sender), call and reply (from an actor and from outside), whereis,
 * remote monitors (a normal exit after the messages sent before it, noproc, noconnection), node
 * monitors, stop across nodes, and every dead-letter reason of nodes: unknown_node, node_down,
 * too_large, stale_incarnation, overload. Every wait is bounded. Label concurrent (TSan, ASan).
 */
#include "spool.h"
#include "spool_node.h"
#include "support.h"
#include "tests/nodes_support.h"

/* White box, for one count only: the calls actors/remote_watch.c keeps in flight. */
#include "actors/remote.h"
#include "scheduler/scheduler.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int is_member(node_box *b, const char *name) {
    char names[8][SPOOL_NODE_NAME_MAX + 1];
    size_t n = 0;
    assert_int_equal(spool_node_members(b->rt, names, 8, &n), 0);
    for (size_t i = 0; i < n && i < 8; i++)
        if (strcmp(names[i], name) == 0)
            return 1;
    return 0;
}

/* a and b, b joined to a, both UP. */
static void pair_start(node_box *a, node_box *b, unsigned heartbeat_ms, unsigned down_after_ms,
                       size_t max_message, size_t queue_bytes) {
    node_start(a, "a", NULL, heartbeat_ms, down_after_ms, max_message, queue_bytes);
    char join[300];
    snprintf(join, sizeof join, "a@%s", a->endpoint);
    node_start(b, "b", join, heartbeat_ms, down_after_ms, max_message, queue_bytes);
    WAIT_FOR(is_member(a, "b") && is_member(b, "a"));
}

/* The id on `from`'s side of an actor `id` of `on`. */
static spool_id id_seen_from(node_box *on, spool_id id, node_box *from) {
    spool_remote_id r;
    assert_int_equal(spool_id_export(on->rt, id, &r), 0);
    spool_id out = 0;
    assert_int_equal(spool_id_import(from->rt, &r, &out), 0);
    assert_true(spool_id_is_remote(out));
    return out;
}

/* ---------------------------------------------------------------------------------------------- */
/* Actors                                                                                         */

#define SENDERS 4

/* Counts messages {sender, seq}; checks seq is 1, 2, 3... per sender. */
typedef struct collector {
    atomic_long received;
    atomic_long out_of_order;
    long next[SENDERS];
    atomic_long downs;
    atomic_int last_down_reason;
    atomic_long before_down; /* messages received when the first DOWN came */
    atomic_long nodeups, nodedowns;
    char nodedown_reason[96];
    atomic_long requests;
} collector;

typedef struct item {
    uint32_t sender;
    uint32_t seq;
} item;

static void collector_handle(spool_ctx *ctx, void *state, const spool_message *m) {
    collector *c = state;
    if (m->type == SPOOL_MSG_DOWN) {
        spool_down d;
        memcpy(&d, m->data, sizeof d);
        if (atomic_fetch_add(&c->downs, 1) == 0)
            atomic_store(&c->before_down, atomic_load(&c->received));
        atomic_store(&c->last_down_reason, d.reason);
        return;
    }
    if (m->type == SPOOL_MSG_NODEUP) {
        atomic_fetch_add(&c->nodeups, 1);
        return;
    }
    if (m->type == SPOOL_MSG_NODEDOWN) {
        spool_node_event e;
        memcpy(&e, m->data, sizeof e);
        memcpy(c->nodedown_reason, e.reason, sizeof c->nodedown_reason);
        atomic_fetch_add(&c->nodedowns, 1);
        return;
    }
    if (m->type == 7) { /* monitor the actor in the data */
        spool_id target;
        memcpy(&target, m->data, sizeof target);
        assert_int_equal(spool_monitor(ctx, target), 0);
        return;
    }
    if (m->type == 8) { /* node monitor of the name in the data */
        char name[64] = "";
        memcpy(name, m->data, m->size < 63 ? m->size : 63);
        assert_int_equal(spool_node_monitor(ctx, name, 1), 0);
        return;
    }
    if (m->request_id) { /* an echo */
        atomic_fetch_add(&c->requests, 1);
        spool_reply(spool_ctx_runtime(ctx), m, 2, m->data, m->size);
        return;
    }
    if (m->size == sizeof(item)) {
        item it;
        memcpy(&it, m->data, sizeof it);
        if (it.sender < SENDERS) {
            if (it.seq != c->next[it.sender] + 1)
                atomic_fetch_add(&c->out_of_order, 1);
            c->next[it.sender] = it.seq;
        }
    }
    atomic_fetch_add(&c->received, 1);
}

static const spool_behavior collector_behavior = {.name = "collector", .handle = collector_handle};

/* A sender: told {target, sender index, count, stop_after}, it sends count items to target (and
 * stops itself after, when stop_after). */
typedef struct order {
    spool_id target;
    uint32_t sender, count, stop_after;
    atomic_long *refused; /* sends that returned an error */
    atomic_long *accepted;
} order;

static void sender_handle(spool_ctx *ctx, void *state, const spool_message *m) {
    order o;
    memcpy(&o, m->data, sizeof o);
    spool_runtime *rt = spool_ctx_runtime(ctx);
    for (uint32_t i = 1; i <= o.count; i++) {
        item it = {o.sender, i};
        int rc = spool_send(rt, o.target, 1, &it, sizeof it);
        if (rc != 0 && o.refused)
            atomic_fetch_add(o.refused, 1);
        else if (rc == 0 && o.accepted)
            atomic_fetch_add(o.accepted, 1);
    }
    if (o.stop_after)
        spool_actor_stop(rt, spool_self(ctx), 5);
}

static const spool_behavior sender_behavior = {.name = "sender", .handle = sender_handle};

/* A caller: on any message {target}, calls it (echo) and records the answer. */
typedef struct caller {
    atomic_int status;
    atomic_int done;
    char reply[32];
    spool_id whereis;
} caller;

static void caller_reply(spool_ctx *ctx, void *state, int status, const spool_message *reply,
                         void *arg) {
    caller *c = state;
    if (status == 0 && reply && reply->size <= sizeof c->reply)
        memcpy(c->reply, reply->data, reply->size);
    if (status == 0 && reply && reply->size == sizeof(spool_id) && arg)
        memcpy(&c->whereis, reply->data, sizeof c->whereis);
    atomic_store(&c->status, status);
    atomic_store(&c->done, 1);
}

static void caller_handle(spool_ctx *ctx, void *state, const spool_message *m) {
    spool_id target;
    if (m->type == 3) { /* whereis "name" on node "b" */
        int rc = spool_node_whereis(ctx, "b", m->data, 5000, caller_reply, (void *)1);
        assert_int_equal(rc, 0);
        return;
    }
    memcpy(&target, m->data, sizeof target);
    int rc = spool_call(ctx, target, 1, "ping", 5, 5000, caller_reply, NULL);
    if (rc != 0) {
        caller *c = state;
        atomic_store(&c->status, rc);
        atomic_store(&c->done, 1);
    }
}

static const spool_behavior caller_behavior = {.name = "caller", .handle = caller_handle};

/* Takes requests and never answers them (until it ends). */
static void silent_handle(spool_ctx *ctx, void *state, const spool_message *m) {
    atomic_fetch_add((atomic_long *)state, 1);
}

static const spool_behavior silent_behavior = {.name = "silent", .handle = silent_handle};

/* Calls the id in the data with no timeout. */
static void patient_handle(spool_ctx *ctx, void *state, const spool_message *m) {
    spool_id target;
    memcpy(&target, m->data, sizeof target);
    assert_int_equal(spool_call(ctx, target, 1, "?", 1, 0, caller_reply, NULL), 0);
}

static const spool_behavior patient_behavior = {.name = "patient", .handle = patient_handle};

/* Calls the id in the data with a 50 ms timeout. */
static void impatient_handle(spool_ctx *ctx, void *state, const spool_message *m) {
    spool_id target;
    memcpy(&target, m->data, sizeof target);
    assert_int_equal(spool_call(ctx, target, 1, "?", 1, 50, caller_reply, NULL), 0);
}

static const spool_behavior impatient_behavior = {.name = "impatient", .handle = impatient_handle};

/* The calls a node's registry holds in flight now. */
static uint64_t calls_in_flight(node_box *b) {
    return pr_load_64(&((remote_state *)b->rt->remote)->calls_live);
}

static spool_id spawn(node_box *b, const spool_behavior *behavior, void *state, const char *name) {
    spool_spawn_opts opts = spool_spawn_opts_default();
    opts.name = name;
    spool_id id = 0;
    assert_int_equal(spool_spawn(b->rt, behavior, state, &opts, &id), 0);
    return id;
}

/* A silent actor on `on` (it counts requests in *asked, from 0, and never answers), as `from`
 * sees it. */
static spool_id silent_on(node_box *on, atomic_long *asked, node_box *from) {
    atomic_store(asked, 0);
    return id_seen_from(on, spawn(on, &silent_behavior, asked, NULL), from);
}

/* ---------------------------------------------------------------------------------------------- */
/* Tests                                                                                          */

static void test_sends_arrive_exactly_once_in_order_per_sender(void **state) {
    node_box a, b;
    pair_start(&a, &b, 100, 3000, 0, 0);
    static collector c;
    memset(&c, 0, sizeof c);
    spool_id target = spawn(&b, &collector_behavior, &c, "collector");
    spool_id remote = id_seen_from(&b, target, &a);
    long per = support_stress(50000);
    for (uint32_t s = 0; s < SENDERS; s++) {
        spool_id sender = spawn(&a, &sender_behavior, NULL, NULL);
        order o = {remote, s, (uint32_t)per, 0, NULL, NULL};
        assert_int_equal(spool_send(a.rt, sender, 1, &o, sizeof o), 0);
    }
    WAIT_FOR(atomic_load(&c.received) >= per * SENDERS);
    usleep(50000);
    assert_int_equal(atomic_load(&c.received), per * SENDERS);
    assert_int_equal(atomic_load(&c.out_of_order), 0);
    for (int r = 0; r < SPOOL_DEAD_REASON_COUNT; r++)
        assert_int_equal(support_dead(a.rt, (spool_dead_reason)r), 0);
    node_finish(&b);
    node_finish(&a);
}

static void test_call_reply_and_whereis_across_nodes(void **state) {
    node_box a, b;
    pair_start(&a, &b, 100, 3000, 0, 0);
    static collector echo;
    memset(&echo, 0, sizeof echo);
    spool_id target = spawn(&b, &collector_behavior, &echo, "echo");
    spool_id remote = id_seen_from(&b, target, &a);

    /* From an actor of a. */
    static caller k;
    memset(&k, 0, sizeof k);
    spool_id call = spawn(&a, &caller_behavior, &k, NULL);
    assert_int_equal(spool_send(a.rt, call, 1, &remote, sizeof remote), 0);
    WAIT_FOR(atomic_load(&k.done));
    assert_int_equal(atomic_load(&k.status), 0);
    assert_string_equal(k.reply, "ping");

    /* From outside the runtime: a blocking call. */
    spool_response *response = NULL;
    assert_int_equal(spool_call_wait(a.rt, remote, 1, "pong", 5, 5000, &response), 0);
    assert_string_equal(spool_response_message(response)->data, "pong");
    assert_int_equal(spool_response_message(response)->type, 2);
    spool_response_destroy(&response);

    /* whereis on b, asked from a: the id comes back usable here. */
    memset(&k, 0, sizeof k);
    assert_int_equal(spool_send(a.rt, call, 3, "echo", 5), 0);
    WAIT_FOR(atomic_load(&k.done));
    assert_int_equal(atomic_load(&k.status), 0);
    assert_int_equal(k.whereis, remote);
    memset(&k, 0, sizeof k);
    assert_int_equal(spool_send(a.rt, call, 3, "nobody", 7), 0);
    WAIT_FOR(atomic_load(&k.done));
    assert_int_equal(atomic_load(&k.status), SPOOL_ENOENT);
    assert_int_equal(atomic_load(&echo.requests), 2);
    node_finish(&b);
    node_finish(&a);
}

static void test_remote_monitor_sees_messages_before_the_exit_and_noproc(void **state) {
    node_box a, b;
    pair_start(&a, &b, 100, 3000, 0, 0);
    static collector w;
    memset(&w, 0, sizeof w);
    spool_id watcher = spawn(&a, &collector_behavior, &w, NULL);
    spool_id sender = spawn(&b, &sender_behavior, NULL, NULL);
    spool_id remote_sender = id_seen_from(&b, sender, &a);
    spool_id remote_watcher = id_seen_from(&a, watcher, &b);
    assert_int_equal(spool_send(a.rt, watcher, 7, &remote_sender, sizeof remote_sender), 0);
    /* The monitor is in place once b's actor has it: a round trip through b's sender mailbox. */
    usleep(200000);
    long n = support_stress(20000);
    order o = {remote_watcher, 0, (uint32_t)n, 1, NULL, NULL};
    assert_int_equal(spool_send(b.rt, sender, 1, &o, sizeof o), 0);
    WAIT_FOR(atomic_load(&w.downs) == 1);
    assert_int_equal(atomic_load(&w.before_down), n); /* the exit never overtakes */
    assert_int_equal(atomic_load(&w.last_down_reason), 5);
    assert_int_equal(atomic_load(&w.out_of_order), 0);

    /* A monitor of an actor that is gone: noproc. */
    assert_int_equal(spool_send(a.rt, watcher, 7, &remote_sender, sizeof remote_sender), 0);
    WAIT_FOR(atomic_load(&w.downs) == 2);
    assert_int_equal(atomic_load(&w.last_down_reason), SPOOL_EXIT_NOPROC);
    node_finish(&b);
    node_finish(&a);
}

static void test_node_down_fires_noconnection_and_counts_node_down(void **state) {
    node_box a, b;
    pair_start(&a, &b, 100, 3000, 0, 0);
    static collector w;
    memset(&w, 0, sizeof w);
    spool_id watcher = spawn(&a, &collector_behavior, &w, NULL);
    static collector c;
    memset(&c, 0, sizeof c);
    spool_id target = spawn(&b, &collector_behavior, &c, NULL);
    spool_id remote = id_seen_from(&b, target, &a);
    assert_int_equal(spool_send(a.rt, watcher, 8, "b", 1), 0);
    assert_int_equal(spool_send(a.rt, watcher, 7, &remote, sizeof remote), 0);
    usleep(200000);
    assert_int_equal(atomic_load(&w.downs), 0);
    node_finish(&b); /* GOODBYE */
    WAIT_FOR(atomic_load(&w.downs) == 1 && atomic_load(&w.nodedowns) == 1);
    assert_int_equal(atomic_load(&w.last_down_reason), SPOOL_EXIT_NOCONNECTION);
    assert_string_equal(w.nodedown_reason, "goodbye");
    assert_false(is_member(&a, "b"));
    /* Sends to it now: node_down. */
    assert_int_equal(spool_send(a.rt, remote, 1, "x", 1), SPOOL_ENOENT);
    assert_int_equal(support_dead(a.rt, SPOOL_DEAD_NODE_DOWN), 1);
    /* A monitor now: noconnection at once. */
    assert_int_equal(spool_send(a.rt, watcher, 7, &remote, sizeof remote), 0);
    WAIT_FOR(atomic_load(&w.downs) == 2);
    assert_int_equal(atomic_load(&w.last_down_reason), SPOOL_EXIT_NOCONNECTION);
    node_finish(&a);
}

/* A call in flight to a node that goes away is answered at once, not at a timeout (it has none). */
static void test_calls_in_flight_fail_when_the_node_goes_down(void **state) {
    node_box a, b;
    pair_start(&a, &b, 100, 3000, 0, 0);
    static atomic_long asked;
    spool_id remote = silent_on(&b, &asked, &a);
    static caller k;
    memset(&k, 0, sizeof k);
    spool_id patient = spawn(&a, &patient_behavior, &k, NULL);
    assert_int_equal(spool_send(a.rt, patient, 1, &remote, sizeof remote), 0);
    WAIT_FOR(atomic_load(&asked) == 1);
    assert_false(atomic_load(&k.done));
    int64_t start = now_ms();
    node_finish(&b);
    WAIT_FOR(atomic_load(&k.done));
    assert_int_equal(atomic_load(&k.status), SPOOL_ENOENT);
    assert_true(now_ms() - start < 5000);
    node_finish(&a);
}

/* A call that stops waiting (its timeout, its caller's end, a blocking caller's timeout) is no
 * longer in flight: the registry forgets it instead of keeping it until the node goes down. */
static void test_calls_that_stop_waiting_are_forgotten(void **state) {
    node_box a, b;
    pair_start(&a, &b, 100, 3000, 0, 0);
    static atomic_long asked;
    spool_id remote = silent_on(&b, &asked, &a);
    /* From an actor, with a timeout. */
    static caller k;
    memset(&k, 0, sizeof k);
    spool_id impatient = spawn(&a, &impatient_behavior, &k, NULL);
    assert_int_equal(spool_send(a.rt, impatient, 1, &remote, sizeof remote), 0);
    WAIT_FOR(atomic_load(&k.done));
    assert_int_equal(atomic_load(&k.status), SPOOL_ETIMEDOUT);
    assert_int_equal(calls_in_flight(&a), 0);
    /* From an actor that ends while it waits. */
    static caller p;
    memset(&p, 0, sizeof p);
    spool_id patient = spawn(&a, &patient_behavior, &p, NULL);
    assert_int_equal(spool_send(a.rt, patient, 1, &remote, sizeof remote), 0);
    WAIT_FOR(atomic_load(&asked) == 2);
    assert_int_equal(calls_in_flight(&a), 1);
    assert_int_equal(spool_actor_stop(a.rt, patient, 0), 0);
    WAIT_FOR(calls_in_flight(&a) == 0);
    assert_false(atomic_load(&p.done));
    /* From outside, blocking. */
    spool_response *r = NULL;
    assert_int_equal(spool_call_wait(a.rt, remote, 1, "?", 1, 50, &r), SPOOL_ETIMEDOUT);
    assert_null(r);
    assert_int_equal(calls_in_flight(&a), 0);
    WAIT_FOR(atomic_load(&asked) == 3);
    node_finish(&b);
    node_finish(&a);
}

static void test_a_restarted_node_makes_old_ids_stale(void **state) {
    node_box a, b;
    pair_start(&a, &b, 100, 3000, 0, 0);
    static collector c;
    memset(&c, 0, sizeof c);
    spool_id old = id_seen_from(&b, spawn(&b, &collector_behavior, &c, NULL), &a);
    assert_int_equal(spool_send(a.rt, old, 1, "x", 1), 0);
    WAIT_FOR(atomic_load(&c.received) == 1);
    node_finish(&b);
    WAIT_FOR(!is_member(&a, "b"));
    char join[300];
    snprintf(join, sizeof join, "a@%s", a.endpoint);
    node_start(&b, "b", join, 100, 3000, 0, 0);
    WAIT_FOR(is_member(&a, "b"));
    static collector c2;
    memset(&c2, 0, sizeof c2);
    spool_id fresh = id_seen_from(&b, spawn(&b, &collector_behavior, &c2, NULL), &a);
    assert_int_not_equal(fresh, old);
    /* The same slot in the new life: the old id must not reach it. */
    assert_int_equal(spool_send(a.rt, old, 1, "x", 1), SPOOL_ENOENT);
    assert_int_equal(support_dead(a.rt, SPOOL_DEAD_STALE_INCARNATION), 1);
    assert_int_equal(spool_send(a.rt, fresh, 1, "x", 1), 0);
    WAIT_FOR(atomic_load(&c2.received) == 1);
    assert_int_equal(atomic_load(&c.received), 1);
    node_finish(&b);
    node_finish(&a);
}

static void test_unknown_node_and_too_large_are_counted(void **state) {
    node_box a, b;
    pair_start(&a, &b, 100, 3000, 1 << 20, 4 << 20);
    static collector c;
    memset(&c, 0, sizeof c);
    spool_id remote = id_seen_from(&b, spawn(&b, &collector_behavior, &c, NULL), &a);
    /* An index never given out. */
    assert_int_equal(spool_send(a.rt, (spool_id)999 << 48 | 5, 1, "x", 1), SPOOL_ENOENT);
    assert_int_equal(support_dead(a.rt, SPOOL_DEAD_UNKNOWN_NODE), 1);
    /* A life of a node never met. */
    spool_remote_id never = {.node = "zz", .incarnation = 77, .local = 5};
    spool_id zz;
    assert_int_equal(spool_id_import(a.rt, &never, &zz), 0);
    assert_int_equal(spool_send(a.rt, zz, 1, "x", 1), SPOOL_ENOENT);
    assert_int_equal(support_dead(a.rt, SPOOL_DEAD_UNKNOWN_NODE), 2);
    /* Over max_message (1 MiB here). */
    static char big[(1 << 20) + 1];
    assert_int_equal(spool_send(a.rt, remote, 1, big, sizeof big), SPOOL_EMSGSIZE);
    assert_int_equal(support_dead(a.rt, SPOOL_DEAD_TOO_LARGE), 1);
    assert_int_equal(spool_send(a.rt, remote, 1, big, sizeof big - 1), 0);
    WAIT_FOR(atomic_load(&c.received) == 1);
    /* Bad imports. */
    spool_remote_id bad = {.node = "-x", .incarnation = 1, .local = 1};
    assert_int_equal(spool_id_import(a.rt, &bad, &zz), SPOOL_EINVAL);
    bad = (spool_remote_id){.node = "ok", .incarnation = 0, .local = 1};
    assert_int_equal(spool_id_import(a.rt, &bad, &zz), SPOOL_EINVAL);
    bad = (spool_remote_id){.node = "ok", .incarnation = 1, .local = 1ull << 48};
    assert_int_equal(spool_id_import(a.rt, &bad, &zz), SPOOL_EINVAL);
    /* The name rule that import applies, on its own. */
    assert_true(spool_node_name_valid("node-1.eu_west", 14));
    assert_true(spool_node_name_valid("ab", 1)); /* "a": only len bytes count */
    assert_false(spool_node_name_valid(NULL, 1));
    assert_false(spool_node_name_valid("", 0));
    assert_false(spool_node_name_valid(".hidden", 7));
    assert_false(spool_node_name_valid("-opt", 4));
    assert_false(spool_node_name_valid("a b", 3));
    assert_false(spool_node_name_valid("a/data", 6)); /* '/' marks a data DEALER's routing id */
    static const char long_name[SPOOL_NODE_NAME_MAX + 2] =
        "0123456789012345678901234567890123456789012345678901234567890123";
    assert_true(spool_node_name_valid(long_name, SPOOL_NODE_NAME_MAX));
    assert_false(spool_node_name_valid(long_name, SPOOL_NODE_NAME_MAX + 1));
    /* This node's own ids round-trip to themselves. */
    spool_remote_id self;
    spool_id local = spawn(&a, &collector_behavior, &c, NULL);
    assert_int_equal(spool_id_export(a.rt, local, &self), 0);
    assert_string_equal(self.node, "a");
    assert_int_equal(spool_id_import(a.rt, &self, &zz), 0);
    assert_int_equal(zz, local);
    node_finish(&b);
    node_finish(&a);
}

static void test_stop_across_nodes(void **state) {
    node_box a, b;
    pair_start(&a, &b, 100, 3000, 0, 0);
    static collector w, c;
    memset(&w, 0, sizeof w);
    memset(&c, 0, sizeof c);
    spool_id watcher = spawn(&a, &collector_behavior, &w, NULL);
    spool_id remote = id_seen_from(&b, spawn(&b, &collector_behavior, &c, NULL), &a);
    assert_int_equal(spool_send(a.rt, watcher, 7, &remote, sizeof remote), 0);
    usleep(200000);
    assert_int_equal(spool_actor_stop(a.rt, remote, 9), 0);
    WAIT_FOR(atomic_load(&w.downs) == 1);
    assert_int_equal(atomic_load(&w.last_down_reason), 9);
    node_finish(&b);
    node_finish(&a);
}

static void test_config_file_node_section(void **state) {
    char path[] = "/tmp/spool-node-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char text[] = "[runtime]\nthreads = 1\n[node]\nname = n1\nlisten = tcp://127.0.0.1:0\n"
                        "join = a@tcp://127.0.0.1:1, b@tcp://127.0.0.1:2\ninsecure = true\n"
                        "heartbeat_ms = 200\ndown_after_ms = 1000\n";
    assert_int_equal(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    spool_node_config c;
    spool_node_config_init(&c);
    char err[256] = "";
    assert_int_equal(spool_node_config_load(&c, path, err, sizeof err), 0);
    assert_string_equal(c.name, "n1");
    assert_int_equal(c.join_count, 2);
    assert_string_equal(c.join[1], "b@tcp://127.0.0.1:2");
    assert_int_equal(c.insecure, 1);
    assert_int_equal(c.heartbeat_ms, 200);
    spool_node_config_clear(&c);
    assert_null(c.name);
    FILE *f = fopen(path, "w");
    fputs("[node]\nname = n1\nbogus = 1\n", f);
    fclose(f);
    assert_int_equal(spool_node_config_load(&c, path, err, sizeof err), SPOOL_ECONFIG);
    assert_non_null(strstr(err, ":3: unknown key 'bogus'"));
    spool_node_config_clear(&c);
    unlink(path);
    spool_node_config_init(&c);
    assert_int_equal(spool_node_config_load(&c, "/nonexistent/x.ini", err, sizeof err),
                     SPOOL_ENOENT);
    spool_node_config_clear(&c);
}

static void test_bad_node_configs_are_refused_with_reasons(void **state) {
    spool_runtime *rt = support_runtime(1);
    spool_node *node = NULL;
    spool_node_config c;
    spool_node_config_init(&c);
    char err[256] = "";
    assert_int_equal(spool_node_create(rt, &c, &node, err, sizeof err), SPOOL_EINVAL);
    assert_non_null(strstr(err, "name"));
    c.name = "a";
    c.listen = "tcp://127.0.0.1:0";
    assert_int_equal(spool_node_create(rt, &c, &node, err, sizeof err), SPOOL_EINVAL);
    assert_non_null(strstr(err, "keys"));
    c.insecure = 1;
    c.listen = "tcp://0.0.0.0:0"; /* beyond loopback without keys */
    assert_int_not_equal(spool_node_create(rt, &c, &node, err, sizeof err), 0);
    assert_null(node);
    assert_null(spool_node_self(rt));
    assert_int_equal(spool_node_members(rt, NULL, 0, NULL), SPOOL_ESTATE);
    spool_runtime_destroy(&rt);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sends_arrive_exactly_once_in_order_per_sender),
        cmocka_unit_test(test_call_reply_and_whereis_across_nodes),
        cmocka_unit_test(test_remote_monitor_sees_messages_before_the_exit_and_noproc),
        cmocka_unit_test(test_node_down_fires_noconnection_and_counts_node_down),
        cmocka_unit_test(test_calls_in_flight_fail_when_the_node_goes_down),
        cmocka_unit_test(test_calls_that_stop_waiting_are_forgotten),
        cmocka_unit_test(test_a_restarted_node_makes_old_ids_stale),
        cmocka_unit_test(test_unknown_node_and_too_large_are_counted),
        cmocka_unit_test(test_stop_across_nodes),
        cmocka_unit_test(test_config_file_node_section),
        cmocka_unit_test(test_bad_node_configs_are_refused_with_reasons),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
