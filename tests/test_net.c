/*
 * test_net.c - cmocka tests of nodes/net.c, nodes/net_thread.c and nodes/session.c with real
 * sockets on 127.0.0.1: nodes in this process (insecure and CURVE), nodes in forked children that
 * are killed or frozen, a raw DEALER that sends garbage or plays a peer, keys that are not allowed
 * or claim another name; membership, failure detection and the data path (order per sender, large
 * messages in fragments, overload, messages given back). Every wait is bounded: "never happens"
 * means "not within QUIET_MS"; a child is forked before this process has any thread, and dies with
 * it (PR_SET_PDEATHSIG) or after CHILD_LIFE_S at the latest. SPOOL_TEST_NET_MESSAGES scales the
 * stress test (messages per sender thread, default 200000).
 */
#include "nodes/keys.h"
#include "nodes/net.h"
#include "nodes/wire.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "scratch.h"
#include <cmocka.h>

#define ARRIVE_MS 5000 /* how long something that should happen may take (sanitizer builds too) */
#define QUIET_MS 500   /* how long nothing must happen for "it never happens" */
#define CHILD_LIFE_S 60
#define FAST_HEARTBEAT_MS 50 /* the failure-detection tests */
#define FAST_DOWN_AFTER_MS 300
#define HEARTBEAT_MS 100 /* the others */
#define DOWN_AFTER_MS 2000

/* ---------------------------------------------------------------------------------------------- */
/* Events                                                                                         */
/* ---------------------------------------------------------------------------------------------- */

typedef struct recorded {
    net_event_kind kind;
    char name[NET_NAME_SIZE];
    uint64_t incarnation;
    char reason[256];
    int64_t at_ns;
    net_peer *peer;
} recorded;

/* What a node's on_event saw, in order. */
typedef struct recorder {
    pthread_mutex_t lock;
    pthread_cond_t changed; /* CLOCK_MONOTONIC */
    recorded events[128];
    size_t count;
} recorder;

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static int64_t ms_since(int64_t start_ns) { return (now_ns() - start_ns) / 1000000; }

static void recorder_init(recorder *r) {
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    pthread_condattr_t attributes;
    pthread_condattr_init(&attributes);
    pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
    pthread_cond_init(&r->changed, &attributes);
    pthread_condattr_destroy(&attributes);
}

static void recorder_destroy(recorder *r) {
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->changed);
}

static void record(void *user, const net_event *event) {
    recorder *r = user;
    pthread_mutex_lock(&r->lock);
    if (r->count < sizeof r->events / sizeof r->events[0]) {
        recorded *e = &r->events[r->count++];
        e->kind = event->kind;
        snprintf(e->name, sizeof e->name, "%s", event->name);
        e->incarnation = event->incarnation;
        snprintf(e->reason, sizeof e->reason, "%s", event->reason ? event->reason : "");
        e->at_ns = now_ns();
        e->peer = event->peer;
    }
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->lock);
}

static bool matches(const recorded *e, net_event_kind kind, const char *name, const char *reason) {
    return e->kind == kind && strcmp(e->name, name) == 0 &&
           (reason == NULL || strncmp(e->reason, reason, strlen(reason)) == 0);
}

/* Waits (at most timeout_ms) for an event like this at index `from` or later; its copy into *out
 * (may be NULL). Returns its index, or -1. */
static int wait_event_from(recorder *r, size_t from, net_event_kind kind, const char *name,
                           const char *reason, int timeout_ms, recorded *out) {
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    int found = -1;
    pthread_mutex_lock(&r->lock);
    for (;;) {
        for (size_t i = from; i < r->count && found < 0; i++)
            if (matches(&r->events[i], kind, name, reason)) {
                found = (int)i;
                if (out != NULL)
                    *out = r->events[i];
            }
        if (found >= 0 || pthread_cond_timedwait(&r->changed, &r->lock, &deadline) == ETIMEDOUT)
            break;
    }
    if (found < 0) /* one last look after the timeout */
        for (size_t i = from; i < r->count && found < 0; i++)
            if (matches(&r->events[i], kind, name, reason)) {
                found = (int)i;
                if (out != NULL)
                    *out = r->events[i];
            }
    pthread_mutex_unlock(&r->lock);
    return found;
}

static void print_events(const char *who, recorder *r) {
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->count; i++)
        print_message("  %s event %zu: %s %s %s\n", who, i,
                      r->events[i].kind == NET_NODE_UP ? "UP" : "DOWN", r->events[i].name,
                      r->events[i].reason);
    pthread_mutex_unlock(&r->lock);
}

static recorded expect_event(recorder *r, net_event_kind kind, const char *name,
                             const char *reason) {
    recorded e;
    if (wait_event_from(r, 0, kind, name, reason, ARRIVE_MS, &e) < 0) {
        print_events("?", r);
        fail_msg("no %s of %s (%s) within %d ms", kind == NET_NODE_UP ? "UP" : "DOWN", name,
                 reason ? reason : "any reason", ARRIVE_MS);
    }
    return e;
}

static size_t event_count(recorder *r) {
    pthread_mutex_lock(&r->lock);
    size_t count = r->count;
    pthread_mutex_unlock(&r->lock);
    return count;
}

static size_t count_events(recorder *r, net_event_kind kind, const char *name) {
    size_t count = 0;
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->count; i++)
        if (matches(&r->events[i], kind, name, NULL))
            count++;
    pthread_mutex_unlock(&r->lock);
    return count;
}

/* ---------------------------------------------------------------------------------------------- */
/* Nodes, keys, children                                                                          */
/* ---------------------------------------------------------------------------------------------- */

static net_node *start_node(const char *name, recorder *r, const char *keys_dir,
                            uint32_t heartbeat_ms, uint32_t down_after_ms) {
    net_config config = {.name = name,
                         .cluster = "test",
                         .listen = "tcp://127.0.0.1:0",
                         .keys_dir = keys_dir,
                         .insecure = keys_dir == NULL,
                         .heartbeat_ms = heartbeat_ms,
                         .down_after_ms = down_after_ms,
                         .on_event = r != NULL ? record : NULL,
                         .user = r};
    net_node *node = NULL;
    char err[256] = "";
    int rc = net_node_create(&config, &node, err, sizeof err);
    if (rc != 0)
        fail_msg("net_node_create %s: %d %s", name, rc, err);
    assert_non_null(node);
    assert_true(strncmp(net_node_endpoint(node), "tcp://127.0.0.1:", 16) == 0);
    return node;
}

static void join(net_node *node, const char *name, const char *endpoint) {
    char peer[NET_NAME_SIZE + NET_ENDPOINT_SIZE + 1], err[256] = "";
    snprintf(peer, sizeof peer, "%s@%s", name, endpoint);
    int rc = net_node_join(node, peer, err, sizeof err);
    if (rc != 0)
        fail_msg("join %s: %d %s", peer, rc, err);
}

/* The stats of peer `name` as node sees it; zeros (state 0) when it has none. */
static net_peer_stats peer_stats(net_node *node, const char *name) {
    net_peer_stats peers[8];
    net_stats stats;
    net_node_stats(node, &stats, peers, 8);
    for (size_t i = 0; i < stats.peer_count && i < 8; i++)
        if (strcmp(peers[i].name, name) == 0)
            return peers[i];
    net_peer_stats none;
    memset(&none, 0, sizeof none);
    return none;
}

static net_stats node_stats(net_node *node) {
    net_stats stats;
    net_node_stats(node, &stats, NULL, 0);
    return stats;
}

static void assert_members(net_node *node, const char *const *names, size_t count) {
    char members[8][NET_NAME_SIZE];
    size_t up = 0;
    net_node_members(node, members, 8, &up);
    assert_int_equal(up, count);
    for (size_t i = 0; i < count; i++) {
        bool found = false;
        for (size_t j = 0; j < up; j++)
            found = found || strcmp(members[j], names[i]) == 0;
        if (!found)
            fail_msg("%s is not a member", names[i]);
    }
}

/* Waits until peer `name` of `node` has acknowledged at least `acks` heartbeats. */
static void wait_acks(net_node *node, const char *name, uint64_t acks) {
    int64_t start = now_ns();
    while (peer_stats(node, name).acks_received < acks) {
        if (ms_since(start) > ARRIVE_MS)
            fail_msg("%s acknowledged %llu heartbeats, want %llu", name,
                     (unsigned long long)peer_stats(node, name).acks_received,
                     (unsigned long long)acks);
        usleep(2000);
    }
}

/* Copies file `from` to `to` with `mode`. */
static void copy_file(const char *from, const char *to, mode_t mode) {
    char bytes[256];
    int in = open(from, O_RDONLY);
    assert_true(in >= 0);
    ssize_t n = read(in, bytes, sizeof bytes);
    close(in);
    assert_true(n > 0);
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL, mode);
    assert_true(out >= 0);
    assert_int_equal(write(out, bytes, (size_t)n), n);
    fchmod(out, mode);
    close(out);
}

/* A scratch directory for keys; remove it with remove_tree. */
static void make_scratch(char *dir, size_t size) {
    snprintf(dir, size, "/tmp/spool-test-net-XXXXXX");
    assert_non_null(mkdtemp(dir));
}

static void keygen(const char *dir, const char *name) {
    char err[256] = "";
    int rc = keys_generate(dir, name, 0, NULL, err, sizeof err);
    if (rc != 0)
        fail_msg("keys_generate %s/%s: %s", dir, name, err);
}

/* A node in a child process: insecure, on 127.0.0.1, its endpoint reported through a pipe. */
typedef struct child {
    pid_t pid;
    char endpoint[NET_ENDPOINT_SIZE];
} child;

static child start_child(const char *name, uint32_t heartbeat_ms, uint32_t down_after_ms) {
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    child c;
    memset(&c, 0, sizeof c);
    c.pid = fork();
    assert_true(c.pid >= 0);
    if (c.pid == 0) {
        close(fds[0]);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        alarm(CHILD_LIFE_S);
        net_config config = {.name = name,
                             .cluster = "test",
                             .listen = "tcp://127.0.0.1:0",
                             .insecure = true,
                             .heartbeat_ms = heartbeat_ms,
                             .down_after_ms = down_after_ms};
        net_node *node = NULL;
        char err[256] = "";
        if (net_node_create(&config, &node, err, sizeof err) != 0) {
            fprintf(stderr, "child %s: %s\n", name, err);
            _exit(2);
        }
        const char *endpoint = net_node_endpoint(node);
        if (write(fds[1], endpoint, strlen(endpoint) + 1) < 0)
            _exit(3);
        for (;;)
            pause();
    }
    close(fds[1]);
    struct pollfd item = {fds[0], POLLIN, 0};
    size_t got = 0;
    int64_t start = now_ns();
    while (got == 0 || c.endpoint[got - 1] != '\0') {
        int left = ARRIVE_MS - (int)ms_since(start);
        if (left <= 0 || poll(&item, 1, left) <= 0)
            fail_msg("the child never told its endpoint");
        ssize_t n = read(fds[0], c.endpoint + got, sizeof c.endpoint - 1 - got);
        if (n <= 0)
            fail_msg("the child died before telling its endpoint");
        got += (size_t)n;
    }
    close(fds[0]);
    return c;
}

/* Freezes the child and returns once it is stopped: all of its threads. kill() alone returns
 * before that (the kernel stops the other threads only once the one that takes the signal runs,
 * which on a loaded machine can be milliseconds later, time enough to answer a packet). */
static void freeze_child(child *c) {
    assert_int_equal(kill(c->pid, SIGSTOP), 0);
    int status = 0;
    assert_int_equal(waitpid(c->pid, &status, WUNTRACED), c->pid);
    assert_true(WIFSTOPPED(status));
}

