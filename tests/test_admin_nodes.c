/*
 * test_admin_nodes.c - the admin endpoint of a runtime that is a node (tools/admin/peers.c): two
 * runtimes in one process joined over tcp loopback (spool_node.h, insecure), and the endpoint of
 * one of them read over ZeroMQ. What membership alone gives, no message crossing: the node's name,
 * its peer up with a heartbeat round trip, the figures spool_node_peers gives, dead letters by
 * reason (unknown_node, node_down), then the peer gone down; a peer still joining; and the same in
 * the Prometheus text. Every wait is bounded.
 */
#include "tests/support.h"

#include "spool_admin.h"
#include "spool_node.h"
#include "tests/nodes_support.h"

#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define HEARTBEAT_MS 20

/* A node of this test: heartbeats every HEARTBEAT_MS; a slow CI machine never sees the peer down
 * by mistake. */
static void test_node_start(node_box *b, const char *name, const char *join) {
    node_start(b, name, join, HEARTBEAT_MS, 5000, 0, 0);
}

/* `on`'s view of the peer `name` now; 0 if it has none of that name. */
static int peer_now(node_box *on, const char *name, spool_node_peer *out) {
    spool_node_peer peers[8];
    size_t count = 0;
    assert_int_equal(spool_node_peers(on->rt, peers, 8, &count), 0);
    for (size_t i = 0; i < count && i < 8; i++)
        if (strcmp(peers[i].node, name) == 0) {
            *out = peers[i];
            return 1;
        }
    return 0;
}

/* The peer is up and a heartbeat came back from it. */
static int peer_up_with_rtt(node_box *on, const char *name) {
    spool_node_peer p;
    return peer_now(on, name, &p) && strcmp(p.state, "up") == 0 && p.rtt_ns > 0;
}

static int peer_in_state(node_box *on, const char *name, const char *state) {
    spool_node_peer p;
    return peer_now(on, name, &p) && strcmp(p.state, state) == 0;
}

/* A send from outside the runtime to `node`'s actor `local` of life `incarnation`: the sender is
 * told at once (no message crosses) and a dead letter is counted. */
static void send_to(node_box *from, const char *node, uint64_t incarnation, int expected) {
    spool_remote_id remote;
    memset(&remote, 0, sizeof remote);
    snprintf(remote.node, sizeof remote.node, "%s", node);
    remote.incarnation = incarnation;
    remote.local = 7;
    spool_id id = 0;
    assert_int_equal(spool_id_import(from->rt, &remote, &id), 0);
    assert_int_equal(spool_send(from->rt, id, 1, "x", 1), expected);
}

/* ---------------------------------------------------------------------------------------------- */
/* The endpoint                                                                                   */
/* ---------------------------------------------------------------------------------------------- */

typedef struct admin_box {
    spool_admin *admin;
    void *context;
    void *client;
} admin_box;

static void admin_open(admin_box *a, spool_runtime *rt, const char *what) {
    char endpoint[96];
    snprintf(endpoint, sizeof endpoint, "ipc:///tmp/spool-test-%ld-%s.sock", (long)getpid(), what);
    assert_int_equal(spool_admin_start(rt, endpoint, &a->admin), 0);
    a->context = zmq_ctx_new();
    a->client = zmq_socket(a->context, ZMQ_REQ);
    assert_non_null(a->client);
    int linger = 0, timeout = 5000;
    assert_int_equal(zmq_setsockopt(a->client, ZMQ_LINGER, &linger, sizeof linger), 0);
    assert_int_equal(zmq_setsockopt(a->client, ZMQ_RCVTIMEO, &timeout, sizeof timeout), 0);
    assert_int_equal(zmq_connect(a->client, endpoint), 0);
}

static void admin_close(admin_box *a) {
    zmq_close(a->client);
    zmq_ctx_term(a->context);
    spool_admin_stop(&a->admin);
}

/* The reply to `request`, NUL-terminated (free() it). */
static char *admin_ask(admin_box *a, const char *request) {
    assert_int_equal(zmq_send(a->client, request, strlen(request), 0), (int)strlen(request));
    zmq_msg_t reply;
    zmq_msg_init(&reply);
    if (zmq_msg_recv(&reply, a->client, 0) < 0)
        fail_msg("no reply to \"%s\"", request);
    size_t length = zmq_msg_size(&reply);
    char *text = malloc(length + 1);
    assert_non_null(text);
    memcpy(text, zmq_msg_data(&reply), length);
    text[length] = '\0';
    zmq_msg_close(&reply);
    return text;
}

static json_t *admin_json(admin_box *a) {
    char *text = admin_ask(a, "metrics json");
    json_error_t error;
    json_t *root = json_loads(text, 0, &error);
    if (!root)
        fail_msg("not JSON (%s): %.200s", error.text, text);
    free(text);
    return root;
}

