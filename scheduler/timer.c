/*
 * timer.c - spool_send_after: one binary heap of timers per scheduler thread, no timer thread. A
 * timer is a message waiting for its deadline; the owning thread delivers it through the ordinary
 * send path when it falls due. Other threads hand timers (and cancels) over through an MPSC inbox.
 */
#include "actors/actors.h"
#include "scheduler/scheduler.h"

typedef struct timer {
    mpsc_node node;    /* first: timer inbox link */
    uint64_t deadline; /* ns, monotonic */
    uint64_t sequence; /* ties break in creation order, so one sender's timers keep their order */
    spool_timer id;
    spool_id to;
    message *message; /* NULL for a cancel request */
    uint32_t heap_index;
} timer;

#define TIMER_THREAD_SHIFT 48

static int timer_before(const timer *a, const timer *b) {
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->sequence < b->sequence);
}

static void heap_set(timer_heap *h, uint32_t i, timer *x) {
    h->items[i] = x;
    x->heap_index = i;
}

static void heap_up(timer_heap *h, uint32_t i) {
    timer *x = h->items[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!timer_before(x, h->items[parent]))
            break;
        heap_set(h, i, h->items[parent]);
        i = parent;
    }
    heap_set(h, i, x);
}

static void heap_down(timer_heap *h, uint32_t i) {
    timer *x = h->items[i];
    for (;;) {
        uint32_t child = 2 * i + 1;
        if (child >= h->count)
            break;
        if (child + 1 < h->count && timer_before(h->items[child + 1], h->items[child]))
            child++;
        if (!timer_before(h->items[child], x))
            break;
        heap_set(h, i, h->items[child]);
        i = child;
    }
    heap_set(h, i, x);
}

static int heap_insert(spool_runtime *rt, timer_heap *h, timer *x) {
    if (h->count == h->capacity) {
        uint32_t capacity = h->capacity ? h->capacity * 2 : 64;
        timer **items = memory_alloc(&rt->allocator, sizeof(timer *) * capacity);
        if (!items)
            return SPOOL_ENOMEM;
        for (uint32_t i = 0; i < h->count; i++)
            items[i] = h->items[i];
        memory_free(&rt->allocator, h->items, sizeof(timer *) * h->capacity);
        h->items = items;
        h->capacity = capacity;
    }
    heap_set(h, h->count++, x);
    heap_up(h, h->count - 1);
    return 0;
}

static void heap_remove(timer_heap *h, uint32_t i) {
    h->count--;
    if (i == h->count)
        return;
    heap_set(h, i, h->items[h->count]);
    heap_down(h, i);
    heap_up(h, h->items[i]->heap_index);
}

static void timer_free(spool_runtime *rt, timer *x) { memory_free(&rt->allocator, x, sizeof *x); }

/* Removes the timer with this id; 0 if it was pending, SPOOL_ENOENT if not there (fired). */
static int cancel_owner(sched_thread *t, spool_timer id) {
    timer_heap *h = &t->timers;
    for (uint32_t i = 0; i < h->count; i++) {
        if (h->items[i]->id == id) {
            timer *x = h->items[i];
            heap_remove(h, i);
            message_free(t->rt, x->message);
            timer_free(t->rt, x);
            return 0;
        }
    }
    return SPOOL_ENOENT;
}

static void take_inbox_owner(sched_thread *t) {
    mpsc_node *n;
    while ((n = mpsc_pop_owner(&t->timer_inbox)) != NULL) {
        timer *x = (timer *)n;
        if (!x->message) {
            cancel_owner(t, x->id);
            timer_free(t->rt, x);
            continue;
        }
        x->sequence = t->timer_sequence++;
        if (heap_insert(t->rt, &t->timers, x) != 0) {
            /* Out of memory for the heap: deliver now rather than lose it. */
            message_deliver(t->rt, x->to, x->message);
            timer_free(t->rt, x);
        }
    }
}

uint64_t timers_service_owner(sched_thread *t, uint64_t now) {
    take_inbox_owner(t);
    timer_heap *h = &t->timers;
    while (h->count > 0 && h->items[0]->deadline <= now) {
        timer *x = h->items[0];
        heap_remove(h, 0);
        pr_store_64_relaxed(&t->activity, t->activity + 1);
        message_deliver(t->rt, x->to, x->message);
        timer_free(t->rt, x);
    }
    return h->count ? h->items[0]->deadline - now : UINT64_MAX;
}

