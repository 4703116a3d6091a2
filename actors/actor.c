/*
 * actor.c - the actor table and an actor's life: spawn (slot, generation, placement, name), the
 * queries any thread may make (thread, mailbox counters), stop and move requests, and the end
 * (close and drain the mailbox, tell monitors, free the state, give the slot back).
 */
#include "actors/actors.h"

#include <stdlib.h>
#include <string.h>

#define CHUNK_BITS 12
#define CHUNK_SLOTS (1u << CHUNK_BITS)
#define CHUNK_COUNT ((1u << ID_SLOT_BITS) / CHUNK_SLOTS)
#define CHUNK_BYTES (sizeof(actor) * CHUNK_SLOTS + CACHE_LINE)

typedef struct actor_table {
    actor *chunks[CHUNK_COUNT]; /* any thread reads (acquire); written once under lock */
    void *raw[CHUNK_COUNT];     /* what the allocator returned, for freeing */
    pthread_mutex_t lock;       /* spawn and slot reuse */
    uint32_t next_slot;         /* lock */
    actor *free_list;           /* lock */
} actor_table;

_Static_assert(sizeof(actor) <= 256, "an idle actor must fit in 256 bytes");

int actor_table_create(spool_runtime *rt) {
    actor_table *table = memory_calloc(&rt->allocator, sizeof *table);
    if (!table)
        return SPOOL_ENOMEM;
    pthread_mutex_init(&table->lock, NULL);
    rt->actors = table;
    return 0;
}

uint32_t actor_table_slots(spool_runtime *rt) {
    actor_table *table = rt->actors;
    pthread_mutex_lock(&table->lock);
    uint32_t n = table->next_slot;
    pthread_mutex_unlock(&table->lock);
    return n;
}

int actor_any_queued(spool_runtime *rt) {
    uint32_t n = actor_table_slots(rt);
    for (uint32_t slot = 0; slot < n; slot++) {
        actor *chunk = pr_load_ptr(&rt->actors->chunks[slot >> CHUNK_BITS]);
        if (!chunk)
            continue;
        actor *a = &chunk[slot & (CHUNK_SLOTS - 1)];
        if (pr_load_64(&a->id) != SPOOL_ID_NONE && mailbox_depth(&a->mailbox) > 0)
            return 1;
    }
    return 0;
}

void actor_table_destroy(spool_runtime *rt) {
    actor_table *table = rt->actors;
    if (!table)
        return;
    for (uint32_t c = 0; c < CHUNK_COUNT && table->chunks[c]; c++)
        for (uint32_t i = 0; i < CHUNK_SLOTS; i++)
            metrics_free_slot(rt, &table->chunks[c][i]);
    for (uint32_t i = 0; i < CHUNK_COUNT && table->raw[i]; i++)
        memory_free(&rt->allocator, table->raw[i], CHUNK_BYTES);
    pthread_mutex_destroy(&table->lock);
    memory_free(&rt->allocator, table, sizeof *table);
    rt->actors = NULL;
}

actor *actor_slot(spool_runtime *rt, spool_id id) {
    uint32_t slot = id_slot(id);
    actor *chunk = pr_load_ptr(&rt->actors->chunks[slot >> CHUNK_BITS]);
    return chunk ? &chunk[slot & (CHUNK_SLOTS - 1)] : NULL;
}

actor *actor_lookup(spool_runtime *rt, spool_id id) {
    if (!rt || id == SPOOL_ID_NONE || id_node(id) != 0)
        return NULL;
    actor *a = actor_slot(rt, id);
    return a && pr_load_64(&a->id) == id ? a : NULL;
}