static void kill_child(child *c) {
    if (c->pid <= 0)
        return;
    kill(c->pid, SIGKILL);
    int status;
    waitpid(c->pid, &status, 0);
    c->pid = 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* In one process, insecure                                                                       */
/* ---------------------------------------------------------------------------------------------- */

static void test_two_nodes_see_each_other_up_and_heartbeat(void **state) {
    (void)state;
    recorder ra, rb;
    recorder_init(&ra);
    recorder_init(&rb);
    net_node *a = start_node("a", &ra, NULL, HEARTBEAT_MS, DOWN_AFTER_MS);
    net_node *b = start_node("b", &rb, NULL, HEARTBEAT_MS, DOWN_AFTER_MS);
    int64_t start = now_ns();
    join(a, "b", net_node_endpoint(b));
    recorded up_b = expect_event(&ra, NET_NODE_UP, "b", NULL);
    recorded up_a = expect_event(&rb, NET_NODE_UP, "a", NULL);
    print_message("  UP at a after %lld ms, at b after %lld ms\n",
                  (long long)((up_b.at_ns - start) / 1000000),
                  (long long)((up_a.at_ns - start) / 1000000));
    assert_true(up_b.incarnation != 0 && up_a.incarnation != 0);
    const char *only_b[] = {"b"}, *only_a[] = {"a"};
    assert_members(a, only_b, 1);
    assert_members(b, only_a, 1);

    wait_acks(a, "b", 3);
    wait_acks(b, "a", 3);
    net_peer_stats sb = peer_stats(a, "b");
    assert_int_equal(sb.state, NET_PEER_UP);
    assert_int_equal(sb.ups, 1);
    assert_int_equal(sb.downs, 0);
    assert_true(sb.incarnation == up_b.incarnation);
    assert_string_equal(sb.endpoint, net_node_endpoint(b));
    assert_true(sb.heartbeats_sent >= 3 && sb.heartbeats_received >= 1);
    assert_true(sb.rtt_ns > 0 && sb.rtt_ns < (uint64_t)ARRIVE_MS * 1000000);
    assert_true(sb.bytes_in > 0 && sb.bytes_out > 0);
    print_message("  rtt %.1f us, %llu heartbeats sent\n", sb.rtt_ns / 1000.0,
                  (unsigned long long)sb.heartbeats_sent);
    /* b learned where a listens from its HELLO */
    assert_string_equal(peer_stats(b, "a").endpoint, net_node_endpoint(a));
    net_stats stats = node_stats(a);
    for (int i = 0; i < NET_MALFORMED_COUNT; i++)
        assert_int_equal(stats.malformed[i], 0);
    assert_int_equal(stats.peer_count, 1);

    /* b goes: a hears its GOODBYE (no waiting for a timeout) before b's destroy returns */
    start = now_ns();
    net_node_destroy(&b);
    assert_null(b);
    int64_t destroy_ms = ms_since(start);
    recorded down = expect_event(&ra, NET_NODE_DOWN, "b", "goodbye");
    print_message("  destroy took %lld ms; DOWN at a %lld ms after it began\n",
                  (long long)destroy_ms, (long long)((down.at_ns - start) / 1000000));
    assert_true(destroy_ms < 500);
    assert_true(down.at_ns - start < 500 * 1000000ll);
    assert_true(down.incarnation == up_b.incarnation);
    expect_event(&rb, NET_NODE_DOWN, "a", "shutdown");
    assert_members(a, NULL, 0);
    assert_int_equal(peer_stats(a, "b").state, NET_PEER_DOWN);
    /* and a tries nothing more: no UP, no DOWN */
    usleep(QUIET_MS * 1000);
    assert_int_equal(event_count(&ra), 2);
    net_node_destroy(&a);
    assert_int_equal(event_count(&ra), 2); /* nothing UP to say shutdown to */
    recorder_destroy(&ra);
    recorder_destroy(&rb);
}

static void test_three_nodes_all_meet_and_one_leaves(void **state) {
    (void)state;
    recorder r[3];
    net_node *nodes[3];
    const char *names[3] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        recorder_init(&r[i]);
        nodes[i] = start_node(names[i], &r[i], NULL, HEARTBEAT_MS, DOWN_AFTER_MS);
    }
    /* b and c join a; c joins b too (it would learn b from a anyway) */
    join(nodes[1], "a", net_node_endpoint(nodes[0]));
    join(nodes[2], "a", net_node_endpoint(nodes[0]));
    join(nodes[2], "b", net_node_endpoint(nodes[1]));
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            if (i != j)
                expect_event(&r[i], NET_NODE_UP, names[j], NULL);
    const char *a_sees[] = {"b", "c"}, *b_sees[] = {"a", "c"}, *c_sees[] = {"a", "b"};
    assert_members(nodes[0], a_sees, 2);
    assert_members(nodes[1], b_sees, 2);
    assert_members(nodes[2], c_sees, 2);

    net_node_destroy(&nodes[2]);
    expect_event(&r[0], NET_NODE_DOWN, "c", "goodbye");
    expect_event(&r[1], NET_NODE_DOWN, "c", "goodbye");
    const char *only_b[] = {"b"}, *only_a[] = {"a"};
    assert_members(nodes[0], only_b, 1);
    assert_members(nodes[1], only_a, 1);
    /* a and b still talk */
    uint64_t acks = peer_stats(nodes[0], "b").acks_received;
    wait_acks(nodes[0], "b", acks + 2);
    for (int i = 0; i < 2; i++) {
        net_node_destroy(&nodes[i]);
        assert_int_equal(count_events(&r[i], NET_NODE_DOWN, "c"), 1);
    }
    for (int i = 0; i < 3; i++)
        recorder_destroy(&r[i]);
}

static void test_joining_one_member_meets_them_all(void **state) {
    (void)state;
    char dir[64];
    make_scratch(dir, sizeof dir);
    enum { N = 4 };
    const char *names[N] = {"a", "b", "c", "d"};
    recorder r[N];
    net_node *nodes[N];
    for (int i = 0; i < N; i++) {
        keygen(dir, names[i]);
        recorder_init(&r[i]);
    }
    for (int i = 0; i < N; i++)
        nodes[i] = start_node(names[i], &r[i], dir, HEARTBEAT_MS, DOWN_AFTER_MS);
    /* one join each: b and c to a, d to c; MEMBERS does the rest */
    join(nodes[1], "a", net_node_endpoint(nodes[0]));
    join(nodes[2], "a", net_node_endpoint(nodes[0]));
    join(nodes[3], "c", net_node_endpoint(nodes[2]));
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            if (i != j)
                expect_event(&r[i], NET_NODE_UP, names[j], NULL);
    uint64_t discovered = 0;
    for (int i = 0; i < N; i++) {
        size_t members = 0;
        net_node_members(nodes[i], NULL, 0, &members);
        assert_int_equal(members, N - 1);
        net_stats stats = node_stats(nodes[i]);
        assert_int_equal(stats.peer_count, N - 1);
        discovered += stats.discovered;
        assert_string_equal(peer_stats(nodes[i], names[(i + 1) % N]).endpoint,
                            net_node_endpoint(nodes[(i + 1) % N]));
    }
    /* 6 pairs, 3 made by joins: the others by a MEMBERS (both sides may have learned one) */
    print_message("  %llu joins from MEMBERS\n", (unsigned long long)discovered);
    assert_true(discovered >= 3);
    for (int i = 0; i < N; i++)
        assert_int_equal(event_count(&r[i]), N - 1); /* only UPs: no session was redone */
    for (int i = 0; i < N; i++)
        net_node_destroy(&nodes[i]);
    for (int i = 0; i < N; i++)
        recorder_destroy(&r[i]);
    remove_tree(dir);
}

static void test_two_nodes_joining_each_other_at_once_make_one_session(void **state) {
    (void)state;
    recorder ra, rb;
    recorder_init(&ra);
    recorder_init(&rb);
    net_node *a = start_node("a", &ra, NULL, HEARTBEAT_MS, DOWN_AFTER_MS);
    net_node *b = start_node("b", &rb, NULL, HEARTBEAT_MS, DOWN_AFTER_MS);
    join(a, "b", net_node_endpoint(b));
    join(b, "a", net_node_endpoint(a));
    expect_event(&ra, NET_NODE_UP, "b", NULL);
    expect_event(&rb, NET_NODE_UP, "a", NULL);
    /* joining again changes nothing */
    join(a, "b", net_node_endpoint(b));
    wait_acks(a, "b", 5);
    wait_acks(b, "a", 5);
    assert_int_equal(event_count(&ra), 1);
    assert_int_equal(event_count(&rb), 1);
    assert_int_equal(node_stats(a).peer_count, 1);
    net_node_destroy(&a);
    net_node_destroy(&b);
    recorder_destroy(&ra);
    recorder_destroy(&rb);
}

static void test_a_joiner_waits_for_a_node_that_starts_later(void **state) {
    (void)state;
    recorder ra, rb;
    recorder_init(&ra);
    recorder_init(&rb);
    /* b's endpoint, taken and given back, then listened on again by b */
    net_node *probe = start_node("b", NULL, NULL, HEARTBEAT_MS, DOWN_AFTER_MS);
    char endpoint[NET_ENDPOINT_SIZE];
    snprintf(endpoint, sizeof endpoint, "%s", net_node_endpoint(probe));
    net_node_destroy(&probe);
    net_node *a = start_node("a", &ra, NULL, HEARTBEAT_MS, DOWN_AFTER_MS);
    join(a, "b", endpoint);
    assert_int_equal(peer_stats(a, "b").state == NET_PEER_UP, 0);
    usleep(3 * HEARTBEAT_MS * 1000);
    net_config config = {.name = "b",
                         .cluster = "test",
                         .listen = endpoint,
                         .insecure = true,
                         .heartbeat_ms = HEARTBEAT_MS,
                         .down_after_ms = DOWN_AFTER_MS,
                         .on_event = record,
                         .user = &rb};
    net_node *b = NULL;
    char err[256] = "";
    if (net_node_create(&config, &b, err, sizeof err) != 0)
        skip(); /* someone else took the port meanwhile */
    expect_event(&ra, NET_NODE_UP, "b", NULL);
    expect_event(&rb, NET_NODE_UP, "a", NULL);
    net_node_destroy(&b);
    net_node_destroy(&a);
    recorder_destroy(&ra);
    recorder_destroy(&rb);
}

/* ---------------------------------------------------------------------------------------------- */
/* Bad input                                                                                      */
/* ---------------------------------------------------------------------------------------------- */

/* A valid HELLO (cluster "test" unless `cluster` is not 0) from `name` into buf. */
static int make_hello(unsigned char *buf, size_t size, const char *name, uint64_t cluster) {
    wire_hello hello = {.cluster = cluster, .incarnation = 1, .session = 2, .heartbeat_ms = 100};
    if (cluster == 0) { /* FNV-1a of "test", as net.c computes it */
        uint64_t hash = 0xcbf29ce484222325ull;
        for (const char *c = "test"; *c; c++)
            hash = (hash ^ (unsigned char)*c) * 0x100000001b3ull;
        hello.cluster = hash;
    }
    snprintf(hello.name, sizeof hello.name, "%s", name);
    snprintf(hello.endpoint, sizeof hello.endpoint, "tcp://127.0.0.1:9");
    return wire_hello_write(buf, size, WIRE_HELLO, &hello);
}

