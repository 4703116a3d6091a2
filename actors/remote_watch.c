/*
 * remote_watch.c - what watches another node (remote.h): calls in flight to it, monitors of its
 * actors, and node monitors. Each is remembered here until it is answered, and fired when the
 * node's session ends (remote.c's entry_end), so no waiter is left to its timeout, or forever.
 */
#include "actors/actors.h"
#include "actors/remote.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------- */
/* Calls in flight: a request to another node is remembered until its answer comes, so that the
 * end of that node's session answers it (SPOOL_ENOENT) rather than the caller's timeout, or never.
 */

static size_t call_bucket(spool_id caller, uint64_t request_id) {
    uint64_t h = (caller ^ (request_id * 0x9E3779B97F4A7C15u)) * 0xff51afd7ed558ccdu;
    return (size_t)(h >> 54) % CALL_BUCKETS;
}

int remote_call_add(spool_runtime *rt, spool_id caller, uint64_t request_id, spool_id target) {
    remote_state *r = rt->remote;
    remote_call *c = memory_alloc(&rt->allocator, sizeof *c);
    if (!c)
        return SPOOL_ENOMEM;
    *c = (remote_call){
        .caller = caller, .request_id = request_id, .target = target, .index = id_node(target)};
    size_t b = call_bucket(caller, request_id);
    pthread_mutex_lock(&r->calls_lock);
    c->next = r->calls[b];
    r->calls[b] = c;
    pr_store_64(&r->calls_live, r->calls_live + 1);
    pthread_mutex_unlock(&r->calls_lock);
    return 0;
}

/* Forgets the call (an answer came, or it was refused); whether it was there. */
int remote_call_take(spool_runtime *rt, spool_id caller, uint64_t request_id) {
    remote_state *r = rt->remote;
    size_t b = call_bucket(caller, request_id);
    remote_call *found = NULL;
    pthread_mutex_lock(&r->calls_lock);
    for (remote_call **pp = &r->calls[b]; *pp; pp = &(*pp)->next)
        if ((*pp)->caller == caller && (*pp)->request_id == request_id) {
            found = *pp;
            *pp = found->next;
            pr_store_64(&r->calls_live, r->calls_live - 1);
            break;
        }
    pthread_mutex_unlock(&r->calls_lock);
    if (found)
        memory_free(&rt->allocator, found, sizeof *found);
    return found != NULL;
}

void remote_call_forget(spool_runtime *rt, spool_id caller, uint64_t request_id) {
    remote_state *r = rt ? rt->remote : NULL;
    /* Every timeout and every end of an actor with calls pending comes here: without a node, or
     * with nothing in flight, it costs one load. */
    if (r && pr_load_64(&r->calls_live) != 0)
        remote_call_take(rt, caller, request_id);
}

