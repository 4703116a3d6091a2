/*
 * peers.c - what a node adds to the endpoint's snapshot: its name and, per peer, what
 * spool_node_peers says (state, traffic, send queue, heartbeat round trip, sessions, dead letters
 * by reason), as JSON keys next to the snapshot's and as Prometheus families after them. Copied
 * when the request is served, like the snapshot; a runtime that is no node gets "node": null,
 * "peers": [] and the families' HELP and TYPE lines without samples.
 *
 * JSON: "node": {"name": "a"}, "peers": [{"node": "b", "endpoint": "tcp://127.0.0.1:40123",
 * "state": "up", "incarnation": "1234..." (a string: 64 random bits do not fit 2^53),
 * "messages_in": N, "messages_out": N, "bytes_in": N, "bytes_out": N, "queued_messages": N,
 * "queued_bytes": N, "rtt_seconds": x (0 before the first heartbeat answer),
 * "heartbeats_missed": N, "ups": N, "downs": N, "dead_letters": {"no_receiver": N, ...}}, ...]
 *
 * Prometheus, per peer {peer="b"}: spool_node_peer_{messages,bytes}_{in,out}_total,
 * spool_node_peer_heartbeats_missed_total, spool_node_peer_{ups,downs}_total (counters),
 * spool_node_peer_queued_{messages,bytes}, spool_node_peer_rtt_seconds (gauges),
 * spool_node_peer_state{peer,state} (1 for the state it is in, 0 for the others),
 * spool_node_peer_info{peer,endpoint,incarnation} 1,
 * spool_node_peer_dead_letters_total{peer,reason} for every reason; and spool_node_info{node="a"} 1
 * for this node.
 */
#include "tools/admin/admin.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int compare_peers(const void *a, const void *b) {
    const spool_node_peer *x = a, *y = b;
    int order = strcmp(x->node, y->node);
    if (order != 0)
        return order;
    return x->incarnation < y->incarnation ? -1 : x->incarnation > y->incarnation;
}

int admin_node_take(spool_runtime *rt, admin_node *out) {
    memset(out, 0, sizeof *out);
    const char *self = spool_node_self(rt);
    if (!self)
        return 0;
    snprintf(out->name, sizeof out->name, "%s", self);
    /* Peers may be met between asking how many there are and copying them: ask again, larger. */
    size_t capacity = 8;
    for (;;) {
        spool_node_peer *peers = calloc(capacity, sizeof *peers);
        if (!peers)
            return SPOOL_ENOMEM;
        size_t count = 0;
        int rc = spool_node_peers(rt, peers, capacity, &count);
        if (rc != 0) {
            free(peers);
            memset(out, 0, sizeof *out);
            return rc == SPOOL_ESTATE ? 0 : rc; /* ESTATE: the node left meanwhile */
        }
        if (count <= capacity) {
            qsort(peers, count, sizeof *peers, compare_peers);
            out->is_node = 1;
            out->peers = peers;
            out->peer_count = count;
            return 0;
        }
        free(peers);
        capacity = count + 8;
    }
}

void admin_node_release(admin_node *node) {
    free(node->peers);
    memset(node, 0, sizeof *node);
}

/* ---------------------------------------------------------------------------------------------- */
/* JSON                                                                                           */
/* ---------------------------------------------------------------------------------------------- */

