/*
 * test_admin.c - tools/admin: the JSON and Prometheus exporters on hand-built snapshots (read back
 * field by field, every family present, cumulative buckets, escaped labels, promtool satisfied),
 * and the ZeroMQ admin endpoint end to end against a running runtime: exact counts, every request
 * of the protocol, malformed requests answered with "error: ", bad endpoints refused, start/stop
 * without leaks, and readers hammering it while actors run without changing a single count; a
 * node's view (its name and peers) exported next to a snapshot, and absent from a runtime that is
 * no node. Two real nodes in front of the endpoint: test_admin_nodes.c.
 */
#include "tests/support.h"

#include "spool_admin.h"
#include "tools/admin/admin.h" /* admin_node and the exporters that take it */

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

/* ---------------------------------------------------------------------------------------------- */
/* Helpers                                                                                        */
/* ---------------------------------------------------------------------------------------------- */

static const char *const family_types[][2] = {
    {"spool_mailbox_depth", "gauge"},
    {"spool_mailbox_high_water", "gauge"},
    {"spool_mailbox_enqueued_total", "counter"},
    {"spool_mailbox_dequeued_total", "counter"},
    {"spool_mailbox_rejected_total", "counter"},
    {"spool_mailbox_dropped_total", "counter"},
    {"spool_mailbox_wait_seconds", "histogram"},
    {"spool_actor_processing_seconds", "histogram"},
    {"spool_thread_busy_seconds_total", "counter"},
    {"spool_thread_messages_total", "counter"},
    {"spool_thread_wakeups_total", "counter"},
    {"spool_thread_actors", "gauge"},
    {"spool_thread_ready", "gauge"},
    {"spool_dead_letters_total", "counter"},
    {"spool_metrics_sample_every", "gauge"},
    {"spool_uptime_seconds", "gauge"},
};
enum { FAMILY_COUNT = sizeof family_types / sizeof family_types[0] };

/* What the endpoint adds after those (tools/admin/peers.c), node or not. */
static const char *const node_family_types[][2] = {
    {"spool_node_info", "gauge"},
    {"spool_node_peer_info", "gauge"},
    {"spool_node_peer_state", "gauge"},
    {"spool_node_peer_messages_in_total", "counter"},
    {"spool_node_peer_messages_out_total", "counter"},
    {"spool_node_peer_bytes_in_total", "counter"},
    {"spool_node_peer_bytes_out_total", "counter"},
    {"spool_node_peer_queued_messages", "gauge"},
    {"spool_node_peer_queued_bytes", "gauge"},
    {"spool_node_peer_heartbeats_missed_total", "counter"},
    {"spool_node_peer_ups_total", "counter"},
    {"spool_node_peer_downs_total", "counter"},
    {"spool_node_peer_rtt_seconds", "gauge"},
    {"spool_node_peer_dead_letters_total", "counter"},
};
enum { NODE_FAMILY_COUNT = sizeof node_family_types / sizeof node_family_types[0] };

static void assert_contains(const char *text, const char *needle) {
    if (!strstr(text, needle)) {
        print_error("missing: %s\n", needle);
        fail();
    }
}

static void assert_lacks(const char *text, const char *needle) {
    if (strstr(text, needle)) {
        print_error("should not be there: %s\n", needle);
        fail();
    }
}

/* Every family of `families` has its HELP and TYPE lines in `text`. */
static void assert_families(const char *text, const char *const (*families)[2], int count) {
    for (int i = 0; i < count; i++) {
        char line[128];
        snprintf(line, sizeof line, "# TYPE %s %s\n", families[i][0], families[i][1]);
        assert_contains(text, line);
        snprintf(line, sizeof line, "# HELP %s ", families[i][0]);
        assert_contains(text, line);
    }
}

static json_t *parse_json(const char *text) {
    json_error_t error;
    json_t *root = json_loads(text, 0, &error);
    if (!root) {
        print_error("not JSON (%s at %d): %.200s\n", error.text, error.position, text);
        fail();
    }
    return root;
}

static uint64_t json_u64(const json_t *object, const char *key) {
    json_t *value = json_object_get(object, key);
    if (!json_is_integer(value)) {
        print_error("\"%s\" is not an integer\n", key);
        fail();
    }
    return (uint64_t)json_integer_value(value);
}

static double json_seconds(const json_t *object, const char *key) {
    json_t *value = json_object_get(object, key);
    if (!json_is_real(value)) {
        print_error("\"%s\" is not a real\n", key);
        fail();
    }
    return json_real_value(value);
}

static const char *json_text(const json_t *object, const char *key) {
    json_t *value = json_object_get(object, key);
    if (!json_is_string(value)) {
        print_error("\"%s\" is not a string\n", key);
        fail();
    }
    return json_string_value(value);
}

/* Writes `text` to a file and runs `promtool check metrics < file`: it must print nothing and exit
 * 0. No promtool is a failure, not a skip: the brief promises the exposition passes it. */