static uint64_t json_u64(const json_t *object, const char *key) {
    json_t *value = json_object_get(object, key);
    if (!json_is_integer(value))
        fail_msg("\"%s\" is not an integer", key);
    return (uint64_t)json_integer_value(value);
}

static const char *json_text(const json_t *object, const char *key) {
    json_t *value = json_object_get(object, key);
    if (!json_is_string(value))
        fail_msg("\"%s\" is not a string", key);
    return json_string_value(value);
}

static void assert_contains(const char *text, const char *needle) {
    if (!strstr(text, needle))
        fail_msg("missing: %s", needle);
}

/* A counter the JSON shows between what spool_node_peers said just before and just after. */
#define ASSERT_BETWEEN(object, field, before, after)                                               \
    do {                                                                                           \
        uint64_t value_ = json_u64(object, #field);                                                \
        if (value_ < (before).field || value_ > (after).field)                                     \
            fail_msg(#field " %" PRIu64 " not within %" PRIu64 "..%" PRIu64, value_,               \
                     (uint64_t)(before).field, (uint64_t)(after).field);                           \
    } while (0)

/* The one peer of the reply, named `name`, checked against spool_node_peers around the request. */
static json_t *the_peer(json_t *root, const char *name) {
    json_t *peers = json_object_get(root, "peers");
    assert_true(json_is_array(peers));
    assert_int_equal(json_array_size(peers), 1);
    json_t *p = json_array_get(peers, 0);
    assert_string_equal(json_text(p, "node"), name);
    return p;
}

static void dead_letters_are(const json_t *peer, uint64_t unknown_node, uint64_t node_down) {
    json_t *dead = json_object_get(peer, "dead_letters");
    assert_int_equal(json_object_size(dead), SPOOL_DEAD_REASON_COUNT);
    for (int r = 0; r < SPOOL_DEAD_REASON_COUNT; r++) {
        uint64_t expected = r == SPOOL_DEAD_UNKNOWN_NODE ? unknown_node
                            : r == SPOOL_DEAD_NODE_DOWN  ? node_down
                                                         : 0;
        assert_int_equal(json_u64(dead, spool_dead_reason_name((spool_dead_reason)r)), expected);
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* Tests                                                                                          */
/* ---------------------------------------------------------------------------------------------- */

static void the_snapshot_shows_a_peer_up_then_down_with_its_figures(void **state) {
    (void)state;
    node_box a, b;
    test_node_start(&a, "a", NULL);
    char join[300];
    snprintf(join, sizeof join, "a@%s", a.endpoint);
    test_node_start(&b, "b", join);
    WAIT_FOR(peer_up_with_rtt(&a, "b") && peer_up_with_rtt(&b, "a"));

    /* Two sends to a life of b that a never met: unknown_node, counted under b's name. */
    spool_node_peer before, after;
    assert_true(peer_now(&a, "b", &before));
    send_to(&a, "b", before.incarnation + 1, SPOOL_ENOENT);
    send_to(&a, "b", before.incarnation + 1, SPOOL_ENOENT);

    admin_box admin = {0};
    admin_open(&admin, a.rt, "node-a");
    assert_true(peer_now(&a, "b", &before));
    json_t *root = admin_json(&admin);
    assert_true(peer_now(&a, "b", &after));
    assert_string_equal(json_text(json_object_get(root, "node"), "name"), "a");
    json_t *p = the_peer(root, "b");
    assert_string_equal(json_text(p, "state"), "up");
    assert_string_equal(json_text(p, "endpoint"), before.endpoint);
    assert_true(strncmp(before.endpoint, "tcp://127.0.0.1:", 16) == 0);
    char incarnation[24];
    snprintf(incarnation, sizeof incarnation, "%" PRIu64, before.incarnation);
    assert_string_equal(json_text(p, "incarnation"), incarnation);
    assert_true(before.incarnation != 0 && after.incarnation == before.incarnation);
    assert_int_equal(json_u64(p, "ups"), 1);
    assert_int_equal(json_u64(p, "downs"), 0);
    ASSERT_BETWEEN(p, messages_in, before, after);
    ASSERT_BETWEEN(p, messages_out, before, after);
    ASSERT_BETWEEN(p, bytes_in, before, after);
    ASSERT_BETWEEN(p, bytes_out, before, after);
    ASSERT_BETWEEN(p, heartbeats_missed, before, after);
    assert_true(json_u64(p, "bytes_in") > 0 && json_u64(p, "bytes_out") > 0); /* heartbeats */
    assert_int_equal(json_u64(p, "queued_messages"), 0);                      /* nothing sent */
    json_t *rtt = json_object_get(p, "rtt_seconds");
    assert_true(json_is_real(rtt) && json_real_value(rtt) > 0 && json_real_value(rtt) < 5);
    dead_letters_are(p, 2, 0);
    json_decref(root);

    char *text = admin_ask(&admin, "metrics prometheus");
    assert_contains(text, "\nspool_node_info{node=\"a\"} 1\n");
    assert_contains(text, "\nspool_node_peer_state{peer=\"b\",state=\"up\"} 1\n");
    assert_contains(text, "\nspool_node_peer_state{peer=\"b\",state=\"down\"} 0\n");
    assert_contains(text, "\nspool_node_peer_ups_total{peer=\"b\"} 1\n");
    assert_contains(text, "\nspool_node_peer_downs_total{peer=\"b\"} 0\n");
    assert_contains(text,
                    "\nspool_node_peer_dead_letters_total{peer=\"b\",reason=\"unknown_node\"} 2\n");
    assert_contains(text,
                    "\nspool_node_peer_dead_letters_total{peer=\"b\",reason=\"node_down\"} 0\n");
    assert_contains(text, "\nspool_node_peer_queued_messages{peer=\"b\"} 0\n");
    free(text);

    /* b leaves (a GOODBYE): down for a, and a send to b's life that was is node_down. */
    uint64_t life = before.incarnation;
    spool_node_destroy(&b.node);
    WAIT_FOR(peer_in_state(&a, "b", "down"));
    send_to(&a, "b", life, SPOOL_ENOENT);
    root = admin_json(&admin);
    p = the_peer(root, "b");
    assert_string_equal(json_text(p, "state"), "down");
    assert_int_equal(json_u64(p, "ups"), 1);
    assert_int_equal(json_u64(p, "downs"), 1);
    dead_letters_are(p, 2, 1);
    json_decref(root);
    text = admin_ask(&admin, "metrics prometheus");
    assert_contains(text, "\nspool_node_peer_state{peer=\"b\",state=\"down\"} 1\n");
    assert_contains(text, "\nspool_node_peer_state{peer=\"b\",state=\"up\"} 0\n");
    assert_contains(text,
                    "\nspool_node_peer_dead_letters_total{peer=\"b\",reason=\"node_down\"} 1\n");
    free(text);

    /* Once a leaves too the endpoint says it is no node any more. */
    spool_node_destroy(&a.node);
    root = admin_json(&admin);
    assert_true(json_is_null(json_object_get(root, "node")));
    assert_int_equal(json_array_size(json_object_get(root, "peers")), 0);
    json_decref(root);

    admin_close(&admin);
    support_finish(&b.rt, NO_DEAD_LETTERS);
    support_finish(&a.rt, DEAD(0, 0, 0, 0, 0, 0, 2, 1));
}

/* A TCP port nobody listens on now (the kernel's choice). */
static int free_tcp_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&address, sizeof address), 0);
    socklen_t length = sizeof address;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&address, &length), 0);
    close(fd);
    return ntohs(address.sin_port);
}