static void test_garbage_from_a_raw_dealer_is_counted_and_ignored(void **state) {
    (void)state;
    recorder ra, rb;
    recorder_init(&ra);
    recorder_init(&rb);
    net_node *a = start_node("a", &ra, NULL, HEARTBEAT_MS, DOWN_AFTER_MS);
    net_node *b = start_node("b", &rb, NULL, HEARTBEAT_MS, DOWN_AFTER_MS);
    join(b, "a", net_node_endpoint(a));
    expect_event(&ra, NET_NODE_UP, "b", NULL);
    expect_event(&rb, NET_NODE_UP, "a", NULL);

    void *ctx = zmq_ctx_new();
    void *raw = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(raw, ZMQ_LINGER, &zero, sizeof zero);
    assert_int_equal(zmq_connect(raw, net_node_endpoint(a)), 0);
    unsigned char packet[512];
    /* truncated: 7 bytes, nothing, a HELLO cut short */
    assert_int_equal(zmq_send(raw, "garbage", 7, 0), 7);
    assert_int_equal(zmq_send(raw, "", 0, 0), 0);
    int n = make_hello(packet, sizeof packet, "x", 0);
    assert_true(n > 0);
    assert_int_equal(zmq_send(raw, packet, (size_t)n - 3, 0), n - 3);
    /* bad headers: not a spool packet, a version from the future */
    const char *words = "this is not a spool packet at all";
    assert_int_equal(zmq_send(raw, words, strlen(words), 0), (int)strlen(words));
    wire_heartbeat heartbeat = {.session = 12345, .sent_ns = 1};
    n = wire_heartbeat_write(packet, sizeof packet, WIRE_HEARTBEAT, &heartbeat);
    packet[4] = 2;
    assert_int_equal(zmq_send(raw, packet, (size_t)n, 0), n);
    /* invalid: a trailing byte */
    n = wire_heartbeat_write(packet, sizeof packet, WIRE_HEARTBEAT, &heartbeat);
    assert_int_equal(zmq_send(raw, packet, (size_t)n + 1, 0), n + 1);
    /* frames: two of them */
    assert_int_equal(zmq_send(raw, packet, (size_t)n, ZMQ_SNDMORE), n);
    assert_int_equal(zmq_send(raw, packet, (size_t)n, 0), n);
    /* well formed, but: another cluster; b's name from a connection that is not b's */
    n = make_hello(packet, sizeof packet, "x", 42);
    assert_int_equal(zmq_send(raw, packet, (size_t)n, 0), n);
    n = make_hello(packet, sizeof packet, "b", 0);
    assert_int_equal(zmq_send(raw, packet, (size_t)n, 0), n);
    /* DATA of no session (its sender is no peer): stale */
    wire_batch batch;
    wire_msg msg = {.to = 1, .data = "x", .size = 1};
    assert_int_equal(wire_batch_begin(&batch, packet, sizeof packet, 1, 1), 0);
    assert_int_equal(wire_batch_add(&batch, &msg), 0);
    n = wire_batch_end(&batch);
    assert_int_equal(zmq_send(raw, packet, (size_t)n, 0), n);
    /* a HELLO of its own name, from beyond the loopback: an insecure node does not go there */
    void *named = zmq_socket(ctx, ZMQ_DEALER);
    zmq_setsockopt(named, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(named, ZMQ_ROUTING_ID, "x", 1);
    assert_int_equal(zmq_connect(named, net_node_endpoint(a)), 0);
    n = make_hello(packet, sizeof packet, "x", 0);
    wire_packet parsed;
    assert_int_equal(wire_parse(packet, (size_t)n, NULL, &parsed, NULL, 0), 0);
    wire_hello far = parsed.hello;
    snprintf(far.endpoint, sizeof far.endpoint, "tcp://10.1.2.3:9");
    n = wire_hello_write(packet, sizeof packet, WIRE_HELLO, &far);
    assert_int_equal(zmq_send(named, packet, (size_t)n, 0), n);
    /* a heartbeat of no session: stale, not malformed */
    n = wire_heartbeat_write(packet, sizeof packet, WIRE_HEARTBEAT, &heartbeat);
    assert_int_equal(zmq_send(raw, packet, (size_t)n, 0), n);

    uint64_t want[NET_MALFORMED_COUNT] = {0};
    want[NET_MALFORMED_TRUNCATED] = 3;
    want[NET_MALFORMED_BAD_HEADER] = 2;
    want[NET_MALFORMED_INVALID] = 2;
    want[NET_MALFORMED_FRAMES] = 1;
    want[NET_MALFORMED_WRONG_CLUSTER] = 1;
    want[NET_MALFORMED_WRONG_NAME] = 1;
    int64_t start = now_ns();
    net_stats stats;
    for (;;) {
        stats = node_stats(a);
        if (memcmp(stats.malformed, want, sizeof want) == 0 && stats.stale >= 2)
            break;
        if (ms_since(start) > ARRIVE_MS) {
            for (int i = 0; i < NET_MALFORMED_COUNT; i++)
                print_message("  %s: %llu, want %llu\n", net_malformed_name((net_malformed)i),
                              (unsigned long long)stats.malformed[i], (unsigned long long)want[i]);
            fail_msg("the malformed packets were not counted as expected");
        }
        usleep(2000);
    }
    /* b is still UP at a and heartbeats on; nobody went down; no peer was made of the garbage */
    uint64_t acks = peer_stats(a, "b").acks_received;
    wait_acks(a, "b", acks + 3);
    assert_int_equal(peer_stats(a, "b").state, NET_PEER_UP);
    assert_int_equal(event_count(&ra), 1);
    assert_int_equal(event_count(&rb), 1);
    assert_int_equal(node_stats(a).peer_count, 1);
    zmq_close(named);
    zmq_close(raw);
    zmq_ctx_term(ctx);
    net_node_destroy(&a);
    net_node_destroy(&b);
    recorder_destroy(&ra);
    recorder_destroy(&rb);
}

/* ---------------------------------------------------------------------------------------------- */
/* CURVE                                                                                          */
/* ---------------------------------------------------------------------------------------------- */

static void test_curve_nodes_see_each_other_up(void **state) {
    (void)state;
    char dir[64];
    make_scratch(dir, sizeof dir);
    keygen(dir, "a");
    keygen(dir, "b");
    recorder ra, rb;
    recorder_init(&ra);
    recorder_init(&rb);
    net_node *a = start_node("a", &ra, dir, HEARTBEAT_MS, DOWN_AFTER_MS);
    net_node *b = start_node("b", &rb, dir, HEARTBEAT_MS, DOWN_AFTER_MS);
    join(a, "b", net_node_endpoint(b));
    expect_event(&ra, NET_NODE_UP, "b", NULL);
    expect_event(&rb, NET_NODE_UP, "a", NULL);
    wait_acks(a, "b", 2);
    net_stats sa = node_stats(a), sb = node_stats(b);
    assert_true(sa.zap.accepted >= 1 && sb.zap.accepted >= 1);
    for (int i = 0; i < ZAP_REFUSAL_COUNT; i++)
        assert_int_equal(sa.zap.refused[i] + sb.zap.refused[i], 0);
    /* a CURVE node refuses a join to a name it has no key for */
    char err[256] = "";
    assert_int_equal(net_node_join(a, "zed@tcp://127.0.0.1:9", err, sizeof err), SPOOL_ENOENT);
    assert_non_null(strstr(err, "zed.pub"));
    net_node_destroy(&b);
    expect_event(&ra, NET_NODE_DOWN, "b", "goodbye");
    net_node_destroy(&a);
    recorder_destroy(&ra);
    recorder_destroy(&rb);
    remove_tree(dir);
}

/* "a" in allowed/ (with b); `name`'s keys in other/ with a copy of a.pub, so it can demand a's
 * key; `as_b` makes name's keys copies of b's (a key claiming another name). */
static void refused_setup(char *dir, size_t size, const char *name, bool as_b, char *allowed,
                          char *other) {
    make_scratch(dir, size);
    snprintf(allowed, PATH_MAX, "%s/allowed", dir);
    snprintf(other, PATH_MAX, "%s/other", dir);
    keygen(allowed, "a");
    keygen(allowed, "b");
    char from[PATH_MAX], to[PATH_MAX];
    if (as_b) {
        assert_int_equal(mkdir(other, 0700), 0);
        snprintf(from, sizeof from, "%s/b.key", allowed);
        snprintf(to, sizeof to, "%s/%s.key", other, name);
        copy_file(from, to, 0600);
        snprintf(from, sizeof from, "%s/b.pub", allowed);
        snprintf(to, sizeof to, "%s/%s.pub", other, name);
        copy_file(from, to, 0644);
    } else {
        keygen(other, name);
    }
    snprintf(from, sizeof from, "%s/a.pub", allowed);
    snprintf(to, sizeof to, "%s/a.pub", other);
    copy_file(from, to, 0644);
}

static void test_a_key_not_in_the_allowlist_never_comes_up(void **state) {
    (void)state;
    char dir[64], allowed[PATH_MAX], other[PATH_MAX];
    refused_setup(dir, sizeof dir, "mallory", false, allowed, other);
    recorder ra, rm;
    recorder_init(&ra);
    recorder_init(&rm);
    net_node *a = start_node("a", &ra, allowed, HEARTBEAT_MS, DOWN_AFTER_MS);
    net_node *m = start_node("mallory", &rm, other, HEARTBEAT_MS, DOWN_AFTER_MS);
    join(m, "a", net_node_endpoint(a));
    int64_t start = now_ns();
    while (node_stats(a).zap.refused[ZAP_REFUSED_UNKNOWN_KEY] == 0) {
        if (ms_since(start) > ARRIVE_MS)
            fail_msg("a's ZAP handler never refused mallory's key");
        usleep(2000);
    }
    usleep(QUIET_MS * 1000);
    assert_int_equal(event_count(&ra), 0);
    assert_int_equal(event_count(&rm), 0);
    net_stats sa = node_stats(a);
    assert_int_equal(sa.zap.accepted, 0);
    assert_int_equal(sa.peer_count, 0); /* nothing of mallory got past the handshake */
    net_peer_stats seen = peer_stats(m, "a");
    assert_int_equal(seen.state, NET_PEER_JOINING);
    assert_true(seen.handshake_failures >= 1);
    print_message("  refused %llu times, mallory saw %llu failed handshakes\n",
                  (unsigned long long)sa.zap.refused[ZAP_REFUSED_UNKNOWN_KEY],
                  (unsigned long long)seen.handshake_failures);
    net_node_destroy(&m);
    net_node_destroy(&a);
    recorder_destroy(&ra);
    recorder_destroy(&rm);
    remove_tree(dir);
}

static void test_a_key_claiming_another_name_is_refused(void **state) {
    (void)state;
    char dir[64], allowed[PATH_MAX], other[PATH_MAX];
    /* "c" holds b's key: a's ZAP lets the key in as "b", and the HELLO says "c" */
    refused_setup(dir, sizeof dir, "c", true, allowed, other);
    recorder ra, rc;
    recorder_init(&ra);
    recorder_init(&rc);
    net_node *a = start_node("a", &ra, allowed, HEARTBEAT_MS, DOWN_AFTER_MS);
    net_node *c = start_node("c", &rc, other, HEARTBEAT_MS, DOWN_AFTER_MS);
    join(c, "a", net_node_endpoint(a));
    int64_t start = now_ns();
    while (node_stats(a).malformed[NET_MALFORMED_WRONG_NAME] == 0) {
        if (ms_since(start) > ARRIVE_MS)
            fail_msg("a never refused c's HELLO");
        usleep(2000);
    }
    usleep(QUIET_MS * 1000);
    assert_int_equal(event_count(&ra), 0);
    assert_int_equal(event_count(&rc), 0);
    net_stats sa = node_stats(a);
    assert_true(sa.zap.accepted >= 1); /* the key itself is b's, allowed */
    assert_int_equal(sa.peer_count, 0);
    net_node_destroy(&c);
    net_node_destroy(&a);
    recorder_destroy(&ra);
    recorder_destroy(&rc);
    remove_tree(dir);
}

static void test_a_malformed_packet_from_a_peer_in_session_ends_it(void **state) {
    (void)state;
    char dir[64];
    make_scratch(dir, sizeof dir);
    keygen(dir, "a");
    keygen(dir, "b");
    recorder ra, rb;
    recorder_init(&ra);
    recorder_init(&rb);
    net_node *a = start_node("a", &ra, dir, HEARTBEAT_MS, DOWN_AFTER_MS);
    net_node *b = start_node("b", &rb, dir, HEARTBEAT_MS, DOWN_AFTER_MS);
    join(b, "a", net_node_endpoint(a));
    expect_event(&ra, NET_NODE_UP, "b", NULL);
    expect_event(&rb, NET_NODE_UP, "a", NULL);

    /* b's key on a raw socket: whatever comes through it is b's */
    char err[256] = "";
    keys_pair b_keys, a_keys;
    assert_int_equal(keys_load_secret(dir, "b", &b_keys, err, sizeof err), 0);
    assert_int_equal(keys_load_secret(dir, "a", &a_keys, err, sizeof err), 0);
    uint8_t a_public[KEYS_BINARY_SIZE];
    assert_non_null(zmq_z85_decode(a_public, a_keys.public_key));
    void *ctx = zmq_ctx_new();
    void *raw = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(raw, ZMQ_LINGER, &zero, sizeof zero);
    assert_int_equal(curve_client(raw, &b_keys, a_public, err, sizeof err), 0);
    assert_int_equal(zmq_connect(raw, net_node_endpoint(a)), 0);
    const char *words = "not a packet";
    assert_int_equal(zmq_send(raw, words, strlen(words), 0), (int)strlen(words));

    recorded down = expect_event(&ra, NET_NODE_DOWN, "b", "protocol error: bad magic");
    print_message("  a: DOWN b \"%s\"\n", down.reason);
    /* both sides start a new session: b hears a's new HELLO while its old session lives */
    int up_again = wait_event_from(&ra, 2, NET_NODE_UP, "b", NULL, ARRIVE_MS, NULL);
    if (up_again < 0)
        print_events("a", &ra);
    assert_true(up_again >= 2);
    expect_event(&rb, NET_NODE_DOWN, "a", "session restarted");
    assert_true(wait_event_from(&rb, 2, NET_NODE_UP, "a", NULL, ARRIVE_MS, NULL) >= 2);
    assert_int_equal(node_stats(a).malformed[NET_MALFORMED_BAD_HEADER], 1);
    zmq_close(raw);
    zmq_ctx_term(ctx);
    keys_pair_wipe(&a_keys);
    keys_pair_wipe(&b_keys);
    net_node_destroy(&a);
    net_node_destroy(&b);
    recorder_destroy(&ra);
    recorder_destroy(&rb);
    remove_tree(dir);
}

/* ---------------------------------------------------------------------------------------------- */
/* Failures of whole processes                                                                    */
/* ---------------------------------------------------------------------------------------------- */

/* Forks "b", starts "a" here and joins them; both UP. */
static net_node *pair_with_child(recorder *ra, child *b, uint32_t heartbeat_ms,
                                 uint32_t down_after_ms) {
    *b = start_child("b", heartbeat_ms, down_after_ms);
    net_node *a = start_node("a", ra, NULL, heartbeat_ms, down_after_ms);
    join(a, "b", b->endpoint);
    expect_event(ra, NET_NODE_UP, "b", NULL);
    wait_acks(a, "b", 3);
    return a;
}

static void test_a_killed_node_is_down_at_once(void **state) {
    (void)state;
    recorder ra;
    recorder_init(&ra);
    child b;
    net_node *a = pair_with_child(&ra, &b, FAST_HEARTBEAT_MS, FAST_DOWN_AFTER_MS);
    int64_t start = now_ns();
    kill(b.pid, SIGKILL);
    recorded down = expect_event(&ra, NET_NODE_DOWN, "b", NULL);
    int64_t took_ms = (down.at_ns - start) / 1000000;
    print_message("  DOWN \"%s\" %.1f ms after SIGKILL\n", down.reason, (down.at_ns - start) / 1e6);
    assert_string_equal(down.reason, "disconnected");
    assert_true(took_ms <= 100);
    kill_child(&b);
    assert_int_equal(peer_stats(a, "b").state, NET_PEER_JOINING); /* it keeps trying */
    net_node_destroy(&a);
    recorder_destroy(&ra);
}

static void test_a_frozen_node_is_down_after_down_after(void **state) {
    (void)state;
    recorder ra;
    recorder_init(&ra);
    child b;
    net_node *a = pair_with_child(&ra, &b, FAST_HEARTBEAT_MS, FAST_DOWN_AFTER_MS);
    uint64_t missed_before = peer_stats(a, "b").missed;
    int64_t start = now_ns();
    freeze_child(&b);
    recorded down = expect_event(&ra, NET_NODE_DOWN, "b", NULL);
    int64_t took_ms = (down.at_ns - start) / 1000000;
    print_message("  DOWN \"%s\" %.1f ms after SIGSTOP (down_after %d ms)\n", down.reason,
                  (down.at_ns - start) / 1e6, FAST_DOWN_AFTER_MS);
    assert_string_equal(down.reason, "heartbeat timeout");
    /* the last packet heard came at most about a heartbeat before the stop */
    assert_true(took_ms >= FAST_DOWN_AFTER_MS - 2 * FAST_HEARTBEAT_MS);
    assert_true(took_ms <= FAST_DOWN_AFTER_MS * 3 / 2);
    net_peer_stats seen = peer_stats(a, "b");
    assert_true(seen.missed >= missed_before + 3);
    assert_int_equal(seen.downs, 1);
    /* thawed, b meets a again: a new session of the same life */
    recorded first_up = expect_event(&ra, NET_NODE_UP, "b", NULL);
    start = now_ns();
    kill(b.pid, SIGCONT);
    recorded again;
    assert_true(wait_event_from(&ra, 2, NET_NODE_UP, "b", NULL, ARRIVE_MS, &again) == 2);
    print_message("  UP again %.1f ms after SIGCONT\n", (again.at_ns - start) / 1e6);
    assert_true(again.incarnation == first_up.incarnation);
    wait_acks(a, "b", peer_stats(a, "b").acks_received + 3);
    assert_int_equal(peer_stats(a, "b").ups, 2);
    kill_child(&b);
    net_node_destroy(&a);
    recorder_destroy(&ra);
}

static void test_destroy_with_a_frozen_peer_returns_within_2_s(void **state) {
    (void)state;
    recorder ra;
    recorder_init(&ra);
    child b;
    net_node *a = pair_with_child(&ra, &b, HEARTBEAT_MS, DOWN_AFTER_MS);
    freeze_child(&b);
    int64_t start = now_ns();
    net_node_destroy(&a);
    int64_t took_ms = ms_since(start);
    print_message("  destroy took %lld ms with b frozen\n", (long long)took_ms);
    assert_true(took_ms < 2000);
    expect_event(&ra, NET_NODE_DOWN, "b", "shutdown");
    kill_child(&b);
    recorder_destroy(&ra);
}

static void test_a_restarted_node_is_a_new_session(void **state) {
    (void)state;
    recorder ra, rb;
    recorder_init(&ra);
    recorder_init(&rb);
    child old_b;
    /* down_after long enough that the frozen old b is not timed out first */
    net_node *a = pair_with_child(&ra, &old_b, HEARTBEAT_MS, 10000);
    recorded first = expect_event(&ra, NET_NODE_UP, "b", NULL);
    freeze_child(&old_b); /* its connections stay open: nothing tells a it is gone */
    net_node *b = start_node("b", &rb, NULL, HEARTBEAT_MS, 10000);
    join(b, "a", net_node_endpoint(a));
    recorded down = expect_event(&ra, NET_NODE_DOWN, "b", NULL);
    assert_string_equal(down.reason, "incarnation changed");
    assert_true(down.incarnation == first.incarnation);
    recorded up;
    assert_true(wait_event_from(&ra, 2, NET_NODE_UP, "b", NULL, ARRIVE_MS, &up) >= 2);
    assert_true(up.incarnation != first.incarnation);
    expect_event(&rb, NET_NODE_UP, "a", NULL);
    net_peer_stats seen = peer_stats(a, "b");
    assert_string_equal(seen.endpoint, net_node_endpoint(b));
    assert_true(seen.incarnation == up.incarnation);
    assert_int_equal(seen.ups, 2);
    kill_child(&old_b);
    net_node_destroy(&b);
    net_node_destroy(&a);
    recorder_destroy(&ra);
    recorder_destroy(&rb);
}

/* ---------------------------------------------------------------------------------------------- */
/* Memory                                                                                         */
/* ---------------------------------------------------------------------------------------------- */

/* Counts blocks and bytes (from any thread) and fails the fail_at-th allocation (0: none). */
typedef struct counting {
    long calls, allocations, frees, live_bytes, fail_at;
} counting;

static void *counting_alloc(void *user, size_t size) {
    counting *c = user;
    long call = __atomic_add_fetch(&c->calls, 1, __ATOMIC_RELAXED);
    if (call == __atomic_load_n(&c->fail_at, __ATOMIC_RELAXED))
        return NULL;
    void *block = malloc(size);
    if (block != NULL) {
        __atomic_add_fetch(&c->allocations, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&c->live_bytes, (long)size, __ATOMIC_RELAXED);
    }
    return block;
}

static void counting_free(void *user, void *block, size_t size) {
    counting *c = user;
    if (block == NULL)
        return;
    free(block);
    __atomic_add_fetch(&c->frees, 1, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&c->live_bytes, (long)size, __ATOMIC_RELAXED);
}

static void test_every_block_comes_back_and_no_memory_fails_cleanly(void **state) {
    (void)state;
    char dir[64];
    make_scratch(dir, sizeof dir);
    keygen(dir, "a");
    keygen(dir, "b");
    counting count = {0};
    spool_allocator allocator = {counting_alloc, counting_free, &count};
    recorder ra;
    recorder_init(&ra);
    net_config config = {.name = "a",
                         .cluster = "test",
                         .listen = "tcp://127.0.0.1:0",
                         .keys_dir = dir,
                         .heartbeat_ms = HEARTBEAT_MS,
                         .down_after_ms = DOWN_AFTER_MS,
                         .on_event = record,
                         .user = &ra,
                         .allocator = &allocator};
    /* fail the first, second, ... allocation of create until it needs no more */
    char err[256] = "";
    net_node *a = NULL;
    for (long fail_at = 1;; fail_at++) {
        __atomic_store_n(&count.calls, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&count.fail_at, fail_at, __ATOMIC_RELAXED);
        int rc = net_node_create(&config, &a, err, sizeof err);
        if (rc == 0)
            break;
        assert_int_equal(rc, SPOOL_ENOMEM);
        assert_null(a);
        assert_int_equal(count.live_bytes, 0);
        assert_true(fail_at < 100);
    }
    __atomic_store_n(&count.fail_at, 0, __ATOMIC_RELAXED);
    /* a session and its end: every block of a's comes back */
    net_node *b = start_node("b", NULL, dir, HEARTBEAT_MS, DOWN_AFTER_MS);
    join(a, "b", net_node_endpoint(b));
    expect_event(&ra, NET_NODE_UP, "b", NULL);
    net_node_destroy(&b);
    expect_event(&ra, NET_NODE_DOWN, "b", "goodbye");
    assert_true(__atomic_load_n(&count.allocations, __ATOMIC_RELAXED) >
                2); /* the node, the allowlist, the peer table, the peer */
    net_node_destroy(&a);
    assert_int_equal(count.allocations, count.frees);
    assert_int_equal(count.live_bytes, 0);
    recorder_destroy(&ra);
    remove_tree(dir);
}

/* ---------------------------------------------------------------------------------------------- */
/* Arguments                                                                                      */
/* ---------------------------------------------------------------------------------------------- */

static int try_create(const net_config *config, char *err, size_t err_size) {
    net_node *node = (net_node *)&node;
    int rc = net_node_create(config, &node, err, err_size);
    if (rc == 0)
        net_node_destroy(&node);
    else
        assert_null(node);
    return rc;
}

static void test_bad_configurations_are_refused(void **state) {
    (void)state;
    char err[256];
    net_config config = {.name = "a", .listen = "tcp://0.0.0.0:0", .insecure = true};
    assert_int_equal(try_create(&config, err, sizeof err), SPOOL_EINVAL);
    assert_non_null(strstr(err, "loopback"));
    config.listen = "tcp://192.168.1.1:0";
    assert_int_equal(try_create(&config, err, sizeof err), SPOOL_EINVAL);
    config.listen = "ipc:///tmp/x";
    assert_int_equal(try_create(&config, err, sizeof err), SPOOL_EINVAL);
    config.listen = "tcp://127.0.0.1";
    assert_int_equal(try_create(&config, err, sizeof err), SPOOL_EINVAL);
    config.listen = "tcp://127.0.0.1:0";
    config.name = "-a";
    assert_int_equal(try_create(&config, err, sizeof err), SPOOL_EINVAL);
    config.name = "a";
    config.heartbeat_ms = 500;
    config.down_after_ms = 500;
    assert_int_equal(try_create(&config, err, sizeof err), SPOOL_EINVAL);
    assert_non_null(strstr(err, "down_after"));
    config.heartbeat_ms = config.down_after_ms = 0;
    config.insecure = false;
    assert_int_equal(try_create(&config, err, sizeof err), SPOOL_EINVAL); /* no keys */
    config.keys_dir = "/nonexistent/spool-keys";
    assert_int_equal(try_create(&config, err, sizeof err), SPOOL_ENOENT);
    config.insecure = true;
    assert_int_equal(try_create(&config, err, sizeof err), SPOOL_EINVAL); /* both */
    config.keys_dir = NULL;
    config.listen = "tcp://localhost:0";
    assert_int_equal(try_create(&config, err, sizeof err), 0);
    assert_int_equal(net_node_create(NULL, NULL, err, sizeof err), SPOOL_EINVAL);

    /* the port in use */
    config.listen = "tcp://127.0.0.1:0";
    net_node *a = NULL;
    assert_int_equal(net_node_create(&config, &a, err, sizeof err), 0);
    net_config second = config;
    second.listen = net_node_endpoint(a);
    assert_int_equal(try_create(&second, err, sizeof err), SPOOL_ESYSTEM);
    assert_non_null(strstr(err, "cannot listen"));

    /* joins */
    assert_int_equal(net_node_join(a, "tcp://127.0.0.1:9", err, sizeof err), SPOOL_EINVAL);
    assert_int_equal(net_node_join(a, "@tcp://127.0.0.1:9", err, sizeof err), SPOOL_EINVAL);
    assert_int_equal(net_node_join(a, "b@127.0.0.1:9", err, sizeof err), SPOOL_EINVAL);
    assert_int_equal(net_node_join(a, "b@tcp://127.0.0.1:*", err, sizeof err), SPOOL_EINVAL);
    assert_int_equal(net_node_join(a, "b@tcp://0.0.0.0:9", err, sizeof err), SPOOL_EINVAL);
    assert_int_equal(net_node_join(a, "b@tcp://10.1.2.3:9", err, sizeof err), SPOOL_EINVAL);
    assert_non_null(strstr(err, "loopback"));
    assert_int_equal(net_node_join(a, "b@tcp://[::1]:9", err, sizeof err), 0);
    assert_int_equal(net_node_join(a, "a b@tcp://127.0.0.1:9", err, sizeof err), SPOOL_EINVAL);
    assert_int_equal(net_node_join(a, "a@tcp://127.0.0.1:9", err, sizeof err), SPOOL_EINVAL);
    assert_non_null(strstr(err, "own name"));
    assert_int_equal(net_node_join(NULL, "b@tcp://127.0.0.1:9", err, sizeof err), SPOOL_EINVAL);
    net_node_destroy(&a);
    assert_null(a);
    net_node_destroy(&a);
    net_node_destroy(NULL);
    assert_string_equal(net_malformed_name(NET_MALFORMED_COUNT), "?");
    assert_string_equal(net_peer_state_name(NET_PEER_UP), "up");
}

/* ---------------------------------------------------------------------------------------------- */
/* The data path                                                                                  */
/* ---------------------------------------------------------------------------------------------- */

#define BULK_MS 90000 /* how long the stress test's messages may take (sanitizer builds) */
#define SINK_FROMS 256
#define SENDERS 4

/* What every test message starts with: who sent it and its number in that sender's stream. */
typedef struct test_payload {
    uint32_t sender;
    uint32_t spare;
    uint64_t counter;
} test_payload;

/* The 64-bit word at index `word` (> 1) of a large test message. */
static uint64_t pattern_word(uint32_t sender, uint64_t counter, size_t word) {
    return (counter * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)word * 0xbf58476d1ce4e5b9ull) ^ sender;
}