static void assert_promtool_accepts(const char *text) {
    if (system("command -v promtool >/dev/null 2>&1") != 0)
        fail_msg("promtool is not on PATH: install Debian's 'prometheus' package (./quickstart "
                 "does) to check the exposition format");
    char path[] = "/tmp/spool-test-prom-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t size = strlen(text);
    assert_int_equal(write(fd, text, size), (ssize_t)size);
    close(fd);
    char command[128];
    snprintf(command, sizeof command, "promtool check metrics < %s 2>&1", path);
    FILE *pipe = popen(command, "r");
    assert_non_null(pipe);
    char output[4096];
    size_t length = fread(output, 1, sizeof output - 1, pipe);
    output[length] = '\0';
    int status = pclose(pipe);
    unlink(path);
    if (length > 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        print_error("promtool (status %d) says:\n%s\n", status, output);
        fail();
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* A hand-built snapshot                                                                          */
/* ---------------------------------------------------------------------------------------------- */

#define BIG_COUNT ((UINT64_C(1) << 53) + 1) /* not exact as a double: must stay an integer */
#define BIG_ID ((UINT64_C(3) << 48) | (UINT64_C(5) << 24) | 7)

typedef struct fixture {
    spool_metrics metrics;
    spool_thread_metrics threads[2];
    spool_actor_metrics actors[2];
} fixture;

static void fixture_init(fixture *f) {
    memset(f, 0, sizeof *f);
    f->threads[0] = (spool_thread_metrics){0, -1, 0.0, 0, 0, 1, 0};
    f->threads[1] = (spool_thread_metrics){1, 3, 1.25, 10, 4, 1, 1};

    spool_actor_metrics *a = &f->actors[0];
    a->id = BIG_ID;
    strcpy(a->name, "alpha");
    strcpy(a->behavior, "counter");
    a->thread = 1;
    a->depth = 2;
    a->high_water = 9;
    a->enqueued = BIG_COUNT;
    a->dequeued = 11;
    a->rejected = 3;
    a->dropped = 4;
    a->handled = 10;
    a->wait.buckets[0] = 1;
    a->wait.buckets[3] = 2;
    a->wait.buckets[SPOOL_HISTOGRAM_BUCKETS - 1] = 4;
    a->wait.count = 7;
    a->wait.sum_seconds = 1.5;
    a->processing.buckets[10] = 5;
    a->processing.count = 5;
    a->processing.sum_seconds = 0.000125;

    spool_actor_metrics *b = &f->actors[1];
    b->id = 42;
    strcpy(b->name, "");
    strcpy(b->behavior, "echo");
    b->thread = 0;

    f->metrics.uptime_seconds = 12.5;
    f->metrics.sample_every = 64;
    f->metrics.enabled = 0;
    f->metrics.thread_count = 2;
    f->metrics.threads = f->threads;
    f->metrics.actor_count = 2;
    f->metrics.actors = f->actors;
    for (int r = 0; r < SPOOL_DEAD_REASON_COUNT; r++)
        f->metrics.dead_letters[r] = (uint64_t)(r + 1) * 100;
}

static void assert_histogram_json(const json_t *object, const spool_histogram *h) {
    assert_true(json_is_object(object));
    assert_int_equal(json_u64(object, "count"), h->count);
    assert_true(json_seconds(object, "sum_seconds") == h->sum_seconds);
    assert_true(json_seconds(object, "p50") == spool_histogram_quantile(h, 0.5));
    assert_true(json_seconds(object, "p99") == spool_histogram_quantile(h, 0.99));
    json_t *buckets = json_object_get(object, "buckets");
    assert_int_equal(json_array_size(buckets), SPOOL_HISTOGRAM_BUCKETS);
    for (int b = 0; b < SPOOL_HISTOGRAM_BUCKETS; b++) /* per bucket, as in C */
        assert_int_equal(json_integer_value(json_array_get(buckets, (size_t)b)), h->buckets[b]);
    assert_int_equal(json_object_size(object), 5);
}

static void json_reads_back_field_by_field(void **state) {
    (void)state;
    fixture f;
    fixture_init(&f);
    char *text = NULL;
    assert_int_equal(spool_metrics_json(&f.metrics, &text), 0);
    json_t *root = parse_json(text);

    assert_true(json_seconds(root, "uptime_seconds") == 12.5);
    assert_int_equal(json_u64(root, "sample_every"), 64);
    assert_true(json_is_false(json_object_get(root, "enabled")));
    json_t *bounds = json_object_get(root, "histogram_bounds");
    assert_int_equal(json_array_size(bounds), SPOOL_HISTOGRAM_BUCKETS - 1);
    for (int b = 0; b < SPOOL_HISTOGRAM_BUCKETS - 1; b++) /* exact: 17 digits read back */
        assert_true(json_real_value(json_array_get(bounds, (size_t)b)) ==
                    spool_histogram_bounds()[b]);

    json_t *threads = json_object_get(root, "threads");
    assert_int_equal(json_array_size(threads), 2);
    json_t *t1 = json_array_get(threads, 1);
    assert_int_equal(json_integer_value(json_object_get(t1, "thread")), 1);
    assert_int_equal(json_integer_value(json_object_get(t1, "cpu")), 3);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(threads, 0), "cpu")), -1);
    assert_true(json_seconds(t1, "busy_seconds") == 1.25);
    assert_int_equal(json_u64(t1, "messages"), 10);
    assert_int_equal(json_u64(t1, "wakeups"), 4);
    assert_int_equal(json_u64(t1, "actors"), 1);
    assert_int_equal(json_u64(t1, "ready"), 1);
    assert_int_equal(json_object_size(t1), 7);

    json_t *actors = json_object_get(root, "actors");
    assert_int_equal(json_array_size(actors), 2);
    json_t *a = json_array_get(actors, 0);
    char id[24];
    snprintf(id, sizeof id, "%llu", (unsigned long long)BIG_ID);
    assert_string_equal(json_text(a, "id"), id);
    assert_string_equal(json_text(a, "name"), "alpha");
    assert_string_equal(json_text(a, "behavior"), "counter");
    assert_int_equal(json_u64(a, "thread"), 1);
    assert_int_equal(json_u64(a, "depth"), 2);
    assert_int_equal(json_u64(a, "high_water"), 9);
    assert_true(json_u64(a, "enqueued") == BIG_COUNT);
    assert_int_equal(json_u64(a, "dequeued"), 11);
    assert_int_equal(json_u64(a, "rejected"), 3);
    assert_int_equal(json_u64(a, "dropped"), 4);
    assert_int_equal(json_u64(a, "handled"), 10);
    assert_histogram_json(json_object_get(a, "wait"), &f.actors[0].wait);
    assert_histogram_json(json_object_get(a, "processing"), &f.actors[0].processing);
    assert_int_equal(json_object_size(a), 13);
    json_t *b = json_array_get(actors, 1);
    assert_string_equal(json_text(b, "id"), "42");
    assert_string_equal(json_text(b, "name"), "");
    assert_string_equal(json_text(b, "behavior"), "echo");
    assert_true(json_seconds(json_object_get(b, "wait"), "p99") == 0.0);

    json_t *dead = json_object_get(root, "dead_letters");
    assert_int_equal(json_object_size(dead), SPOOL_DEAD_REASON_COUNT);
    for (int r = 0; r < SPOOL_DEAD_REASON_COUNT; r++)
        assert_int_equal(json_u64(dead, spool_dead_reason_name((spool_dead_reason)r)),
                         (uint64_t)(r + 1) * 100);
    assert_int_equal(json_object_size(root), 7);
    json_decref(root);
    free(text);
}

static void json_of_an_empty_snapshot_has_every_key(void **state) {
    (void)state;
    spool_metrics empty;
    memset(&empty, 0, sizeof empty);
    char *text = NULL;
    assert_int_equal(spool_metrics_json(&empty, &text), 0);
    json_t *root = parse_json(text);
    assert_int_equal(json_array_size(json_object_get(root, "threads")), 0);
    assert_true(json_is_array(json_object_get(root, "actors")));
    assert_int_equal(json_array_size(json_object_get(root, "histogram_bounds")),
                     SPOOL_HISTOGRAM_BUCKETS - 1);
    assert_int_equal(json_object_size(json_object_get(root, "dead_letters")),
                     SPOOL_DEAD_REASON_COUNT);
    json_decref(root);
    free(text);
}

