/*
 * request.c - request/reply. Inside actors spool_call is a continuation: the request goes out, the
 * caller's turn goes on, and the reply (or a timeout, or an error notice when the callee ends)
 * arrives later as a notice that runs the continuation on the caller's home thread. Threads outside
 * the runtime use spool_call_wait, which blocks on a condition variable.
 */
#include "actors/actors.h"
#include "actors/remote.h"

#include <errno.h>
#include <string.h>
#include <time.h>

typedef struct pending_call {
    struct pending_call *next;
    uint64_t request_id;
    spool_reply_fn cont;
    void *arg;
    spool_timer timer; /* 0 when no timeout */
} pending_call;

/* A request an actor handled without answering: it owes the caller a reply (or, if it ends first,
 * an error). */
typedef struct owed_reply {
    struct owed_reply *next;
    spool_id from;
    uint64_t request_id;
} owed_reply;

typedef struct waiter {
    struct waiter *next;
    uint64_t request_id;
    pthread_cond_t cond;
    int done;
    int status;
    message *reply;
} waiter;

typedef struct waiter_table {
    pthread_mutex_t lock; /* guards list and every waiter's done/status/reply */
    waiter *list;
} waiter_table;

struct spool_response {
    spool_runtime *rt;
    message *message;
};

int request_tables_create(spool_runtime *rt) {
    waiter_table *w = memory_calloc(&rt->allocator, sizeof *w);
    if (!w)
        return SPOOL_ENOMEM;
    pthread_mutex_init(&w->lock, NULL);
    rt->waiters = w;
    return 0;
}

void request_tables_destroy(spool_runtime *rt) {
    for (int i = 0; rt->threads && i < rt->thread_count; i++) {
        sched_thread *t = &rt->threads[i];
        while (t->call_pool) {
            pending_call *p = t->call_pool;
            t->call_pool = p->next;
            memory_free(&rt->allocator, p, sizeof *p);
        }
        t->call_pool_count = 0;
    }
    if (!rt->waiters)
        return;
    pthread_mutex_destroy(&rt->waiters->lock);
    memory_free(&rt->allocator, rt->waiters, sizeof *rt->waiters);
    rt->waiters = NULL;
}

/* ---------------------------------------------------------------------------------------------- */
/* Inside actors                                                                                  */

/* Pending calls are made and settled on the caller's home thread, one per spool_call: each thread
 * keeps a few free records (no malloc/free per call); at shutdown, or past the cap, they go back to
 * the allocator. */
#define CALL_POOL_MAX 256

static pending_call *pending_new(sched_thread *t) {
    pending_call *p = t->call_pool;
    if (p) {
        t->call_pool = p->next;
        t->call_pool_count--;
        return p;
    }
    return memory_alloc(&t->rt->allocator, sizeof *p);
}

static void pending_free(spool_runtime *rt, pending_call *p) {
    sched_thread *t = sched_current();
    if (t && t->rt == rt && t->call_pool_count < CALL_POOL_MAX) {
        p->next = t->call_pool;
        t->call_pool = p;
        t->call_pool_count++;
        return;
    }
    memory_free(&rt->allocator, p, sizeof *p);
}

static pending_call *pending_take(actor *a, uint64_t request_id) {
    for (pending_call **pp = &a->calls; *pp; pp = &(*pp)->next) {
        if ((*pp)->request_id == request_id) {
            pending_call *p = *pp;
            *pp = p->next;
            return p;
        }
    }
    return NULL;
}

int spool_call(spool_ctx *ctx, spool_id to, uint32_t type, const void *data, size_t size,
               unsigned timeout_ms, spool_reply_fn cont, void *arg) {
    if (type >= SPOOL_MSG_RESERVED)
        return SPOOL_EINVAL;
    return request_call_owner(ctx, to, type, data, size, timeout_ms, cont, arg);
}

int request_call_owner(spool_ctx *ctx, spool_id to, uint32_t type, const void *data, size_t size,
                       unsigned timeout_ms, spool_reply_fn cont, void *arg) {
    if (!ctx || !cont)
        return SPOOL_EINVAL;
    actor *a = actor_from_ctx(ctx);
    sched_thread *t = sched_current();
    if (!t || t->current != a)
        return SPOOL_EINVAL;
    spool_runtime *rt = a->rt;
    pending_call *p = pending_new(t);
    if (!p)
        return SPOOL_ENOMEM;
    p->request_id = ++a->next_request;
    p->cont = cont;
    p->arg = arg;
    p->timer = 0;
    p->next = a->calls;
    a->calls = p;
    int rc = message_send_copy(rt, to, type, data, size, p->request_id, MSG_USER);
    if (rc == 0 && timeout_ms > 0) {
        message *m = message_new(rt, 0);
        if (!m)
            rc = SPOOL_ENOMEM;
        else {
            m->kind = MSG_CALL_TIMEOUT;
            m->view.from = a->id;
            m->view.request_id = p->request_id;
            rc = timers_add_owner(t, a->id, (uint64_t)timeout_ms * 1000000u, m, &p->timer);
        }
        /* The request is out: if its timer failed, the continuation still runs when the reply
         * comes. */
        if (rc != 0) {
            p->timer = 0;
            rc = 0;
        }
    }
    if (rc != 0) {
        pending_take(a, p->request_id);
        pending_free(rt, p);
    }
    return rc;
}