/* A message of `size` bytes (>= 16) into buf: the payload header, then the pattern. */
static void fill_message(unsigned char *buf, size_t size, uint32_t sender, uint64_t counter) {
    test_payload head = {sender, 0, counter};
    memcpy(buf, &head, sizeof head);
    for (size_t word = 2; (word + 1) * 8 <= size; word++) {
        uint64_t value = pattern_word(sender, counter, word);
        memcpy(buf + word * 8, &value, 8);
    }
}

/* Not instrumented by ThreadSanitizer: it reads a message inside on_message (the net thread's own
 * buffer), and instrumented it takes longer than down_after for 64 MiB. */
#if defined(__SANITIZE_THREAD__)
__attribute__((no_sanitize("thread")))
#endif
static bool
check_message(const unsigned char *buf, size_t size) {
    test_payload head;
    memcpy(&head, buf, sizeof head);
    for (size_t word = 2; (word + 1) * 8 <= size; word++) {
        uint64_t value;
        memcpy(&value, buf + word * 8, 8);
        if (value != pattern_word(head.sender, head.counter, word))
            return false;
    }
    return true;
}

/* What a node's data callbacks saw. The counters are atomic (the net thread writes them, the test
 * reads them); `next` is the net thread's. */
typedef struct sink {
    uint64_t received, bytes, big, order_errors, content_errors;
    uint64_t by_from[SINK_FROMS];
    uint64_t next[SINK_FROMS]; /* the counter expected next from each from (checked if `ordered`) */
    bool ordered;
    uint64_t watch_from;     /* big messages of this from: when the first arrived, ...*/
    uint64_t big_at_ns;      /* atomic */
    uint64_t count_from;     /* ... and how many of count_from had come then */
    uint64_t count_at_big;   /* atomic */
    uint64_t undelivered[3]; /* atomic, by net_undelivered */
    uint8_t *returned;       /* test_payload.counter -> times given back (NULL: not kept) */
    size_t returned_size;
    uint64_t returned_twice; /* atomic */
    recorder *events;        /* where on_event goes (may be NULL) */
} sink;