static void names_with_quotes_newlines_and_broken_utf8_stay_valid(void **state) {
    (void)state;
    fixture f;
    fixture_init(&f);
    strcpy(f.actors[0].name, "we\"ird\\name\nx");
    /* A name cut inside a character: "\xC3" alone is not UTF-8 (nor is "\xFF"). */
    strcpy(f.actors[1].behavior, "caf\xC3\xA9-\xC3");
    strcpy(f.actors[1].name, "");

    char *text = NULL;
    assert_int_equal(spool_metrics_json(&f.metrics, &text), 0);
    json_t *root = parse_json(text);
    json_t *actors = json_object_get(root, "actors");
    assert_string_equal(json_text(json_array_get(actors, 0), "name"), "we\"ird\\name\nx");
    assert_string_equal(json_text(json_array_get(actors, 1), "behavior"),
                        "caf\xC3\xA9-\xEF\xBF\xBD");
    json_decref(root);
    free(text);

    assert_int_equal(spool_metrics_prometheus(&f.metrics, &text), 0);
    assert_contains(text, "spool_mailbox_depth{actor=\"" /* id */);
    assert_contains(text, ",name=\"we\\\"ird\\\\name\\nx\",thread=\"1\"} 2\n");
    /* No registered name: the behavior's, repaired. */
    assert_contains(text, "spool_mailbox_depth{actor=\"42\",name=\"caf\xC3\xA9-\xEF\xBF\xBD\","
                          "thread=\"0\"} 0\n");
    assert_promtool_accepts(text);
    free(text);
}

static void exporters_refuse_what_is_not_a_snapshot(void **state) {
    (void)state;
    fixture f;
    fixture_init(&f);
    char *text = NULL;
    assert_int_equal(spool_metrics_json(NULL, &text), SPOOL_EINVAL);
    assert_int_equal(spool_metrics_json(&f.metrics, NULL), SPOOL_EINVAL);
    assert_int_equal(spool_metrics_prometheus(NULL, &text), SPOOL_EINVAL);
    assert_int_equal(spool_metrics_prometheus(&f.metrics, NULL), SPOOL_EINVAL);
    f.metrics.actors = NULL; /* two actors, nowhere */
    assert_int_equal(spool_metrics_json(&f.metrics, &text), SPOOL_EINVAL);
    assert_int_equal(spool_metrics_prometheus(&f.metrics, &text), SPOOL_EINVAL);
    assert_null(text);
}

static void prometheus_has_every_family_even_without_actors(void **state) {
    (void)state;
    spool_metrics empty;
    memset(&empty, 0, sizeof empty);
    char *text = NULL;
    assert_int_equal(spool_metrics_prometheus(&empty, &text), 0);
    for (int i = 0; i < FAMILY_COUNT; i++) {
        char line[128];
        snprintf(line, sizeof line, "# TYPE %s %s\n", family_types[i][0], family_types[i][1]);
        assert_contains(text, line);
        snprintf(line, sizeof line, "# HELP %s ", family_types[i][0]);
        assert_contains(text, line);
    }
    for (int r = 0; r < SPOOL_DEAD_REASON_COUNT; r++) { /* every reason, even at 0 */
        char line[128];
        snprintf(line, sizeof line, "spool_dead_letters_total{reason=\"%s\"} 0\n",
                 spool_dead_reason_name((spool_dead_reason)r));
        assert_contains(text, line);
    }
    assert_contains(text, "\nspool_metrics_sample_every 0\n");
    assert_contains(text, "\nspool_uptime_seconds 0\n");
    assert_promtool_accepts(text);
    free(text);
}

static void prometheus_buckets_are_cumulative_with_sum_and_count(void **state) {
    (void)state;
    fixture f;
    fixture_init(&f);
    char *text = NULL;
    assert_int_equal(spool_metrics_prometheus(&f.metrics, &text), 0);
    char labels[128];
    snprintf(labels, sizeof labels, "actor=\"%llu\",name=\"alpha\",thread=\"1\"",
             (unsigned long long)BIG_ID);
    /* wait: 1 in the first bucket, 2 in the fourth, 4 past 10 s. */
    static const struct {
        const char *le;
        int count;
    } expected[] = {{"1e-07", 1}, {"2.5e-07", 1}, {"5e-07", 1}, {"1e-06", 3},
                    {"0.001", 3}, {"10", 3},      {"+Inf", 7}};
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        char line[256];
        snprintf(line, sizeof line, "spool_mailbox_wait_seconds_bucket{%s,le=\"%s\"} %d\n", labels,
                 expected[i].le, expected[i].count);
        assert_contains(text, line);
    }
    char line[256];
    snprintf(line, sizeof line, "spool_mailbox_wait_seconds_sum{%s} 1.5\n", labels);
    assert_contains(text, line);
    snprintf(line, sizeof line, "spool_mailbox_wait_seconds_count{%s} 7\n", labels);
    assert_contains(text, line);
    snprintf(line, sizeof line, "spool_actor_processing_seconds_sum{%s} 0.000125\n", labels);
    assert_contains(text, line);
    snprintf(line, sizeof line, "spool_actor_processing_seconds_bucket{%s,le=\"0.00025\"} 5\n",
             labels);
    assert_contains(text, line);
    snprintf(line, sizeof line, "spool_actor_processing_seconds_bucket{%s,le=\"0.0001\"} 0\n",
             labels);
    assert_contains(text, line);
    /* Scalars, the unnamed actor named by its behavior, threads, dead letters. */
    snprintf(line, sizeof line, "spool_mailbox_enqueued_total{%s} 9007199254740993\n", labels);
    assert_contains(text, line);
    snprintf(line, sizeof line, "spool_mailbox_dropped_total{%s} 4\n", labels);
    assert_contains(text, line);
    assert_contains(text, "spool_mailbox_high_water{actor=\"42\",name=\"echo\",thread=\"0\"} 0\n");
    assert_contains(text, "spool_thread_busy_seconds_total{thread=\"1\"} 1.25\n");
    assert_contains(text, "spool_thread_messages_total{thread=\"1\"} 10\n");
    assert_contains(text, "spool_thread_wakeups_total{thread=\"1\"} 4\n");
    assert_contains(text, "spool_thread_actors{thread=\"0\"} 1\n");
    assert_contains(text, "spool_thread_ready{thread=\"1\"} 1\n");
    assert_contains(text, "spool_dead_letters_total{reason=\"no_receiver\"} 100\n");
    assert_contains(text, "spool_metrics_sample_every 64\n");
    assert_contains(text, "spool_uptime_seconds 12.5\n");
    assert_promtool_accepts(text);
    free(text);
}

/* ---------------------------------------------------------------------------------------------- */
/* A node's view next to the snapshot                                                             */
/* ---------------------------------------------------------------------------------------------- */

#define BIG_INCARNATION UINT64_C(18446744073709551557) /* a 64-bit random: not a JSON number */