void request_handle_owner(sched_thread *t, actor *a, message *m) {
    t->request = &m->view;
    t->request_answered = 0;
    a->behavior->handle((spool_ctx *)a, a->state, &m->view);
    t->request = NULL;
    if (t->request_answered)
        return;
    /* Unanswered, even by an actor that stops in this very handler: its end answers the owed
     * requests with an error, so the caller never waits for nothing. */
    owed_reply *o = memory_alloc(&a->rt->allocator, sizeof *o);
    if (!o)
        return; /* cannot remember it: the caller's timeout still ends the wait */
    o->from = m->view.from;
    o->request_id = m->view.request_id;
    o->next = a->owed;
    a->owed = o;
}

/* Home thread: the running actor answered a request; forget that it owed it. */
static void owed_settle(sched_thread *t, const spool_message *request) {
    if (t->request && t->request->request_id == request->request_id &&
        t->request->from == request->from) {
        t->request_answered = 1;
        return;
    }
    actor *a = t->current;
    for (owed_reply **pp = &a->owed; *pp; pp = &(*pp)->next) {
        if ((*pp)->request_id == request->request_id && (*pp)->from == request->from) {
            owed_reply *o = *pp;
            *pp = o->next;
            memory_free(&a->rt->allocator, o, sizeof *o);
            return;
        }
    }
}

void request_dispatch_owner(actor *a, message *m) {
    spool_runtime *rt = a->rt;
    pending_call *p = pending_take(a, m->view.request_id);
    if (!p) {
        /* Timed out already (or the caller was told otherwise): a late reply is a dead letter. */
        if (m->kind == MSG_REPLY)
            dead_letter_note(rt, SPOOL_DEAD_LATE_REPLY, a->id, m);
        return;
    }
    if (p->timer && m->kind != MSG_CALL_TIMEOUT)
        spool_timer_cancel(rt, p->timer);
    /* Settle the record first: a continuation that calls again then reuses it. */
    spool_reply_fn cont = p->cont;
    void *arg = p->arg;
    pending_free(rt, p);
    switch (m->kind) {
    case MSG_REPLY:
        cont((spool_ctx *)a, a->state, 0, &m->view, arg);
        break;
    case MSG_REPLY_ERROR:
        cont((spool_ctx *)a, a->state, m->status, NULL, arg);
        break;
    default:
        remote_call_forget(rt, a->id, m->view.request_id);
        cont((spool_ctx *)a, a->state, SPOOL_ETIMEDOUT, NULL, arg);
        break;
    }
}

void request_forget_all_owner(actor *a, int status) {
    spool_runtime *rt = a->rt;
    while (a->calls) {
        pending_call *p = a->calls;
        a->calls = p->next;
        remote_call_forget(rt, a->id, p->request_id);
        pending_free(rt, p);
    }
    /* The callers still waiting for this actor learn that it ended (a caller that was answered
     * from another thread meanwhile ignores the error: it no longer waits for that id). */
    while (a->owed) {
        owed_reply *o = a->owed;
        a->owed = o->next;
        if (o->from == SPOOL_ID_NONE)
            request_complete_foreign(rt, o->request_id, NULL, status);
        else if (status != SPOOL_ESTOPPED)
            message_notify(rt, o->from, a->id, MSG_REPLY_ERROR, status, o->request_id, 0, NULL, 0);
        memory_free(&rt->allocator, o, sizeof *o);
    }
}

void request_fail_waiters(spool_runtime *rt, int status) {
    waiter_table *table = rt->waiters;
    pthread_mutex_lock(&table->lock);
    while (table->list) {
        waiter *w = table->list;
        table->list = w->next;
        w->status = status;
        w->done = 1;
        pthread_cond_signal(&w->cond);
    }
    pthread_mutex_unlock(&table->lock);
}

/* ---------------------------------------------------------------------------------------------- */
/* Replies, and blocking calls from outside                                                       */