static uint64_t load(const uint64_t *counter) { return __atomic_load_n(counter, __ATOMIC_ACQUIRE); }
static void bump(uint64_t *counter, uint64_t amount) {
    __atomic_fetch_add(counter, amount, __ATOMIC_RELEASE);
}

static void sink_message(void *user, net_peer *peer, uint64_t incarnation, const wire_msg *msg) {
    (void)peer;
    (void)incarnation;
    sink *s = user;
    uint64_t from = msg->from < SINK_FROMS ? msg->from : 0;
    if (msg->size >= sizeof(test_payload)) {
        test_payload head;
        memcpy(&head, msg->data, sizeof head);
        if (s->ordered && head.counter != s->next[from])
            bump(&s->order_errors, 1);
        s->next[from] = head.counter + 1;
        if (msg->size > NET_FRAGMENT_THRESHOLD) {
            if (!check_message(msg->data, msg->size))
                bump(&s->content_errors, 1);
            if (msg->from == s->watch_from && load(&s->big_at_ns) == 0) {
                __atomic_store_n(&s->count_at_big, load(&s->by_from[s->count_from]),
                                 __ATOMIC_RELEASE);
                __atomic_store_n(&s->big_at_ns, (uint64_t)now_ns(), __ATOMIC_RELEASE);
            }
            bump(&s->big, 1);
        }
    }
    bump(&s->bytes, msg->size);
    bump(&s->by_from[from], 1);
    bump(&s->received, 1); /* last: a test that sees the count sees the rest */
}

static void sink_undelivered(void *user, net_peer *peer, uint64_t incarnation, const wire_msg *msg,
                             net_undelivered why) {
    (void)peer;
    (void)incarnation;
    sink *s = user;
    if (s->returned != NULL && msg->size >= sizeof(test_payload)) {
        test_payload head;
        memcpy(&head, msg->data, sizeof head);
        if (head.counter < s->returned_size && s->returned[head.counter]++ != 0)
            bump(&s->returned_twice, 1);
    }
    bump(&s->undelivered[why == NET_UNDELIVERED_SHUTDOWN ? 2 : 1], 1);
}

static void sink_event(void *user, const net_event *event) {
    sink *s = user;
    if (s->events != NULL)
        record(s->events, event);
}

/* A node in this process whose events go to s->events and messages to s; 0 sizes: defaults. */
static net_node *start_data_node(const char *name, const char *keys_dir, uint32_t heartbeat_ms,
                                 uint32_t down_after_ms, sink *s, size_t max_message,
                                 size_t queue_bytes) {
    net_config config = {.name = name,
                         .cluster = "test",
                         .listen = "tcp://127.0.0.1:0",
                         .keys_dir = keys_dir,
                         .insecure = keys_dir == NULL,
                         .heartbeat_ms = heartbeat_ms,
                         .down_after_ms = down_after_ms,
                         .on_event = sink_event,
                         .on_message = sink_message,
                         .on_undelivered = sink_undelivered,
                         .user = s,
                         .max_message = max_message,
                         .queue_bytes = queue_bytes};
    net_node *node = NULL;
    char err[256] = "";
    int rc = net_node_create(&config, &node, err, sizeof err);
    if (rc != 0)
        fail_msg("net_node_create %s: %d %s", name, rc, err);
    return node;
}

/* The recorders and sinks of a pair of data nodes: a's events go to ra, b's to rb. */
static void pair_sinks(recorder *ra, recorder *rb, sink *sa, sink *sb) {
    recorder_init(ra);
    recorder_init(rb);
    memset(sa, 0, sizeof *sa);
    memset(sb, 0, sizeof *sb);
    sa->events = ra;
    sb->events = rb;
}

/* Data nodes a and b (CURVE keys in keys_dir, or insecure), a joined to b, both UP. Returns a's
 * view of b (the peer to send to); b's view of a goes to *b_view if asked. */
static recorded pair_up(const char *keys_dir, uint32_t heartbeat_ms, uint32_t down_after_ms,
                        recorder *ra, recorder *rb, sink *sa, sink *sb, net_node **a, net_node **b,
                        recorded *b_view) {
    *a = start_data_node("a", keys_dir, heartbeat_ms, down_after_ms, sa, 0, 0);
    *b = start_data_node("b", keys_dir, heartbeat_ms, down_after_ms, sb, 0, 0);
    join(*a, "b", net_node_endpoint(*b));
    recorded up = expect_event(ra, NET_NODE_UP, "b", NULL);
    recorded back = expect_event(rb, NET_NODE_UP, "a", NULL);
    if (b_view)
        *b_view = back;
    return up;
}