static json_t *json_peer(const spool_node_peer *p) {
    json_t *object = json_object();
    if (!object)
        return NULL;
    char incarnation[24];
    snprintf(incarnation, sizeof incarnation, "%" PRIu64, p->incarnation);
    int failed = admin_json_set(object, "node", admin_json_string(p->node, sizeof p->node));
    failed |=
        admin_json_set(object, "endpoint", admin_json_string(p->endpoint, sizeof p->endpoint));
    failed |= admin_json_set(object, "state", admin_json_string(p->state ? p->state : "?", 16));
    failed |= admin_json_set(object, "incarnation", json_string(incarnation));
    failed |= admin_json_set(object, "messages_in", admin_json_count(p->messages_in));
    failed |= admin_json_set(object, "messages_out", admin_json_count(p->messages_out));
    failed |= admin_json_set(object, "bytes_in", admin_json_count(p->bytes_in));
    failed |= admin_json_set(object, "bytes_out", admin_json_count(p->bytes_out));
    failed |= admin_json_set(object, "queued_messages", admin_json_count(p->queued_messages));
    failed |= admin_json_set(object, "queued_bytes", admin_json_count(p->queued_bytes));
    failed |= admin_json_set(object, "rtt_seconds", admin_json_seconds((double)p->rtt_ns / 1e9));
    failed |= admin_json_set(object, "heartbeats_missed", admin_json_count(p->heartbeats_missed));
    failed |= admin_json_set(object, "ups", admin_json_count(p->ups));
    failed |= admin_json_set(object, "downs", admin_json_count(p->downs));
    json_t *dead = json_object();
    failed |= admin_json_set(object, "dead_letters", dead);
    for (int r = 0; r < SPOOL_DEAD_REASON_COUNT && !failed; r++)
        failed |= admin_json_set(dead, spool_dead_reason_name((spool_dead_reason)r),
                                 admin_json_count(p->dead_letters[r]));
    if (failed) {
        json_decref(object);
        return NULL;
    }
    return object;
}