int request_complete_foreign(spool_runtime *rt, uint64_t request_id, message *m, int status) {
    waiter_table *table = rt->waiters;
    pthread_mutex_lock(&table->lock);
    waiter *w = NULL;
    for (waiter **pp = &table->list; *pp; pp = &(*pp)->next) {
        if ((*pp)->request_id == request_id) {
            w = *pp;
            *pp = w->next;
            break;
        }
    }
    if (w) {
        w->reply = m;
        w->status = m ? 0 : status;
        w->done = 1;
        pthread_cond_signal(&w->cond);
    }
    pthread_mutex_unlock(&table->lock);
    if (w)
        return 0;
    if (m)
        dead_letter(rt, SPOOL_DEAD_LATE_REPLY, SPOOL_ID_NONE, m);
    return SPOOL_ENOENT;
}

int spool_reply(spool_runtime *rt, const spool_message *request, uint32_t type, const void *data,
                size_t size) {
    if (!rt || !request || request->request_id == 0 || (size > 0 && !data) ||
        type >= SPOOL_MSG_RESERVED)
        return SPOOL_EINVAL;
    sched_thread *self = sched_current();
    if (self && self->rt == rt && self->current)
        owed_settle(self, request);
    if (request->from != SPOOL_ID_NONE)
        return message_send_copy(rt, request->from, type, data, size, request->request_id,
                                 MSG_REPLY);
    if (size > rt->settings.max_message_size)
        return SPOOL_EMSGSIZE;
    message *m = message_new(rt, size);
    if (!m)
        return SPOOL_ENOMEM;
    m->kind = MSG_REPLY;
    m->view.from = self && self->rt == rt && self->current ? self->current->id : SPOOL_ID_NONE;
    m->view.type = type;
    m->view.request_id = request->request_id;
    if (size)
        memcpy(m->inline_data, data, size);
    return request_complete_foreign(rt, request->request_id, m, 0) == 0 ? 0 : SPOOL_ENOENT;
}

static void deadline_after(struct timespec *ts, unsigned ms) {
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

int spool_call_wait(spool_runtime *rt, spool_id to, uint32_t type, const void *data, size_t size,
                    unsigned timeout_ms, spool_response **out) {
    if (!rt || !out || type >= SPOOL_MSG_RESERVED || (size > 0 && !data))
        return SPOOL_EINVAL;
    if (sched_current())
        return SPOOL_EDEADLK;
    spool_response *reply = memory_alloc(&rt->allocator, sizeof *reply);
    if (!reply)
        return SPOOL_ENOMEM;
    waiter w;
    memset(&w, 0, sizeof w);
    w.request_id = pr_faa_64(&rt->request_sequence, 1) + 1;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w.cond, &attr);
    pthread_condattr_destroy(&attr);

    waiter_table *table = rt->waiters;
    pthread_mutex_lock(&table->lock);
    w.next = table->list;
    table->list = &w;
    pthread_mutex_unlock(&table->lock);

    int rc = message_send_copy(rt, to, type, data, size, w.request_id, MSG_USER);
    struct timespec until;
    deadline_after(&until, timeout_ms);
    pthread_mutex_lock(&table->lock);
    while (rc == 0 && !w.done) {
        if (timeout_ms == 0)
            pthread_cond_wait(&w.cond, &table->lock);
        else if (pthread_cond_timedwait(&w.cond, &table->lock, &until) == ETIMEDOUT && !w.done)
            rc = SPOOL_ETIMEDOUT;
    }
    if (!w.done) { /* failed to send, or timed out: nobody may complete us any more */
        for (waiter **pp = &table->list; *pp; pp = &(*pp)->next) {
            if (*pp == &w) {
                *pp = w.next;
                break;
            }
        }
    }
    pthread_mutex_unlock(&table->lock);
    pthread_cond_destroy(&w.cond);
    if (!w.done)
        remote_call_forget(rt, SPOOL_ID_NONE, w.request_id);
    if (rc == 0)
        rc = w.status;
    if (rc != 0) {
        if (w.reply)
            message_free(rt, w.reply);
        memory_free(&rt->allocator, reply, sizeof *reply);
        return rc;
    }
    reply->rt = rt;
    reply->message = w.reply;
    *out = reply;
    return 0;
}

const spool_message *spool_response_message(const spool_response *response) {
    return response ? &response->message->view : NULL;
}

void spool_response_destroy(spool_response **response) {
    if (!response || !*response)
        return;
    spool_runtime *rt = (*response)->rt;
    message_free(rt, (*response)->message);
    memory_free(&rt->allocator, *response, sizeof **response);
    *response = NULL;
}
