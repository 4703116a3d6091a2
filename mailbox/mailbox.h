/*
 * mailbox.h - the lock-free queues under every actor and every scheduler thread.
 *
 * mpsc_queue: Vyukov's intrusive multi-producer single-consumer queue. Producers (any thread) link
 * a node with one atomic exchange: wait-free, they never wait for each other. The consumer (one
 * owner thread) pops without atomic read-modify-writes.
 *
 * mailbox: an mpsc_queue plus one 64-bit state word (tag | closed | count) that every push changes
 * with one CAS. The count gives the empty -> non-empty edge (the push that makes it 1 schedules the
 * actor), the depth, the bound of a bounded mailbox, and - with the tag (the actor's generation)
 * and the closed bit in the same word - lets a dying actor know exactly how many pushes it must
 * still drain, so no message is lost when an actor ends or its slot is reused.
 */
#ifndef SPOOL_MAILBOX_H
#define SPOOL_MAILBOX_H

#include "atomic.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mpsc_node {
    struct mpsc_node *next; /* written by the pushing thread, read by the owner */
} mpsc_node;

/*
 * The queue's two ends live apart so that the producer end can share a cache line with other
 * producer-written fields (the mailbox state word) and the consumer end with consumer fields.
 */
typedef struct mpsc_producer_end {
    mpsc_node *head; /* any thread, atomic exchange: newest node */
} mpsc_producer_end;

typedef struct mpsc_consumer_end {
    mpsc_node *tail; /* owner thread only: oldest node */
    mpsc_node stub;  /* owner thread: placeholder that keeps the list non-empty */
} mpsc_consumer_end;

void mpsc_init_ends(mpsc_producer_end *p, mpsc_consumer_end *c);

/* Any thread. Never blocks, never fails. */
void mpsc_push_end(mpsc_producer_end *p, mpsc_node *node);

/*
 * Owner thread. The oldest node, or NULL when empty or when a producer is between its exchange and
 * its link (the node will be there on a later call).
 */
mpsc_node *mpsc_pop_end(mpsc_producer_end *p, mpsc_consumer_end *c);

/* Owner thread: the node mpsc_pop_end would return next, without taking it (or NULL). */
mpsc_node *mpsc_peek_end(mpsc_producer_end *p, mpsc_consumer_end *c);

/* Owner thread: true when nothing is queued (may say false while a push is half done). */
bool mpsc_empty_end(mpsc_producer_end *p, mpsc_consumer_end *c);

/*
 * A whole queue on one cache line (the scheduler's inboxes). They carry only the empty -> non-empty
 * edges, rarely contended; in a hand-off the producer writes head and the stub's link and the
 * consumer reads the link and re-pushes the stub, so one shared line moves once each way where two
 * separate lines would each move.
 */
typedef struct mpsc_queue {
    mpsc_producer_end producer CACHE_ALIGNED;
    mpsc_consumer_end consumer;
} mpsc_queue;

static inline void mpsc_init(mpsc_queue *q) { mpsc_init_ends(&q->producer, &q->consumer); }
static inline void mpsc_push(mpsc_queue *q, mpsc_node *n) { mpsc_push_end(&q->producer, n); }
static inline mpsc_node *mpsc_pop_owner(mpsc_queue *q) {
    return mpsc_pop_end(&q->producer, &q->consumer);
}
static inline bool mpsc_empty_owner(mpsc_queue *q) {
    return mpsc_empty_end(&q->producer, &q->consumer);
}

/* ---------------------------------------------------------------------------------------------- */

#define MAILBOX_COUNT_BITS 39
#define MAILBOX_COUNT_MASK ((UINT64_C(1) << MAILBOX_COUNT_BITS) - 1)
#define MAILBOX_CLOSED_BIT (UINT64_C(1) << MAILBOX_COUNT_BITS)
#define MAILBOX_TAG_SHIFT 40
#define MAILBOX_TAG_MASK ((UINT64_C(1) << 24) - 1)

typedef enum mailbox_push_result {
    MAILBOX_PUSHED_FIRST, /* the mailbox was empty: the caller must schedule the owner */
    MAILBOX_PUSHED,       /* queued behind others: the owner is already scheduled */
    MAILBOX_CLOSED,       /* wrong tag or closed: nothing was queued */
    MAILBOX_FULL,         /* bounded and full: nothing was queued, rejected counted */
} mailbox_push_result;