static void a_lone_node_has_its_name_and_a_peer_it_cannot_reach_is_joining(void **state) {
    (void)state;
    node_box a;
    test_node_start(&a, "a", NULL);
    admin_box admin = {0};
    admin_open(&admin, a.rt, "lone");
    json_t *root = admin_json(&admin);
    assert_string_equal(json_text(json_object_get(root, "node"), "name"), "a");
    assert_true(json_is_array(json_object_get(root, "peers")));
    assert_int_equal(json_array_size(json_object_get(root, "peers")), 0);
    json_decref(root);

    char member[96];
    snprintf(member, sizeof member, "ghost@tcp://127.0.0.1:%d", free_tcp_port());
    char err[256] = "";
    assert_int_equal(spool_node_join(a.node, member, err, sizeof err), 0);
    WAIT_FOR(peer_in_state(&a, "ghost", "joining"));
    root = admin_json(&admin);
    json_t *p = the_peer(root, "ghost");
    assert_string_equal(json_text(p, "state"), "joining");
    assert_string_equal(json_text(p, "endpoint"), member + strlen("ghost@"));
    assert_int_equal(json_u64(p, "ups"), 0);
    assert_int_equal(json_u64(p, "messages_in"), 0);
    assert_int_equal(json_u64(p, "bytes_in"), 0);
    json_t *rtt = json_object_get(p, "rtt_seconds");
    assert_true(json_is_real(rtt) && json_real_value(rtt) == 0); /* no heartbeat came back */
    dead_letters_are(p, 0, 0);
    json_decref(root);

    admin_close(&admin);
    spool_node_destroy(&a.node);
    support_finish(&a.rt, NO_DEAD_LETTERS);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_snapshot_shows_a_peer_up_then_down_with_its_figures),
        cmocka_unit_test(a_lone_node_has_its_name_and_a_peer_it_cannot_reach_is_joining),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
