/*
 * scheduler.c - the scheduler threads. In the way a message travels this is the middle: a push that
 * made a mailbox non-empty lands the actor here (sched_schedule), the thread runs it for up to
 * `batch` messages (actor_run_turn), and an idle thread spins briefly, then sleeps on a futex until
 * woken.
 */
#include "scheduler/scheduler.h"
#include "actors/actors.h"

#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* initial-exec: one %fs-relative load per use instead of a __tls_get_addr call (measured ~10 ns
 * per message). A dlopen'ed libspool then needs a pointer of static TLS, which glibc reserves. */
static _Thread_local sched_thread *current_thread __attribute__((tls_model("initial-exec")));

sched_thread *sched_current(void) { return current_thread; }

uint64_t sched_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void futex_wait(int *word, int expected, uint64_t timeout_ns) {
    struct timespec ts, *tsp = NULL;
    if (timeout_ns != UINT64_MAX) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000u);
        ts.tv_nsec = (long)(timeout_ns % 1000000000u);
        tsp = &ts;
    }
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, tsp, NULL, 0);
}

static void futex_wake(int *word) {
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

void sched_wake(sched_thread *t) {
    /* The caller's push was an atomic exchange; order it before reading `sleeping` (on x86 the
     * locked exchange already is that fence). Pairs with the sleeper's seq_cst fence in idle(). */
    pr_fence_atomic_load();
    if (pr_load_int(&t->sleeping)) {
        pr_faa_int(&t->wake_word, 1);
        futex_wake(&t->wake_word);
    }
}

void sched_ready_push_owner(sched_thread *t, actor *a) {
    a->ready_next = NULL;
    if (t->ready_tail)
        t->ready_tail->ready_next = a;
    else
        t->ready_head = a;
    t->ready_tail = a;
    pr_store_64_relaxed(&t->ready_count, t->ready_count + 1); /* snapshots read it */
}

static actor *ready_pop_owner(sched_thread *t) {
    actor *a = t->ready_head;
    if (a) {
        t->ready_head = a->ready_next;
        if (!t->ready_head)
            t->ready_tail = NULL;
        pr_store_64_relaxed(&t->ready_count, t->ready_count - 1);
    }
    return a;
}

void sched_schedule(spool_runtime *rt, actor *a) {
    int home = pr_load_int(&a->home);
    sched_thread *t = &rt->threads[home];
    if (current_thread == t) {
        sched_ready_push_owner(t, a); /* same thread: no atomics, no wake */
        return;
    }
    mpsc_push(&t->inbox, &a->ready_node);
    sched_wake(t);
}

/* Moves actors scheduled by other threads onto the local ready list. */
static void drain_inbox_owner(sched_thread *t) {
    mpsc_node *n;
    while ((n = mpsc_pop_owner(&t->inbox)) != NULL) {
        actor *a = (actor *)((char *)n - offsetof(actor, ready_node));
        sched_ready_push_owner(t, a);
    }
}

static int has_work_owner(sched_thread *t) {
    return t->ready_head != NULL || !mpsc_empty_owner(&t->inbox) ||
           !mpsc_empty_owner(&t->timer_inbox);
}

/* An idle spell ended `gap` ticks after it began (work came, or a timer is due): how long the next
 * one may spin (scheduler.h, SCHED_SPIN_NS). A gap within the spin window says that spinning
 * pays here, so the next spin covers twice the gap at least; a longer one says it does not. */
static void spin_adapt(sched_thread *t, uint64_t gap) {
    spool_runtime *rt = t->rt;
    uint64_t limit = t->spin_limit;
    if (gap <= rt->spin_ticks) {
        if (limit < 2 * gap)
            limit = 2 * gap < rt->spin_ticks ? 2 * gap : rt->spin_ticks;
    } else {
        limit /= 2;
    }
    t->spin_limit = limit < rt->spin_min_ticks ? rt->spin_min_ticks : limit;
}

/* Nothing to run: spin a little, then sleep until woken or the next timer is due. */
static void idle_owner(sched_thread *t, uint64_t next_timer_ns) {
    spool_runtime *rt = t->rt;
    /* The busy spell ends here: one tick read (the cheap clock) also starts the spin's timing. */
    uint64_t start = tick_now();
    pr_store_64_relaxed(&t->busy_ticks, t->busy_ticks + (start - t->busy_since));
    pr_store_int(&t->idle, 1);
    uint64_t timer_ticks = next_timer_ns == UINT64_MAX
                               ? UINT64_MAX
                               : (uint64_t)((double)next_timer_ns * 1e-9 / rt->seconds_per_tick);
    if (t->spin_limit == 0)
        t->spin_limit = rt->spin_ticks;
    for (unsigned spins = 1;; spins++) {
        if (has_work_owner(t) || pr_load_int(&rt->halt))
            goto busy;
        if ((spins & 63) == 0) {
            uint64_t waited = tick_now() - start;
            if (waited >= t->spin_limit || waited >= timer_ticks)
                break;
            /* Past the first few microseconds, let another thread on this CPU run (another
             * scheduler thread when CPUs are oversubscribed: it may be the one about to send us
             * work). On an idle CPU sched_yield returns at once. */
            if (waited >= rt->yield_ticks)
                sched_yield();
        }
    }
    if (next_timer_ns <= SCHED_SPIN_NS)
        goto busy;
    /* Blocks handled here go home before we sleep (not on every idle spell: in a ping-pong that
     * would cost a CAS on the other thread's line per message). */
    pool_flush_owner(t);
    int seen = pr_load_int(&t->wake_word);
    pr_store_int(&t->sleeping, 1);
    /* Store "sleeping", then load the queues: a waker does push, then loads "sleeping". With a full
     * fence on both sides at least one of us sees the other. */
    pr_fence_seq_cst();
    if (!has_work_owner(t) && !pr_load_int(&rt->halt)) {
        futex_wait(&t->wake_word, seen,
                   next_timer_ns == UINT64_MAX ? UINT64_MAX : next_timer_ns - SCHED_SPIN_NS);
        pr_store_64_relaxed(&t->wakeups, t->wakeups + 1);
    }
    pr_store_int(&t->sleeping, 0);
busy:;
    /* One tick read ends the idle spell: the busy spell starts there, and the spell's length
     * tunes the next spin. */
    uint64_t now = tick_now();
    spin_adapt(t, now - start);
    pr_store_int(&t->idle, 0);
    pr_store_64_relaxed(&t->busy_since, now);
}

static void *thread_main(void *arg) {
    sched_thread *t = arg;
    spool_runtime *rt = t->rt;
    current_thread = t;
    while (!pr_load_int(&rt->halt)) {
        uint64_t next_timer = UINT64_MAX;
        if (t->timers.count || !mpsc_empty_owner(&t->timer_inbox))
            next_timer = timers_service_owner(t, sched_now_ns());
        drain_inbox_owner(t);
        actor *a = ready_pop_owner(t);
        if (a) {
            pr_store_64_relaxed(&t->activity, t->activity + 1);
            actor_run_turn(t, a);
            continue;
        }
        idle_owner(t, next_timer);
    }
    /* Actors still on the ready list stay scheduled; the stopping thread drains them. */
    pool_flush_owner(t);
    current_thread = NULL;
    return NULL;
}

int sched_start(spool_runtime *rt) {
    runtime_settings *s = &rt->settings;
    for (int i = 0; i < rt->thread_count; i++) {
        sched_thread *t = &rt->threads[i];
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        if (s->cpu_count > 0) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(s->cpus[i % s->cpu_count], &set);
            pthread_attr_setaffinity_np(&attr, sizeof set, &set);
        }
        /* Busy from now: a snapshot right after start must not see a zero start time. */
        pr_store_64_relaxed(&t->busy_since, tick_now());
        int rc = pthread_create(&t->pthread, &attr, thread_main, t);
        pthread_attr_destroy(&attr);
        if (rc != 0) {
            sched_halt_and_join(rt);
            return SPOOL_ESYSTEM;
        }
        pr_store_int(&t->started, 1);
        char name[16]; /* the kernel keeps 15 bytes; threads <= 256 fit */
        snprintf(name, sizeof name, "spool/%d", i & 0xfff);
        pthread_setname_np(t->pthread, name);
    }
    return 0;
}

void sched_halt_and_join(spool_runtime *rt) {
    pr_store_int(&rt->halt, 1);
    for (int i = 0; i < rt->thread_count; i++) {
        sched_thread *t = &rt->threads[i];
        if (!t->started)
            continue;
        /* Wake unconditionally: a sleeper re-checks halt. */
        pr_faa_int(&t->wake_word, 1);
        futex_wake(&t->wake_word);
        pthread_join(t->pthread, NULL);
        pr_store_int(&t->started, 0);
    }
}
