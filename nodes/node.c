/*
 * node.c - spool_node.h: a runtime becomes a node. The glue between the runtime's side of nodes
 * (actors/remote.h: the node table, routing, monitors) and the net thread (net.h: sessions,
 * heartbeats, the data path): the core's sends go to net_peer_send, the net thread's events and
 * messages go to remote_node_up/down and remote_receive. Plus the [node] section of config files.
 */
#include "spool_node.h"

#include "actors/remote.h"
#include "mailbox/memory.h"
#include "nodes/net_internal.h" /* the net node's incarnation */

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Which node-table entry a session of (peer, incarnation) is: the net thread's own map. */
typedef struct node_life {
    net_peer *peer;
    uint64_t incarnation;
    uint32_t index;
} node_life;

#define NODE_MAX_LIVES 4096

struct spool_node {
    spool_runtime *rt;
    net_node *net;
    spool_allocator allocator;
    /* The net thread's (on_event, on_message, on_undelivered all run there; destroy reads it
     * after the thread is joined). */
    node_life *lives;
    size_t life_count;
    node_life *last; /* the last one looked up: consecutive messages come from one peer */
};

static void say(char *err, size_t err_size, const char *format, const char *arg) {
    if (err && err_size)
        snprintf(err, err_size, format, arg);
}

/* ---------------------------------------------------------------------------------------------- */
/* The net thread's callbacks                                                                     */

static node_life *life_find(spool_node *n, net_peer *peer, uint64_t incarnation) {
    if (n->last && n->last->peer == peer && n->last->incarnation == incarnation)
        return n->last;
    for (size_t i = 0; i < n->life_count; i++)
        if (n->lives[i].peer == peer && n->lives[i].incarnation == incarnation)
            return n->last = &n->lives[i];
    return NULL;
}

static void on_event(void *user, const net_event *event) {
    spool_node *n = user;
    if (event->kind == NET_NODE_UP) {
        node_life *life = life_find(n, event->peer, event->incarnation);
        if (!life) {
            if (n->life_count == NODE_MAX_LIVES)
                return;
            life = &n->lives[n->life_count++];
            life->peer = event->peer;
            life->incarnation = event->incarnation;
            life->index = 0;
        }
        life->index = remote_node_up(n->rt, event->name, event->incarnation, event->peer);
        n->last = NULL;
        return;
    }
    node_life *life = life_find(n, event->peer, event->incarnation);
    if (life && life->index)
        remote_node_down(n->rt, life->index, event->reason ? event->reason : "");
}

static void from_wire(const wire_msg *w, remote_message *m) {
    m->to = w->to;
    m->from = w->from;
    m->type = w->type;
    m->flags = w->flags;
    m->request_id = w->request_id;
    m->data = w->data;
    m->size = w->size;
}

static void on_message(void *user, net_peer *peer, uint64_t incarnation, const wire_msg *msg) {
    spool_node *n = user;
    node_life *life = life_find(n, peer, incarnation);
    if (!life || !life->index)
        return;
    remote_message m;
    from_wire(msg, &m);
    remote_receive(n->rt, life->index, &m);
}

static void on_undelivered(void *user, net_peer *peer, uint64_t incarnation, const wire_msg *msg,
                           net_undelivered why) {
    spool_node *n = user;
    node_life *life = life_find(n, peer, incarnation);
    if (!life || !life->index)
        return;
    remote_message m;
    from_wire(msg, &m);
    m.to = ((uint64_t)life->index << 48) | msg->to;
    remote_undelivered(n->rt, life->index, &m,
                       why == NET_UNDELIVERED_SHUTDOWN ? SPOOL_DEAD_SHUTDOWN
                                                       : SPOOL_DEAD_NODE_DOWN);
}

/* ---------------------------------------------------------------------------------------------- */
/* The core's ops                                                                                 */

static int op_send(void *user, void *peer, uint64_t incarnation, const remote_message *m) {
    spool_node *n = user;
    wire_msg w = {.to = m->to & REMOTE_LOCAL_MASK,
                  .from = (m->from >> 48) == 0 ? m->from : 0,
                  .type = m->type,
                  .flags = m->flags,
                  .request_id = m->request_id,
                  .data = m->data,
                  .size = (uint32_t)m->size};
    if (m->size > UINT32_MAX)
        return SPOOL_EMSGSIZE;
    int rc = net_peer_send(n->net, peer, incarnation, &w);
    return rc == SPOOL_EFULL ? SPOOL_EOVERLOAD : rc;
}