/* Node "a" with peers "b" (up, every figure different) and "c" (joining, an odd endpoint). */
static void node_view_init(admin_node *node, spool_node_peer peers[2]) {
    memset(node, 0, sizeof *node);
    memset(peers, 0, 2 * sizeof *peers);
    node->is_node = 1;
    strcpy(node->name, "a");
    node->peers = peers;
    node->peer_count = 2;
    spool_node_peer *b = &peers[0];
    strcpy(b->node, "b");
    strcpy(b->endpoint, "tcp://127.0.0.1:40123");
    b->state = "up";
    b->incarnation = BIG_INCARNATION;
    b->messages_in = 11;
    b->messages_out = BIG_COUNT;
    b->bytes_in = 1300;
    b->bytes_out = 1400;
    b->queued_messages = 15;
    b->queued_bytes = 1600;
    b->rtt_ns = 250000; /* 250 us */
    b->heartbeats_missed = 17;
    b->ups = 2;
    b->downs = 1;
    for (int r = 0; r < SPOOL_DEAD_REASON_COUNT; r++)
        b->dead_letters[r] = (uint64_t)r * 10;
    spool_node_peer *c = &peers[1];
    strcpy(c->node, "c");
    strcpy(c->endpoint, "tcp://host\"x\":1\n");
    c->state = "joining";
}

static void node_view_json_reads_back_field_by_field(void **state) {
    (void)state;
    fixture f;
    fixture_init(&f);
    admin_node node;
    spool_node_peer peers[2];
    node_view_init(&node, peers);
    char *text = NULL;
    assert_int_equal(admin_metrics_json(&f.metrics, &node, &text), 0);
    json_t *root = parse_json(text);
    assert_int_equal(json_object_size(root), 9); /* the snapshot's 7, "node" and "peers" */
    json_t *self = json_object_get(root, "node");
    assert_string_equal(json_text(self, "name"), "a");
    assert_int_equal(json_object_size(self), 1);

    json_t *list = json_object_get(root, "peers");
    assert_int_equal(json_array_size(list), 2);
    json_t *b = json_array_get(list, 0);
    assert_string_equal(json_text(b, "node"), "b");
    assert_string_equal(json_text(b, "endpoint"), "tcp://127.0.0.1:40123");
    assert_string_equal(json_text(b, "state"), "up");
    assert_string_equal(json_text(b, "incarnation"), "18446744073709551557");
    assert_int_equal(json_u64(b, "messages_in"), 11);
    assert_true(json_u64(b, "messages_out") == BIG_COUNT);
    assert_int_equal(json_u64(b, "bytes_in"), 1300);
    assert_int_equal(json_u64(b, "bytes_out"), 1400);
    assert_int_equal(json_u64(b, "queued_messages"), 15);
    assert_int_equal(json_u64(b, "queued_bytes"), 1600);
    assert_true(json_seconds(b, "rtt_seconds") == 250000 / 1e9);
    assert_int_equal(json_u64(b, "heartbeats_missed"), 17);
    assert_int_equal(json_u64(b, "ups"), 2);
    assert_int_equal(json_u64(b, "downs"), 1);
    json_t *dead = json_object_get(b, "dead_letters");
    assert_int_equal(json_object_size(dead), SPOOL_DEAD_REASON_COUNT);
    for (int r = 0; r < SPOOL_DEAD_REASON_COUNT; r++)
        assert_int_equal(json_u64(dead, spool_dead_reason_name((spool_dead_reason)r)),
                         (uint64_t)r * 10);
    assert_int_equal(json_object_size(b), 15);
    json_t *c = json_array_get(list, 1);
    assert_string_equal(json_text(c, "node"), "c");
    assert_string_equal(json_text(c, "state"), "joining");
    assert_string_equal(json_text(c, "endpoint"), "tcp://host\"x\":1\n");
    assert_string_equal(json_text(c, "incarnation"), "0");
    assert_true(json_seconds(c, "rtt_seconds") == 0.0); /* no heartbeat answered yet */
    json_decref(root);
    free(text);

    /* No node: "node" is null and "peers" empty, so a reader need not test for the keys. */
    admin_node none;
    memset(&none, 0, sizeof none);
    assert_int_equal(admin_metrics_json(&f.metrics, &none, &text), 0);
    root = parse_json(text);
    assert_true(json_is_null(json_object_get(root, "node")));
    assert_true(json_is_array(json_object_get(root, "peers")));
    assert_int_equal(json_array_size(json_object_get(root, "peers")), 0);
    json_decref(root);
    free(text);
}

static void node_view_prometheus_has_a_series_per_peer_and_passes_promtool(void **state) {
    (void)state;
    fixture f;
    fixture_init(&f);
    admin_node node;
    spool_node_peer peers[2];
    node_view_init(&node, peers);
    char *text = NULL;
    assert_int_equal(admin_metrics_prometheus(&f.metrics, &node, &text), 0);
    assert_families(text, family_types, FAMILY_COUNT);
    assert_families(text, node_family_types, NODE_FAMILY_COUNT);
    assert_contains(text, "\nspool_node_info{node=\"a\"} 1\n");
    assert_contains(text, "\nspool_node_peer_info{peer=\"b\",endpoint=\"tcp://127.0.0.1:40123\","
                          "incarnation=\"18446744073709551557\"} 1\n");
    assert_contains(text, "\nspool_node_peer_info{peer=\"c\",endpoint=\"tcp://host\\\"x\\\":1\\n\","
                          "incarnation=\"0\"} 1\n");
    assert_contains(text, "\nspool_node_peer_state{peer=\"b\",state=\"up\"} 1\n");
    assert_contains(text, "\nspool_node_peer_state{peer=\"b\",state=\"joining\"} 0\n");
    assert_contains(text, "\nspool_node_peer_state{peer=\"b\",state=\"down\"} 0\n");
    assert_contains(text, "\nspool_node_peer_state{peer=\"c\",state=\"joining\"} 1\n");
    assert_contains(text, "\nspool_node_peer_messages_in_total{peer=\"b\"} 11\n");
    assert_contains(text, "\nspool_node_peer_messages_out_total{peer=\"b\"} 9007199254740993\n");
    assert_contains(text, "\nspool_node_peer_bytes_in_total{peer=\"b\"} 1300\n");
    assert_contains(text, "\nspool_node_peer_bytes_out_total{peer=\"b\"} 1400\n");
    assert_contains(text, "\nspool_node_peer_queued_messages{peer=\"b\"} 15\n");
    assert_contains(text, "\nspool_node_peer_queued_bytes{peer=\"b\"} 1600\n");
    assert_contains(text, "\nspool_node_peer_heartbeats_missed_total{peer=\"b\"} 17\n");
    assert_contains(text, "\nspool_node_peer_ups_total{peer=\"b\"} 2\n");
    assert_contains(text, "\nspool_node_peer_downs_total{peer=\"b\"} 1\n");
    assert_contains(text, "\nspool_node_peer_rtt_seconds{peer=\"b\"} 0.00025\n");
    assert_contains(text, "\nspool_node_peer_rtt_seconds{peer=\"c\"} 0\n");
    for (int r = 0; r < SPOOL_DEAD_REASON_COUNT; r++) {
        char line[160];
        snprintf(line, sizeof line,
                 "\nspool_node_peer_dead_letters_total{peer=\"b\",reason=\"%s\"} %d\n",
                 spool_dead_reason_name((spool_dead_reason)r), r * 10);
        assert_contains(text, line);
    }
    assert_promtool_accepts(text);
    free(text);

    /* No node: every family is listed, none has a sample. */
    admin_node none;
    memset(&none, 0, sizeof none);
    assert_int_equal(admin_metrics_prometheus(&f.metrics, &none, &text), 0);
    assert_families(text, node_family_types, NODE_FAMILY_COUNT);
    assert_lacks(text, "\nspool_node_info{");
    assert_lacks(text, "\nspool_node_peer_");
    assert_promtool_accepts(text);
    free(text);

    /* The public exporters take a bare snapshot, which knows of no node: nothing of it. */
    assert_int_equal(spool_metrics_prometheus(&f.metrics, &text), 0);
    assert_lacks(text, "spool_node_");
    free(text);
}

