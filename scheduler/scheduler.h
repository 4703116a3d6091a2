/*
 * scheduler.h - the runtime and its scheduler threads: who runs which actor when.
 *
 * Each thread owns a local ready list (actors it scheduled itself, no atomics), an MPSC inbox
 * (actors scheduled by other threads on their mailbox's empty -> non-empty edge), a timer heap, and
 * a message pool. It runs an actor for up to `batch` messages, then moves on; when nothing is ready
 * it spins a little, then sleeps on a futex until a waker sees its `sleeping` flag.
 */
#ifndef SPOOL_SCHEDULER_H
#define SPOOL_SCHEDULER_H

#include "mailbox/mailbox.h"
#include "mailbox/memory.h"
#include "scheduler/config.h"
#include "spool.h"

#include <pthread.h>
#include <stdint.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

struct actor;
struct message;
struct timer;
typedef struct return_batch return_batch;
typedef struct observation {
    uint64_t wait_ticks;
    uint64_t processing_ticks;
} observation;

typedef struct timer_heap {
    struct timer **items; /* owner thread */
    uint32_t count;
    uint32_t capacity;
} timer_heap;

typedef struct sched_thread {
    mpsc_queue inbox;       /* actors scheduled by other threads (any thread pushes) */
    mpsc_queue timer_inbox; /* timers and cancel requests from other threads */

    /* Blocks of this thread's pool that other threads give back: any thread CAS-pushes a batch,
     * the owner takes the whole stack with one exchange. */
    struct message *remote_free CACHE_ALIGNED;

    /* Read by every waker: written only when the owner falls asleep or wakes, and by spawns. */
    int sleeping CACHE_ALIGNED; /* owner writes 1 before sleeping, 0 after; wakers read */
    int wake_word;              /* the futex word: wakers add 1 */
    int actors;                 /* any thread, atomic: actors whose home this is */
    int dedicated;              /* placement: non-zero when a dedicated actor owns this thread */

    /* Owner thread only (others read the counters relaxed). */
    struct actor *ready_head CACHE_ALIGNED;
    int idle; /* 1 while it has nothing to run (read by spool_runtime_stop); changes every idle
                 spell, so it must not share the wakers' line */
    struct actor *ready_tail;
    uint64_t ready_count;
    uint64_t backlog;    /* messages left in ready actors after their last turn (least_loaded) */
    uint64_t activity;   /* turns run + timers fired: the stop's quiescence test reads it */
    uint64_t messages;   /* messages handled */
    uint64_t wakeups;    /* times it woke from a futex sleep */
    uint64_t spin_limit; /* how long the next idle spell may spin, in ticks (adaptive) */
    uint64_t busy_ticks; /* time outside idle spells, up to busy_since */
    uint64_t busy_since; /* tick at which the current busy spell began */
    uint32_t sample_countdown;        /* messages this thread sends until it stamps the next one */
    uint64_t sample_random;           /* the sampling gaps' generator state (seeded per thread) */
    struct observation *observations; /* this turn's sampled messages (batch entries), applied to
                                         the actor's histograms at the turn's end */
    uint32_t observation_count;
    struct actor *current;        /* the actor running now, or NULL */
    const spool_message *request; /* the request its handler is running, or NULL */
    int request_answered;         /* spool_reply answered `request` during the handler */
    struct message *pool;         /* free message blocks whose home is this thread */
    uint32_t pool_count;
    struct return_batch *returns;   /* per home thread: blocks handled here, going back there */
    struct pending_call *call_pool; /* free spool_call records (request.c) */
    uint32_t call_pool_count;
    timer_heap timers;
    uint64_t timer_sequence;

    int index;
    spool_runtime *rt;
    pthread_t pthread;
    int started;
} sched_thread;

/* How long an idle thread spins before it sleeps, at most. A futex wake costs ~24 us on this class
 * of VM, so a hand-off that comes back within this window is served without one. After the first
 * few microseconds the spin yields the CPU between polls.
 * The spin adapts (idle_owner): a thread whose work comes back later than SCHED_SPIN_NS after it
 * went idle could not have been spared a sleep by spinning, and a spin that yields lets another
 * thread of the same CPU (a node's net thread, a busy neighbour) wait for a whole time slice; so
 * each such spell halves the next spin, down to SCHED_SPIN_MIN_NS, and a spell whose work came
 * back within the window brings it back to twice that gap at once. */
#define SCHED_SPIN_NS 50000u
#define SCHED_SPIN_MIN_NS 1000u
#define SCHED_SPIN_BEFORE_YIELD_NS 5000u

#define RUNTIME_CREATED 0
#define RUNTIME_RUNNING 1
#define RUNTIME_STOPPING 2
#define RUNTIME_STOPPED 3

struct actor_table;
struct name_table;
struct waiter_table;
struct remote_state;

struct spool_runtime {
    spool_allocator allocator;
    runtime_settings settings;
    int thread_count;
    sched_thread *threads;

