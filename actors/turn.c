/*
 * turn.c - the last step of the way a message travels: on its home thread an actor pops up to
 * `batch` messages, hands user messages to its handler and acts on the runtime's own notices (stop,
 * monitor, move, replies), then gives the count back and goes to the back of the ready queue if
 * more is waiting.
 */
#include "actors/actors.h"
#include "actors/remote.h"

/* A notice asking to move: takes effect at the end of this turn. */
static void move_request(actor *a, int thread) {
    /* Checked again here: the target may have become dedicated since spool_actor_move. */
    if (!a->pinned && thread >= 0 && thread < a->rt->thread_count &&
        thread != pr_load_int(&a->home) && pr_load_int(&a->rt->threads[thread].dedicated) == 0)
        a->move_to = thread;
}

static void monitor_request(actor *a, spool_id watcher_id) {
    watcher *w = memory_alloc(&a->rt->allocator, sizeof *w);
    if (!w) {
        /* Cannot remember the watcher: tell it now rather than never. */
        spool_down down = {a->id, SPOOL_EXIT_NOPROC};
        message_notify(a->rt, watcher_id, a->id, MSG_USER, 0, 0, SPOOL_MSG_DOWN, &down,
                       sizeof down);
        return;
    }
    w->id = watcher_id;
    w->next = a->monitors;
    a->monitors = w;
}

static void dispatch(sched_thread *t, actor *a, message *m) {
    switch (m->kind) {
    case MSG_USER:
        if (m->view.request_id)
            request_handle_owner(t, a, m);
        else
            a->behavior->handle((spool_ctx *)a, a->state, &m->view);
        break;
    case MSG_REPLY:
    case MSG_REPLY_ERROR:
    case MSG_CALL_TIMEOUT:
        request_dispatch_owner(a, m);
        break;
    case MSG_STOP:
        a->stopping = 1;
        a->exit_reason = m->status;
        break;
    case MSG_MONITOR:
        monitor_request(a, m->view.from);
        break;
    case MSG_MOVE:
        move_request(a, m->status);
        break;
    case MSG_SELF:
        a->behavior->handle((spool_ctx *)a, a->state, &m->view);
        break;
    default:
        break;
    }
}

/*
 * Drop-oldest mailboxes: while more than `bound` user messages wait (not counting the
 * `taken_users` popped this turn), the oldest goes to the dead letters. A notice is never dropped.
 * Returns how many were dropped.
 */
static uint64_t drop_over_bound(spool_runtime *rt, actor *a, uint64_t bound, uint64_t taken_users) {
    mailbox *mb = &a->mailbox;
    uint64_t dropped = 0;
    while (mailbox_user_depth(mb) - taken_users - dropped > bound) {
        mpsc_node *n = mailbox_peek_owner(mb);
        if (!n || ((message *)n)->kind != MSG_USER)
            break;
        if (mailbox_pop_owner(mb) != n)
            break; /* its producer is still linking it: next time */
        dropped++;
        dead_letter(rt, SPOOL_DEAD_DROPPED_OLDEST, a->id, (message *)n);
    }
    return dropped;
}

/* Changes the home thread; the caller still holds the actor (its count is non-zero or it is
 * running), so no producer can schedule it meanwhile. */
static void migrate_owner(sched_thread *t, actor *a) {
    spool_runtime *rt = t->rt;
    int to = a->move_to;
    a->move_to = -1;
    pr_store_64_relaxed(&t->backlog, t->backlog - a->backlog);
    a->backlog = 0;
    pr_faa_int(&t->actors, -1);
    pr_faa_int(&rt->threads[to].actors, 1);
    /* Release: the next turn, on the new thread, sees everything this one did. */
    pr_store_int(&a->home, to);
}

