/*
 * net.c - a node's public calls (create, join, members, stats, destroy, net_peer_send: any
 * thread), the peer table they read and the helpers the net thread shares. The thread itself, its
 * sockets and its zmq_poll loop are in net_thread.c; what a packet does to a peer's session is in
 * session.c; the design is in net.h.
 */
#include "nodes/net_internal.h"

#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
static const char *const net_malformed_names[NET_MALFORMED_COUNT] = {
#define NET_MALFORMED_ROW(suffix, counter) [NET_MALFORMED_##suffix] = counter,
    NET_MALFORMED_MAP(NET_MALFORMED_ROW)
#undef NET_MALFORMED_ROW
};

const char *net_malformed_name(net_malformed reason) {
    return (unsigned)reason < NET_MALFORMED_COUNT ? net_malformed_names[reason] : "?";
}

const char *net_peer_state_name(net_peer_state state) {
    switch (state) {
    case NET_PEER_JOINING:
        return "joining";
    case NET_PEER_UP:
        return "up";
    case NET_PEER_DOWN:
        return "down";
    }
    return "?";
}

/* ---------------------------------------------------------------------------------------------- */
/* Small helpers                                                                                  */
/* ---------------------------------------------------------------------------------------------- */

void net_say(char *err, size_t err_size, const char *format, ...) {
    if (err == NULL || err_size == 0)
        return;
    va_list args;
    va_start(args, format);
    vsnprintf(err, err_size, format, args);
    va_end(args);
}

void net_log(const net_node *n, const char *format, ...) {
    char line[512];
    va_list args;
    va_start(args, format);
    vsnprintf(line, sizeof line, format, args);
    va_end(args);
    fprintf(stderr, "spool net %s: %s\n", n->name, line);
}

int64_t net_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

uint64_t net_random64(void) {
    uint64_t value = 0;
    while (value == 0) {
        if (getrandom(&value, sizeof value, 0) != (ssize_t)sizeof value) {
            /* Never expected (8 bytes from a urandom that is initialised); still never 0. */
            value = (uint64_t)net_now_ns() * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
        }
    }
    return value;
}

/* FNV-1a, 64 bits: the cluster id from its name. */
static uint64_t net_cluster_id(const char *name) {
    uint64_t hash = 0xcbf29ce484222325ull;
    for (const unsigned char *c = (const unsigned char *)name; *c; c++)
        hash = (hash ^ *c) * 0x100000001b3ull;
    return hash;
}

void net_stat_add(net_node *n, uint64_t *counter, uint64_t amount) {
    pthread_mutex_lock(&n->lock);
    *counter += amount;
    pthread_mutex_unlock(&n->lock);
}

int net_endpoint_split(const char *endpoint, char *host, size_t host_size, char *port,
                       size_t port_size) {
    if (endpoint == NULL || strncmp(endpoint, "tcp://", 6) != 0)
        return -1;
    const char *rest = endpoint + 6;
    const char *colon = strrchr(rest, ':');
    if (colon == NULL || colon == rest || colon[1] == '\0')
        return -1;
    size_t host_length = (size_t)(colon - rest);
    if (host_length >= host_size || strlen(colon + 1) >= port_size)
        return -1;
    memcpy(host, rest, host_length);
    host[host_length] = '\0';
    strcpy(port, colon + 1);
    for (const char *c = port; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c == '*' && port[1] == '\0')))
            return -1;
    /* the bytes a HELLO can carry: printable, no space */
    for (const char *c = endpoint; *c; c++)
        if ((unsigned char)*c < 0x21 || (unsigned char)*c > 0x7e)
            return -1;
    return strlen(endpoint) <= WIRE_ENDPOINT_MAX ? 0 : -1;
}

static bool net_host_is(const char *host, const char *const *names) {
    for (; *names; names++)
        if (strcmp(host, *names) == 0)
            return true;
    return false;
}

bool net_host_loopback(const char *host) {
    static const char *const names[] = {"127.0.0.1", "localhost", "::1", "[::1]", NULL};
    return net_host_is(host, names);
}

