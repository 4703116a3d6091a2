/*
 * remote.c - the runtime's side of nodes (remote.h): the node table, the route of messages to
 * actors of other nodes, what arrives from them, nodes coming up and going down, and the node
 * actor; the watches on them (monitors, node monitors, calls in flight) are remote_watch.c's. No
 * socket here: the node layer's ops send, its net thread reports.
 */
#include "actors/remote.h"
#include "actors/actors.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

int spool_node_name_valid(const char *name, size_t n) {
    if (!name || n == 0 || n > SPOOL_NODE_NAME_MAX || name[0] == '.' || name[0] == '-')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

int remote_name_ok(const char *name) {
    return name && spool_node_name_valid(name, strnlen(name, SPOOL_NODE_NAME_MAX + 1));
}

int remote_create(spool_runtime *rt) {
    remote_state *r = memory_alloc(&rt->allocator, sizeof *r);
    if (!r)
        return SPOOL_ENOMEM;
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    pthread_mutex_init(&r->calls_lock, NULL);
    r->count = 1;
    rt->remote = r;
    return 0;
}

void remote_destroy(spool_runtime *rt) {
    remote_state *r = rt->remote;
    if (!r)
        return;
    for (uint32_t i = 1; i < r->count; i++) {
        remote_entry *e = r->entries[i];
        while (e->watches) {
            remote_watch *w = e->watches;
            e->watches = w->next;
            memory_free(&rt->allocator, w, sizeof *w);
        }
        memory_free(&rt->allocator, e, sizeof *e);
    }
    while (r->node_watches) {
        node_watch *w = r->node_watches;
        r->node_watches = w->next;
        memory_free(&rt->allocator, w, sizeof *w);
    }
    for (size_t b = 0; b < CALL_BUCKETS; b++)
        while (r->calls[b]) {
            remote_call *c = r->calls[b];
            r->calls[b] = c->next;
            memory_free(&rt->allocator, c, sizeof *c);
        }
    pthread_mutex_destroy(&r->calls_lock);
    pthread_mutex_destroy(&r->lock);
    memory_free(&rt->allocator, r, sizeof *r);
    rt->remote = NULL;
}

remote_entry *remote_entry_at(remote_state *r, uint32_t index) {
    return index > 0 && index < REMOTE_MAX_NODES ? pr_load_ptr(&r->entries[index]) : NULL;
}

/* The entry of (name, incarnation), made if new; 0 when the table is full. Under lock. */
static uint32_t entry_find_or_add_locked(spool_runtime *rt, const char *name,
                                         uint64_t incarnation) {
    remote_state *r = rt->remote;
    for (uint32_t i = 1; i < r->count; i++) {
        remote_entry *e = r->entries[i];
        if (e->incarnation == incarnation && strcmp(e->name, name) == 0)
            return i;
    }
    if (r->count >= REMOTE_MAX_NODES)
        return 0;
    remote_entry *e = memory_alloc(&rt->allocator, sizeof *e);
    if (!e)
        return 0;
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->incarnation = incarnation;
    /* A life never met: NEW (unknown_node) until its session comes UP. Which of two lives is the
     * older cannot be told from their random incarnations, only from which comes UP later. */
    /* This node's own name with another incarnation: an earlier life of this process. */
    if (r->name[0] && strcmp(name, r->name) == 0)
        e->state = ENTRY_STALE;
    uint32_t index = r->count++;
    e->index = index;
    pr_store_ptr(&r->entries[index], e);
    return index;
}

/* ---------------------------------------------------------------------------------------------- */
/* Ids                                                                                            */

const char *spool_node_self(const spool_runtime *rt) {
    if (!rt || !rt->remote)
        return NULL;
    remote_state *r = rt->remote;
    return pr_load_int(&r->attached) ? r->name : NULL;
}

int spool_id_is_remote(spool_id id) { return id_node(id) != 0; }

int spool_id_export(spool_runtime *rt, spool_id id, spool_remote_id *out) {
    if (!rt || !out || id == SPOOL_ID_NONE)
        return SPOOL_EINVAL;
    remote_state *r = rt->remote;
    uint32_t index = id_node(id);
    out->local = id & REMOTE_LOCAL_MASK;
    if (index == 0) {
        if (!pr_load_int(&r->attached))
            return SPOOL_ENOENT;
        snprintf(out->node, sizeof out->node, "%s", r->name);
        out->incarnation = r->incarnation;
        return 0;
    }
    remote_entry *e = remote_entry_at(r, index);
    if (!e)
        return SPOOL_ENOENT;
    snprintf(out->node, sizeof out->node, "%s", e->name);
    out->incarnation = e->incarnation;
    return 0;
}

int spool_id_import(spool_runtime *rt, const spool_remote_id *remote, spool_id *out) {
    if (!rt || !remote || !out || remote->incarnation == 0 || remote->local > REMOTE_LOCAL_MASK ||
        memchr(remote->node, 0, sizeof remote->node) == NULL || !remote_name_ok(remote->node))
        return SPOOL_EINVAL;
    remote_state *r = rt->remote;
    if (pr_load_int(&r->attached) && remote->incarnation == r->incarnation &&
        strcmp(remote->node, r->name) == 0) {
        *out = remote->local;
        return 0;
    }
    pthread_mutex_lock(&r->lock);
    uint32_t index = entry_find_or_add_locked(rt, remote->node, remote->incarnation);
    pthread_mutex_unlock(&r->lock);
    if (index == 0)
        return SPOOL_ENOMEM;
    *out = ((spool_id)index << (ID_SLOT_BITS + ID_GEN_BITS)) | remote->local;
    return 0;
}

/* The node actor of entry `index`: the id whose local part is 0. */
spool_id remote_node_actor_of(uint32_t index) {
    return (spool_id)index << (ID_SLOT_BITS + ID_GEN_BITS);
}

int spool_node_actor(spool_runtime *rt, const char *node, spool_id *out) {
    if (!rt || !node || !out || !remote_name_ok(node))
        return SPOOL_EINVAL;
    remote_state *r = rt->remote;
    if (!pr_load_int(&r->attached))
        return SPOOL_ENOENT;
    if (strcmp(node, r->name) == 0) {
        *out = r->node_actor;
        return 0;
    }
    int rc = SPOOL_ENOENT;
    pthread_mutex_lock(&r->lock);
    for (uint32_t i = 1; i < r->count; i++) {
        remote_entry *e = r->entries[i];
        if (pr_load_int(&e->state) == ENTRY_UP && strcmp(e->name, node) == 0) {
            *out = remote_node_actor_of(i);
            rc = 0;
        }
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

int spool_node_members(spool_runtime *rt, char (*names)[SPOOL_NODE_NAME_MAX + 1], size_t capacity,
                       size_t *count) {
    if (!rt || (capacity > 0 && !names))
        return SPOOL_EINVAL;
    remote_state *r = rt->remote;
    if (!pr_load_int(&r->attached))
        return SPOOL_ESTATE;
    size_t n = 0;
    pthread_mutex_lock(&r->lock);
    for (uint32_t i = 1; i < r->count; i++) {
        remote_entry *e = r->entries[i];
        if (pr_load_int(&e->state) != ENTRY_UP)
            continue;
        if (n < capacity)
            snprintf(names[n], SPOOL_NODE_NAME_MAX + 1, "%s", e->name);
        n++;
    }
    pthread_mutex_unlock(&r->lock);
    if (count)
        *count = n;
    return 0;
}

int spool_node_peers(spool_runtime *rt, spool_node_peer *peers, size_t capacity, size_t *count) {
    if (!rt || (capacity > 0 && !peers))
        return SPOOL_EINVAL;
    remote_state *r = rt->remote;
    pthread_mutex_lock(&r->lock);
    int attached = pr_load_int(&r->attached);
    remote_ops ops = r->ops;
    if (attached)
        pr_faa_64(&r->senders, 1); /* detach waits for this call as for a send */
    pthread_mutex_unlock(&r->lock);
    if (!attached)
        return SPOOL_ESTATE;
    size_t n = 0;
    int rc = ops.peers ? ops.peers(ops.user, peers, capacity, &n) : 0;
    pr_faa_64(&r->senders, (uint64_t)-1);
    if (rc != 0)
        return rc;
    /* Dead letters by reason, over every life of the peer's name. */
    pthread_mutex_lock(&r->lock);
    for (size_t p = 0; p < n && p < capacity; p++) {
        memset(peers[p].dead_letters, 0, sizeof peers[p].dead_letters);
        for (uint32_t i = 1; i < r->count; i++) {
            remote_entry *e = r->entries[i];
            if (strcmp(e->name, peers[p].node) != 0)
                continue;
            for (int k = 0; k < SPOOL_DEAD_REASON_COUNT; k++)
                peers[p].dead_letters[k] += pr_load_64(&e->dead[k]);
        }
    }
    pthread_mutex_unlock(&r->lock);
    if (count)
        *count = n;
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Sending                                                                                        */

/* A message leaving: its kind as wire flags and type. 0, or -1 for kinds that never leave. */
static int outgoing(const message *m, remote_message *out, int32_t *word) {
    out->type = m->view.type;
    out->flags = 0;
    out->request_id = 0;
    out->data = m->view.data;
    out->size = m->view.size;
    switch (m->kind) {
    case MSG_USER:
        if (m->view.type == SPOOL_MSG_DOWN && m->view.size == sizeof(spool_down)) {
            spool_down down;
            memcpy(&down, m->view.data, sizeof down);
            *word = down.reason;
            out->flags = REMOTE_EXIT;
            out->data = word;
            out->size = sizeof *word;
        } else if (m->view.request_id != 0) {
            out->flags = REMOTE_REQUEST;
            out->request_id = m->view.request_id;
        }
        return 0;
    case MSG_REPLY:
        out->flags = REMOTE_REPLY;
        out->request_id = m->view.request_id;
        return 0;
    case MSG_REPLY_ERROR:
        *word = m->status;
        out->flags = REMOTE_ERROR;
        out->request_id = m->view.request_id;
        out->data = word;
        out->size = sizeof *word;
        return 0;
    case MSG_MONITOR:
        out->type = REMOTE_T_MONITOR;
        out->data = NULL;
        out->size = 0;
        return 0;
    case MSG_STOP:
        *word = m->status;
        out->type = REMOTE_T_STOP;
        out->data = word;
        out->size = sizeof *word;
        return 0;
    default: /* MSG_SELF, MSG_MOVE, MSG_CALL_TIMEOUT stay home */
        return -1;
    }
}

static void count_entry(remote_entry *e, spool_dead_reason reason) {
    if (e)
        pr_faa_64(&e->dead[reason], 1);
}

/* message_deliver's refusal, with the reason and the error the sender sees. */
static int refuse(spool_runtime *rt, remote_entry *e, spool_dead_reason reason, spool_id to,
                  message *m, int error) {
    m->sender_told = 1;
    if (m->kind == MSG_USER || m->kind == MSG_REPLY) {
        count_entry(e, reason);
        dead_letter(rt,
                    m->kind == MSG_REPLY && reason == SPOOL_DEAD_NO_RECEIVER ? SPOOL_DEAD_LATE_REPLY
                                                                             : reason,
                    to, m);
    } else
        message_free(rt, m);
    return error;
}

int remote_deliver(spool_runtime *rt, spool_id to, message *m) {
    remote_state *r = rt->remote;
    remote_entry *e = remote_entry_at(r, id_node(to));
    if (!e)
        return refuse(rt, NULL, SPOOL_DEAD_UNKNOWN_NODE, to, m, SPOOL_ENOENT);
    switch (pr_load_int(&e->state)) {
    case ENTRY_UP:
        break;
    case ENTRY_STALE:
        return refuse(rt, e, SPOOL_DEAD_STALE_INCARNATION, to, m, SPOOL_ENOENT);
    case ENTRY_DOWN:
        return refuse(rt, e, SPOOL_DEAD_NODE_DOWN, to, m, SPOOL_ENOENT);
    default:
        return refuse(rt, e, SPOOL_DEAD_UNKNOWN_NODE, to, m, SPOOL_ENOENT);
    }
    remote_message out = {.to = to, .from = m->view.from};
    int32_t word = 0;
    if (outgoing(m, &out, &word) != 0)
        return refuse(rt, e, SPOOL_DEAD_NO_RECEIVER, to, m, SPOOL_EINVAL);
    /* Remembered before it leaves: the answer may come before send returns. */
    int is_call = (out.flags & REMOTE_REQUEST) != 0;
    if (is_call && remote_call_add(rt, out.from, out.request_id, to) != 0)
        return refuse(rt, e, SPOOL_DEAD_NODE_DOWN, to, m, SPOOL_ENOMEM);
    /* Announce the send before reading `attached` (Dekker with remote_detach, which stores, fences,
     * then reads `senders`). The add is a locked read-modify-write: the fence after it is free. */
    pr_faa_64(&r->senders, 1);
    pr_fence_atomic_load();
    int rc = SPOOL_ENOENT;
    if (pr_load_int(&r->attached))
        rc = r->ops.send(r->ops.user, e->peer, e->incarnation, &out);
    pr_faa_64(&r->senders, (uint64_t)-1);
    if (rc != 0 && is_call)
        remote_call_take(rt, out.from, out.request_id);
    /* A session that ended between the state check and the send: its DOWN may have failed the
     * calls already, before this one was listed. Checked again now that it is listed or sent. */
    if (rc == 0 && is_call && pr_load_int(&e->state) != ENTRY_UP)
        remote_calls_fail(rt, id_node(to));
    switch (rc) {
    case 0:
        message_free(rt, m);
        return 0;
    case SPOOL_EOVERLOAD:
        return refuse(rt, e, SPOOL_DEAD_OVERLOAD, to, m, SPOOL_EOVERLOAD);
    case SPOOL_EMSGSIZE:
        return refuse(rt, e, SPOOL_DEAD_TOO_LARGE, to, m, SPOOL_EMSGSIZE);
    case SPOOL_ENOMEM:
        return refuse(rt, e, SPOOL_DEAD_NODE_DOWN, to, m, SPOOL_ENOMEM);
    default:
        return refuse(rt, e, SPOOL_DEAD_NODE_DOWN, to, m, SPOOL_ENOENT);
    }
}

void remote_undelivered(spool_runtime *rt, uint32_t index, const remote_message *m,
                        spool_dead_reason reason) {
    remote_entry *e = remote_entry_at(rt->remote, index);
    int counted =
        !(m->type >= SPOOL_MSG_RESERVED && !(m->flags & REMOTE_EXIT)) && !(m->flags & REMOTE_ERROR);
    if (!counted)
        return; /* a runtime notice (monitor, stop): dropped like a local one */
    count_entry(e, reason);
    spool_message view = {.from = m->from,
                          .type = (m->flags & REMOTE_EXIT) ? SPOOL_MSG_DOWN : m->type,
                          .data = m->data,
                          .size = m->size,
                          .request_id = m->request_id};
    spool_dead_letter_report(rt, reason, m->to, &view);
    /* A request whose caller waits: it learns now rather than at its timeout. */
    if ((m->flags & REMOTE_REQUEST) && m->request_id != 0 &&
        remote_call_take(rt, m->from, m->request_id)) {
        if (m->from == SPOOL_ID_NONE)
            request_complete_foreign(rt, m->request_id, NULL, SPOOL_ENOENT);
        else
            message_notify(rt, m->from, m->to, MSG_REPLY_ERROR, SPOOL_ENOENT, m->request_id, 0,
                           NULL, 0);
    }
}

int spool_node_whereis(spool_ctx *ctx, const char *node, const char *name, unsigned timeout_ms,
                       spool_reply_fn cont, void *arg) {
    if (!ctx || !node || !name || !cont)
        return SPOOL_EINVAL;
    size_t n = strlen(name);
    if (n == 0 || n > 255)
        return SPOOL_EINVAL;
    spool_id to;
    int rc = spool_node_actor(spool_ctx_runtime(ctx), node, &to);
    if (rc != 0)
        return rc;
    return request_call_owner(ctx, to, REMOTE_T_WHEREIS, name, n, timeout_ms, cont, arg);
}

/* ---------------------------------------------------------------------------------------------- */
/* Up and down                                                                                    */

/* Ends entry e (UP or NEW -> `state`): its watches fire noconnection. Returns whether it was UP. */
static int entry_end(spool_runtime *rt, remote_entry *e, int state) {
    remote_state *r = rt->remote;
    pthread_mutex_lock(&r->lock);
    int was = pr_load_int(&e->state);
    if (was == ENTRY_STALE || (was == ENTRY_DOWN && state == ENTRY_DOWN)) {
        pthread_mutex_unlock(&r->lock);
        return 0;
    }
    pr_store_int(&e->state, state);
    remote_watch *watches = e->watches;
    e->watches = NULL;
    pthread_mutex_unlock(&r->lock);
    remote_calls_fail(rt, (uint32_t)(e->index));
    while (watches) {
        remote_watch *w = watches;
        watches = w->next;
        remote_tell_down(rt, w->watcher, w->target, SPOOL_EXIT_NOCONNECTION);
        memory_free(&rt->allocator, w, sizeof *w);
    }
    return was == ENTRY_UP;
}

uint32_t remote_node_up(spool_runtime *rt, const char *name, uint64_t incarnation, void *peer) {
    remote_state *r = rt->remote;
    if (!remote_name_ok(name))
        return 0;
    pthread_mutex_lock(&r->lock);
    uint32_t index = entry_find_or_add_locked(rt, name, incarnation);
    remote_entry *e = index ? r->entries[index] : NULL;
    remote_entry *older[64];
    size_t n_older = 0;
    if (e) {
        e->peer = peer;
        for (uint32_t i = 1; i < r->count && n_older < 64; i++) {
            remote_entry *o = r->entries[i];
            if (o != e && o->incarnation != incarnation && strcmp(o->name, name) == 0 &&
                pr_load_int(&o->state) != ENTRY_STALE)
                older[n_older++] = o;
        }
    }
    pthread_mutex_unlock(&r->lock);
    if (!e) {
        fprintf(stderr, "spool: node table full (%d entries): %s ignored\n", REMOTE_MAX_NODES,
                name);
        return 0;
    }
    for (size_t i = 0; i < n_older; i++)
        entry_end(rt, older[i], ENTRY_STALE);
    if (pr_load_int(&e->state) == ENTRY_STALE)
        return index; /* an earlier life met again late: it stays refused */
    pr_store_int(&e->state, ENTRY_UP);
    remote_tell_node_watchers(rt, e, index, SPOOL_MSG_NODEUP, NULL);
    return index;
}

void remote_node_down(spool_runtime *rt, uint32_t index, const char *reason) {
    remote_entry *e = remote_entry_at(rt->remote, index);
    if (e && entry_end(rt, e, ENTRY_DOWN))
        remote_tell_node_watchers(rt, e, index, SPOOL_MSG_NODEDOWN, reason);
}

/* ---------------------------------------------------------------------------------------------- */
/* Receiving                                                                                      */

static int32_t word_of(const remote_message *m) {
    int32_t v = 0;
    if (m->size == sizeof v)
        memcpy(&v, m->data, sizeof v);
    return v;
}

static void deliver_in(spool_runtime *rt, spool_id to, message *m) {
    if (runtime_foreign_enter(rt) != 0) {
        if (m->kind == MSG_USER || m->kind == MSG_REPLY)
            dead_letter(rt, SPOOL_DEAD_SHUTDOWN, to, m);
        else
            message_free(rt, m);
        return;
    }
    message_deliver(rt, to, m);
    runtime_foreign_leave(rt);
}

void remote_receive(spool_runtime *rt, uint32_t index, const remote_message *in) {
    remote_state *r = rt->remote;
    remote_entry *e = remote_entry_at(r, index);
    if (!e || in->to > REMOTE_LOCAL_MASK || in->from > REMOTE_LOCAL_MASK)
        return;
    spool_id from = remote_node_actor_of(index) | in->from;
    spool_id to = in->to ? (spool_id)in->to : r->node_actor;
    /* An answer: the call is no longer in flight. One that is not listed any more was answered
     * already (by the end of a session) or its caller stopped waiting: it still goes on, and a
     * reply nobody waits for is counted as a late_reply dead letter where it lands. */
    if (in->flags & (REMOTE_REPLY | REMOTE_ERROR))
        remote_call_take(rt, in->to ? to : SPOOL_ID_NONE, in->request_id);
    /* Replies to a blocking caller of this process (it sent from outside: `from` 0). */
    if (in->to == 0 && (in->flags & (REMOTE_REPLY | REMOTE_ERROR))) {
        if (in->flags & REMOTE_ERROR) {
            request_complete_foreign(rt, in->request_id, NULL, word_of(in));
            return;
        }
    }
    size_t size = in->size;
    if (in->flags & REMOTE_EXIT)
        size = sizeof(spool_down);
    message *m = message_new(rt, size);
    if (!m)
        return; /* out of memory: lost like a message in flight */
    m->view.from = from;
    m->view.type = in->type;
    m->view.request_id = in->request_id;
    if (in->flags & REMOTE_EXIT) {
        spool_down down = {from, word_of(in)};
        memcpy(m->inline_data, &down, sizeof down);
        m->view.type = SPOOL_MSG_DOWN;
        m->kind = MSG_USER;
        m->view.request_id = 0;
        remote_watch_done(rt, e, to, from);
    } else {
        if (size)
            memcpy(m->inline_data, in->data, size);
        if (in->flags & REMOTE_ERROR) {
            m->kind = MSG_REPLY_ERROR;
            m->status = word_of(in);
        } else if (in->flags & REMOTE_REPLY) {
            m->kind = MSG_REPLY;
            if (in->type == REMOTE_T_WHEREIS_REPLY && size == sizeof(uint64_t)) {
                uint64_t local;
                memcpy(&local, m->inline_data, sizeof local);
                spool_id id = local == 0 ? SPOOL_ID_NONE : remote_node_actor_of(index) | local;
                memcpy(m->inline_data, &id, sizeof id);
            }
        } else if (in->type == REMOTE_T_MONITOR) {
            m->kind = MSG_MONITOR;
        } else if (in->type == REMOTE_T_STOP) {
            m->kind = MSG_STOP;
            m->status = word_of(in);
        } else {
            m->kind = MSG_USER;
            if (!(in->flags & REMOTE_REQUEST))
                m->view.request_id = 0;
        }
    }
    if (in->to == 0 && m->kind == MSG_REPLY) {
        request_complete_foreign(rt, in->request_id, m, 0);
        return;
    }
    if (m->kind == MSG_MONITOR) {
        /* A monitor of an actor that is gone: NOPROC goes back at once, as locally. */
        if (actor_lookup(rt, to) == NULL) {
            message_free(rt, m);
            remote_tell_down(rt, from, to, SPOOL_EXIT_NOPROC);
            return;
        }
    }
    deliver_in(rt, to, m);
}

/* ---------------------------------------------------------------------------------------------- */
/* The node actor and attaching                                                                   */

static void node_actor_handle(spool_ctx *ctx, void *state, const spool_message *msg) {
    spool_runtime *rt = spool_ctx_runtime(ctx);
    if (msg->type != REMOTE_T_WHEREIS || msg->request_id == 0)
        return;
    char name[256];
    size_t n = msg->size < sizeof name - 1 ? msg->size : sizeof name - 1;
    memcpy(name, msg->data, n);
    name[n] = '\0';
    spool_id id = SPOOL_ID_NONE;
    if (n == msg->size && spool_whereis(rt, name, &id) == 0 && id_node(id) == 0) {
        uint64_t local = id;
        message_notify(rt, msg->from, spool_self(ctx), MSG_REPLY, 0, msg->request_id,
                       REMOTE_T_WHEREIS_REPLY, &local, sizeof local);
    } else
        message_notify(rt, msg->from, spool_self(ctx), MSG_REPLY_ERROR, SPOOL_ENOENT,
                       msg->request_id, 0, NULL, 0);
}

static const spool_behavior node_actor_behavior = {.name = "spool.node",
                                                   .handle = node_actor_handle};

int remote_attach(spool_runtime *rt, const char *name, uint64_t incarnation,
                  const remote_ops *ops) {
    if (!rt || !ops || !ops->send || !remote_name_ok(name) || incarnation == 0)
        return SPOOL_EINVAL;
    remote_state *r = rt->remote;
    if (pr_load_int(&r->attached))
        return SPOOL_ESTATE;
    spool_spawn_opts opts = spool_spawn_opts_default();
    opts.name = "spool.node";
    opts.pinned = 1;
    spool_id node_actor;
    int rc = spool_spawn(rt, &node_actor_behavior, NULL, &opts, &node_actor);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&r->lock);
    r->ops = *ops;
    snprintf(r->name, sizeof r->name, "%s", name);
    r->incarnation = incarnation;
    r->node_actor = node_actor;
    /* Ids already imported under this name with another incarnation are of an earlier life. */
    for (uint32_t i = 1; i < r->count; i++)
        if (strcmp(r->entries[i]->name, name) == 0)
            pr_store_int(&r->entries[i]->state, ENTRY_STALE);
    pr_store_int(&r->attached, 1);
    pthread_mutex_unlock(&r->lock);
    return 0;
}

void remote_detach(spool_runtime *rt, const char *reason) {
    remote_state *r = rt->remote;
    pthread_mutex_lock(&r->lock);
    int was = pr_load_int(&r->attached);
    pr_store_int(&r->attached, 0);
    uint32_t count = r->count;
    pthread_mutex_unlock(&r->lock);
    if (!was)
        return;
    pr_fence_seq_cst();
    while (pr_load_64(&r->senders) != 0)
        sched_yield();
    for (uint32_t i = 1; i < count; i++)
        remote_node_down(rt, i, reason);
    spool_actor_stop(rt, r->node_actor, SPOOL_EXIT_NORMAL);
}
