/*
 * message.c - the first step of the way a message travels: build it (copied into a pool block, see
 * pool.c, or handed over zero-copy), look the receiver up by id, push it onto the receiver's
 * mailbox and, on the empty -> non-empty edge, schedule the receiver. Whatever cannot be delivered
 * ends in dead_letter().
 */
#include "actors/actors.h"
#include "actors/remote.h"

#include <string.h>

/* The caller's scheduler thread if it belongs to rt, else NULL. */
static inline sched_thread *local_thread(spool_runtime *rt) {
    sched_thread *t = sched_current();
    return t && t->rt == rt ? t : NULL;
}

message *message_new(spool_runtime *rt, size_t size) {
    return message_alloc(rt, local_thread(rt), size);
}

void message_free(spool_runtime *rt, message *m) { message_release(rt, local_thread(rt), m); }

void dead_letter_note(spool_runtime *rt, spool_dead_reason reason, spool_id to, const message *m) {
    pr_faa_64(&rt->dead_letters[reason], 1);
    if (rt->on_dead_letter)
        rt->on_dead_letter(rt->dead_letter_user, reason, to, &m->view);
}

int spool_dead_letter_report(spool_runtime *rt, spool_dead_reason reason, spool_id to,
                             const spool_message *view) {
    if (!rt || !view || (unsigned)reason >= SPOOL_DEAD_REASON_COUNT)
        return SPOOL_EINVAL;
    pr_faa_64(&rt->dead_letters[reason], 1);
    if (rt->on_dead_letter)
        rt->on_dead_letter(rt->dead_letter_user, reason, to, view);
    return 0;
}

void dead_letter(spool_runtime *rt, spool_dead_reason reason, spool_id to, message *m) {
    dead_letter_note(rt, reason, to, m);
    /* A request that will never be handled still owes its caller an answer - unless the caller
     * learnt it from the send's return code. */
    if (m->kind == MSG_USER && m->view.request_id != 0 && !m->sender_told) {
        if (m->view.from == SPOOL_ID_NONE) /* a blocked thread: release it, shutdown or not */
            request_complete_foreign(rt, m->view.request_id, NULL,
                                     reason == SPOOL_DEAD_SHUTDOWN ? SPOOL_ESTOPPED : SPOOL_ENOENT);
        else if (reason != SPOOL_DEAD_SHUTDOWN) /* at shutdown the caller is ending too */
            message_notify(rt, m->view.from, to, MSG_REPLY_ERROR, SPOOL_ENOENT, m->view.request_id,
                           0, NULL, 0);
    }
    message_free(rt, m);
}

/* User messages and replies are counted when lost; internal notices are simply dropped. */
static int counts_as_dead_letter(const message *m) {
    return m->kind == MSG_USER || m->kind == MSG_REPLY;
}

static int lost(spool_runtime *rt, spool_dead_reason reason, spool_id to, message *m, int error) {
    m->sender_told = 1;
    if (counts_as_dead_letter(m))
        dead_letter(rt, m->kind == MSG_REPLY ? SPOOL_DEAD_LATE_REPLY : reason, to, m);
    else
        message_free(rt, m);
    return error;
}

int message_deliver(spool_runtime *rt, spool_id to, message *m) {
    if (id_node(to) != 0)
        return remote_deliver(rt, to, m);
    actor *a = actor_slot(rt, to);
    if (!a)
        return lost(rt, SPOOL_DEAD_NO_RECEIVER, to, m, SPOOL_ENOENT);
    switch (mailbox_push(&a->mailbox, id_generation(to), &m->node, m->kind == MSG_USER)) {
    case MAILBOX_PUSHED_FIRST:
        /* We turned the count 0 -> 1: the actor is ours to schedule, and cannot end meanwhile. */
        sched_schedule(rt, a);
        return 0;
    case MAILBOX_PUSHED:
        return 0;
    case MAILBOX_FULL:
        return lost(rt, SPOOL_DEAD_MAILBOX_FULL, to, m, SPOOL_EFULL);
    case MAILBOX_CLOSED:
    default:
        return lost(rt, SPOOL_DEAD_NO_RECEIVER, to, m, SPOOL_ENOENT);
    }
}

int message_notify(spool_runtime *rt, spool_id to, spool_id from, message_kind kind, int32_t status,
                   uint64_t request_id, uint32_t type, const void *data, size_t size) {
    message *m = message_new(rt, size);
    if (!m)
        return SPOOL_ENOMEM;
    m->kind = (uint8_t)kind;
    m->status = status;
    m->view.from = from;
    m->view.type = type;
    m->view.request_id = request_id;
    if (size)
        memcpy(m->inline_data, data, size);
    return message_deliver(rt, to, m);
}

/* Delivery from a user call on thread t (NULL: outside the runtime, where a stop refuses it). */
static int send_message(spool_runtime *rt, sched_thread *t, spool_id to, message *m) {
    if (t)
        return message_deliver(rt, to, m);
    int rc = runtime_foreign_enter(rt);
    if (rc != 0) {
        m->sender_told = 1;
        dead_letter(rt, SPOOL_DEAD_SHUTDOWN, to, m);
        return rc;
    }
    rc = message_deliver(rt, to, m);
    runtime_foreign_leave(rt);
    return rc;
}

int message_send_copy(spool_runtime *rt, spool_id to, uint32_t type, const void *data, size_t size,
                      uint64_t request_id, message_kind kind) {
    if (!rt || (size > 0 && !data))
        return SPOOL_EINVAL;
    if (size > rt->settings.max_message_size)
        return SPOOL_EMSGSIZE;
    sched_thread *t = local_thread(rt);
    message *m = message_alloc(rt, t, size);
    if (!m)
        return SPOOL_ENOMEM;
    m->kind = (uint8_t)kind;
    m->view.from = t && t->current ? t->current->id : SPOOL_ID_NONE;
    m->view.type = type;
    m->view.request_id = request_id;
    if (kind == MSG_USER)
        m->stamp = metrics_stamp(rt, t);
    if (size)
        memcpy(m->inline_data, data, size);
    return send_message(rt, t, to, m);
}

int spool_send(spool_runtime *rt, spool_id to, uint32_t type, const void *data, size_t size) {
    if (type >= SPOOL_MSG_RESERVED)
        return SPOOL_EINVAL;
    return message_send_copy(rt, to, type, data, size, 0, MSG_USER);
}

int spool_send_owned(spool_runtime *rt, spool_id to, uint32_t type, void *data, size_t size,
                     void (*free_fn)(void *data)) {
    if (!rt || type >= SPOOL_MSG_RESERVED || (size > 0 && !data) ||
        size > rt->settings.max_message_size) {
        if (free_fn && data)
            free_fn(data);
        if (!rt || type >= SPOOL_MSG_RESERVED || (size > 0 && !data))
            return SPOOL_EINVAL;
        return SPOOL_EMSGSIZE;
    }
    sched_thread *t = local_thread(rt);
    message *m = message_alloc(rt, t, 0);
    if (!m) {
        if (free_fn && data)
            free_fn(data);
        return SPOOL_ENOMEM;
    }
    m->view.from = t && t->current ? t->current->id : SPOOL_ID_NONE;
    m->view.type = type;
    m->view.data = data;
    m->view.size = size;
    m->free_fn = free_fn;
    m->stamp = metrics_stamp(rt, t);
    return send_message(rt, t, to, m);
}