bool net_host_wildcard(const char *host) {
    static const char *const names[] = {"*", "0.0.0.0", "::", "[::]", NULL};
    return net_host_is(host, names);
}
/* ---------------------------------------------------------------------------------------------- */
/* The peer table                                                                                 */
/* ---------------------------------------------------------------------------------------------- */

net_peer *net_peer_find(net_node *n, const char *name) {
    for (size_t i = 0; i < n->peer_count; i++)
        if (strcmp(n->peers[i]->stats.name, name) == 0)
            return n->peers[i];
    return NULL;
}

/* The allowlist's key for `name` (32 bytes), or NULL. */
const keys_entry *net_allowed(const net_node *n, const char *name) {
    if (n->allow == NULL)
        return NULL;
    for (size_t i = 0; i < n->allow->count; i++)
        if (strcmp(n->allow->entries[i].name, name) == 0)
            return &n->allow->entries[i];
    return NULL;
}

net_peer *net_peer_add(net_node *n, const char *name, const char *endpoint) {
    if (n->peer_count >= NET_MAX_PEERS)
        return NULL;
    const keys_entry *key = NULL;
    if (!n->insecure && (key = net_allowed(n, name)) == NULL)
        return NULL; /* only a name the allowlist has gets this far; never expected */
    net_peer *p = memory_calloc(&n->allocator, sizeof *p);
    if (p == NULL)
        return NULL;
    snprintf(p->stats.name, sizeof p->stats.name, "%s", name);
    snprintf(p->stats.endpoint, sizeof p->stats.endpoint, "%s", endpoint);
    p->stats.state = NET_PEER_JOINING;
    p->recv_seq = 1;
    mpsc_init_ends(&p->producer, &p->consumer);
    if (key != NULL)
        memcpy(p->server_key, key->public_binary, KEYS_BINARY_SIZE);
    pthread_mutex_lock(&n->lock);
    if (n->peer_count == n->peer_capacity) {
        size_t capacity = n->peer_capacity ? n->peer_capacity * 2 : 8;
        net_peer **grown = memory_alloc(&n->allocator, capacity * sizeof *grown);
        if (grown == NULL) {
            pthread_mutex_unlock(&n->lock);
            memory_free(&n->allocator, p, sizeof *p);
            return NULL;
        }
        if (n->peer_count)
            memcpy(grown, n->peers, n->peer_count * sizeof *grown);
        memory_free(&n->allocator, n->peers, n->peer_capacity * sizeof *n->peers);
        n->peers = grown;
        n->peer_capacity = capacity;
    }
    n->peers[n->peer_count++] = p;
    pthread_mutex_unlock(&n->lock);
    return p;
}
/* ---------------------------------------------------------------------------------------------- */
/* Calls from any thread                                                                          */
/* ---------------------------------------------------------------------------------------------- */

void net_outgoing_free(net_node *n, net_outgoing *m) {
    memory_free(&n->allocator, m, sizeof *m + m->size);
}

void net_give_back(net_node *n, net_peer *p, net_outgoing *m, net_undelivered why) {
    if (n->on_undelivered != NULL) {
        wire_msg msg = {.to = m->to,
                        .from = m->from,
                        .type = m->type,
                        .flags = m->flags,
                        .request_id = m->request_id,
                        .data = m->payload,
                        .size = m->size};
        n->on_undelivered(n->user, p, m->incarnation, &msg, why);
    }
    net_outgoing_free(n, m);
}

static void net_wake(net_node *n) {
    uint64_t one = 1;
    /* EAGAIN means the counter is already non-zero: the thread will wake anyway. */
    ssize_t written = write(n->wake_fd, &one, sizeof one);
    (void)written;
}