void actor_run_turn(sched_thread *t, actor *a) {
    spool_runtime *rt = t->rt;
    mailbox *mb = &a->mailbox;
    uint64_t batch = (uint64_t)rt->settings.batch;
    uint64_t taken = 0, dropped = 0, taken_users = 0;
    t->current = a;

    uint64_t bound = mailbox_drop_bound(mb);
    uint64_t handled = 0;
    while (handled < batch) {
        if (bound) {
            uint64_t d = drop_over_bound(rt, a, bound, taken_users);
            dropped += d;
            taken += d;
            taken_users += d;
        }
        mpsc_node *n = mailbox_pop_owner(mb);
        if (!n)
            break;
        taken++;
        handled++;
        message *m = (message *)n;
        if (m->kind != MSG_USER) {
            mailbox_notice_popped_owner(mb);
            dispatch(t, a, m);
        } else if (m->stamp) { /* sampled by its sender: time it */
            taken_users++;
            uint64_t start = tick_now();
            dispatch(t, a, m);
            metrics_observe_owner(t, m->stamp, start, tick_now());
        } else {
            taken_users++;
            dispatch(t, a, m);
        }
        message_release(rt, t, m);
        if (a->stopping) {
            pr_store_64_relaxed(&t->messages, t->messages + handled);
            t->current = NULL;
            metrics_settle_owner(t, a, taken); /* its last turn counts, like any other */
            actor_terminate(rt, a, a->exit_reason, taken, SPOOL_DEAD_RECEIVER_STOPPED);
            return;
        }
        if (a->move_to >= 0)
            break; /* what came after the move runs on the new thread */
        if (pr_load_int(&rt->halt))
            break; /* a stop's deadline passed: the rest is counted as shutdown */
    }
    pr_store_64_relaxed(&t->messages, t->messages + handled);
    t->current = NULL;

    if (a->move_to >= 0) {
        migrate_owner(t, a);
        /* After the release the actor may already run on its new thread: touch nothing of it
         * unless messages remain (then we still hold it and hand it over). */
        if (metrics_release_owner(t, a, taken, dropped) > 0)
            sched_schedule(rt, a);
        return;
    }
    uint64_t remaining = metrics_release_owner(t, a, taken, dropped);
    if (remaining == 0) {
        if (a->backlog) {
            pr_store_64_relaxed(&t->backlog, t->backlog - a->backlog);
            a->backlog = 0;
        }
        return; /* idle: the next push that finds the count at 0 schedules it again */
    }
    pr_store_64_relaxed(&t->backlog, t->backlog + remaining - a->backlog);
    a->backlog = remaining;
    sched_ready_push_owner(t, a);
}

int spool_send_self(spool_ctx *ctx, uint32_t type, const void *data, size_t size) {
    if (!ctx || type >= SPOOL_MSG_RESERVED || (size > 0 && !data))
        return SPOOL_EINVAL;
    actor *self = actor_from_ctx(ctx);
    sched_thread *t = sched_current();
    if (!t || t->current != self)
        return SPOOL_EINVAL;
    if (size > self->rt->settings.max_message_size)
        return SPOOL_EMSGSIZE;
    return message_notify(self->rt, self->id, self->id, MSG_SELF, 0, 0, type, data, size);
}

int spool_monitor(spool_ctx *ctx, spool_id target) {
    if (!ctx)
        return SPOOL_EINVAL;
    actor *self = actor_from_ctx(ctx);
    sched_thread *t = sched_current();
    if (!t || t->current != self)
        return SPOOL_EINVAL;
    if (id_node(target) != 0)
        return remote_monitor(self->rt, self->id, target);
    int rc = message_notify(self->rt, target, self->id, MSG_MONITOR, 0, 0, 0, NULL, 0);
    if (rc == SPOOL_ENOENT || rc == SPOOL_EFULL) {
        spool_down down = {target, SPOOL_EXIT_NOPROC};
        return message_notify(self->rt, self->id, target, MSG_USER, 0, 0, SPOOL_MSG_DOWN, &down,
                              sizeof down);
    }
    return rc;
}
