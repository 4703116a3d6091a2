/*
 * mailbox.c - Vyukov's intrusive MPSC queue and the mailbox state word around it. This is the first
 * and last step of every message: a producer pushes here, the home thread pops here.
 */
#include "mailbox.h"

void mpsc_init_ends(mpsc_producer_end *p, mpsc_consumer_end *c) {
    c->stub.next = NULL;
    p->head = &c->stub;
    c->tail = &c->stub;
}

void mpsc_push_end(mpsc_producer_end *p, mpsc_node *node) {
    pr_store_ptr_relaxed(&node->next, NULL);
    /* The exchange publishes the node (acq_rel): everything written into it before is visible to
     * the thread that links after us and, through the link below, to the consumer. */
    mpsc_node *prev = pr_fas_ptr(&p->head, node);
    /* Release: the consumer's acquire load of prev->next sees the node's contents. Between the
     * exchange and this store the list is briefly cut; the consumer treats that as "not yet". */
    pr_store_ptr(&prev->next, node);
}

mpsc_node *mpsc_pop_end(mpsc_producer_end *p, mpsc_consumer_end *q) {
    mpsc_node *tail = q->tail;
    mpsc_node *next = pr_load_ptr(&tail->next); /* acquire: pairs with the producer's link */
    if (tail == &q->stub) {
        if (next == NULL)
            return NULL;
        q->tail = next;
        tail = next;
        next = pr_load_ptr(&next->next);
    }
    if (next != NULL) {
        q->tail = next;
        return tail;
    }
    /* tail is the last linked node. If a producer has already exchanged head past it, its link is
     * on the way: report empty for now rather than wait. */
    if (tail != pr_load_ptr(&p->head))
        return NULL;
    /* Re-insert the stub behind tail so tail can be handed out. */
    mpsc_push_end(p, &q->stub);
    next = pr_load_ptr(&tail->next);
    if (next != NULL) {
        q->tail = next;
        return tail;
    }
    return NULL;
}

mpsc_node *mpsc_peek_end(mpsc_producer_end *p, mpsc_consumer_end *c) {
    (void)p;
    mpsc_node *tail = c->tail;
    if (tail == &c->stub)
        return pr_load_ptr(&tail->next); /* acquire: pairs with the producer's link */
    return tail;
}

bool mpsc_empty_end(mpsc_producer_end *p, mpsc_consumer_end *c) {
    mpsc_node *tail = c->tail;
    if (pr_load_ptr(&tail->next) != NULL)
        return false;
    /* A producer's exchange is the first thing a push changes: a sleeper that orders this load
     * after its "I sleep" flag with a seq_cst fence cannot miss a push that checked the flag too
     * early. */
    return tail == pr_load_ptr(&p->head);
}

/* ---------------------------------------------------------------------------------------------- */

void mailbox_init(mailbox *mb) {
    mb->state = MAILBOX_CLOSED_BIT; /* tag 0, closed */
    mb->high_water = 0;
    mb->rejected = 0;
    mb->capacity = 0;
    mpsc_init_ends(&mb->producer, &mb->consumer);
    mb->dequeued = 0;
    mb->dropped = 0;
    mb->notices_pushed = 0;
    mb->notices_popped = 0;
}

/* The top bit of capacity marks "drop oldest" (accept over capacity). */
#define CAPACITY_DROP_OLDEST (UINT64_C(1) << 63)

void mailbox_open(mailbox *mb, uint32_t tag, uint64_t capacity, bool reject) {
    pr_store_64_relaxed(&mb->high_water, 0);
    pr_store_64_relaxed(&mb->rejected, 0);
    pr_store_64_relaxed(&mb->dequeued, 0);
    pr_store_64_relaxed(&mb->dropped, 0);
    pr_store_64_relaxed(&mb->notices_pushed, 0);
    pr_store_64_relaxed(&mb->notices_popped, 0);
    pr_store_64_relaxed(
        &mb->capacity, capacity == 0 ? 0 : (reject ? capacity : (capacity | CAPACITY_DROP_OLDEST)));
    /* Release: a producer that sees the new tag also sees the capacity and counters above. */
    pr_store_64(&mb->state, ((uint64_t)(tag & MAILBOX_TAG_MASK)) << MAILBOX_TAG_SHIFT);
}