/* A free slot (lock held): reuse one, or take the next, allocating its chunk on first use. */
static actor *slot_take_locked(spool_runtime *rt, actor_table *table) {
    if (table->free_list) {
        actor *a = table->free_list;
        table->free_list = a->ready_next;
        return a;
    }
    uint32_t slot = table->next_slot;
    if (slot >= (1u << ID_SLOT_BITS))
        return NULL;
    uint32_t c = slot >> CHUNK_BITS;
    if (!table->chunks[c]) {
        void *raw = memory_alloc(&rt->allocator, CHUNK_BYTES);
        if (!raw)
            return NULL;
        actor *chunk = (actor *)(((uintptr_t)raw + CACHE_LINE - 1) & ~(uintptr_t)(CACHE_LINE - 1));
        for (uint32_t i = 0; i < CHUNK_SLOTS; i++) {
            memset(&chunk[i], 0, sizeof(actor));
            mailbox_init(&chunk[i].mailbox);
            chunk[i].slot = (c << CHUNK_BITS) + i;
        }
        table->raw[c] = raw;
        /* Release: a sender that finds the chunk sees initialised (closed) mailboxes. */
        pr_store_ptr(&table->chunks[c], chunk);
    }
    table->next_slot++;
    return &table->chunks[c][slot & (CHUNK_SLOTS - 1)];
}

static void slot_give_back(spool_runtime *rt, actor *a) {
    actor_table *table = rt->actors;
    pthread_mutex_lock(&table->lock);
    a->ready_next = table->free_list;
    table->free_list = a;
    pthread_mutex_unlock(&table->lock);
}

spool_spawn_opts spool_spawn_opts_default(void) {
    spool_spawn_opts opts;
    memset(&opts, 0, sizeof opts);
    opts.thread = SPOOL_THREAD_ANY;
    return opts;
}

int spool_spawn(spool_runtime *rt, const spool_behavior *behavior, void *state,
                const spool_spawn_opts *opts_in, spool_id *out) {
    if (!rt || !behavior || !behavior->handle || !out)
        return SPOOL_EINVAL;
    int rstate = pr_load_int(&rt->state);
    if (rstate == RUNTIME_STOPPING || rstate == RUNTIME_STOPPED)
        return SPOOL_ESTOPPED;
    spool_spawn_opts opts = opts_in ? *opts_in : spool_spawn_opts_default();
    if (opts.name && (!*opts.name || strlen(opts.name) > 255))
        return SPOOL_EINVAL;
    if (opts.overflow != SPOOL_OVERFLOW_REJECT && opts.overflow != SPOOL_OVERFLOW_DROP_OLDEST)
        return SPOOL_EINVAL;
    if (opts.mailbox_capacity > MAILBOX_COUNT_MASK)
        return SPOOL_EINVAL;
    spool_id existing;
    if (opts.name && spool_whereis(rt, opts.name, &existing) == 0)
        return SPOOL_EEXIST;

    int home, dedicated;
    int rc = placement_choose(rt, &opts, &home, &dedicated);
    if (rc != 0)
        return rc;

    actor_table *table = rt->actors;
    pthread_mutex_lock(&table->lock);
    actor *a = slot_take_locked(rt, table);
    if (!a) {
        pthread_mutex_unlock(&table->lock);
        placement_unclaim(rt, home, dedicated);
        return SPOOL_ENOMEM;
    }
    a->generation = (a->generation + 1) & ID_GEN_MASK;
    if (a->generation == 0)
        a->generation = 1;
    uint32_t generation = a->generation;
    pthread_mutex_unlock(&table->lock);

    spool_id id = id_make(0, generation, a->slot);
    pr_store_ptr(&a->behavior, behavior); /* snapshots read it from other threads */
    a->state = state;
    a->ready_next = NULL;
    a->monitors = NULL;
    a->calls = NULL;
    a->owed = NULL;
    a->next_request = 0;
    a->backlog = 0;
    a->exit_reason = 0;
    a->move_to = -1;
    a->stopping = 0;
    a->dedicated = (uint8_t)dedicated;
    pr_store_8(&a->pinned, (uint8_t)(opts.pinned ? 1 : 0));
    a->rt = rt;
    a->name = NULL;
    pr_store_int(&a->home, home);
    pr_store_64(&a->id, id);
    metrics_reset_slot(a);
    /* Opening the mailbox with the new generation is what makes the id reachable. Nobody knows the
     * id yet, so nobody can have sent to it. */
    mailbox_open(&a->mailbox, generation, opts.mailbox_capacity,
                 opts.overflow == SPOOL_OVERFLOW_REJECT);
    if (opts.name) {
        rc = names_register_actor(rt, opts.name, a, id);
        if (rc != 0) {
            mailbox_close_owner(&a->mailbox);
            pr_store_64(&a->id, SPOOL_ID_NONE);
            slot_give_back(rt, a);
            placement_unclaim(rt, home, dedicated);
            return rc;
        }
    }
    runtime_actor_born(rt);
    *out = id;
    return 0;
}

