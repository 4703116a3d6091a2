/*
 * pool.c - message blocks. A copied message of up to MESSAGE_INLINE bytes lives in a fixed-size
 * block from the sending thread's pool. Every block remembers its home thread: the thread that
 * handles the message gives it back to that home - straight into its own pool when it is home,
 * otherwise in batches of RETURN_BATCH pushed with one CAS onto the home thread's remote-free
 * stack, which the home thread takes whole with one exchange when its pool runs dry. A one-way flow
 * (one producer, one consumer on another thread) thus recycles its blocks instead of paying a
 * cross-thread malloc/free per message.
 */
#include "actors/actors.h"

#include <string.h>

#define POOL_BLOCK (sizeof(message) + MESSAGE_INLINE)
#define RETURN_BATCH 64
#define HOME_NONE 0 /* an exact-size allocation, not a pool block */
#define HOME_FOREIGN                                                                               \
    0xFFFFu /* a pool block made outside the scheduler threads: adopted when freed */

struct return_batch {
    message *head; /* owner thread: blocks on their way back to one home thread */
    message *tail;
    uint32_t count;
};

int pool_create(spool_runtime *rt) {
    for (int i = 0; i < rt->thread_count; i++) {
        sched_thread *t = &rt->threads[i];
        t->returns = memory_calloc(&rt->allocator, sizeof(return_batch) * (size_t)rt->thread_count);
        if (!t->returns)
            return SPOOL_ENOMEM;
    }
    return 0;
}

/* Pushes a linked list of blocks (head..tail) onto `home`'s remote-free stack. Any thread. */
static void remote_push(sched_thread *home, message *head, message *tail) {
    message *top = pr_load_ptr(&home->remote_free);
    do {
        tail->node.next = (mpsc_node *)top;
        /* Release on success: the blocks' links are visible to the home thread's exchange. A
         * push-only CAS against a pop-everything exchange has no ABA problem. */
    } while (!pr_cas_ptr(&home->remote_free, &top, head));
}

static void return_flush(sched_thread *t, int home) {
    return_batch *b = &t->returns[home];
    if (!b->head)
        return;
    remote_push(&t->rt->threads[home], b->head, b->tail);
    b->head = b->tail = NULL;
    b->count = 0;
}

void pool_flush_owner(sched_thread *t) {
    for (int i = 0; i < t->rt->thread_count; i++)
        return_flush(t, i);
}

/* Owner: takes the blocks other threads gave back. */
static void take_returns_owner(sched_thread *t) {
    message *list = pr_fas_ptr(&t->remote_free, NULL); /* acquire: the pushers' links */
    t->pool = list;
}

message *message_alloc(spool_runtime *rt, sched_thread *t, size_t size) {
    message *m;
    if (size <= MESSAGE_INLINE) {
        if (t && !t->pool && pr_load_ptr_relaxed(&t->remote_free))
            take_returns_owner(t);
        if (t && t->pool) {
            m = t->pool; /* the thread's own free list: no lock, no atomics */
            t->pool = (message *)m->node.next;
            if (t->pool_count)
                t->pool_count--;
        } else {
            m = memory_alloc(&rt->allocator, POOL_BLOCK);
            if (!m)
                return NULL;
        }
        m->home_pool = t ? (uint16_t)(t->index + 1) : (uint16_t)HOME_FOREIGN;
        m->alloc_size = POOL_BLOCK;
    } else {
        if (size > SIZE_MAX - sizeof(message))
            return NULL;
        m = memory_alloc(&rt->allocator, sizeof(message) + size);
        if (!m)
            return NULL;
        m->home_pool = HOME_NONE;
        m->alloc_size = sizeof(message) + size;
    }
    m->view.from = SPOOL_ID_NONE;
    m->view.type = 0;
    m->view.reserved = 0;
    m->view.data = m->inline_data;
    m->view.size = size;
    m->view.request_id = 0;
    m->kind = MSG_USER;
    m->sender_told = 0;
    m->status = 0;
    m->free_fn = NULL;
    m->stamp = 0;
    return m;
}

void message_release(spool_runtime *rt, sched_thread *t, message *m) {
    if (!m)
        return;
    if (m->free_fn) {
        m->free_fn((void *)m->view.data);
        m->free_fn = NULL;
    }
    unsigned home = m->home_pool;
    if (home == HOME_NONE) {
        memory_free(&rt->allocator, m, m->alloc_size);
        return;
    }
    if (!t) { /* outside the runtime: hand it straight back to its home, or to the allocator */
        if (home == HOME_FOREIGN)
            memory_free(&rt->allocator, m, m->alloc_size);
        else
            remote_push(&rt->threads[home - 1], m, m);
        return;
    }
    if (home == HOME_FOREIGN || home == (unsigned)t->index + 1) { /* ours (or adopted) */
        if (t->pool_count >= MESSAGE_POOL_MAX) {
            memory_free(&rt->allocator, m, m->alloc_size);
            return;
        }
        m->home_pool = (uint16_t)(t->index + 1);
        m->node.next = (mpsc_node *)t->pool;
        t->pool = m;
        t->pool_count++;
        return;
    }
    return_batch *b = &t->returns[home - 1];
    m->node.next = NULL;
    if (b->tail)
        b->tail->node.next = &m->node;
    else
        b->head = m;
    b->tail = m;
    if (++b->count >= RETURN_BATCH)
        return_flush(t, (int)home - 1);
}

static void free_list(spool_runtime *rt, message *m) {
    while (m) {
        message *next = (message *)m->node.next;
        memory_free(&rt->allocator, m, m->alloc_size);
        m = next;
    }
}

void pool_destroy(spool_runtime *rt) {
    /* Threads are joined. Batches on their way home first, then every pool and stack. */
    for (int i = 0; i < rt->thread_count; i++)
        if (rt->threads[i].returns)
            pool_flush_owner(&rt->threads[i]);
    for (int i = 0; i < rt->thread_count; i++) {
        sched_thread *t = &rt->threads[i];
        free_list(rt, t->pool);
        free_list(rt, t->remote_free);
        t->pool = t->remote_free = NULL;
        t->pool_count = 0;
        memory_free(&rt->allocator, t->returns, sizeof(return_batch) * (size_t)rt->thread_count);
        t->returns = NULL;
    }
}
