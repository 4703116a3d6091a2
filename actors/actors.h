/*
 * actors.h - actors, messages and the actor table: the nouns of the core.
 *
 * An actor lives in a slot of the actor table. Slots are type-stable: the memory of an actor is
 * never freed while the runtime lives, only reused with the next generation, so a sender holding a
 * stale id can always read the slot's mailbox state word safely and be refused by its tag.
 */
#ifndef SPOOL_ACTORS_H
#define SPOOL_ACTORS_H

#include "scheduler/scheduler.h"

#include <stdbool.h>

/* ---------------------------------------------------------------------------------------------- */
/* Ids: node (16) | generation (24) | slot (24)                                                   */

#define ID_SLOT_BITS 24
#define ID_GEN_BITS 24
#define ID_SLOT_MASK ((UINT64_C(1) << ID_SLOT_BITS) - 1)
#define ID_GEN_MASK ((UINT64_C(1) << ID_GEN_BITS) - 1)

static inline uint32_t id_slot(spool_id id) { return (uint32_t)(id & ID_SLOT_MASK); }
static inline uint32_t id_generation(spool_id id) {
    return (uint32_t)((id >> ID_SLOT_BITS) & ID_GEN_MASK);
}
static inline uint32_t id_node(spool_id id) {
    return (uint32_t)(id >> (ID_SLOT_BITS + ID_GEN_BITS));
}
static inline spool_id id_make(uint32_t node, uint32_t generation, uint32_t slot) {
    return ((spool_id)node << (ID_SLOT_BITS + ID_GEN_BITS)) |
           ((spool_id)generation << ID_SLOT_BITS) | slot;
}

/* ---------------------------------------------------------------------------------------------- */
/* Messages                                                                                       */

typedef enum message_kind {
    MSG_USER = 0,     /* a user message (a request when view.request_id != 0) */
    MSG_REPLY,        /* answer to the receiver's spool_call(view.request_id) */
    MSG_REPLY_ERROR,  /* the callee ended first: status holds the error */
    MSG_CALL_TIMEOUT, /* the receiver's call view.request_id timed out */
    MSG_STOP,         /* stop with reason = status */
    MSG_MONITOR,      /* view.from starts monitoring the receiver */
    MSG_MOVE,         /* move the receiver to thread = status */
    MSG_SELF,         /* spool_send_self: handled like a user message, never bounded */
} message_kind;

#define MESSAGE_INLINE 64 /* payloads up to this many bytes live inside a pooled block */
#define MESSAGE_POOL_MAX 1024

typedef struct message {
    mpsc_node node; /* first: mailbox link */
    spool_message view;
    uint8_t kind;
    uint8_t sender_told; /* the send returned the failure: no error reply is owed */
    uint16_t home_pool;  /* pool.c: 0 exact-size block, else the home thread + 1 (or foreign) */
    int32_t status;
    void (*free_fn)(void *); /* owned payload, freed after use; NULL when inline or static */
    size_t alloc_size;
    uint64_t stamp;              /* tick_now() at send for a sampled message, else 0 (metrics.c) */
    unsigned char inline_data[]; /* copied payloads */
} message;

/*
 * Allocates a message with room for `size` copied bytes at view.data (pool on scheduler threads).
 * NULL when out of memory.
 */
message *message_new(spool_runtime *rt, size_t size);
/* Frees a message and its owned payload (any thread; scheduler threads refill their pool). */
void message_free(spool_runtime *rt, message *m);
/* The same two for a caller that knows its scheduler thread `t` of rt (or NULL outside it). */
message *message_alloc(spool_runtime *rt, sched_thread *t, size_t size);
void message_release(spool_runtime *rt, sched_thread *t, message *m);
/* Pools (pool.c): per-thread return batches at create; every block back to the allocator at
 * destroy (threads joined); an owner gives its pending return batches back before it idles. */
int pool_create(spool_runtime *rt);
void pool_destroy(spool_runtime *rt);
void pool_flush_owner(sched_thread *t);

/*
 * Delivers `m` to `to` (ownership taken in every case). On failure the message went through
 * dead_letter (user messages and replies) or was discarded (internal notices), and the error says
 * why: SPOOL_ENOENT or SPOOL_EFULL.
 */
int message_deliver(spool_runtime *rt, spool_id to, message *m);

/* Counts a dead letter and calls the hook; m stays the caller's. */
void dead_letter_note(spool_runtime *rt, spool_dead_reason reason, spool_id to, const message *m);