typedef struct mailbox {
    /* Written by producers (any thread): one cache line. */
    uint64_t state CACHE_ALIGNED; /* any thread, CAS: tag << 40 | closed << 39 | count */
    uint64_t high_water;          /* any thread, CAS-max: largest count a push produced */
    uint64_t rejected;            /* any thread, atomic add */
    uint64_t capacity;            /* home thread at open, producers read; 0 = unbounded */
    uint64_t notices_pushed;      /* any thread, atomic add: unbounded pushes (runtime notices) */
    mpsc_producer_end producer;
    /* Written by the owner (home thread); others read the counters relaxed. The embedding struct
     * may put more home-thread fields on this line. */
    mpsc_consumer_end consumer CACHE_ALIGNED;
    uint64_t dequeued;       /* messages released (handled or dropped) */
    uint64_t dropped;        /* of which dropped by drop-oldest */
    uint64_t notices_popped; /* unbounded pushes taken out */
} mailbox;

/* Before first use (single thread). The mailbox starts closed with tag 0. */
void mailbox_init(mailbox *mb);

/*
 * Opens an empty mailbox for a new owner with `tag` (24 bits) and a capacity (0 = unbounded);
 * counters restart at zero. Call while no producer can have a matching tag (before the owner's id
 * is published). `reject` says whether a full mailbox refuses pushes (true) or accepts them so the
 * owner drops the oldest (false).
 */
void mailbox_open(mailbox *mb, uint32_t tag, uint64_t capacity, bool reject);

/*
 * Any thread. Queues `node` if the mailbox is open with `tag` and - when `bounded` and the mailbox
 * has a reject bound - not full. The runtime's own notices pass bounded = false: a full mailbox
 * must still hear "stop". On MAILBOX_CLOSED / MAILBOX_FULL the node was not touched.
 */
mailbox_push_result mailbox_push(mailbox *mb, uint32_t tag, mpsc_node *node, bool bounded);

/* The bound of a drop-oldest mailbox, or 0 (unbounded or reject). Any thread. */
uint64_t mailbox_drop_bound(mailbox *mb);

/* Owner thread. The oldest message, or NULL (see mpsc_pop_owner). */
static inline mpsc_node *mailbox_pop_owner(mailbox *mb) {
    return mpsc_pop_end(&mb->producer, &mb->consumer);
}

/* Owner thread: the oldest message without taking it (NULL when none is visible). */
static inline mpsc_node *mailbox_peek_owner(mailbox *mb) {
    return mpsc_peek_end(&mb->producer, &mb->consumer);
}

/*
 * Owner thread, at the end of a turn: `taken` messages were popped since the last release. Returns
 * how many remain (counted pushes not yet popped); 0 means the owner is now idle and the next push
 * will report MAILBOX_PUSHED_FIRST.
 */
uint64_t mailbox_release_owner(mailbox *mb, uint64_t taken, uint64_t dropped);

/*
 * Owner thread: closes the mailbox. Returns the number of counted pushes not yet released; of
 * these, the ones not yet popped must be drained by the caller (mailbox_pop_owner may briefly
 * return NULL while a push completes: spin). No push succeeds after this.
 */
uint64_t mailbox_close_owner(mailbox *mb);

/* Any thread: counted messages waiting (including those popped in the current turn). */
static inline uint64_t mailbox_depth(mailbox *mb) {
    return pr_load_64_relaxed(&mb->state) & MAILBOX_COUNT_MASK;
}

/* Owner thread: a runtime notice (pushed unbounded) was popped. */
static inline void mailbox_notice_popped_owner(mailbox *mb) {
    pr_store_64_relaxed(&mb->notices_popped, mb->notices_popped + 1);
}

/* Any thread: user messages waiting (the bound applies to these; notices do not count). The count
 * first, then the notices: a producer announces a notice before it counts it (mailbox_push), so a
 * notice in the count is always among the notices read after it, and a notice is never taken for
 * a user message (a drop-oldest turn would drop one too many). */
static inline uint64_t mailbox_user_depth(mailbox *mb) {
    uint64_t depth = pr_load_64(&mb->state) & MAILBOX_COUNT_MASK;
    uint64_t notices = pr_load_64(&mb->notices_pushed) - pr_load_64_relaxed(&mb->notices_popped);
    return depth > notices ? depth - notices : 0;
}

#endif