static timer *timer_new(spool_runtime *rt, sched_thread *owner, spool_id to, uint64_t delay_ns,
                        message *m) {
    timer *x = memory_alloc(&rt->allocator, sizeof *x);
    if (!x)
        return NULL;
    x->deadline = sched_now_ns() + delay_ns;
    x->sequence = 0;
    /* Ids carry their thread so a cancel knows where to go. */
    x->id = ((spool_timer)(owner->index + 1) << TIMER_THREAD_SHIFT) |
            (pr_faa_64(&rt->request_sequence, 1) & ((UINT64_C(1) << TIMER_THREAD_SHIFT) - 1));
    x->to = to;
    x->message = m;
    x->heap_index = 0;
    return x;
}

int timers_add_owner(sched_thread *t, spool_id to, uint64_t delay_ns, message *m,
                     spool_timer *out) {
    timer *x = timer_new(t->rt, t, to, delay_ns, m);
    if (!x) {
        message_free(t->rt, m);
        return SPOOL_ENOMEM;
    }
    x->sequence = t->timer_sequence++;
    if (heap_insert(t->rt, &t->timers, x) != 0) {
        message_free(t->rt, m);
        timer_free(t->rt, x);
        return SPOOL_ENOMEM;
    }
    if (out)
        *out = x->id;
    return 0;
}

void timers_discard(sched_thread *t) {
    take_inbox_owner(t);
    timer_heap *h = &t->timers;
    for (uint32_t i = 0; i < h->count; i++) {
        timer *x = h->items[i];
        if (x->message->kind == MSG_USER)
            dead_letter(t->rt, SPOOL_DEAD_SHUTDOWN, x->to, x->message);
        else
            message_free(t->rt, x->message);
        timer_free(t->rt, x);
    }
    memory_free(&t->rt->allocator, h->items, sizeof(timer *) * h->capacity);
    h->items = NULL;
    h->count = h->capacity = 0;
}

static int send_after_foreign(spool_runtime *rt, spool_id to, unsigned delay_ms, uint32_t type,
                              const void *data, size_t size, spool_timer *out);

int spool_send_after(spool_runtime *rt, spool_id to, unsigned delay_ms, uint32_t type,
                     const void *data, size_t size, spool_timer *out) {
    if (!rt || (size > 0 && !data) || type >= SPOOL_MSG_RESERVED || to == SPOOL_ID_NONE)
        return SPOOL_EINVAL;
    if (size > rt->settings.max_message_size)
        return SPOOL_EMSGSIZE;
    sched_thread *self = sched_current();
    if (self && self->rt != rt)
        self = NULL;
    if (!self) {
        int rc = runtime_foreign_enter(rt);
        if (rc != 0)
            return rc;
        rc = send_after_foreign(rt, to, delay_ms, type, data, size, out);
        runtime_foreign_leave(rt);
        return rc;
    }
    message *m = message_new(rt, size);
    if (!m)
        return SPOOL_ENOMEM;
    m->view.type = type;
    m->view.from = self->current ? self->current->id : SPOOL_ID_NONE;
    if (size)
        memcpy(m->inline_data, data, size);
    return timers_add_owner(self, to, (uint64_t)delay_ms * 1000000u, m, out);
}

/* From outside: the receiver's home thread keeps the timer (thread 0 if it is gone already; it will
 * be a dead letter when it fires). */
static int send_after_foreign(spool_runtime *rt, spool_id to, unsigned delay_ms, uint32_t type,
                              const void *data, size_t size, spool_timer *out) {
    message *m = message_new(rt, size);
    if (!m)
        return SPOOL_ENOMEM;
    m->view.type = type;
    if (size)
        memcpy(m->inline_data, data, size);
    uint64_t delay_ns = (uint64_t)delay_ms * 1000000u;
    int home = 0;
    actor *a = actor_lookup(rt, to);
    if (a)
        home = pr_load_int(&a->home);
    sched_thread *owner = &rt->threads[home];
    timer *x = timer_new(rt, owner, to, delay_ns, m);
    if (!x) {
        message_free(rt, m);
        return SPOOL_ENOMEM;
    }
    if (out)
        *out = x->id;
    mpsc_push(&owner->timer_inbox, &x->node);
    sched_wake(owner);
    return 0;
}

int spool_timer_cancel(spool_runtime *rt, spool_timer id) {
    if (!rt || id == 0)
        return SPOOL_EINVAL;
    uint64_t thread = (id >> TIMER_THREAD_SHIFT);
    if (thread == 0 || thread > (uint64_t)rt->thread_count)
        return SPOOL_EINVAL;
    sched_thread *owner = &rt->threads[thread - 1];
    sched_thread *self = sched_current();
    if (self == owner)
        return cancel_owner(owner, id);
    timer *x = memory_calloc(&rt->allocator, sizeof *x);
    if (!x)
        return SPOOL_ENOMEM;
    x->id = id;
    mpsc_push(&owner->timer_inbox, &x->node);
    sched_wake(owner);
    return 0;
}