/* Entry `index` went down: every call in flight to it is answered SPOOL_ENOENT. */
void remote_calls_fail(spool_runtime *rt, uint32_t index) {
    remote_state *r = rt->remote;
    remote_call *failed = NULL;
    pthread_mutex_lock(&r->calls_lock);
    for (size_t b = 0; b < CALL_BUCKETS; b++)
        for (remote_call **pp = &r->calls[b]; *pp;) {
            remote_call *c = *pp;
            if (c->index == index) {
                *pp = c->next;
                c->next = failed;
                failed = c;
                pr_store_64(&r->calls_live, r->calls_live - 1);
            } else
                pp = &c->next;
        }
    pthread_mutex_unlock(&r->calls_lock);
    while (failed) {
        remote_call *c = failed;
        failed = c->next;
        if (c->caller == SPOOL_ID_NONE)
            request_complete_foreign(rt, c->request_id, NULL, SPOOL_ENOENT);
        else
            message_notify(rt, c->caller, c->target, MSG_REPLY_ERROR, SPOOL_ENOENT, c->request_id,
                           0, NULL, 0);
        memory_free(&rt->allocator, c, sizeof *c);
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* Monitors across a connection                                                                   */

void remote_tell_down(spool_runtime *rt, spool_id who, spool_id target, int reason) {
    spool_down down = {target, reason};
    message_notify(rt, who, target, MSG_USER, 0, 0, SPOOL_MSG_DOWN, &down, sizeof down);
}

int remote_monitor(spool_runtime *rt, spool_id self, spool_id target) {
    remote_state *r = rt->remote;
    remote_entry *e = remote_entry_at(r, id_node(target));
    if (!e)
        return message_notify(rt, self, target, MSG_USER, 0, 0, SPOOL_MSG_DOWN,
                              &(spool_down){target, SPOOL_EXIT_NOPROC}, sizeof(spool_down));
    remote_watch *w = memory_alloc(&rt->allocator, sizeof *w);
    if (!w)
        return SPOOL_ENOMEM;
    w->watcher = self;
    w->target = target;
    /* Listed before the request leaves, so a DOWN of the node after it finds the watch. */
    pthread_mutex_lock(&r->lock);
    int up = pr_load_int(&e->state) == ENTRY_UP;
    if (up) {
        w->next = e->watches;
        e->watches = w;
    }
    pthread_mutex_unlock(&r->lock);
    if (!up) {
        memory_free(&rt->allocator, w, sizeof *w);
        remote_tell_down(rt, self, target, SPOOL_EXIT_NOCONNECTION);
        return 0;
    }
    int rc = message_notify(rt, target, self, MSG_MONITOR, 0, 0, 0, NULL, 0);
    if (rc == 0)
        return 0;
    /* Not sent: if the watch is still listed (no DOWN of the node took it), it fires now. */
    int found = 0;
    pthread_mutex_lock(&r->lock);
    for (remote_watch **pp = &e->watches; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            found = 1;
            break;
        }
    pthread_mutex_unlock(&r->lock);
    if (found) {
        memory_free(&rt->allocator, w, sizeof *w);
        remote_tell_down(rt, self, target, SPOOL_EXIT_NOCONNECTION);
    }
    return 0;
}

/* A DOWN of `target` for `watcher` came: one watch of that pair is done. */
void remote_watch_done(spool_runtime *rt, remote_entry *e, spool_id who, spool_id target) {
    remote_state *r = rt->remote;
    remote_watch *found = NULL;
    pthread_mutex_lock(&r->lock);
    for (remote_watch **pp = &e->watches; *pp; pp = &(*pp)->next)
        if ((*pp)->watcher == who && (*pp)->target == target) {
            found = *pp;
            *pp = found->next;
            break;
        }
    pthread_mutex_unlock(&r->lock);
    if (found)
        memory_free(&rt->allocator, found, sizeof *found);
}

/* ---------------------------------------------------------------------------------------------- */
/* Node monitors                                                                                  */

int spool_node_monitor(spool_ctx *ctx, const char *node, int on) {
    if (!ctx || !node || (strcmp(node, "*") != 0 && !remote_name_ok(node)))
        return SPOOL_EINVAL;
    actor *self = actor_from_ctx(ctx);
    sched_thread *t = sched_current();
    if (!t || t->current != self)
        return SPOOL_EINVAL;
    spool_runtime *rt = self->rt;
    remote_state *r = rt->remote;
    if (!pr_load_int(&r->attached))
        return SPOOL_ESTATE;
    node_watch *fresh = NULL;
    if (on) {
        fresh = memory_alloc(&rt->allocator, sizeof *fresh);
        if (!fresh)
            return SPOOL_ENOMEM;
        fresh->watcher = self->id;
        snprintf(fresh->node, sizeof fresh->node, "%s", node);
    }
    int up = strcmp(node, "*") == 0 || strcmp(node, r->name) == 0;
    pthread_mutex_lock(&r->lock);
    for (node_watch **pp = &r->node_watches; *pp;) {
        node_watch *w = *pp;
        if (w->watcher == self->id && strcmp(w->node, node) == 0) {
            *pp = w->next;
            memory_free(&rt->allocator, w, sizeof *w);
        } else
            pp = &w->next;
    }
    if (fresh) {
        fresh->next = r->node_watches;
        r->node_watches = fresh;
        for (uint32_t i = 1; i < r->count && !up; i++)
            up = pr_load_int(&r->entries[i]->state) == ENTRY_UP &&
                 strcmp(r->entries[i]->name, node) == 0;
    }
    pthread_mutex_unlock(&r->lock);
    if (fresh && !up) {
        spool_node_event event = {.incarnation = 0};
        snprintf(event.node, sizeof event.node, "%s", node);
        snprintf(event.reason, sizeof event.reason, "not connected");
        message_notify(rt, self->id, SPOOL_ID_NONE, MSG_SELF, 0, 0, SPOOL_MSG_NODEDOWN, &event,
                       sizeof event);
    }
    return 0;
}

/* Tells every node watcher of e's name; forgets those that ended. Notices travel as MSG_SELF: a
 * bounded mailbox neither refuses them nor drops a message for them. */
void remote_tell_node_watchers(spool_runtime *rt, remote_entry *e, uint32_t index, uint32_t type,
                               const char *reason) {
    remote_state *r = rt->remote;
    spool_node_event event = {.incarnation = e->incarnation};
    snprintf(event.node, sizeof event.node, "%s", e->name);
    snprintf(event.reason, sizeof event.reason, "%s", reason ? reason : "");
    /* Copy the watchers out: notifying under the lock could wait on nothing, but keeps it short. */
    size_t n = 0, capacity = 0;
    spool_id *ids = NULL;
    pthread_mutex_lock(&r->lock);
    for (node_watch *w = r->node_watches; w; w = w->next)
        capacity++;
    if (capacity)
        ids = memory_alloc(&rt->allocator, capacity * sizeof *ids);
    for (node_watch *w = r->node_watches; w && ids; w = w->next)
        if (strcmp(w->node, "*") == 0 || strcmp(w->node, e->name) == 0)
            ids[n++] = w->watcher;
    pthread_mutex_unlock(&r->lock);
    for (size_t i = 0; i < n; i++) {
        int rc = message_notify(rt, ids[i], remote_node_actor_of(index), MSG_SELF, 0, 0, type,
                                &event, sizeof event);
        if (rc != SPOOL_ENOENT)
            continue;
        pthread_mutex_lock(&r->lock);
        for (node_watch **pp = &r->node_watches; *pp;) {
            node_watch *w = *pp;
            if (w->watcher == ids[i]) {
                *pp = w->next;
                memory_free(&rt->allocator, w, sizeof *w);
            } else
                pp = &w->next;
        }
        pthread_mutex_unlock(&r->lock);
    }
    if (ids)
        memory_free(&rt->allocator, ids, capacity * sizeof *ids);
}