int admin_node_json(json_t *root, const admin_node *node) {
    int failed = 0;
    if (node->is_node) {
        json_t *self = json_object();
        failed |= admin_json_set(root, "node", self);
        if (!failed)
            failed |=
                admin_json_set(self, "name", admin_json_string(node->name, sizeof node->name));
    } else {
        failed |= admin_json_set(root, "node", json_null());
    }
    json_t *peers = json_array();
    failed |= admin_json_set(root, "peers", peers);
    for (size_t i = 0; i < node->peer_count && !failed; i++)
        failed |= admin_json_append(peers, json_peer(&node->peers[i]));
    return failed ? -1 : 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Prometheus                                                                                     */
/* ---------------------------------------------------------------------------------------------- */

typedef struct peer_family {
    const char *name;
    const char *type;
    const char *help;
    size_t offset; /* of a uint64_t in spool_node_peer */
} peer_family;

static const peer_family peer_counts[] = {
    {"spool_node_peer_messages_in_total", "counter", "Messages received from the peer.",
     offsetof(spool_node_peer, messages_in)},
    {"spool_node_peer_messages_out_total", "counter", "Messages sent to the peer.",
     offsetof(spool_node_peer, messages_out)},
    {"spool_node_peer_bytes_in_total", "counter",
     "Bytes received from the peer (every packet, heartbeats too).",
     offsetof(spool_node_peer, bytes_in)},
    {"spool_node_peer_bytes_out_total", "counter",
     "Bytes sent to the peer (every packet, heartbeats too).",
     offsetof(spool_node_peer, bytes_out)},
    {"spool_node_peer_queued_messages", "gauge", "Messages waiting in the peer's send queue now.",
     offsetof(spool_node_peer, queued_messages)},
    {"spool_node_peer_queued_bytes", "gauge",
     "Bytes waiting in the peer's send queue now (as queue_bytes counts them).",
     offsetof(spool_node_peer, queued_bytes)},
    {"spool_node_peer_heartbeats_missed_total", "counter",
     "Heartbeat intervals in which nothing was heard from the peer.",
     offsetof(spool_node_peer, heartbeats_missed)},
    {"spool_node_peer_ups_total", "counter", "Sessions with the peer that came up.",
     offsetof(spool_node_peer, ups)},
    {"spool_node_peer_downs_total", "counter", "Sessions with the peer that ended.",
     offsetof(spool_node_peer, downs)},
};

static const char *const peer_states[] = {"joining", "up", "down"};

static void prom_header(admin_text *t, const char *name, const char *type, const char *help) {
    admin_text_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* `key`="value" with the value repaired and escaped. */
static void prom_label(admin_text *t, const char *key, const char *value, size_t max) {
    admin_text_printf(t, "%s=\"", key);
    admin_text_utf8(t, value, strnlen(value, max), 1);
    admin_text_puts(t, "\"");
}

static void prom_peer(admin_text *t, const spool_node_peer *p) {
    prom_label(t, "peer", p->node, sizeof p->node);
}

void admin_node_prometheus(admin_text *t, const admin_node *node) {
    prom_header(t, "spool_node_info", "gauge", "This process's node: its name is the label.");
    if (node->is_node) {
        admin_text_puts(t, "spool_node_info{");
        prom_label(t, "node", node->name, sizeof node->name);
        admin_text_puts(t, "} 1\n");
    }

    prom_header(t, "spool_node_peer_info", "gauge",
                "A peer this node knows: its endpoint and current incarnation are labels.");
    for (size_t i = 0; i < node->peer_count; i++) {
        const spool_node_peer *p = &node->peers[i];
        admin_text_puts(t, "spool_node_peer_info{");
        prom_peer(t, p);
        admin_text_puts(t, ",");
        prom_label(t, "endpoint", p->endpoint, sizeof p->endpoint);
        admin_text_printf(t, ",incarnation=\"%" PRIu64 "\"} 1\n", p->incarnation);
    }

    prom_header(t, "spool_node_peer_state", "gauge",
                "1 for the state the peer is in (joining, up, down), 0 for the others.");
    for (size_t i = 0; i < node->peer_count; i++) {
        const spool_node_peer *p = &node->peers[i];
        const char *state = p->state ? p->state : "?";
        int known = 0;
        for (size_t s = 0; s < sizeof peer_states / sizeof peer_states[0]; s++) {
            int here = strcmp(state, peer_states[s]) == 0;
            known |= here;
            admin_text_puts(t, "spool_node_peer_state{");
            prom_peer(t, p);
            admin_text_printf(t, ",state=\"%s\"} %d\n", peer_states[s], here);
        }
        if (!known) { /* a state this exporter does not know yet: shown, not hidden */
            admin_text_puts(t, "spool_node_peer_state{");
            prom_peer(t, p);
            admin_text_puts(t, ",");
            prom_label(t, "state", state, 16);
            admin_text_puts(t, "} 1\n");
        }
    }

    for (size_t f = 0; f < sizeof peer_counts / sizeof peer_counts[0]; f++) {
        prom_header(t, peer_counts[f].name, peer_counts[f].type, peer_counts[f].help);
        for (size_t i = 0; i < node->peer_count; i++) {
            const spool_node_peer *p = &node->peers[i];
            uint64_t value;
            memcpy(&value, (const char *)p + peer_counts[f].offset, sizeof value);
            admin_text_printf(t, "%s{", peer_counts[f].name);
            prom_peer(t, p);
            admin_text_printf(t, "} %" PRIu64 "\n", value);
        }
    }

    prom_header(t, "spool_node_peer_rtt_seconds", "gauge",
                "Round trip of the last heartbeat answered by the peer (0 before the first).");
    for (size_t i = 0; i < node->peer_count; i++) {
        const spool_node_peer *p = &node->peers[i];
        char number[ADMIN_NUMBER_SIZE];
        admin_format_double(number, (double)p->rtt_ns / 1e9);
        admin_text_puts(t, "spool_node_peer_rtt_seconds{");
        prom_peer(t, p);
        admin_text_printf(t, "} %s\n", number);
    }

    prom_header(t, "spool_node_peer_dead_letters_total", "counter",
                "Messages to the peer's actors that became dead letters, by reason.");
    for (size_t i = 0; i < node->peer_count; i++) {
        const spool_node_peer *p = &node->peers[i];
        for (int r = 0; r < SPOOL_DEAD_REASON_COUNT; r++) {
            admin_text_puts(t, "spool_node_peer_dead_letters_total{");
            prom_peer(t, p);
            admin_text_printf(t, ",reason=\"%s\"} %" PRIu64 "\n",
                              spool_dead_reason_name((spool_dead_reason)r), p->dead_letters[r]);
        }
    }
}