/* Counts a dead letter, calls the hook, sends an error reply for an unanswered request, frees m. */
void dead_letter(spool_runtime *rt, spool_dead_reason reason, spool_id to, message *m);

/* Copies and sends a message from the calling actor (or from outside, with the stop handshake). */
int message_send_copy(spool_runtime *rt, spool_id to, uint32_t type, const void *data, size_t size,
                      uint64_t request_id, message_kind kind);

/* Builds and delivers a runtime notice (kind != MSG_USER) from `from` to `to`. */
int message_notify(spool_runtime *rt, spool_id to, spool_id from, message_kind kind, int32_t status,
                   uint64_t request_id, uint32_t type, const void *data, size_t size);

/* ---------------------------------------------------------------------------------------------- */
/* Actors                                                                                         */

typedef struct watcher {
    struct watcher *next;
    spool_id id;
} watcher;

struct pending_call;

typedef struct actor {
    mailbox mailbox; /* producers' line, then the home thread's line */

    /* Home thread (the thread running the actor's turn). */
    const spool_behavior *behavior;
    void *state;
    struct actor *ready_next;   /* local ready list / free list link */
    watcher *monitors;          /* who watches this actor */
    struct pending_call *calls; /* this actor's spool_call()s waiting for replies */
    struct owed_reply *owed;    /* requests it handled and has not answered yet */
    uint64_t next_request;
    uint64_t backlog; /* this actor's part of its thread's backlog */
    int exit_reason;
    int move_to; /* -1, or the thread to move to at the end of this turn */
    uint8_t stopping;
    uint8_t dedicated; /* owns its thread */
    uint8_t pinned;    /* atomic (pr_*_8): spawned pinned, never moves */
    uint32_t slot;     /* fixed: this slot's index in the table */

    /* Any thread (atomic), or set at spawn before the id is published. */
    mpsc_node ready_node; /* link in a thread's inbox, written by the scheduling thread */
    spool_id id;          /* atomic: the current incarnation's id (0 while free) */
    int home;             /* atomic: home thread */
    uint32_t generation;  /* table lock: last generation used in this slot */
    char *name;           /* names lock */
    spool_runtime *rt;
    struct actor_metrics *metrics; /* home thread creates it (release); kept with the slot */
} actor;

/* The actor whose id this is, if that incarnation is alive (a racy hint: a send still checks the
 * mailbox tag). NULL otherwise. Any thread. */
actor *actor_lookup(spool_runtime *rt, spool_id id);

/* The slot an id points at, whatever its incarnation, or NULL. Any thread. */
actor *actor_slot(spool_runtime *rt, spool_id id);

/* How many slots have ever been used (slots 0 .. n-1 may hold actors). Any thread. */
uint32_t actor_table_slots(spool_runtime *rt);

/* Does a live actor have a message counted in its mailbox (queued, or taken by a turn that has
 * not ended)? A scan of every slot, for the stop's quiescence check. Any thread. */
int actor_any_queued(spool_runtime *rt);

/* Table lifecycle (runtime.c). */
int actor_table_create(spool_runtime *rt);
void actor_table_destroy(spool_runtime *rt);

/* Owner thread: runs one turn of `a` (up to batch messages). */
void actor_run_turn(sched_thread *t, actor *a);

/* Ends `a`: closes and drains its mailbox, tells monitors, frees its state, frees the slot. On the
 * home thread (or the stopping thread after the scheduler threads are joined). `taken` = messages
 * popped this turn and not yet released. */
void actor_terminate(spool_runtime *rt, actor *a, int reason, uint64_t taken,
                     spool_dead_reason leftover);

/* Shutdown: terminates every live actor (threads joined). */
void actor_terminate_all(spool_runtime *rt);

/* Request bookkeeping (request.c), home thread. */
void request_dispatch_owner(actor *a, message *m);
/* Runs the handler for a request; remembers it if the handler left it unanswered. */
void request_handle_owner(sched_thread *t, actor *a, message *m);
/* The actor ends: forgets its calls, and answers what it owes with `status`. */
void request_forget_all_owner(actor *a, int status);
/* Every blocking caller still waiting gets `status` (shutdown). */
void request_fail_waiters(spool_runtime *rt, int status);
int request_tables_create(spool_runtime *rt);
void request_tables_destroy(spool_runtime *rt);
/* spool_call without the check of the type: the runtime's own requests (remote.c). */
int request_call_owner(spool_ctx *ctx, spool_id to, uint32_t type, const void *data, size_t size,
                       unsigned timeout_ms, spool_reply_fn cont, void *arg);
