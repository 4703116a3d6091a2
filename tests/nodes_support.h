/*
 * nodes_support.h - what the in-process node tests share (test_nodes.c, test_admin_nodes.c): a
 * started runtime made a node on a free loopback port (insecure), joined to another, and a
 * bounded wait. Include after support.h; WAIT_MS (how long WAIT_FOR waits) may be set before.
 */
#ifndef SPOOL_TEST_NODES_SUPPORT_H
#define SPOOL_TEST_NODES_SUPPORT_H

#include "spool.h"
#include "spool_node.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef WAIT_MS
#define WAIT_MS 20000
#endif

static inline int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until cond holds, WAIT_MS at most (then the test fails, naming cond). */
#define WAIT_FOR(cond)                                                                             \
    do {                                                                                           \
        int64_t wait_start_ = now_ms();                                                            \
        while (!(cond)) {                                                                          \
            if (now_ms() - wait_start_ > WAIT_MS)                                                  \
                fail_msg("timed out waiting for %s", #cond);                                       \
            usleep(1000);                                                                          \
        }                                                                                          \
    } while (0)

typedef struct node_box {
    spool_runtime *rt;
    spool_node *node;
    char endpoint[256];
} node_box;

/* A started runtime of two threads made the node `name` on 127.0.0.1 (a free port), joined to
 * `join` ("NAME@ENDPOINT"; NULL: none). 0 for max_message or queue_bytes: the defaults. */
static inline void node_start(node_box *b, const char *name, const char *join,
                              unsigned heartbeat_ms, unsigned down_after_ms, size_t max_message,
                              size_t queue_bytes) {
    memset(b, 0, sizeof *b);
    b->rt = support_runtime(2);
    assert_int_equal(spool_runtime_start(b->rt), 0);
    spool_node_config c;
    spool_node_config_init(&c);
    c.name = name;
    c.listen = "tcp://127.0.0.1:0";
    c.insecure = 1;
    c.heartbeat_ms = heartbeat_ms;
    c.down_after_ms = down_after_ms;
    if (max_message)
        c.max_message = max_message;
    if (queue_bytes)
        c.queue_bytes = queue_bytes;
    const char *joins[1] = {join};
    if (join) {
        c.join = joins;
        c.join_count = 1;
    }
    char err[256] = "";
    int rc = spool_node_create(b->rt, &c, &b->node, err, sizeof err);
    if (rc != 0)
        fail_msg("spool_node_create %s: %s (%s)", name, err, spool_strerror(rc));
    snprintf(b->endpoint, sizeof b->endpoint, "%s", spool_node_endpoint(b->node));
}

/* The node gone (it says goodbye), then its runtime. */
static inline void node_finish(node_box *b) {
    spool_node_destroy(&b->node);
    assert_null(b->node);
    spool_runtime_stop(b->rt, 1000);
    spool_runtime_destroy(&b->rt);
}

#endif