static void raise_high_water(mailbox *mb, uint64_t count) {
    uint64_t seen = pr_load_64_relaxed(&mb->high_water);
    while (count > seen) {
        if (pr_cas_64(&mb->high_water, &seen, count))
            break;
    }
}

uint64_t mailbox_drop_bound(mailbox *mb) {
    uint64_t capacity = pr_load_64_relaxed(&mb->capacity);
    return (capacity & CAPACITY_DROP_OLDEST) ? capacity & ~CAPACITY_DROP_OLDEST : 0;
}

mailbox_push_result mailbox_push(mailbox *mb, uint32_t tag, mpsc_node *node, bool bounded) {
    const uint64_t want = ((uint64_t)(tag & MAILBOX_TAG_MASK)) << MAILBOX_TAG_SHIFT;
    /* A notice is announced before it is counted: whoever reads the count and then the notices
     * (mailbox_user_depth, the owner's drop-oldest check) never takes a notice for a user message.
     * Counted after, a drop-oldest turn that looked in between dropped one user message too many
     * (test_actors' drop_oldest test under load, with the stop notice racing the turn). */
    if (!bounded)
        pr_faa_64(&mb->notices_pushed, 1);
    uint64_t state = pr_load_64(&mb->state);
    for (;;) {
        if ((state & ~MAILBOX_COUNT_MASK) != want) { /* another generation, or closed */
            if (!bounded)
                pr_faa_64(&mb->notices_pushed, (uint64_t)0 - 1);
            return MAILBOX_CLOSED;
        }
        uint64_t capacity = pr_load_64_relaxed(&mb->capacity);
        if (bounded && capacity != 0 && !(capacity & CAPACITY_DROP_OLDEST)) {
            /* Only user messages count against the bound; notices in the queue do not. */
            uint64_t notices =
                pr_load_64_relaxed(&mb->notices_pushed) - pr_load_64_relaxed(&mb->notices_popped);
            uint64_t count = state & MAILBOX_COUNT_MASK;
            if (count >= notices && count - notices >= capacity) {
                pr_faa_64(&mb->rejected, 1);
                return MAILBOX_FULL;
            }
        }
        /* acq_rel CAS: commits this push to this generation; the owner's close sees it counted
         * and will drain it. On failure `state` holds the fresh value. */
        if (pr_cas_64(&mb->state, &state, state + 1))
            break;
    }
    uint64_t count = (state & MAILBOX_COUNT_MASK) + 1;
    if (count > pr_load_64_relaxed(&mb->high_water))
        raise_high_water(mb, count);
    mpsc_push_end(&mb->producer, node);
    return count == 1 ? MAILBOX_PUSHED_FIRST : MAILBOX_PUSHED;
}

uint64_t mailbox_release_owner(mailbox *mb, uint64_t taken, uint64_t dropped) {
    if (taken == 0)
        return pr_load_64(&mb->state) & MAILBOX_COUNT_MASK;
    pr_store_64_relaxed(&mb->dequeued, mb->dequeued + taken);
    if (dropped)
        pr_store_64_relaxed(&mb->dropped, mb->dropped + dropped);
    /* acq_rel: everything this turn did (state changes, a move of the home thread) happens before a
     * producer that then sees count 0 -> 1 and schedules the actor again. */
    uint64_t before = pr_faa_64(&mb->state, (uint64_t)0 - taken);
    return (before & MAILBOX_COUNT_MASK) - taken;
}

uint64_t mailbox_close_owner(mailbox *mb) {
    uint64_t state = pr_load_64(&mb->state);
    while (!pr_cas_64(&mb->state, &state, state | MAILBOX_CLOSED_BIT)) {
    }
    return state & MAILBOX_COUNT_MASK;
}