/* Waits (at most timeout_ms) until *counter >= want. */
static bool wait_count(const uint64_t *counter, uint64_t want, int timeout_ms) {
    int64_t start = now_ns();
    while (load(counter) < want) {
        if (ms_since(start) > timeout_ms)
            return false;
        usleep(1000);
    }
    return true;
}

static uint64_t messages_per_sender(void) {
    const char *text = getenv("SPOOL_TEST_NET_MESSAGES");
    long value = text != NULL ? atol(text) : 0;
    return value > 0 ? (uint64_t)value : 200000;
}

/* One thread's stream to a peer: `count` messages of from index + 1, counters 0, 1, ...; every
 * count / 10th (at the middle of each tenth) 1-3 MiB, the rest 16 bytes. A full queue is waited
 * out. */
typedef struct sender_args {
    net_node *node;
    net_peer *peer;
    uint64_t incarnation;
    uint32_t index;
    uint64_t count;
    uint64_t full; /* sends refused with SPOOL_EFULL (and tried again) */
    int rc;        /* the first other error */
} sender_args;

static void *sender_main(void *argument) {
    sender_args *a = argument;
    size_t big_max = (3u << 20) + 1000;
    unsigned char *big = malloc(big_max);
    unsigned char small[sizeof(test_payload)];
    uint64_t big_every = a->count >= 10 ? a->count / 10 : 0;
    for (uint64_t i = 0; i < a->count && big != NULL; i++) {
        wire_msg msg = {.to = 7, .from = a->index + 1, .type = 1, .data = small, .size = 16};
        if (big_every != 0 && i % big_every == big_every / 2) {
            msg.size = (uint32_t)(((1 + i % 3) << 20) + i % 1000);
            fill_message(big, msg.size, a->index, i);
            msg.data = big;
        } else {
            test_payload head = {a->index, 0, i};
            memcpy(small, &head, sizeof head);
        }
        int64_t start = now_ns();
        int rc;
        while ((rc = net_peer_send(a->node, a->peer, a->incarnation, &msg)) == SPOOL_EFULL) {
            a->full++;
            if (ms_since(start) > BULK_MS)
                break;
            usleep(20);
        }
        if (rc != 0) {
            a->rc = rc;
            break;
        }
    }
    free(big);
    return NULL;
}

static void assert_no_down(recorder *r, const char *who) {
    size_t count = event_count(r);
    pthread_mutex_lock(&r->lock);
    bool down = false;
    for (size_t i = 0; i < count; i++)
        down = down || r->events[i].kind == NET_NODE_DOWN;
    pthread_mutex_unlock(&r->lock);
    if (down) {
        print_events(who, r);
        fail_msg("%s saw a NODE_DOWN", who);
    }
}

static void test_four_senders_keep_their_order_with_large_messages_mixed_in(void **state) {
    (void)state;
    recorder ra, rb;
    sink sa, sb;
    pair_sinks(&ra, &rb, &sa, &sb);
    sb.ordered = true;
    net_node *a, *b;
    recorded up = pair_up(NULL, HEARTBEAT_MS, DOWN_AFTER_MS, &ra, &rb, &sa, &sb, &a, &b, NULL);
    assert_non_null(up.peer);

    uint64_t count = messages_per_sender();
    sender_args args[SENDERS];
    pthread_t threads[SENDERS];
    int64_t start = now_ns();
    for (uint32_t i = 0; i < SENDERS; i++) {
        args[i] = (sender_args){a, up.peer, up.incarnation, i, count, 0, 0};
        assert_int_equal(pthread_create(&threads[i], NULL, sender_main, &args[i]), 0);
    }
    uint64_t total = SENDERS * count;
    bool arrived = wait_count(&sb.received, total, BULK_MS);
    double seconds = (now_ns() - start) / 1e9;
    uint64_t full = 0;
    for (uint32_t i = 0; i < SENDERS; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(args[i].rc, 0);
        full += args[i].full;
    }
    net_peer_stats out = peer_stats(a, "b"), in = peer_stats(b, "a");
    print_message("  %llu messages (%llu large, %.1f MiB) in %.2f s: %.2f M/s; %llu refused "
                  "full and retried; %llu DATA+FRAGMENT bytes, %llu fragments\n",
                  (unsigned long long)load(&sb.received), (unsigned long long)load(&sb.big),
                  load(&sb.bytes) / 1048576.0, seconds, load(&sb.received) / seconds / 1e6,
                  (unsigned long long)full, (unsigned long long)in.bytes_in,
                  (unsigned long long)in.fragments_in);
    if (!arrived)
        fail_msg("%llu of %llu messages arrived", (unsigned long long)load(&sb.received),
                 (unsigned long long)total);
    assert_int_equal(load(&sb.order_errors), 0);
    assert_int_equal(load(&sb.content_errors), 0);
    for (uint32_t i = 0; i < SENDERS; i++)
        assert_int_equal(load(&sb.by_from[i + 1]), count);
    if (count >= 10)
        assert_int_equal(load(&sb.big), SENDERS * 10);
    assert_int_equal(out.messages_out, total);
    assert_int_equal(in.messages_in, total);
    assert_int_equal(out.fragments_out, in.fragments_in);
    assert_int_equal(out.overload, full);
    assert_int_equal(out.queued_messages, 0);
    assert_int_equal(out.queued_bytes, 0);
    assert_int_equal(out.undelivered, 0);
    assert_int_equal(in.last_seq_received, total);
    usleep(20 * 1000);
    assert_int_equal(load(&sb.received), total); /* nothing more */
    assert_no_down(&ra, "a");
    assert_no_down(&rb, "b");
    net_node_destroy(&a);
    net_node_destroy(&b);
    assert_int_equal(load(&sa.undelivered[1]) + load(&sa.undelivered[2]), 0);
    recorder_destroy(&ra);
    recorder_destroy(&rb);
}

static void test_large_messages_of_several_senders_keep_each_senders_order(void **state) {
    (void)state;
    recorder ra, rb;
    sink sa, sb;
    pair_sinks(&ra, &rb, &sa, &sb);
    sb.ordered = true;
    net_node *a, *b;
    recorded up = pair_up(NULL, HEARTBEAT_MS, DOWN_AFTER_MS, &ra, &rb, &sa, &sb, &a, &b, NULL);
    /* from 1..3: large and small ones in turn, queued faster than they go, so that large ones wait
     * behind the one in fragments and small ones behind large ones of their own from; from 4: only
     * small ones, which pass */
    size_t big_size = (1u << 20) + 333;
    unsigned char *big = malloc(big_size);
    assert_non_null(big);
    uint64_t next[5] = {0};
    uint64_t total = 0;
    for (int round = 0; round < 4; round++) {
        for (uint32_t from = 1; from <= 4; from++) {
            for (int k = 0; k < 3; k++) {
                bool large = from != 4 && (k + round + (int)from) % 3 == 0;
                test_payload head = {from, 0, next[from]};
                wire_msg msg = {.to = 1, .from = from, .data = &head, .size = sizeof head};
                if (large) {
                    fill_message(big, big_size, from, next[from]);
                    msg.data = big;
                    msg.size = (uint32_t)big_size;
                }
                assert_int_equal(net_peer_send(a, up.peer, up.incarnation, &msg), 0);
                next[from]++;
                total++;
            }
        }
    }
    free(big);
    assert_true(wait_count(&sb.received, total, BULK_MS));
    for (uint32_t from = 1; from <= 4; from++)
        assert_int_equal(load(&sb.by_from[from]), next[from]);
    assert_int_equal(load(&sb.order_errors), 0);
    assert_int_equal(load(&sb.content_errors), 0);
    assert_int_equal(load(&sb.big), 12);
    assert_int_equal(peer_stats(a, "b").queued_messages, 0);
    net_node_destroy(&a);
    net_node_destroy(&b);
    recorder_destroy(&ra);
    recorder_destroy(&rb);
}

/* Sends 16-byte messages of from 2 every 200 us until told to stop. */
typedef struct trickle_args {
    net_node *node;
    net_peer *peer;
    uint64_t incarnation;
    int stop; /* atomic */
    uint64_t sent;
    int rc;
} trickle_args;

static void *trickle_main(void *argument) {
    trickle_args *t = argument;
    while (!__atomic_load_n(&t->stop, __ATOMIC_ACQUIRE)) {
        test_payload head = {2, 0, t->sent};
        wire_msg msg = {.to = 3, .from = 2, .data = &head, .size = sizeof head};
        int rc = net_peer_send(t->node, t->peer, t->incarnation, &msg);
        if (rc != 0) {
            t->rc = rc;
            return NULL;
        }
        t->sent++;
        usleep(200);
    }
    return NULL;
}

static void test_a_64_mib_message_arrives_whole_while_small_ones_pass_it(void **state) {
    (void)state;
    recorder ra, rb;
    sink sa, sb;
    pair_sinks(&ra, &rb, &sa, &sb);
    sb.ordered = true;
    sb.watch_from = 1;
    sb.count_from = 2;
    net_node *a, *b;
    recorded up =
        pair_up(NULL, FAST_HEARTBEAT_MS, FAST_DOWN_AFTER_MS, &ra, &rb, &sa, &sb, &a, &b, NULL);

    trickle_args trickle = {a, up.peer, up.incarnation, 0, 0, 0};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, trickle_main, &trickle), 0);
    assert_true(wait_count(&sb.by_from[2], 10, ARRIVE_MS));

    size_t size = WIRE_DEFAULT_MAX_MESSAGE;
    unsigned char *big = malloc(size);
    assert_non_null(big);
    fill_message(big, size, 1, 0);
    uint64_t small_before = load(&sb.by_from[2]);
    int64_t start = now_ns();
    wire_msg msg = {.to = 5, .from = 1, .type = 9, .data = big, .size = (uint32_t)size};
    assert_int_equal(net_peer_send(a, up.peer, up.incarnation, &msg), 0);
    free(big);
    /* the same from right behind it: it must wait for it */
    test_payload head = {1, 0, 1};
    wire_msg after = {.to = 5, .from = 1, .data = &head, .size = sizeof head};
    assert_int_equal(net_peer_send(a, up.peer, up.incarnation, &after), 0);
    assert_true(wait_count(&sb.by_from[1], 2, 30000));
    uint64_t big_ms = (load(&sb.big_at_ns) - (uint64_t)start) / 1000000;
    __atomic_store_n(&trickle.stop, 1, __ATOMIC_RELEASE);
    pthread_join(thread, NULL);
    assert_int_equal(trickle.rc, 0);
    uint64_t during = load(&sb.count_at_big) - small_before;
    print_message("  64 MiB in %llu ms (%.0f MiB/s); %llu small messages of another sender "
                  "arrived meanwhile\n",
                  (unsigned long long)big_ms, 64.0 * 1000 / (big_ms ? big_ms : 1),
                  (unsigned long long)during);
    assert_int_equal(load(&sb.big), 1);
    assert_int_equal(load(&sb.content_errors), 0);
    assert_int_equal(load(&sb.order_errors), 0); /* from 1: 0 then 1; from 2: 0, 1, ... */
    assert_true(during > 0);
    assert_true(wait_count(&sb.by_from[2], trickle.sent, ARRIVE_MS));
    net_peer_stats out = peer_stats(a, "b");
    assert_int_equal(out.fragments_out, size / (256 * 1024));
    assert_int_equal(peer_stats(b, "a").fragments_in, out.fragments_out);
    assert_no_down(&ra, "a");
    assert_no_down(&rb, "b");
    net_node_destroy(&a);
    net_node_destroy(&b);
    recorder_destroy(&ra);
    recorder_destroy(&rb);
}

/* Sends 1 KiB messages (counters from *next) until a send says ENOENT; counts what was taken. */
typedef struct flood_args {
    net_node *node;
    net_peer *peer;
    uint64_t incarnation;
    uint64_t next, accepted, full;
    int rc; /* the error that ended it */
} flood_args;