static int net_check_config(const net_config *c, char *err, size_t err_size) {
    if (c == NULL || c->name == NULL || c->listen == NULL) {
        net_say(err, err_size, "a node needs a name and a listen endpoint");
        return SPOOL_EINVAL;
    }
    int rc = keys_name_check(c->name, err, err_size);
    if (rc != 0)
        return rc;
    char host[NET_ENDPOINT_SIZE], port[16];
    if (net_endpoint_split(c->listen, host, sizeof host, port, sizeof port) != 0) {
        net_say(err, err_size, "listen endpoint \"%s\" is not tcp://HOST:PORT", c->listen);
        return SPOOL_EINVAL;
    }
    if (c->insecure && c->keys_dir != NULL) {
        net_say(err, err_size, "insecure and a keys directory: pick one");
        return SPOOL_EINVAL;
    }
    if (!c->insecure && c->keys_dir == NULL) {
        net_say(err, err_size, "no keys directory: CURVE needs one (or insecure, on loopback)");
        return SPOOL_EINVAL;
    }
    if (c->insecure && !net_host_loopback(host)) {
        net_say(err, err_size,
                "refusing to listen on %s without CURVE: insecure is for loopback only "
                "(127.0.0.1, localhost, ::1)",
                c->listen);
        return SPOOL_EINVAL;
    }
    uint32_t heartbeat = c->heartbeat_ms ? c->heartbeat_ms : NET_DEFAULT_HEARTBEAT_MS;
    uint32_t down_after = c->down_after_ms ? c->down_after_ms : NET_DEFAULT_DOWN_AFTER_MS;
    if (down_after <= heartbeat || heartbeat > 3600000 || down_after > 3600000) {
        net_say(err, err_size, "down_after (%u ms) must exceed heartbeat (%u ms), both <= 1 h",
                down_after, heartbeat);
        return SPOOL_EINVAL;
    }
    if (c->cluster != NULL && c->cluster[0] == '\0') {
        net_say(err, err_size, "an empty cluster name");
        return SPOOL_EINVAL;
    }
    size_t max_message = c->max_message ? c->max_message : WIRE_DEFAULT_MAX_MESSAGE;
    size_t queue_bytes = c->queue_bytes ? c->queue_bytes : NET_DEFAULT_QUEUE_BYTES;
    if (max_message > UINT32_MAX) {
        net_say(err, err_size, "max_message %zu is over %u bytes", max_message, UINT32_MAX);
        return SPOOL_EINVAL;
    }
    if (queue_bytes < max_message + NET_QUEUED_OVERHEAD) {
        net_say(err, err_size, "queue_bytes %zu cannot hold one message of max_message %zu",
                queue_bytes, max_message);
        return SPOOL_EINVAL;
    }
    return 0;
}

static void net_free(net_node *n) {
    for (size_t i = 0; i < n->peer_count; i++) {
        /* Normally empty by now (the net thread gives everything back as it closes); not if it
         * stopped early. */
        net_data_reset(n, n->peers[i], NET_UNDELIVERED_SHUTDOWN);
        session_receive_reset(n, n->peers[i]);
        memory_free(&n->allocator, n->peers[i]->blocked.slots,
                    n->peers[i]->blocked.capacity * sizeof(uint64_t));
        memory_free(&n->allocator, n->peers[i], sizeof *n->peers[i]);
    }
    memory_free(&n->allocator, n->peers, n->peer_capacity * sizeof *n->peers);
    keys_allowlist_destroy(&n->allow);
    keys_pair_wipe(&n->keys);
    if (n->wake_fd >= 0)
        close(n->wake_fd);
    pthread_mutex_destroy(&n->lock);
    pthread_cond_destroy(&n->started);
    spool_allocator allocator = n->allocator;
    memory_free(&allocator, n, sizeof *n);
}