spool_id spool_self(const spool_ctx *ctx) { return ctx ? actor_from_ctx(ctx)->id : SPOOL_ID_NONE; }

spool_runtime *spool_ctx_runtime(const spool_ctx *ctx) {
    return ctx ? actor_from_ctx(ctx)->rt : NULL;
}

int spool_ctx_thread(const spool_ctx *ctx) {
    return ctx ? pr_load_int(&actor_from_ctx(ctx)->home) : -1;
}

int spool_actor_thread(spool_runtime *rt, spool_id id, int *out) {
    if (!rt || !out)
        return SPOOL_EINVAL;
    actor *a = actor_lookup(rt, id);
    if (!a)
        return SPOOL_ENOENT;
    *out = pr_load_int(&a->home);
    return 0;
}

int spool_mailbox_stats_get(spool_runtime *rt, spool_id id, spool_mailbox_stats *out) {
    if (!rt || !out)
        return SPOOL_EINVAL;
    actor *a = actor_lookup(rt, id);
    if (!a)
        return SPOOL_ENOENT;
    mailbox *mb = &a->mailbox;
    spool_mailbox_stats s;
    s.dequeued = pr_load_64_relaxed(&mb->dequeued);
    s.depth = mailbox_depth(mb);
    s.enqueued = s.dequeued + s.depth;
    s.high_water = pr_load_64_relaxed(&mb->high_water);
    s.rejected = pr_load_64_relaxed(&mb->rejected);
    s.dropped = pr_load_64_relaxed(&mb->dropped);
    s.thread = pr_load_int(&a->home);
    if (pr_load_64(&a->id) != id) /* ended while we read */
        return SPOOL_ENOENT;
    *out = s;
    return 0;
}

int spool_actor_stop(spool_runtime *rt, spool_id id, int reason) {
    if (!rt || id == SPOOL_ID_NONE)
        return SPOOL_EINVAL;
    sched_thread *t = sched_current();
    if (t && t->rt == rt && t->current && t->current->id == id) {
        t->current->stopping = 1; /* ends when its handler returns */
        t->current->exit_reason = reason;
        return 0;
    }
    if (!t || t->rt != rt) {
        int rc = runtime_foreign_enter(rt);
        if (rc != 0)
            return rc;
        rc = message_notify(rt, id, SPOOL_ID_NONE, MSG_STOP, reason, 0, 0, NULL, 0);
        runtime_foreign_leave(rt);
        return rc;
    }
    return message_notify(rt, id, t->current ? t->current->id : SPOOL_ID_NONE, MSG_STOP, reason, 0,
                          0, NULL, 0);
}

int spool_actor_move(spool_runtime *rt, spool_id id, int thread) {
    if (!rt)
        return SPOOL_EINVAL;
    if (thread < 0 || thread >= rt->thread_count)
        return SPOOL_EINVAL;
    actor *a = actor_lookup(rt, id);
    if (!a)
        return SPOOL_ENOENT;
    if (pr_load_8(&a->pinned))
        return SPOOL_ESTATE;
    /* A dedicated thread keeps its one actor, and takes no other. */
    int home = pr_load_int(&a->home);
    if (home != thread && (pr_load_int(&rt->threads[thread].dedicated) != 0 ||
                           pr_load_int(&rt->threads[home].dedicated) != 0))
        return SPOOL_EBUSY;
    sched_thread *t = sched_current();
    int foreign = !t || t->rt != rt;
    if (foreign) {
        int rc = runtime_foreign_enter(rt);
        if (rc != 0)
            return rc;
    }
    int rc = message_notify(rt, id, SPOOL_ID_NONE, MSG_MOVE, thread, 0, 0, NULL, 0);
    if (foreign)
        runtime_foreign_leave(rt);
    return rc;
}