static int op_peers(void *user, spool_node_peer *peers, size_t capacity, size_t *count) {
    spool_node *n = user;
    net_stats stats;
    net_peer_stats *ps = NULL;
    if (capacity) {
        ps = memory_alloc(&n->allocator, capacity * sizeof *ps);
        if (!ps)
            return SPOOL_ENOMEM;
    }
    net_node_stats(n->net, &stats, ps, capacity);
    size_t shown = stats.peer_count < capacity ? stats.peer_count : capacity;
    for (size_t i = 0; i < shown; i++) {
        spool_node_peer *p = &peers[i];
        memset(p, 0, sizeof *p);
        snprintf(p->node, sizeof p->node, "%s", ps[i].name);
        snprintf(p->endpoint, sizeof p->endpoint, "%s", ps[i].endpoint);
        p->state = net_peer_state_name(ps[i].state);
        p->incarnation = ps[i].incarnation;
        p->messages_in = ps[i].messages_in;
        p->messages_out = ps[i].messages_out;
        p->bytes_in = ps[i].bytes_in;
        p->bytes_out = ps[i].bytes_out;
        p->queued_messages = ps[i].queued_messages;
        p->queued_bytes = ps[i].queued_bytes;
        p->rtt_ns = ps[i].rtt_ns;
        p->heartbeats_missed = ps[i].missed;
        p->ups = ps[i].ups;
        p->downs = ps[i].downs;
    }
    if (ps)
        memory_free(&n->allocator, ps, capacity * sizeof *ps);
    *count = stats.peer_count;
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Create and destroy                                                                             */

void spool_node_config_init(spool_node_config *config) {
    if (config)
        memset(config, 0, sizeof *config);
}

int spool_node_create(spool_runtime *rt, const spool_node_config *c, spool_node **out, char *err,
                      size_t err_size) {
    if (out)
        *out = NULL;
    if (!rt || !c || !out) {
        say(err, err_size, "%s", "spool_node_create: NULL argument");
        return SPOOL_EINVAL;
    }
    if (!c->name || !*c->name) {
        say(err, err_size, "%s", "a node needs a name (--node NAME, [node] name)");
        return SPOOL_EINVAL;
    }
    if (!c->listen || !*c->listen) {
        say(err, err_size, "%s",
            "a node needs an endpoint to listen on (--listen tcp://HOST:PORT, [node] listen)");
        return SPOOL_EINVAL;
    }
    if (!c->insecure && (!c->keys || !*c->keys)) {
        say(err, err_size, "%s",
            "a node needs its CURVE keys (--keys DIR, made by `spool keygen DIR --name NAME`), "
            "or --insecure for plain connections on loopback");
        return SPOOL_EINVAL;
    }
    if (c->insecure && c->keys && *c->keys) {
        say(err, err_size, "%s", "keys and insecure are exclusive: choose one");
        return SPOOL_EINVAL;
    }
    if (spool_node_self(rt) != NULL) {
        say(err, err_size, "%s", "this runtime is a node already");
        return SPOOL_ESTATE;
    }
    spool_allocator allocator = memory_default_allocator;
    spool_node *n = memory_alloc(&allocator, sizeof *n);
    node_life *lives = memory_alloc(&allocator, NODE_MAX_LIVES * sizeof *lives);
    if (!n || !lives) {
        if (n)
            memory_free(&allocator, n, sizeof *n);
        if (lives)
            memory_free(&allocator, lives, NODE_MAX_LIVES * sizeof *lives);
        say(err, err_size, "%s", "out of memory");
        return SPOOL_ENOMEM;
    }
    memset(n, 0, sizeof *n);
    n->rt = rt;
    n->allocator = allocator;
    n->lives = lives;
    net_config nc = {.name = c->name,
                     .cluster = c->cluster,
                     .listen = c->listen,
                     .keys_dir = c->insecure ? NULL : c->keys,
                     .insecure = c->insecure != 0,
                     .heartbeat_ms = c->heartbeat_ms,
                     .down_after_ms = c->down_after_ms,
                     .on_event = on_event,
                     .on_message = on_message,
                     .on_undelivered = on_undelivered,
                     .max_message = c->max_message,
                     .queue_bytes = c->queue_bytes,
                     .user = n};
    /* Attached before the net thread starts, so that no session comes up before the runtime knows
     * its own name and incarnation; the incarnation is the net node's, so it is set after. */
    int rc = net_node_create(&nc, &n->net, err, err_size);
    if (rc != 0)
        goto fail;
    remote_ops ops = {.send = op_send, .peers = op_peers, .user = n};
    rc = remote_attach(rt, c->name, n->net->incarnation, &ops);
    if (rc != 0) {
        say(err, err_size, "cannot attach the node to the runtime: %s", spool_strerror(rc));
        net_node_destroy(&n->net);
        goto fail;
    }
    for (size_t i = 0; i < c->join_count; i++) {
        rc = net_node_join(n->net, c->join[i], err, err_size);
        if (rc != 0) {
            spool_node_destroy(&n);
            return rc;
        }
    }
    *out = n;
    return 0;
fail:
    memory_free(&allocator, lives, NODE_MAX_LIVES * sizeof *lives);
    memory_free(&allocator, n, sizeof *n);
    return rc;
}

const char *spool_node_endpoint(const spool_node *node) {
    return node ? net_node_endpoint(node->net) : NULL;
}

int spool_node_join(spool_node *node, const char *member, char *err, size_t err_size) {
    if (!node || !member) {
        say(err, err_size, "%s", "spool_node_join: NULL argument");
        return SPOOL_EINVAL;
    }
    return net_node_join(node->net, member, err, err_size);
}

void spool_node_destroy(spool_node **node) {
    if (!node || !*node)
        return;
    spool_node *n = *node;
    *node = NULL;
    /* First the runtime stops routing to the net (and every UP entry goes down "shutdown"), then
     * the net thread says GOODBYE and gives back what was still queued (dead letters). */
    remote_detach(n->rt, "shutdown");
    net_node_destroy(&n->net);
    spool_allocator allocator = n->allocator;
    memory_free(&allocator, n->lives, NODE_MAX_LIVES * sizeof *n->lives);
    memory_free(&allocator, n, sizeof *n);
}

/* ---------------------------------------------------------------------------------------------- */
/* [node] in a config file                                                                        */

/* Strings kept for a loaded config: one block per string, in a list. */
typedef struct owned_string {
    struct owned_string *next;
    char text[];
} owned_string;

typedef struct owned {
    owned_string *strings;
    const char **joins;
    size_t join_capacity;
} owned;

typedef struct load_state {
    spool_node_config *config;
    owned *own;
    const char *path;
    int rc;
    char why[256];
} load_state;

static const char *keep(owned *own, const char *text, size_t n) {
    owned_string *s = malloc(sizeof *s + n + 1);
    if (!s)
        return NULL;
    memcpy(s->text, text, n);
    s->text[n] = '\0';
    s->next = own->strings;
    own->strings = s;
    return s->text;
}

/* Remembers the first refusal (the path and line are added once inih says which line). */
static int load_fail(load_state *st, int rc, const char *format, const char *arg) {
    if (st->rc == 0) {
        st->rc = rc;
        snprintf(st->why, sizeof st->why, format, arg);
    }
    return 0;
}

static int parse_unsigned(const char *value, unsigned long long max, unsigned long long *out) {
    char *end;
    errno = 0;
    if (*value < '0' || *value > '9')
        return -1;
    unsigned long long v = strtoull(value, &end, 10);
    if (errno || *end || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *value, int *out) {
    if (!strcmp(value, "true") || !strcmp(value, "yes") || !strcmp(value, "on") ||
        !strcmp(value, "1"))
        *out = 1;
    else if (!strcmp(value, "false") || !strcmp(value, "no") || !strcmp(value, "off") ||
             !strcmp(value, "0"))
        *out = 0;
    else
        return -1;
    return 0;
}

/* Adds the joins of a list ("a@tcp://x:1, b@tcp://y:2"). */
static int add_joins(load_state *st, const char *value) {
    spool_node_config *c = st->config;
    owned *own = st->own;
    const char *p = value;
    while (*p) {
        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
        size_t n = strcspn(p, ", \t");
        if (n == 0)
            break;
        if (c->join_count == own->join_capacity) {
            size_t capacity = own->join_capacity ? own->join_capacity * 2 : 8;
            const char **joins = realloc(own->joins, capacity * sizeof *joins);
            if (!joins)
                return load_fail(st, SPOOL_ENOMEM, "%s", "out of memory");
            if (!own->joins && c->join_count)
                memcpy(joins, c->join, c->join_count * sizeof *joins);
            own->joins = joins;
            own->join_capacity = capacity;
            c->join = own->joins;
        }
        const char *kept = keep(own, p, n);
        if (!kept)
            return load_fail(st, SPOOL_ENOMEM, "%s", "out of memory");
        own->joins[c->join_count++] = kept;
        p += n;
    }
    return 1;
}

static int handle_node_key(void *user, const char *section, const char *name, const char *value) {
    load_state *st = user;
    if (strcmp(section, "node") != 0 || st->rc != 0)
        return 1;
    spool_node_config *c = st->config;
    unsigned long long v;
    if (!strcmp(name, "name") || !strcmp(name, "listen") || !strcmp(name, "keys") ||
        !strcmp(name, "cluster")) {
        const char *kept = keep(st->own, value, strlen(value));
        if (!kept)
            return load_fail(st, SPOOL_ENOMEM, "%s", "out of memory");
        if (!strcmp(name, "name"))
            c->name = kept;
        else if (!strcmp(name, "listen"))
            c->listen = kept;
        else if (!strcmp(name, "keys"))
            c->keys = kept;
        else
            c->cluster = kept;
    } else if (!strcmp(name, "join")) {
        return add_joins(st, value);
    } else if (!strcmp(name, "insecure")) {
        if (parse_bool(value, &c->insecure) != 0)
            return load_fail(st, SPOOL_ECONFIG, "[node] insecure: '%s' is not true or false",
                             value);
    } else if (!strcmp(name, "heartbeat_ms") || !strcmp(name, "down_after_ms")) {
        if (parse_unsigned(value, 3600000, &v) != 0 || v == 0)
            return load_fail(st, SPOOL_ECONFIG,
                             "[node] timing: '%s' is not a number of ms in 1..3600000", value);
        if (!strcmp(name, "heartbeat_ms"))
            c->heartbeat_ms = (unsigned)v;
        else
            c->down_after_ms = (unsigned)v;
    } else if (!strcmp(name, "max_message") || !strcmp(name, "queue_bytes")) {
        if (parse_unsigned(value, (unsigned long long)UINT32_MAX, &v) != 0 || v == 0)
            return load_fail(st, SPOOL_ECONFIG,
                             "[node] size: '%s' is not a number of bytes in 1..4294967295", value);
        if (!strcmp(name, "max_message"))
            c->max_message = (size_t)v;
        else
            c->queue_bytes = (size_t)v;
    } else {
        return load_fail(st, SPOOL_ECONFIG,
                         "unknown key '%s' in [node] (expected name, listen, join, keys, insecure, "
                         "cluster, heartbeat_ms, down_after_ms, max_message or queue_bytes)",
                         name);
    }
    return 1;
}

int spool_node_config_load(spool_node_config *config, const char *path, char *err,
                           size_t err_size) {
    if (!config || !path) {
        say(err, err_size, "%s", "spool_node_config_load: NULL argument");
        return SPOOL_EINVAL;
    }
    owned *own = config->owned;
    if (!own) {
        own = calloc(1, sizeof *own);
        if (!own)
            return SPOOL_ENOMEM;
        config->owned = own;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        say(err, err_size, "cannot open %s", path);
        return SPOOL_ENOENT;
    }
    load_state st = {.config = config, .own = own, .path = path};
    int line = ini_parse_file(f, handle_node_key, &st);
    fclose(f);
    if (st.rc != 0) {
        if (err && err_size)
            snprintf(err, err_size, "%s:%d: %s", path, line, st.why);
        return st.rc;
    }
    if (line != 0) {
        if (err && err_size)
            snprintf(err, err_size, "%s:%d: syntax error", path, line);
        return SPOOL_ECONFIG;
    }
    return 0;
}

void spool_node_config_clear(spool_node_config *config) {
    if (!config)
        return;
    owned *own = config->owned;
    if (own) {
        while (own->strings) {
            owned_string *s = own->strings;
            own->strings = s->next;
            free(s);
        }
        free(own->joins);
        free(own);
    }
    memset(config, 0, sizeof *config);
}