int net_node_create(const net_config *config, net_node **out, char *err, size_t err_size) {
    if (out != NULL)
        *out = NULL;
    if (out == NULL) {
        net_say(err, err_size, "no place for the node");
        return SPOOL_EINVAL;
    }
    int rc = net_check_config(config, err, err_size);
    if (rc != 0)
        return rc;
    const spool_allocator *allocator =
        config->allocator ? config->allocator : &memory_default_allocator;
    net_node *n = memory_calloc(allocator, sizeof *n);
    if (n == NULL) {
        net_say(err, err_size, "out of memory making the node");
        return SPOOL_ENOMEM;
    }
    n->allocator = *allocator;
    n->wake_fd = -1;
    pthread_mutex_init(&n->lock, NULL);
    pthread_cond_init(&n->started, NULL);
    snprintf(n->name, sizeof n->name, "%s", config->name);
    snprintf(n->listen, sizeof n->listen, "%s", config->listen);
    n->cluster = net_cluster_id(config->cluster ? config->cluster : NET_DEFAULT_CLUSTER);
    n->incarnation = net_random64();
    n->heartbeat_ms = config->heartbeat_ms ? config->heartbeat_ms : NET_DEFAULT_HEARTBEAT_MS;
    n->down_after_ms = config->down_after_ms ? config->down_after_ms : NET_DEFAULT_DOWN_AFTER_MS;
    n->insecure = config->insecure;
    n->on_event = config->on_event;
    n->on_message = config->on_message;
    n->on_undelivered = config->on_undelivered;
    n->user = config->user;
    n->max_message = config->max_message ? config->max_message : WIRE_DEFAULT_MAX_MESSAGE;
    n->queue_bytes = config->queue_bytes ? config->queue_bytes : NET_DEFAULT_QUEUE_BYTES;
    if (!n->insecure) {
        if ((rc = keys_load_secret(config->keys_dir, n->name, &n->keys, err, err_size)) != 0 ||
            (rc = keys_allowlist_load(config->keys_dir, allocator, &n->allow, err, err_size)) !=
                0) {
            net_free(n);
            return rc;
        }
    }
    n->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (n->wake_fd < 0) {
        net_say(err, err_size, "eventfd: %s", strerror(errno));
        net_free(n);
        return SPOOL_ESYSTEM;
    }
    if ((rc = pthread_create(&n->thread, NULL, net_thread_main, n)) != 0) {
        net_say(err, err_size, "cannot start the net thread: %s", strerror(rc));
        net_free(n);
        return SPOOL_ESYSTEM;
    }
    pthread_mutex_lock(&n->lock);
    while (!n->start_done)
        pthread_cond_wait(&n->started, &n->lock);
    rc = n->start_status;
    if (rc != 0)
        net_say(err, err_size, "%s", n->start_error);
    pthread_mutex_unlock(&n->lock);
    if (rc != 0) {
        pthread_join(n->thread, NULL);
        net_free(n);
        return rc;
    }
    *out = n;
    return 0;
}

const char *net_node_endpoint(const net_node *n) { return n != NULL ? n->endpoint : ""; }

int net_node_join(net_node *n, const char *peer, char *err, size_t err_size) {
    if (n == NULL || peer == NULL) {
        net_say(err, err_size, "no node or no peer");
        return SPOOL_EINVAL;
    }
    const char *at = strchr(peer, '@');
    if (at == NULL || at == peer || (size_t)(at - peer) > WIRE_NAME_MAX) {
        net_say(err, err_size, "join \"%s\": want NAME@tcp://HOST:PORT", peer);
        return SPOOL_EINVAL;
    }
    net_join_request request;
    memcpy(request.name, peer, (size_t)(at - peer));
    request.name[at - peer] = '\0';
    int rc = keys_name_check(request.name, err, err_size);
    if (rc != 0)
        return rc;
    char host[NET_ENDPOINT_SIZE], port[16];
    if (net_endpoint_split(at + 1, host, sizeof host, port, sizeof port) != 0 ||
        strcmp(port, "*") == 0 || strcmp(port, "0") == 0 || net_host_wildcard(host)) {
        net_say(err, err_size, "join \"%s\": \"%s\" is not tcp://HOST:PORT of a peer", peer,
                at + 1);
        return SPOOL_EINVAL;
    }
    if (n->insecure && !net_host_loopback(host)) {
        net_say(err, err_size, "join \"%s\": an insecure node connects on loopback only", peer);
        return SPOOL_EINVAL;
    }
    snprintf(request.endpoint, sizeof request.endpoint, "%s", at + 1);
    if (strcmp(request.name, n->name) == 0) {
        net_say(err, err_size, "join \"%s\": that is this node's own name", peer);
        return SPOOL_EINVAL;
    }
    if (!n->insecure && net_allowed(n, request.name) == NULL) {
        net_say(err, err_size, "join \"%s\": no %s.pub in the allowlist, so no key to demand", peer,
                request.name);
        return SPOOL_ENOENT;
    }
    pthread_mutex_lock(&n->lock);
    if (n->stopping)
        rc = SPOOL_ESTOPPED;
    else if (n->join_count == NET_PENDING_JOINS)
        rc = SPOOL_EFULL;
    else
        n->joins[n->join_count++] = request;
    pthread_mutex_unlock(&n->lock);
    if (rc == SPOOL_ESTOPPED)
        net_say(err, err_size, "the node is stopping");
    else if (rc == SPOOL_EFULL)
        net_say(err, err_size, "%d joins already wait for the net thread", NET_PENDING_JOINS);
    else
        net_wake(n);
    return rc;
}