static void *flood_main(void *argument) {
    flood_args *f = argument;
    unsigned char data[1024];
    memset(data, 0x5a, sizeof data);
    int64_t start = now_ns();
    while (ms_since(start) < ARRIVE_MS) {
        test_payload head = {0, 0, f->next};
        memcpy(data, &head, sizeof head);
        wire_msg msg = {.to = 1, .from = 1, .data = data, .size = sizeof data};
        int rc = net_peer_send(f->node, f->peer, f->incarnation, &msg);
        if (rc == 0) {
            f->accepted++;
            f->next++;
        } else if (rc == SPOOL_EFULL) {
            f->full++;
            usleep(100);
        } else {
            f->rc = rc;
            return NULL;
        }
    }
    return NULL;
}

static void test_a_frozen_peer_overloads_the_queue_and_its_messages_come_back(void **state) {
    (void)state;
    child b = start_child("b", HEARTBEAT_MS, DOWN_AFTER_MS); /* before this process has threads */
    recorder ra;
    recorder_init(&ra);
    sink sa;
    memset(&sa, 0, sizeof sa);
    sa.events = &ra;
    sa.returned_size = 1u << 22;
    sa.returned = calloc(sa.returned_size, 1);
    assert_non_null(sa.returned);
    const size_t queue_bytes = 1u << 20;
    net_node *a =
        start_data_node("a", NULL, HEARTBEAT_MS, DOWN_AFTER_MS, &sa, 64 * 1024, queue_bytes);
    join(a, "b", b.endpoint);
    recorded up = expect_event(&ra, NET_NODE_UP, "b", NULL);
    wait_acks(a, "b", 3);
    freeze_child(&b);

    /* until the queue is full: the socket buffers, libzmq's queue, then ours */
    flood_args flood = {a, up.peer, up.incarnation, 0, 0, 0, 0};
    unsigned char data[1024];
    memset(data, 0x5a, sizeof data);
    uint64_t max_queued = 0;
    int64_t start = now_ns();
    while (flood.full == 0) {
        if (ms_since(start) > ARRIVE_MS)
            fail_msg("no SPOOL_EFULL after %llu messages", (unsigned long long)flood.accepted);
        test_payload head = {0, 0, flood.next};
        memcpy(data, &head, sizeof head);
        wire_msg msg = {.to = 1, .from = 1, .data = data, .size = sizeof data};
        int rc = net_peer_send(a, up.peer, up.incarnation, &msg);
        if (rc == SPOOL_EFULL) {
            flood.full++;
        } else {
            assert_int_equal(rc, 0);
            flood.accepted++;
            flood.next++;
        }
        if (flood.next % 256 == 0) {
            uint64_t queued = peer_stats(a, "b").queued_bytes;
            max_queued = queued > max_queued ? queued : max_queued;
        }
    }
    net_peer_stats full = peer_stats(a, "b");
    print_message("  SPOOL_EFULL after %llu messages of 1 KiB: %llu queued (%llu bytes), %llu "
                  "written\n",
                  (unsigned long long)flood.accepted, (unsigned long long)full.queued_messages,
                  (unsigned long long)full.queued_bytes, (unsigned long long)full.messages_out);
    assert_true(full.queued_bytes <= queue_bytes && max_queued <= queue_bytes);
    assert_true(full.queued_bytes > queue_bytes / 2);
    assert_true(full.overload >= 1);
    assert_int_equal(full.state, NET_PEER_UP);

    /* b dies while a thread still sends: the sends that race the DOWN come back too */
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, flood_main, &flood), 0);
    usleep(20 * 1000);
    kill_child(&b);
    recorded down = expect_event(&ra, NET_NODE_DOWN, "b", NULL);
    pthread_join(thread, NULL);
    assert_int_equal(flood.rc, SPOOL_ENOENT);
    print_message("  DOWN \"%s\"; %llu accepted, %llu refused full\n", down.reason,
                  (unsigned long long)flood.accepted, (unsigned long long)flood.full);
    net_peer_stats after = peer_stats(a, "b");
    start = now_ns();
    while (after.messages_out + load(&sa.undelivered[1]) != flood.accepted ||
           after.queued_messages != 0) {
        if (ms_since(start) > ARRIVE_MS)
            fail_msg("accepted %llu, written %llu, given back %llu, queued %llu",
                     (unsigned long long)flood.accepted, (unsigned long long)after.messages_out,
                     (unsigned long long)load(&sa.undelivered[1]),
                     (unsigned long long)after.queued_messages);
        usleep(2000);
        after = peer_stats(a, "b");
    }
    assert_true(load(&sa.undelivered[1]) > 0);
    assert_int_equal(after.undelivered, load(&sa.undelivered[1]));
    assert_int_equal(after.queued_bytes, 0);
    assert_int_equal(load(&sa.returned_twice), 0);
    /* the first ones were written, every one after the first given back was given back */
    uint64_t first_back = 0;
    while (first_back < flood.next && sa.returned[first_back] == 0)
        first_back++;
    for (uint64_t i = first_back; i < flood.next; i++)
        if (sa.returned[i] != 1)
            fail_msg("message %llu given back %d times", (unsigned long long)i, sa.returned[i]);
    assert_int_equal(first_back, after.messages_out);
    net_node_destroy(&a);
    assert_int_equal(load(&sa.undelivered[2]), 0); /* nothing was left for the shutdown */
    free(sa.returned);
    recorder_destroy(&ra);
}

/* on_event for test_send_refuses_what_it_cannot_take: tries a send at each DOWN. */
typedef struct probe {
    recorder events;
    net_node *node; /* set once the node is made */
    int rc[4];      /* what the sends at each DOWN said */
    int count;
} probe;

static void probe_event(void *user, const net_event *event) {
    probe *p = user;
    record(&p->events, event);
    net_node *node = __atomic_load_n(&p->node, __ATOMIC_ACQUIRE);
    if (event->kind == NET_NODE_DOWN && node != NULL && p->count < 4) {
        test_payload head = {0, 0, 0};
        wire_msg msg = {.to = 1, .data = &head, .size = sizeof head};
        p->rc[p->count++] = net_peer_send(node, event->peer, event->incarnation, &msg);
    }
}

static void test_send_refuses_what_it_cannot_take(void **state) {
    (void)state;
    probe pa;
    memset(&pa, 0, sizeof pa);
    recorder_init(&pa.events);
    recorder rb;
    recorder_init(&rb);
    sink sb;
    memset(&sb, 0, sizeof sb);
    sb.events = &rb;
    net_config config = {.name = "a",
                         .cluster = "test",
                         .listen = "tcp://127.0.0.1:0",
                         .insecure = true,
                         .heartbeat_ms = HEARTBEAT_MS,
                         .down_after_ms = DOWN_AFTER_MS,
                         .on_event = probe_event,
                         .user = &pa,
                         .max_message = 1u << 20,
                         .queue_bytes = 4u << 20};
    char err[256] = "";
    /* the bounds themselves */
    net_config bad = config;
    bad.max_message = (size_t)UINT32_MAX + 1;
    net_node *a = (net_node *)&bad;
    assert_int_equal(net_node_create(&bad, &a, err, sizeof err), SPOOL_EINVAL);
    assert_null(a);
    bad.max_message = 1u << 20;
    bad.queue_bytes = 1u << 20;
    assert_int_equal(net_node_create(&bad, &a, err, sizeof err), SPOOL_EINVAL);
    assert_non_null(strstr(err, "queue_bytes"));

    assert_int_equal(net_node_create(&config, &a, err, sizeof err), 0);
    net_node *b = start_data_node("b", NULL, HEARTBEAT_MS, DOWN_AFTER_MS, &sb, 512 * 1024, 0);
    join(a, "b", net_node_endpoint(b));
    recorded up = expect_event(&pa.events, NET_NODE_UP, "b", NULL);
    expect_event(&rb, NET_NODE_UP, "a", NULL);
    net_peer *peer = up.peer;
    uint64_t life = up.incarnation;

    unsigned char *data = calloc(1, (1u << 20) + 1);
    assert_non_null(data);
    wire_msg msg = {.to = 1, .from = 2, .data = data, .size = 16};
    assert_int_equal(net_peer_send(a, peer, life, &msg), 0);
    msg.size = (1u << 20) + 1; /* over a's max_message */
    assert_int_equal(net_peer_send(a, peer, life, &msg), SPOOL_EMSGSIZE);
    msg.size = 600 * 1024; /* over b's, which its HELLO or WELCOME said */
    assert_int_equal(net_peer_send(a, peer, life, &msg), SPOOL_EMSGSIZE);
    msg.size = 512 * 1024; /* b's limit exactly: in FRAGMENTs */
    fill_message(data, msg.size, 2, 1);
    assert_int_equal(net_peer_send(a, peer, life, &msg), 0);
    msg.size = 16;
    assert_int_equal(net_peer_send(a, peer, life + 1, &msg), SPOOL_ENOENT);
    assert_int_equal(net_peer_send(a, peer, 0, &msg), SPOOL_ENOENT);
    /* arguments */
    wire_msg wrong = msg;
    wrong.to = 1ull << 48;
    assert_int_equal(net_peer_send(a, peer, life, &wrong), SPOOL_EINVAL);
    wrong = msg;
    wrong.from = 1ull << 48;
    assert_int_equal(net_peer_send(a, peer, life, &wrong), SPOOL_EINVAL);
    wrong = msg;
    wrong.flags = 0x10;
    assert_int_equal(net_peer_send(a, peer, life, &wrong), SPOOL_EINVAL);
    wrong = msg;
    wrong.request_id = 5; /* without a request flag */
    assert_int_equal(net_peer_send(a, peer, life, &wrong), SPOOL_EINVAL);
    wrong.flags = WIRE_MSG_REQUEST;
    assert_int_equal(net_peer_send(a, peer, life, &wrong), 0);
    wrong = msg;
    wrong.data = NULL;
    assert_int_equal(net_peer_send(a, peer, life, &wrong), SPOOL_EINVAL);
    wrong.size = 0; /* an empty message */
    assert_int_equal(net_peer_send(a, peer, life, &wrong), 0);
    assert_int_equal(net_peer_send(NULL, peer, life, &msg), SPOOL_EINVAL);
    assert_int_equal(net_peer_send(a, NULL, life, &msg), SPOOL_EINVAL);
    assert_int_equal(net_peer_send(a, peer, life, NULL), SPOOL_EINVAL);
    free(data);

    assert_true(wait_count(&sb.received, 4, ARRIVE_MS));
    assert_int_equal(load(&sb.big), 1);
    assert_int_equal(load(&sb.content_errors), 0);
    net_peer_stats out = peer_stats(a, "b");
    assert_int_equal(out.messages_out, 4);
    assert_int_equal(out.fragments_out, 2);
    assert_int_equal(out.overload, 0);
    assert_int_equal(peer_stats(b, "a").messages_in, 4);

    /* b leaves: its life is not UP any more, from on_event's DOWN on */
    __atomic_store_n(&pa.node, a, __ATOMIC_RELEASE);
    net_node_destroy(&b);
    expect_event(&pa.events, NET_NODE_DOWN, "b", "goodbye");
    assert_int_equal(net_peer_send(a, peer, life, &msg), SPOOL_ENOENT);
    /* and a sends nothing once its destroy has begun */
    net_node *b2 = start_data_node("b", NULL, HEARTBEAT_MS, DOWN_AFTER_MS, &sb, 0, 0);
    join(a, "b", net_node_endpoint(b2));
    assert_true(wait_event_from(&pa.events, 2, NET_NODE_UP, "b", NULL, ARRIVE_MS, NULL) == 2);
    net_node_destroy(&a);
    assert_int_equal(pa.count, 2);
    assert_int_equal(pa.rc[0], SPOOL_ENOENT);   /* at the goodbye */
    assert_int_equal(pa.rc[1], SPOOL_ESTOPPED); /* at the shutdown */
    net_node_destroy(&b2);
    recorder_destroy(&pa.events);
    recorder_destroy(&rb);
}