    int state CACHE_ALIGNED; /* any thread, atomic: RUNTIME_* */
    int halt;                /* any thread, atomic: threads leave their loop */
    uint64_t
        foreign_senders;  /* any thread, atomic: sends from outside in progress (stop handshake) */
    uint64_t round_robin; /* any thread, atomic */

    uint64_t dead_letters[SPOOL_DEAD_REASON_COUNT] CACHE_ALIGNED; /* any thread, atomic add */
    spool_dead_letter_fn on_dead_letter;
    void *dead_letter_user;

    struct actor_table *actors;
    struct name_table *names;
    struct waiter_table *waiters;
    struct remote_state *remote; /* actors/remote.c: the other nodes */

    pthread_mutex_t life_lock; /* guards live_actors' zero edge and the dedicated reservations */
    pthread_cond_t life_cond;
    uint64_t live_actors; /* atomic; changes under life_lock */

    uint64_t request_sequence; /* any thread, atomic: ids for blocking calls */

    /* Metrics (set at create, then read-only; foreign_samples: any thread, atomic). */
    int metrics_on;
    uint32_t sample_every;
    double seconds_per_tick;
    uint64_t spin_ticks;                                /* SPIN_NS in ticks */
    uint64_t spin_min_ticks;                            /* SPIN_MIN_NS in ticks */
    uint64_t yield_ticks;                               /* SPIN_BEFORE_YIELD_NS in ticks */
    uint64_t bucket_ticks[SPOOL_HISTOGRAM_BUCKETS - 1]; /* histogram bounds in ticks */
    uint64_t foreign_samples;
    uint64_t start_tick; /* at spool_runtime_start */
};

/*
 * A thread outside the runtime announces a send (or timer) with enter and ends it with leave, so
 * that spool_runtime_stop can wait until none is half-way before it drains: after enter returns 0
 * the runtime will not drain until leave. Enter fails with SPOOL_ESTOPPED once a stop has begun.
 */
static inline int runtime_foreign_enter(spool_runtime *rt) {
    pr_faa_64(&rt->foreign_senders, 1);
    /* Order the announcement before reading the state (Dekker with spool_runtime_stop). */
    pr_fence_seq_cst();
    int state = pr_load_int(&rt->state);
    if (state == RUNTIME_STOPPING || state == RUNTIME_STOPPED) {
        pr_faa_64(&rt->foreign_senders, (uint64_t)-1);
        return SPOOL_ESTOPPED;
    }
    return 0;
}

static inline void runtime_foreign_leave(spool_runtime *rt) {
    pr_faa_64(&rt->foreign_senders, (uint64_t)-1);
}

/*
 * The metrics clock: the time-stamp counter where it is constant and cheap (x86-64: ~17 ns here,
 * against ~46 ns for clock_gettime), else CLOCK_MONOTONIC in ns. rt->seconds_per_tick converts.
 */
uint64_t sched_now_ns(void);
static inline uint64_t tick_now(void) {
#if defined(__x86_64__)
    return __rdtsc();
#else
    return sched_now_ns();
#endif
}

/* The scheduler thread the caller is, or NULL outside the runtime (the one thread-local). */
sched_thread *sched_current(void);

/* Any thread: puts an actor that just became runnable on its home thread's ready queue. */
void sched_schedule(spool_runtime *rt, struct actor *a);

/* Owner thread: appends to the local ready list. */
void sched_ready_push_owner(sched_thread *t, struct actor *a);

/* Starts / joins the threads (runtime.c drives the lifecycle). */
int sched_start(spool_runtime *rt);
void sched_halt_and_join(spool_runtime *rt);

/* Any thread: wakes thread t if it sleeps. */
void sched_wake(sched_thread *t);

/* Timers (timer.c). Owner thread: fires what is due, returns ns until the next one (UINT64_MAX:
 * none). */
uint64_t timers_service_owner(sched_thread *t, uint64_t now);
/* Owner thread: a timer that delivers `message` (ownership taken) to `to` after delay_ns. */
int timers_add_owner(sched_thread *t, spool_id to, uint64_t delay_ns, struct message *message,
                     spool_timer *out);
/* Shutdown: every timer left becomes a dead letter; frees the heap. Threads joined. */
void timers_discard(sched_thread *t);

/* Placement (placement.c): the home thread for a new actor, with its seat there taken (the
 * thread's actor count already includes it), or an error. */
int placement_choose(spool_runtime *rt, const spool_spawn_opts *opts, int *thread_out,
                     int *dedicated_out);
/* Gives the seat back when the spawn fails after placement. */
void placement_unclaim(spool_runtime *rt, int thread, int dedicated);
/* At create: marks the threads config rules dedicate. */
void placement_reserve(spool_runtime *rt);
/* A dedicated actor on `thread` ended (not for config-reserved threads). */
void placement_release(spool_runtime *rt, int thread);

#endif