/* A reply to a blocking caller (from == SPOOL_ID_NONE). Takes m. */
int request_complete_foreign(spool_runtime *rt, uint64_t request_id, message *m, int status);

/* Names (names.c). */
int names_create(spool_runtime *rt);
void names_destroy(spool_runtime *rt);
void names_release_actor(spool_runtime *rt, actor *a);
int names_register_actor(spool_runtime *rt, const char *name, actor *a, spool_id id);
/* Copies the actor's registered name ("" if none) under the names lock. Any thread. */
void names_copy_actor_name(spool_runtime *rt, actor *a, char *out, size_t size);

/* Live-actor accounting (runtime.c). */
void runtime_actor_born(spool_runtime *rt);
void runtime_actor_died(spool_runtime *rt);

/* ---------------------------------------------------------------------------------------------- */
/* Metrics (metrics.c)                                                                            */

typedef struct metrics_histogram {
    uint64_t buckets[SPOOL_HISTOGRAM_BUCKETS]; /* home thread writes (relaxed), readers copy */
    uint64_t count;
    uint64_t sum_ticks;
} metrics_histogram;

/* One slot's histograms, under a sequence lock that also covers the mailbox's consumer counters. */
typedef struct actor_metrics {
    seqlock lock;
    metrics_histogram wait;
    metrics_histogram processing;
} actor_metrics;

/* At create: calibrates the clock, converts bucket bounds to ticks. */
void metrics_setup(spool_runtime *rt);

/* xorshift64*: the runtime's seeded generator, one state per thread (convention: no rand()). */
static inline uint64_t metrics_random(uint64_t *state) {
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Du;
}

/* The gap to the next sampled message: uniform in 1 .. 2N-1, so one message in N on average. A
 * fixed gap could line up with a sender's pattern (messages to A and B in turn, N even) and never
 * sample one of its receivers. */
static inline uint32_t metrics_gap(spool_runtime *rt, uint64_t *state) {
    uint32_t n = rt->sample_every;
    return n <= 1 ? 1 : 1 + (uint32_t)(metrics_random(state) % (2u * n - 1));
}

/* The stamp for a message being sent from thread t (NULL: outside the runtime): a tick for one
 * message in sample_every on average, else 0. */
static inline uint64_t metrics_stamp(spool_runtime *rt, sched_thread *t) {
    if (!rt->metrics_on)
        return 0;
    if (t) {
        if (--t->sample_countdown != 0)
            return 0;
        t->sample_countdown = metrics_gap(rt, &t->sample_random);
        return tick_now();
    }
    /* Outside the runtime: a shared counter, scrambled so no pattern of senders lines up with it.
     */
    uint64_t c = pr_faa_64(&rt->foreign_samples, 1) * 0x9E3779B97F4A7C15u;
    return (c >> 32) % rt->sample_every == 0 ? tick_now() : 0;
}

/* At create / destroy: each thread's buffer of a turn's observations. */
int metrics_threads_create(spool_runtime *rt);
void metrics_threads_destroy(spool_runtime *rt);

/* Home thread: a sampled message sent at `stamp` ran its handler from `start` to `end`. Kept in the
 * thread's buffer until the turn ends. */
static inline void metrics_observe_owner(sched_thread *t, uint64_t stamp, uint64_t start,
                                         uint64_t end) {
    observation *o = &t->observations[t->observation_count++];
    /* Time stamp counters of different cores can differ slightly: never a negative wait. */
    o->wait_ticks = start > stamp ? start - stamp : 0;
    o->processing_ticks = end > start ? end - start : 0;
}

/* Home thread, at a turn's end: applies the turn's observations and releases the mailbox count in
 * one write section, so a snapshot sees histograms and counters from the same moment. Returns the
 * messages remaining (mailbox_release_owner). */
uint64_t metrics_release_owner(sched_thread *t, actor *a, uint64_t taken, uint64_t dropped);

/* Home thread, when an actor ends in the middle of a turn: applies the turn's observations and
 * counts the `taken` messages as dequeued, in one write section (the count itself is closed by
 * actor_terminate). */
void metrics_settle_owner(sched_thread *t, actor *a, uint64_t taken);

/* A slot gets a new actor: its histograms start from zero (spawning thread, before publication). */
void metrics_reset_slot(actor *a);

/* Table destroy: frees the slot's block. */
void metrics_free_slot(spool_runtime *rt, actor *a);

/* A scheduler thread's current actor, as a ctx. */
static inline actor *actor_from_ctx(const spool_ctx *ctx) { return (actor *)ctx; }

#endif