/* Plays a peer named "x" by hand: a raw DEALER (routing id "x") into a's ROUTER, a raw ROUTER
 * where a's DEALERs connect back. */
typedef struct fake_peer {
    void *ctx, *dealer, *router;
    char endpoint[NET_ENDPOINT_SIZE];
} fake_peer;

static void fake_send(fake_peer *f, const void *packet, int size) {
    assert_true(size > 0);
    assert_int_equal(zmq_send(f->dealer, packet, (size_t)size, 0), size);
}

/* HELLO and the first HEARTBEAT of session `session`: a goes UP with x. */
static void fake_session(fake_peer *f, uint64_t session) {
    unsigned char packet[512];
    int n = make_hello(packet, sizeof packet, "x", 0);
    wire_packet parsed;
    assert_int_equal(wire_parse(packet, (size_t)n, NULL, &parsed, NULL, 0), 0);
    wire_hello hello = parsed.hello;
    hello.session = session;
    snprintf(hello.endpoint, sizeof hello.endpoint, "%s", f->endpoint);
    fake_send(f, packet, wire_hello_write(packet, sizeof packet, WIRE_HELLO, &hello));
    wire_heartbeat heartbeat = {.session = session, .sent_ns = 1};
    fake_send(f, packet, wire_heartbeat_write(packet, sizeof packet, WIRE_HEARTBEAT, &heartbeat));
}

static void fake_data(fake_peer *f, uint64_t session, uint64_t first_seq, uint32_t count) {
    unsigned char packet[1024];
    wire_batch batch;
    assert_int_equal(wire_batch_begin(&batch, packet, sizeof packet, session, first_seq), 0);
    for (uint32_t i = 0; i < count; i++) {
        test_payload head = {100, 0, first_seq + i};
        wire_msg msg = {.to = 1, .from = 100, .data = &head, .size = sizeof head};
        assert_int_equal(wire_batch_add(&batch, &msg), 0);
    }
    fake_send(f, packet, wire_batch_end(&batch));
}

static void fake_fragment(fake_peer *f, uint64_t session, uint64_t seq, uint64_t from,
                          uint64_t offset, uint32_t piece_size, uint64_t total) {
    unsigned char packet[1024], piece[512];
    memset(piece, 7, sizeof piece);
    wire_fragment fragment = {.session = session,
                              .seq = seq,
                              .total_size = total,
                              .offset = offset,
                              .header = {.to = 1, .from = from},
                              .piece = piece,
                              .piece_size = piece_size};
    fake_send(f, packet, wire_fragment_write(packet, sizeof packet, &fragment));
}

static void test_data_out_of_sequence_ends_only_that_session(void **state) {
    (void)state;
    recorder ra, rb;
    sink sa, sb;
    pair_sinks(&ra, &rb, &sa, &sb);
    net_node *a = start_data_node("a", NULL, HEARTBEAT_MS, DOWN_AFTER_MS, &sa, 0, 0);
    net_node *b = start_data_node("b", NULL, HEARTBEAT_MS, DOWN_AFTER_MS, &sb, 0, 0);
    join(b, "a", net_node_endpoint(a));
    recorded b_up = expect_event(&rb, NET_NODE_UP, "a", NULL);
    expect_event(&ra, NET_NODE_UP, "b", NULL);
    /* b keeps sending to a meanwhile */
    trickle_args trickle = {b, b_up.peer, b_up.incarnation, 0, 0, 0};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, trickle_main, &trickle), 0);

    fake_peer f;
    f.ctx = zmq_ctx_new();
    f.router = zmq_socket(f.ctx, ZMQ_ROUTER);
    f.dealer = zmq_socket(f.ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(f.router, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(f.dealer, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(f.dealer, ZMQ_ROUTING_ID, "x", 1);
    assert_int_equal(zmq_bind(f.router, "tcp://127.0.0.1:*"), 0);
    size_t size = sizeof f.endpoint;
    assert_int_equal(zmq_getsockopt(f.router, ZMQ_LAST_ENDPOINT, f.endpoint, &size), 0);
    assert_int_equal(zmq_connect(f.dealer, net_node_endpoint(a)), 0);

    /* session 1001: three messages, a DATA of another session (stale), then a gap */
    fake_session(&f, 1001);
    expect_event(&ra, NET_NODE_UP, "x", NULL);
    fake_data(&f, 1001, 1, 3);
    assert_true(wait_count(&sa.by_from[100], 3, ARRIVE_MS));
    fake_data(&f, 1002, 4, 1);
    fake_data(&f, 1001, 10, 1);
    recorded down = expect_event(&ra, NET_NODE_DOWN, "x", "protocol error: DATA of seq 10");
    print_message("  a: DOWN x \"%s\"\n", down.reason);
    assert_int_equal(load(&sa.by_from[100]), 3);
    assert_true(node_stats(a).stale >= 1);

    /* session 1003: a piece of no open message */
    fake_session(&f, 1003);
    assert_true(wait_event_from(&ra, 3, NET_NODE_UP, "x", NULL, ARRIVE_MS, NULL) == 3);
    fake_fragment(&f, 1003, 1, 100, 50, 10, 100);
    assert_true(wait_event_from(&ra, 4, NET_NODE_DOWN, "x", "protocol error: FRAGMENT", ARRIVE_MS,
                                &down) == 4);
    print_message("  a: DOWN x \"%s\"\n", down.reason);

    /* session 1004: a second piece of another from */
    fake_session(&f, 1004);
    assert_true(wait_event_from(&ra, 5, NET_NODE_UP, "x", NULL, ARRIVE_MS, NULL) == 5);
    fake_fragment(&f, 1004, 1, 100, 0, 50, 100);
    fake_fragment(&f, 1004, 1, 101, 50, 50, 100);
    assert_true(wait_event_from(&ra, 6, NET_NODE_DOWN, "x", "protocol error: FRAGMENT", ARRIVE_MS,
                                NULL) == 6);

    /* session 1005: seq from 1 again; a fragmented message, a DATA inside it, its last piece */
    fake_session(&f, 1005);
    assert_true(wait_event_from(&ra, 7, NET_NODE_UP, "x", NULL, ARRIVE_MS, NULL) == 7);
    fake_fragment(&f, 1005, 1, 101, 0, 60, 100);
    fake_data(&f, 1005, 2, 2);
    fake_fragment(&f, 1005, 1, 101, 60, 40, 100);
    assert_true(wait_count(&sa.by_from[101], 1, ARRIVE_MS));
    assert_int_equal(load(&sa.by_from[100]), 5);
    assert_int_equal(node_stats(a).malformed[NET_MALFORMED_SEQUENCE], 3);
    assert_int_equal(peer_stats(a, "x").state, NET_PEER_UP);

    /* b was not touched: all of its messages, no DOWN either way */
    __atomic_store_n(&trickle.stop, 1, __ATOMIC_RELEASE);
    pthread_join(thread, NULL);
    assert_int_equal(trickle.rc, 0);
    assert_true(wait_count(&sa.by_from[2], trickle.sent, ARRIVE_MS));
    assert_int_equal(count_events(&ra, NET_NODE_DOWN, "b"), 0);
    assert_no_down(&rb, "b");
    zmq_close(f.dealer);
    zmq_close(f.router);
    zmq_ctx_term(f.ctx);
    net_node_destroy(&a);
    net_node_destroy(&b);
    recorder_destroy(&ra);
    recorder_destroy(&rb);
}

static void test_curve_nodes_carry_messages_both_ways(void **state) {
    (void)state;
    char dir[64];
    make_scratch(dir, sizeof dir);
    keygen(dir, "a");
    keygen(dir, "b");
    recorder ra, rb;
    sink sa, sb;
    pair_sinks(&ra, &rb, &sa, &sb);
    sa.ordered = sb.ordered = true;
    net_node *a, *b;
    recorded to_a;
    recorded to_b = pair_up(dir, HEARTBEAT_MS, DOWN_AFTER_MS, &ra, &rb, &sa, &sb, &a, &b, &to_a);
    sender_args ab = {a, to_b.peer, to_b.incarnation, 0, 20000, 0, 0};
    sender_args ba = {b, to_a.peer, to_a.incarnation, 1, 20000, 0, 0};
    sender_main(&ab);
    sender_main(&ba);
    assert_int_equal(ab.rc, 0);
    assert_int_equal(ba.rc, 0);
    assert_true(wait_count(&sb.received, 20000, BULK_MS));
    assert_true(wait_count(&sa.received, 20000, BULK_MS));
    print_message("  a got %llu from b, b got %llu from a\n",
                  (unsigned long long)load(&sa.by_from[2]),
                  (unsigned long long)load(&sb.by_from[1]));
    assert_int_equal(load(&sb.by_from[1]), 20000);
    assert_int_equal(load(&sa.by_from[2]), 20000);
    assert_int_equal(load(&sa.order_errors) + load(&sb.order_errors), 0);
    assert_int_equal(load(&sa.content_errors) + load(&sb.content_errors), 0);
    assert_int_equal(load(&sa.big) + load(&sb.big), 20);
    assert_no_down(&ra, "a");
    assert_no_down(&rb, "b");
    net_node_destroy(&a);
    net_node_destroy(&b);
    recorder_destroy(&ra);
    recorder_destroy(&rb);
    remove_tree(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_nodes_see_each_other_up_and_heartbeat),
        cmocka_unit_test(test_three_nodes_all_meet_and_one_leaves),
        cmocka_unit_test(test_joining_one_member_meets_them_all),
        cmocka_unit_test(test_two_nodes_joining_each_other_at_once_make_one_session),
        cmocka_unit_test(test_a_joiner_waits_for_a_node_that_starts_later),
        cmocka_unit_test(test_garbage_from_a_raw_dealer_is_counted_and_ignored),
        cmocka_unit_test(test_curve_nodes_see_each_other_up),
        cmocka_unit_test(test_a_key_not_in_the_allowlist_never_comes_up),
        cmocka_unit_test(test_a_key_claiming_another_name_is_refused),
        cmocka_unit_test(test_a_malformed_packet_from_a_peer_in_session_ends_it),
        cmocka_unit_test(test_a_killed_node_is_down_at_once),
        cmocka_unit_test(test_a_frozen_node_is_down_after_down_after),
        cmocka_unit_test(test_destroy_with_a_frozen_peer_returns_within_2_s),
        cmocka_unit_test(test_a_restarted_node_is_a_new_session),
        cmocka_unit_test(test_every_block_comes_back_and_no_memory_fails_cleanly),
        cmocka_unit_test(test_bad_configurations_are_refused),
        cmocka_unit_test(test_four_senders_keep_their_order_with_large_messages_mixed_in),
        cmocka_unit_test(test_large_messages_of_several_senders_keep_each_senders_order),
        cmocka_unit_test(test_a_64_mib_message_arrives_whole_while_small_ones_pass_it),
        cmocka_unit_test(test_a_frozen_peer_overloads_the_queue_and_its_messages_come_back),
        cmocka_unit_test(test_send_refuses_what_it_cannot_take),
        cmocka_unit_test(test_data_out_of_sequence_ends_only_that_session),
        cmocka_unit_test(test_curve_nodes_carry_messages_both_ways),
    };
    if (getenv("SPOOL_TEST_FILTER") != NULL) /* e.g. "*64_mib*": one test while working on it */
        cmocka_set_test_filter(getenv("SPOOL_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