void net_node_members(net_node *n, char (*names)[NET_NAME_SIZE], size_t capacity, size_t *count) {
    size_t up = 0;
    if (n != NULL) {
        pthread_mutex_lock(&n->lock);
        for (size_t i = 0; i < n->peer_count; i++) {
            if (n->peers[i]->stats.state != NET_PEER_UP)
                continue;
            if (names != NULL && up < capacity)
                memcpy(names[up], n->peers[i]->stats.name, NET_NAME_SIZE);
            up++;
        }
        pthread_mutex_unlock(&n->lock);
    }
    if (count != NULL)
        *count = up;
}

void net_node_stats(net_node *n, net_stats *out, net_peer_stats *peers, size_t capacity) {
    net_stats stats;
    memset(&stats, 0, sizeof stats);
    if (n != NULL) {
        pthread_mutex_lock(&n->lock);
        memcpy(stats.malformed, n->malformed, sizeof stats.malformed);
        stats.stale = n->stale;
        stats.discovered = n->discovered;
        stats.peer_count = n->peer_count;
        for (size_t i = 0; peers != NULL && i < capacity && i < n->peer_count; i++) {
            net_peer *p = n->peers[i];
            peers[i] = p->stats;
            /* relaxed: counters, each on its own */
            peers[i].queued_messages = pr_load_64_relaxed(&p->queued_messages);
            peers[i].queued_bytes = pr_load_64_relaxed(&p->queued_bytes);
            peers[i].overload = pr_load_64_relaxed(&p->overload);
        }
        pthread_mutex_unlock(&n->lock);
        /* zap is set before create returns and closed only after the loop, in destroy */
        zap_stats(n->zap, &stats.zap);
    }
    if (out != NULL)
        *out = stats;
}

void net_node_destroy(net_node **node) {
    if (node == NULL || *node == NULL)
        return;
    net_node *n = *node;
    /* No send gets in from now on, and those inside finish before the net thread gives every
     * queue back: the store, then the loads of each peer's `senders` (a seq_cst fence between);
     * a send adds to `senders`, then loads send_closed. One of the two sees the other. */
    pr_store_int(&n->send_closed, 1);
    pr_fence_seq_cst();
    pthread_mutex_lock(&n->lock);
    for (size_t i = 0; i < n->peer_count; i++)
        while (pr_load_64(&n->peers[i]->senders) != 0)
            sched_yield();
    n->stopping = true;
    pthread_mutex_unlock(&n->lock);
    net_wake(n);
    pthread_join(n->thread, NULL);
    net_free(n);
    *node = NULL;
}

/* ---------------------------------------------------------------------------------------------- */
/* Sending (any thread)                                                                           */
/* ---------------------------------------------------------------------------------------------- */

/* Whether the session of `incarnation` is UP now; its number into *session and what the peer
 * accepts into *peer_max. */