/* ---------------------------------------------------------------------------------------------- */
/* A runtime to look at                                                                           */
/* ---------------------------------------------------------------------------------------------- */

enum { MSG_WORK = 1, MSG_ASK = 2 };

static void work_handle(spool_ctx *ctx, void *state, const spool_message *msg) {
    (void)state;
    if (msg->request_id)
        spool_reply(spool_ctx_runtime(ctx), msg, 0, NULL, 0);
}

static const spool_behavior counter_behavior = {"counter", work_handle, NULL};
static const spool_behavior echo_behavior = {"echo", work_handle, NULL};

static const spool_placement_rule test_rules[] = {
    {"alpha", "0"},
    {"cache", "near:alpha"},
    {"worker*", "least_loaded"},
};

/* Two threads, every message sampled, three placement rules. Started. */
static spool_runtime *admin_runtime(void) {
    spool_config config;
    spool_config_init(&config);
    config.threads = 2;
    config.batch = 32;
    config.ignore_environment = 1;
    config.metrics_sample = 1;
    config.placement = test_rules;
    config.placement_count = sizeof test_rules / sizeof test_rules[0];
    config.placement_default = "round_robin";
    spool_runtime *rt = NULL;
    assert_int_equal(spool_runtime_create(&config, &rt), 0);
    assert_int_equal(spool_runtime_start(rt), 0);
    return rt;
}

/* "alpha" (counter, thread 0 by rule) and an unnamed echo on thread 1. */
static void spawn_pair(spool_runtime *rt, spool_id ids[2]) {
    spool_spawn_opts opts = spool_spawn_opts_default();
    opts.name = "alpha";
    assert_int_equal(spool_spawn(rt, &counter_behavior, NULL, &opts, &ids[0]), 0);
    opts = spool_spawn_opts_default();
    opts.thread = 1;
    assert_int_equal(spool_spawn(rt, &echo_behavior, NULL, &opts, &ids[1]), 0);
}