/* What a message still in the mailbox of an ending actor turns into. */
static void leftover(spool_runtime *rt, actor *a, message *m, int reason, spool_dead_reason why) {
    switch (m->kind) {
    case MSG_USER:
        dead_letter(rt, why, a->id, m);
        return;
    case MSG_REPLY:
        dead_letter(rt, SPOOL_DEAD_LATE_REPLY, a->id, m);
        return;
    case MSG_MONITOR: {
        /* It asked to watch us: it learns we ended, and why. */
        spool_down down = {a->id, why == SPOOL_DEAD_SHUTDOWN ? SPOOL_EXIT_SHUTDOWN : reason};
        if (why != SPOOL_DEAD_SHUTDOWN)
            message_notify(rt, m->view.from, a->id, MSG_USER, 0, 0, SPOOL_MSG_DOWN, &down,
                           sizeof down);
        message_free(rt, m);
        return;
    }
    default:
        message_free(rt, m);
        return;
    }
}

void actor_terminate(spool_runtime *rt, actor *a, int reason, uint64_t taken,
                     spool_dead_reason why) {
    int home = pr_load_int(&a->home);
    /* No push succeeds after the close; every push counted before it is drained here. */
    uint64_t in_flight = mailbox_close_owner(&a->mailbox) - taken;
    while (in_flight > 0) {
        mpsc_node *n = mailbox_pop_owner(&a->mailbox);
        if (!n) {
            pr_stall(); /* a producer is between its count and its link */
            continue;
        }
        in_flight--;
        leftover(rt, a, (message *)n, reason, why);
    }
    if (why != SPOOL_DEAD_SHUTDOWN) {
        spool_down down = {a->id, reason};
        for (watcher *w = a->monitors; w; w = w->next)
            message_notify(rt, w->id, a->id, MSG_USER, 0, 0, SPOOL_MSG_DOWN, &down, sizeof down);
    }
    while (a->monitors) {
        watcher *w = a->monitors;
        a->monitors = w->next;
        memory_free(&rt->allocator, w, sizeof *w);
    }
    request_forget_all_owner(a, why == SPOOL_DEAD_SHUTDOWN ? SPOOL_ESTOPPED : SPOOL_ENOENT);
    names_release_actor(rt, a);
    if (a->behavior->destroy)
        a->behavior->destroy(a->state);
    a->state = NULL;
    sched_thread *t = &rt->threads[home];
    pr_store_64_relaxed(&t->backlog, t->backlog - a->backlog);
    a->backlog = 0;
    /* Gone from every lookup and snapshot first, then its seat on the thread: a dedicated claim
     * that sees the seat free can never find this actor still there. */
    pr_store_64(&a->id, SPOOL_ID_NONE);
    pr_faa_int(&t->actors, -1);
    if (a->dedicated)
        placement_release(rt, home);
    slot_give_back(rt, a);
    runtime_actor_died(rt);
}

void actor_terminate_all(spool_runtime *rt) {
    actor_table *table = rt->actors;
    for (uint32_t c = 0; c < CHUNK_COUNT && table->chunks[c]; c++) {
        for (uint32_t i = 0; i < CHUNK_SLOTS; i++) {
            actor *a = &table->chunks[c][i];
            if (pr_load_64(&a->id) != SPOOL_ID_NONE)
                actor_terminate(rt, a, SPOOL_EXIT_SHUTDOWN, 0, SPOOL_DEAD_SHUTDOWN);
        }
    }
}