static bool net_link_read(net_peer *p, uint64_t incarnation, uint64_t *session,
                          uint64_t *peer_max) {
    for (;;) {
        /* A sequence lock of one word: the net thread writes incarnation and max_message before
         * the link word that names the session (release), and the link word changes at every UP
         * and DOWN, never back to an earlier value: the same word before and after means the two
         * fields read between belong to it. */
        uint64_t before = pr_load_64(&p->link);
        if ((before & 1) == 0)
            return false;
        uint64_t life = pr_load_64(&p->link_incarnation);
        uint64_t max = pr_load_64(&p->link_max_message);
        if (pr_load_64(&p->link) != before)
            continue;
        *session = before >> 1;
        *peer_max = max;
        return life == incarnation;
    }
}

static int net_send_checked(net_node *n, net_peer *p, uint64_t incarnation, const wire_msg *msg) {
    /* A send adds itself to `senders` (a read-modify-write, ordered before the load) and then
     * looks at send_closed: see net_node_destroy. */
    if (pr_load_int(&n->send_closed))
        return SPOOL_ESTOPPED;
    if (msg->size > n->max_message)
        return SPOOL_EMSGSIZE;
    uint64_t session = 0, peer_max = 0;
    if (!net_link_read(p, incarnation, &session, &peer_max))
        return SPOOL_ENOENT;
    if (peer_max != 0 && msg->size > peer_max)
        return SPOOL_EMSGSIZE;
    uint64_t charge = (uint64_t)msg->size + NET_QUEUED_OVERHEAD;
    /* Reserve first, so a refusal costs no allocation; racing sends may each see the other's
     * reservation and both be refused near the bound (never both let over it). */
    uint64_t before = pr_faa_64(&p->queued_bytes, charge);
    if (before + charge > n->queue_bytes) {
        pr_faa_64(&p->queued_bytes, (uint64_t)0 - charge);
        pr_faa_64(&p->overload, 1);
        return SPOOL_EFULL;
    }
    net_outgoing *m = memory_alloc(&n->allocator, sizeof *m + msg->size);
    if (m == NULL) {
        pr_faa_64(&p->queued_bytes, (uint64_t)0 - charge);
        return SPOOL_ENOMEM;
    }
    m->to = msg->to;
    m->from = msg->from;
    m->request_id = msg->request_id;
    m->type = msg->type;
    m->flags = msg->flags;
    m->size = msg->size;
    m->session = session;
    m->incarnation = incarnation;
    if (msg->size)
        memcpy(m->payload, msg->data, msg->size);
    pr_faa_64(&p->queued_messages, 1);
    /* The exchange inside publishes the block (its contents included) to the net thread. */
    mpsc_push_end(&p->producer, &m->link);
    /* The exchange, then the load of idle: a locked read-modify-write orders them (the fence is
     * free after one). The net thread stores idle, fences, then looks at the queue's head: of the
     * two, one sees the other, so a net thread about to sleep either sees this message or is
     * woken. Only the send that takes idle from 1 to 0 writes: a burst costs one write. */
    pr_fence_atomic_load();
    if (pr_load_int(&p->idle)) {
        int one = 1;
        if (pr_cas_int(&p->idle, &one, 0))
            net_wake(n);
    }
    return 0;
}

int net_peer_send(net_node *n, net_peer *p, uint64_t incarnation, const wire_msg *msg) {
    if (n == NULL || p == NULL || msg == NULL || ((msg->to | msg->from) & ~WIRE_ID_MASK) != 0 ||
        (msg->flags & ~WIRE_MSG_KNOWN_FLAGS) != 0 ||
        (!(msg->flags & WIRE_MSG_HAS_REQUEST_ID) && msg->request_id != 0) ||
        (msg->data == NULL && msg->size != 0))
        return SPOOL_EINVAL;
    pr_faa_64(&p->senders, 1);
    pr_fence_atomic_load();
    int rc = net_send_checked(n, p, incarnation, msg);
    /* Last: destroy may free everything once this is 0 (the eventfd written above included). */
    pr_faa_64(&p->senders, (uint64_t)0 - 1);
    return rc;
}