/* Sends n messages, the last one a call: when it returns, all n are handled. */
static void send_and_sync(spool_runtime *rt, spool_id to, long n) {
    for (long i = 0; i < n - 1; i++)
        assert_int_equal(spool_send(rt, to, MSG_WORK, &i, sizeof i), 0);
    spool_response *r = NULL;
    assert_int_equal(spool_call_wait(rt, to, MSG_ASK, NULL, 0, 10000, &r), 0);
    spool_response_destroy(&r);
    /* The answer can arrive before the turn that sent it has ended and counted its messages
     * (a thread kept off the CPU right after replying): wait for the count to settle. */
    for (int i = 0; i < 10000; i++) {
        spool_mailbox_stats stats;
        assert_int_equal(spool_mailbox_stats_get(rt, to, &stats), 0);
        if (stats.depth == 0)
            return;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    fail_msg("actor %llu never settled", (unsigned long long)to);
}

static void endpoint_name(char *buffer, size_t size, const char *what) {
    snprintf(buffer, size, "ipc:///tmp/spool-test-%ld-%s.sock", (long)getpid(), what);
}

/* A REQ socket connected to `endpoint` that gives up on a reply after `timeout_ms`. */
static void *client_open(void *context, const char *endpoint, int timeout_ms) {
    void *socket = zmq_socket(context, ZMQ_REQ);
    assert_non_null(socket);
    int linger = 0;
    assert_int_equal(zmq_setsockopt(socket, ZMQ_LINGER, &linger, sizeof linger), 0);
    assert_int_equal(zmq_setsockopt(socket, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms), 0);
    assert_int_equal(zmq_connect(socket, endpoint), 0);
    return socket;
}

/* Sends one request of `frames` frames (each `size` bytes at `data`) and returns the reply,
 * NUL-terminated (free() it), or NULL if none came in time. Usable from any thread. */
static char *client_ask_frames(void *socket, const void *data, size_t size, int frames) {
    for (int i = 0; i < frames; i++)
        if (zmq_send(socket, data, size, i + 1 < frames ? ZMQ_SNDMORE : 0) < 0)
            return NULL;
    zmq_msg_t reply;
    zmq_msg_init(&reply);
    if (zmq_msg_recv(&reply, socket, 0) < 0 || zmq_msg_more(&reply)) {
        zmq_msg_close(&reply);
        return NULL;
    }
    size_t length = zmq_msg_size(&reply);
    char *text = malloc(length + 1);
    if (text) {
        memcpy(text, zmq_msg_data(&reply), length);
        text[length] = '\0';
    }
    zmq_msg_close(&reply);
    return text;
}

static char *client_ask(void *socket, const char *request) {
    char *reply = client_ask_frames(socket, request, strlen(request), 1);
    if (!reply)
        fail_msg("no reply to \"%s\"", request);
    return reply;
}

static int starts_with(const char *text, const char *prefix) {
    return strncmp(text, prefix, strlen(prefix)) == 0;
}

static const json_t *find_actor(const json_t *actors, spool_id id) {
    char text[24];
    snprintf(text, sizeof text, "%llu", (unsigned long long)id);
    for (size_t i = 0; i < json_array_size(actors); i++)
        if (strcmp(json_text(json_array_get(actors, i), "id"), text) == 0)
            return json_array_get(actors, i);
    print_error("actor %s is not in the reply\n", text);
    fail();
    return NULL;
}

/* ---------------------------------------------------------------------------------------------- */
/* The endpoint                                                                                   */
/* ---------------------------------------------------------------------------------------------- */

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

static void start_refuses_bad_arguments_and_bad_endpoints(void **state) {
    (void)state;
    spool_runtime *rt = support_runtime(1);
    spool_admin *admin = NULL;
    assert_int_equal(spool_admin_start(NULL, "ipc:///tmp/x.sock", &admin), SPOOL_EINVAL);
    assert_int_equal(spool_admin_start(rt, NULL, &admin), SPOOL_EINVAL);
    assert_int_equal(spool_admin_start(rt, "", &admin), SPOOL_EINVAL);
    assert_int_equal(spool_admin_start(rt, "ipc:///tmp/x.sock", NULL), SPOOL_EINVAL);
    assert_int_equal(spool_admin_start(rt, "bogus://x", &admin), SPOOL_ESYSTEM);
    assert_int_equal(spool_admin_start(rt, "not an endpoint", &admin), SPOOL_ESYSTEM);
    assert_int_equal(spool_admin_start(rt, "ipc:///no/such/dir/spool.sock", &admin), SPOOL_ESYSTEM);
    assert_null(admin);

    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", free_tcp_port());
    assert_int_equal(spool_admin_start(rt, endpoint, &admin), 0);
    spool_admin *second = NULL;
    assert_int_equal(spool_admin_start(rt, endpoint, &second), SPOOL_ESYSTEM); /* in use */
    assert_null(second);
    spool_admin_stop(&admin);
    assert_null(admin);
    spool_admin_stop(&admin); /* NULL-safe */
    spool_admin_stop(NULL);
    spool_runtime_destroy(&rt);
}

static void metrics_json_shows_the_actors_with_exact_counts(void **state) {
    (void)state;
    const long n = 500;
    spool_runtime *rt = admin_runtime();
    spool_id ids[2];
    spawn_pair(rt, ids);
    char endpoint[96];
    endpoint_name(endpoint, sizeof endpoint, "json");
    spool_admin *admin = NULL;
    assert_int_equal(spool_admin_start(rt, endpoint, &admin), 0);
    send_and_sync(rt, ids[0], n);
    send_and_sync(rt, ids[1], 2 * n);

    void *context = zmq_ctx_new();
    void *client = client_open(context, endpoint, 5000);
    for (int ask = 0; ask < 2; ask++) {
        char *text = client_ask(client, ask == 0 ? "metrics" : "metrics json");
        json_t *root = parse_json(text);
        assert_true(json_is_true(json_object_get(root, "enabled")));
        assert_int_equal(json_u64(root, "sample_every"), 1);
        assert_true(json_seconds(root, "uptime_seconds") > 0.0);
        assert_int_equal(json_array_size(json_object_get(root, "threads")), 2);
        const json_t *actors = json_object_get(root, "actors");
        assert_int_equal(json_array_size(actors), 2);
        for (int i = 0; i < 2; i++) {
            const json_t *a = find_actor(actors, ids[i]);
            uint64_t expected = (uint64_t)(i == 0 ? n : 2 * n);
            assert_string_equal(json_text(a, "name"), i == 0 ? "alpha" : "");
            assert_string_equal(json_text(a, "behavior"), i == 0 ? "counter" : "echo");
            assert_int_equal(json_u64(a, "thread"), i == 0 ? 0 : 1);
            assert_int_equal(json_u64(a, "enqueued"), expected);
            assert_int_equal(json_u64(a, "dequeued"), expected);
            assert_int_equal(json_u64(a, "handled"), expected);
            assert_int_equal(json_u64(a, "depth"), 0);
            assert_int_equal(json_u64(a, "rejected"), 0);
            assert_int_equal(json_u64(a, "dropped"), 0);
            assert_true(json_u64(a, "high_water") >= 1 && json_u64(a, "high_water") <= expected);
            /* One in one sampled: every message in both histograms. */
            assert_int_equal(json_u64(json_object_get(a, "wait"), "count"), expected);
            assert_int_equal(json_u64(json_object_get(a, "processing"), "count"), expected);
        }
        json_t *dead = json_object_get(root, "dead_letters");
        for (int r = 0; r < SPOOL_DEAD_REASON_COUNT; r++)
            assert_int_equal(json_u64(dead, spool_dead_reason_name((spool_dead_reason)r)), 0);
        /* Not a node: said so, with no peers. */
        assert_true(json_is_null(json_object_get(root, "node")));
        assert_int_equal(json_array_size(json_object_get(root, "peers")), 0);
        assert_true(json_is_array(json_object_get(root, "peers")));
        json_decref(root);
        free(text);
    }
    zmq_close(client);
    zmq_ctx_term(context);
    spool_admin_stop(&admin);
    support_finish(&rt, NO_DEAD_LETTERS);
}

static void prometheus_text_of_a_running_runtime_passes_promtool(void **state) {
    (void)state;
    spool_runtime *rt = admin_runtime();
    spool_id ids[2];
    spawn_pair(rt, ids);
    send_and_sync(rt, ids[0], 100);
    send_and_sync(rt, ids[1], 100);
    assert_int_equal(spool_send(rt, (spool_id)12345, MSG_WORK, NULL, 0), SPOOL_ENOENT);
    char endpoint[96];
    endpoint_name(endpoint, sizeof endpoint, "prom");
    spool_admin *admin = NULL;
    assert_int_equal(spool_admin_start(rt, endpoint, &admin), 0);
    void *context = zmq_ctx_new();
    void *client = client_open(context, endpoint, 5000);
    char *text = client_ask(client, "metrics prometheus");
    assert_families(text, family_types, FAMILY_COUNT);
    assert_families(text, node_family_types, NODE_FAMILY_COUNT); /* listed, though no node */
    assert_lacks(text, "\nspool_node_peer_state{");
    char line[160];
    snprintf(line, sizeof line,
             "spool_mailbox_enqueued_total{actor=\"%llu\",name=\"alpha\",thread=\"0\"} 100\n",
             (unsigned long long)ids[0]);
    assert_contains(text, line);
    snprintf(
        line, sizeof line,
        "spool_actor_processing_seconds_count{actor=\"%llu\",name=\"echo\",thread=\"1\"} 100\n",
        (unsigned long long)ids[1]);
    assert_contains(text, line);
    assert_contains(text, "spool_dead_letters_total{reason=\"no_receiver\"} 1\n");
    assert_promtool_accepts(text);
    free(text);
    zmq_close(client);
    zmq_ctx_term(context);
    spool_admin_stop(&admin);
    support_finish(&rt, DEAD(1));
}

static void actors_and_placement_replies_describe_the_runtime(void **state) {
    (void)state;
    spool_runtime *rt = admin_runtime();
    spool_id ids[2];
    spawn_pair(rt, ids);
    char endpoint[96];
    endpoint_name(endpoint, sizeof endpoint, "actors");
    spool_admin *admin = NULL;
    assert_int_equal(spool_admin_start(rt, endpoint, &admin), 0);
    void *context = zmq_ctx_new();
    void *client = client_open(context, endpoint, 5000);

    char *text = client_ask(client, "actors");
    json_t *actors = parse_json(text);
    assert_true(json_is_array(actors));
    assert_int_equal(json_array_size(actors), 2);
    const json_t *alpha = find_actor(actors, ids[0]);
    assert_string_equal(json_text(alpha, "name"), "alpha");
    assert_string_equal(json_text(alpha, "behavior"), "counter");
    assert_int_equal(json_u64(alpha, "thread"), 0);
    assert_int_equal(json_u64(alpha, "depth"), 0);
    assert_int_equal(json_object_size(alpha), 5);
    const json_t *echo = find_actor(actors, ids[1]);
    assert_string_equal(json_text(echo, "name"), "");
    assert_int_equal(json_u64(echo, "thread"), 1);
    json_decref(actors);
    free(text);

    text = client_ask(client, "placement");
    json_t *placement = parse_json(text);
    assert_int_equal(json_u64(placement, "threads"), 2);
    assert_int_equal(json_u64(placement, "batch"), 32);
    assert_string_equal(json_text(placement, "default"), "round_robin");
    json_t *cpus = json_object_get(placement, "cpus");
    assert_int_equal(json_array_size(cpus), 2);
    assert_int_equal(json_integer_value(json_array_get(cpus, 0)), -1); /* not pinned */
    json_t *rules = json_object_get(placement, "rules");
    assert_int_equal(json_array_size(rules), 3);
    json_t *rule = json_array_get(rules, 0);
    assert_string_equal(json_text(rule, "pattern"), "alpha");
    assert_string_equal(json_text(rule, "policy"), "thread");
    assert_int_equal(json_integer_value(json_object_get(rule, "thread")), 0);
    assert_true(json_is_null(json_object_get(rule, "near")));
    assert_string_equal(json_text(rule, "source"), "config.placement[0]");
    rule = json_array_get(rules, 1);
    assert_string_equal(json_text(rule, "pattern"), "cache");
    assert_string_equal(json_text(rule, "policy"), "near");
    assert_int_equal(json_integer_value(json_object_get(rule, "thread")), -1);
    assert_string_equal(json_text(rule, "near"), "alpha");
    rule = json_array_get(rules, 2);
    assert_string_equal(json_text(rule, "pattern"), "worker*");
    assert_string_equal(json_text(rule, "policy"), "least_loaded");
    assert_string_equal(json_text(rule, "source"), "config.placement[2]");
    json_decref(placement);
    free(text);

    /* A stopped (not yet destroyed) runtime is still looked at, or refused in words. */
    assert_int_equal(spool_runtime_stop(rt, 0), 0);
    text = client_ask(client, "metrics");
    if (!starts_with(text, "error: "))
        json_decref(parse_json(text));
    free(text);

    zmq_close(client);
    zmq_ctx_term(context);
    spool_admin_stop(&admin);
    support_finish(&rt, NO_DEAD_LETTERS);
}

static void malformed_requests_get_an_error_and_the_endpoint_keeps_answering(void **state) {
    (void)state;
    spool_runtime *rt = admin_runtime();
    spool_id ids[2];
    spawn_pair(rt, ids);
    char endpoint[96];
    endpoint_name(endpoint, sizeof endpoint, "junk");
    spool_admin *admin = NULL;
    assert_int_equal(spool_admin_start(rt, endpoint, &admin), 0);
    void *context = zmq_ctx_new();
    void *client = client_open(context, endpoint, 5000);

    static const char junk[] = {0x00, (char)0xFF, 0x01, 'm', 'e', 't', 'r', 'i', 'c', 's'};
    char *long_request = malloc(60 * 1024); /* under the 64 KiB frame limit: read and refused */
    assert_non_null(long_request);
    memset(long_request, 'm', 60 * 1024);
    const struct {
        const void *data;
        size_t size;
        int frames;
        const char *says;
    } cases[] = {
        {"", 0, 1, "empty request"},
        {junk, sizeof junk, 1, "not text"},
        {"metrics", 7, 3, "one frame"},
        {long_request, 60 * 1024, 1, "too long"},
        {"metrics xml", 11, 1, "unknown request \"metrics xml\""},
        {"METRICS", 7, 1, "unknown request"},
        {"metrics json please", 19, 1, "unknown request"},
        {"placement\x01", 10, 1, "not text"},
        {"\xC3(", 2, 1, "unknown request \"\xEF\xBF\xBD(\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *reply = client_ask_frames(client, cases[i].data, cases[i].size, cases[i].frames);
        if (!reply)
            fail_msg("case %zu: no reply", i);
        if (!starts_with(reply, "error: ") || !strstr(reply, cases[i].says) ||
            !strstr(reply, "\"metrics prometheus\"")) {
            print_error("case %zu: %s\n", i, reply);
            fail();
        }
        free(reply);
    }
    free(long_request);

    /* Spaces around the words are forgiven (echo adds a newline). */
    char *text = client_ask(client, "  metrics   prometheus\n");
    assert_true(starts_with(text, "# HELP "));
    free(text);
    text = client_ask(client, "metrics");
    json_decref(parse_json(text));
    free(text);

    /* A runtime that served junk still works, exactly. */
    send_and_sync(rt, ids[0], 10);
    zmq_close(client);
    zmq_ctx_term(context);
    spool_admin_stop(&admin);
    support_finish(&rt, NO_DEAD_LETTERS);
}

static void a_frame_over_the_limit_is_dropped_and_the_endpoint_keeps_answering(void **state) {
    (void)state;
    spool_runtime *rt = admin_runtime();
    char endpoint[96];
    endpoint_name(endpoint, sizeof endpoint, "huge");
    spool_admin *admin = NULL;
    assert_int_equal(spool_admin_start(rt, endpoint, &admin), 0);
    void *context = zmq_ctx_new();

    /* ZeroMQ refuses a frame over ZMQ_MAXMSGSIZE before storing it and drops the connection: the
     * request is never read, so it cannot be answered; the endpoint is unharmed. */
    size_t size = 4 * 1024 * 1024;
    char *huge = calloc(1, size);
    assert_non_null(huge);
    void *client = client_open(context, endpoint, 500);
    char *reply = client_ask_frames(client, huge, size, 1);
    assert_null(reply);
    zmq_close(client);
    free(huge);

    client = client_open(context, endpoint, 5000);
    char *text = client_ask(client, "actors");
    assert_string_equal(text, "[]");
    free(text);
    zmq_close(client);
    zmq_ctx_term(context);
    spool_admin_stop(&admin);
    support_finish(&rt, NO_DEAD_LETTERS);
}

static int open_descriptors(void) {
    int count = 0;
    DIR *dir = opendir("/proc/self/fd");
    assert_non_null(dir);
    while (readdir(dir))
        count++;
    closedir(dir);
    return count;
}

static void start_and_stop_twenty_times_leaves_nothing_behind(void **state) {
    (void)state;
    spool_runtime *rt = admin_runtime();
    char endpoint[96];
    endpoint_name(endpoint, sizeof endpoint, "again");
    int before = open_descriptors();
    for (int round = 0; round < 20; round++) {
        spool_admin *admin = NULL;
        assert_int_equal(spool_admin_start(rt, endpoint, &admin), 0);
        if (round % 2 == 0) { /* half of them serve a request before they stop */
            void *context = zmq_ctx_new();
            void *client = client_open(context, endpoint, 5000);
            char *text = client_ask(client, "placement");
            json_decref(parse_json(text));
            free(text);
            zmq_close(client);
            zmq_ctx_term(context);
        }
        spool_admin_stop(&admin);
        assert_null(admin);
        assert_int_equal(access(endpoint + strlen("ipc://"), F_OK), -1); /* no socket file left */
    }
    assert_int_equal(open_descriptors(), before);
    support_finish(&rt, NO_DEAD_LETTERS);
}

/* ---------------------------------------------------------------------------------------------- */
/* Readers while actors run                                                                       */
/* ---------------------------------------------------------------------------------------------- */

typedef struct hammer {
    void *context;
    const char *endpoint;
    atomic_int stop;
    atomic_long replies; /* good replies, both hammers */
    atomic_long bad;     /* missing or malformed replies */
} hammer;

static int reply_is_good(const char *request, const char *reply) {
    if (starts_with(request, "metrics prometheus"))
        return starts_with(reply, "# HELP spool_mailbox_depth ");
    json_t *root = json_loads(reply, 0, NULL);
    int good =
        root && (strcmp(request, "actors") == 0 ? json_is_array(root) : json_is_object(root));
    json_decref(root);
    return good;
}

static void *hammer_run(void *p) {
    hammer *h = p;
    static const char *const requests[] = {"metrics", "metrics prometheus", "actors", "placement"};
    void *socket = zmq_socket(h->context, ZMQ_REQ);
    int linger = 0, timeout = 10000;
    zmq_setsockopt(socket, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(socket, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_connect(socket, h->endpoint);
    for (unsigned i = 0; !atomic_load(&h->stop); i++) {
        const char *request = requests[i % 4];
        char *reply = client_ask_frames(socket, request, strlen(request), 1);
        if (reply && reply_is_good(request, reply))
            atomic_fetch_add(&h->replies, 1);
        else
            atomic_fetch_add(&h->bad, 1);
        free(reply);
        if (!reply)
            break; /* a REQ socket without its reply cannot send again */
    }
    zmq_close(socket);
    return NULL;
}

static void readers_hammering_the_endpoint_never_disturb_the_runtime(void **state) {
    (void)state;
    const long n = support_stress(20000);
    spool_runtime *rt = admin_runtime();
    spool_id ids[2];
    spawn_pair(rt, ids);
    char endpoint[96];
    endpoint_name(endpoint, sizeof endpoint, "hammer");
    spool_admin *admin = NULL;
    assert_int_equal(spool_admin_start(rt, endpoint, &admin), 0);

    hammer h = {.context = zmq_ctx_new(), .endpoint = endpoint};
    atomic_init(&h.stop, 0);
    atomic_init(&h.replies, 0);
    atomic_init(&h.bad, 0);
    pthread_t readers[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&readers[i], NULL, hammer_run, &h), 0);
    while (atomic_load(&h.replies) + atomic_load(&h.bad) < 4) /* both are reading by now */
        sched_yield();

    /* Keep the actors busy until n messages went and the readers had 100 answers; a call every
     * 1000 messages keeps the mailboxes short however slow the readers are. */
    long sent = 0, to[2] = {0, 0};
    while (sent < n || atomic_load(&h.replies) < 100) {
        int i = (int)(sent % 2);
        if (++to[i] % 1000 == 0)
            send_and_sync(rt, ids[i], 1);
        else
            assert_int_equal(spool_send(rt, ids[i], MSG_WORK, &sent, sizeof sent), 0);
        sent++;
    }
    send_and_sync(rt, ids[0], 1);
    send_and_sync(rt, ids[1], 1);
    to[0]++;
    to[1]++;
    long during = atomic_load(&h.replies);

    atomic_store(&h.stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(readers[i], NULL);
    zmq_ctx_term(h.context);
    print_message("%ld replies while %ld messages ran\n", during, sent);
    assert_int_equal(atomic_load(&h.bad), 0);
    assert_true(atomic_load(&h.replies) >= 4);

    spool_metrics *m = NULL;
    assert_int_equal(spool_metrics_snapshot(rt, &m), 0);
    assert_int_equal(m->actor_count, 2);
    uint64_t total = 0;
    for (size_t i = 0; i < m->actor_count; i++) {
        const spool_actor_metrics *a = &m->actors[i];
        uint64_t expected = (uint64_t)(a->id == ids[0] ? to[0] : to[1]);
        assert_int_equal(a->enqueued, expected);
        assert_int_equal(a->dequeued, expected);
        assert_int_equal(a->handled, expected);
        assert_int_equal(a->depth, 0);
        assert_int_equal(a->wait.count, expected);
        total += a->handled;
    }
    assert_int_equal(total, (uint64_t)sent + 2);
    assert_int_equal(total, (uint64_t)(to[0] + to[1]));
    spool_metrics_destroy(&m);
    spool_admin_stop(&admin);
    support_finish(&rt, NO_DEAD_LETTERS);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_reads_back_field_by_field),
        cmocka_unit_test(json_of_an_empty_snapshot_has_every_key),
        cmocka_unit_test(names_with_quotes_newlines_and_broken_utf8_stay_valid),
        cmocka_unit_test(exporters_refuse_what_is_not_a_snapshot),
        cmocka_unit_test(prometheus_has_every_family_even_without_actors),
        cmocka_unit_test(prometheus_buckets_are_cumulative_with_sum_and_count),
        cmocka_unit_test(node_view_json_reads_back_field_by_field),
        cmocka_unit_test(node_view_prometheus_has_a_series_per_peer_and_passes_promtool),
        cmocka_unit_test(start_refuses_bad_arguments_and_bad_endpoints),
        cmocka_unit_test(metrics_json_shows_the_actors_with_exact_counts),
        cmocka_unit_test(prometheus_text_of_a_running_runtime_passes_promtool),
        cmocka_unit_test(actors_and_placement_replies_describe_the_runtime),
        cmocka_unit_test(malformed_requests_get_an_error_and_the_endpoint_keeps_answering),
        cmocka_unit_test(a_frame_over_the_limit_is_dropped_and_the_endpoint_keeps_answering),
        cmocka_unit_test(start_and_stop_twenty_times_leaves_nothing_behind),
        cmocka_unit_test(readers_hammering_the_endpoint_never_disturb_the_runtime),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
