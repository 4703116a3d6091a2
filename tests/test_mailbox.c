/*
 * test_mailbox.c - the lock-free queues under every actor, tested with real threads: exact counts,
 * per-producer FIFO order, the empty -> non-empty edge handing out exactly one "schedule" at a
 * time, and a close that drains every counted push. Sizes scale with SPOOL_STRESS (default 1).
 */
#include "mailbox/mailbox.h"
#include "tests/support.h"

typedef struct item {
    mpsc_node node;
    uint32_t producer;
    uint32_t sequence;
} item;

/* ---------------------------------------------------------------------------------------------- */

typedef struct mpsc_run {
    mpsc_queue queue;
    item *items; /* producers * per_producer */
    int producers;
    long per_producer;
    int go;
} mpsc_run;

typedef struct producer_arg {
    mpsc_run *run;
    int index;
} producer_arg;

static void *mpsc_producer(void *p) {
    producer_arg *arg = p;
    mpsc_run *run = arg->run;
    while (!__atomic_load_n(&run->go, __ATOMIC_ACQUIRE)) {
    }
    for (long i = 0; i < run->per_producer; i++)
        mpsc_push(&run->queue, &run->items[(long)arg->index * run->per_producer + i].node);
    return NULL;
}

static void push_from_eight_threads_keeps_per_producer_order(void **state) {
    (void)state;
    mpsc_run run;
    run.producers = 8;
    run.per_producer = support_stress(50000);
    run.go = 0;
    mpsc_init(&run.queue);
    run.items = calloc((size_t)(run.producers * run.per_producer), sizeof(item));
    assert_non_null(run.items);
    for (int p = 0; p < run.producers; p++)
        for (long i = 0; i < run.per_producer; i++) {
            run.items[p * run.per_producer + i].producer = (uint32_t)p;
            run.items[p * run.per_producer + i].sequence = (uint32_t)i;
        }
    pthread_t threads[8];
    producer_arg args[8];
    for (int p = 0; p < run.producers; p++) {
        args[p] = (producer_arg){&run, p};
        assert_int_equal(pthread_create(&threads[p], NULL, mpsc_producer, &args[p]), 0);
    }
    __atomic_store_n(&run.go, 1, __ATOMIC_RELEASE);
    long next[8] = {0};
    long total = 0, expected = run.producers * run.per_producer;
    while (total < expected) {
        mpsc_node *n = mpsc_pop_owner(&run.queue);
        if (!n)
            continue;
        item *it = (item *)n;
        assert_true(it->producer < 8);
        assert_int_equal(it->sequence, next[it->producer]); /* FIFO per producer, nothing lost */
        next[it->producer]++;
        total++;
    }
    for (int p = 0; p < run.producers; p++)
        pthread_join(threads[p], NULL);
    assert_null(mpsc_pop_owner(&run.queue));
    assert_true(mpsc_empty_owner(&run.queue));
    for (int p = 0; p < run.producers; p++)
        assert_int_equal(next[p], run.per_producer);
    free(run.items);
}

/* ---------------------------------------------------------------------------------------------- */
/* The mailbox with its state word, driven the way the scheduler drives it. */

typedef struct box_run {
    mailbox box;
    item *items;
    int producers;
    long per_producer;
    int go;
    int scheduled;         /* the "actor is on a ready queue" token */
    long double_schedules; /* must stay 0 */
    long first_pushes;
    int consumer_stop;
} box_run;

static void *box_producer(void *p) {
    producer_arg *arg = p;
    box_run *run = (box_run *)arg->run;
    while (!__atomic_load_n(&run->go, __ATOMIC_ACQUIRE)) {
    }
    for (long i = 0; i < run->per_producer; i++) {
        item *it = &run->items[(long)arg->index * run->per_producer + i];
        mailbox_push_result r = mailbox_push(&run->box, 7, &it->node, true);
        if (r == MAILBOX_PUSHED_FIRST) {
            __atomic_fetch_add(&run->first_pushes, 1, __ATOMIC_RELAXED);
            /* We own the edge: hand the token to the consumer. It must have been free. */
            if (__atomic_exchange_n(&run->scheduled, 1, __ATOMIC_ACQ_REL) != 0)
                __atomic_fetch_add(&run->double_schedules, 1, __ATOMIC_RELAXED);
        }
    }
    return NULL;
}

static void *box_consumer(void *p) {
    box_run *run = p;
    long next[8] = {0};
    long total = 0, expected = run->producers * run->per_producer;
    while (total < expected) {
        if (!__atomic_load_n(&run->scheduled, __ATOMIC_ACQUIRE))
            continue;
        /* A turn: up to 64 messages, then give the count back. */
        uint64_t taken = 0;
        while (taken < 64) {
            mpsc_node *n = mailbox_pop_owner(&run->box);
            if (!n)
                break;
            item *it = (item *)n;
            if (it->sequence != (uint32_t)next[it->producer])
                return (void *)1; /* order broken */
            next[it->producer]++;
            taken++;
        }
        total += (long)taken;
        /* Give the token up before the count: once the count is 0 the next push's edge hands it
         * out again. If messages remain, no edge can have happened, so the token is still ours. */
        __atomic_store_n(&run->scheduled, 0, __ATOMIC_RELEASE);
        if (mailbox_release_owner(&run->box, taken, 0) > 0)
            __atomic_store_n(&run->scheduled, 1, __ATOMIC_RELEASE);
    }
    return NULL;
}

static void fill_items(item *items, int producers, long per) {
    for (int p = 0; p < producers; p++)
        for (long i = 0; i < per; i++) {
            items[p * per + i].producer = (uint32_t)p;
            items[p * per + i].sequence = (uint32_t)i;
        }
}

static void mailbox_edge_schedules_exactly_once_under_contention(void **state) {
    (void)state;
    box_run *run = calloc(1, sizeof *run);
    assert_non_null(run);
    run->producers = 4;
    run->per_producer = support_stress(50000);
    mailbox_init(&run->box);
    mailbox_open(&run->box, 7, 0, true);
    run->items = calloc((size_t)(run->producers * run->per_producer), sizeof(item));
    fill_items(run->items, run->producers, run->per_producer);
    pthread_t consumer, producers[4];
    producer_arg args[4];
    assert_int_equal(pthread_create(&consumer, NULL, box_consumer, run), 0);
    for (int p = 0; p < run->producers; p++) {
        args[p] = (producer_arg){(mpsc_run *)run, p};
        assert_int_equal(pthread_create(&producers[p], NULL, box_producer, &args[p]), 0);
    }
    __atomic_store_n(&run->go, 1, __ATOMIC_RELEASE);
    for (int p = 0; p < run->producers; p++)
        pthread_join(producers[p], NULL);
    void *result;
    pthread_join(consumer, &result);
    assert_null(result); /* per-producer order held */
    assert_int_equal(run->double_schedules, 0);
    assert_true(run->first_pushes >= 1);
    assert_int_equal(mailbox_depth(&run->box), 0);
    uint64_t expected = (uint64_t)(run->producers * run->per_producer);
    assert_int_equal(run->box.dequeued, expected);
    assert_true(run->box.high_water >= 1 && run->box.high_water <= expected);
    free(run->items);
    free(run);
}

/* Producers race a close: every push the close counted is drained, every other one was refused. */
typedef struct close_run {
    mailbox box;
    item *items;
    long per_producer;
    int go;
    long refused[4];
    long accepted[4];
} close_run;

typedef struct close_arg {
    close_run *run;
    int index;
} close_arg;

static void *close_producer(void *p) {
    close_arg *arg = p;
    close_run *run = arg->run;
    while (!__atomic_load_n(&run->go, __ATOMIC_ACQUIRE)) {
    }
    for (long i = 0; i < run->per_producer; i++) {
        item *it = &run->items[(long)arg->index * run->per_producer + i];
        mailbox_push_result r = mailbox_push(&run->box, 3, &it->node, true);
        if (r == MAILBOX_CLOSED)
            run->refused[arg->index]++;
        else
            run->accepted[arg->index]++;
    }
    return NULL;
}

static void close_drains_every_counted_push_and_refuses_the_rest(void **state) {
    (void)state;
    for (int round = 0; round < 20; round++) {
        close_run *run = calloc(1, sizeof *run);
        run->per_producer = support_stress(5000);
        run->items = calloc((size_t)(4 * run->per_producer), sizeof(item));
        fill_items(run->items, 4, run->per_producer);
        mailbox_init(&run->box);
        mailbox_open(&run->box, 3, 0, true);
        pthread_t producers[4];
        close_arg args[4];
        for (int p = 0; p < 4; p++) {
            args[p] = (close_arg){run, p};
            pthread_create(&producers[p], NULL, close_producer, &args[p]);
        }
        __atomic_store_n(&run->go, 1, __ATOMIC_RELEASE);
        /* Consume a little, then close in the middle of the storm. */
        uint64_t taken = 0;
        long popped = 0;
        while (taken < (uint64_t)(round * 100)) {
            if (mailbox_pop_owner(&run->box))
                taken++;
            else if (mailbox_depth(&run->box) == 0 && round % 2)
                break;
        }
        popped += (long)taken;
        uint64_t in_flight = mailbox_close_owner(&run->box) - taken;
        while (in_flight > 0) {
            if (mailbox_pop_owner(&run->box)) {
                in_flight--;
                popped++;
            }
        }
        for (int p = 0; p < 4; p++)
            pthread_join(producers[p], NULL);
        long accepted = 0, refused = 0;
        for (int p = 0; p < 4; p++) {
            accepted += run->accepted[p];
            refused += run->refused[p];
        }
        assert_int_equal(accepted + refused, 4 * run->per_producer);
        assert_int_equal(popped, accepted); /* nothing accepted was left behind */
        assert_null(mailbox_pop_owner(&run->box));
        free(run->items);
        free(run);
    }
}

static void wrong_tag_and_closed_mailbox_refuse_pushes(void **state) {
    (void)state;
    mailbox box;
    item a = {{0}, 0, 0};
    mailbox_init(&box);
    assert_int_equal(mailbox_push(&box, 0, &a.node, true), MAILBOX_CLOSED); /* starts closed */
    mailbox_open(&box, 5, 0, true);
    assert_int_equal(mailbox_push(&box, 4, &a.node, true), MAILBOX_CLOSED);
    assert_int_equal(mailbox_push(&box, 5, &a.node, true), MAILBOX_PUSHED_FIRST);
    assert_int_equal(mailbox_close_owner(&box), 1);
    assert_ptr_equal(mailbox_pop_owner(&box), &a.node);
    item b = {{0}, 0, 1};
    assert_int_equal(mailbox_push(&box, 5, &b.node, true), MAILBOX_CLOSED);
    /* Reopened for the next generation: the old tag stays refused. */
    mailbox_open(&box, 6, 0, true);
    assert_int_equal(mailbox_push(&box, 5, &b.node, true), MAILBOX_CLOSED);
    assert_int_equal(mailbox_push(&box, 6, &b.node, true), MAILBOX_PUSHED_FIRST);
}

static void bounded_reject_refuses_over_capacity_and_counts(void **state) {
    (void)state;
    mailbox box;
    item items[6];
    mailbox_init(&box);
    mailbox_open(&box, 1, 4, true);
    for (int i = 0; i < 4; i++)
        assert_int_not_equal(mailbox_push(&box, 1, &items[i].node, true), MAILBOX_FULL);
    assert_int_equal(mailbox_push(&box, 1, &items[4].node, true), MAILBOX_FULL);
    assert_int_equal(box.rejected, 1);
    /* Runtime notices pass the bound. */
    assert_int_equal(mailbox_push(&box, 1, &items[5].node, false), MAILBOX_PUSHED);
    assert_int_equal(mailbox_depth(&box), 5);
    assert_int_equal(box.high_water, 5);
    for (int i = 0; i < 5; i++)
        assert_non_null(mailbox_pop_owner(&box));
    assert_int_equal(mailbox_release_owner(&box, 5, 0), 0);
    assert_int_equal(box.dequeued, 5);
    assert_int_equal(mailbox_drop_bound(&box), 0);
}

static void drop_oldest_bound_accepts_and_reports_bound(void **state) {
    (void)state;
    mailbox box;
    item items[8];
    mailbox_init(&box);
    mailbox_open(&box, 1, 3, false);
    for (int i = 0; i < 8; i++)
        assert_int_not_equal(mailbox_push(&box, 1, &items[i].node, true), MAILBOX_FULL);
    assert_int_equal(mailbox_drop_bound(&box), 3);
    assert_int_equal(mailbox_depth(&box), 8);
    assert_ptr_equal(mailbox_peek_owner(&box), &items[0].node);
    assert_ptr_equal(mailbox_pop_owner(&box), &items[0].node);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(push_from_eight_threads_keeps_per_producer_order),
        cmocka_unit_test(mailbox_edge_schedules_exactly_once_under_contention),
        cmocka_unit_test(close_drains_every_counted_push_and_refuses_the_rest),
        cmocka_unit_test(wrong_tag_and_closed_mailbox_refuse_pushes),
        cmocka_unit_test(bounded_reject_refuses_over_capacity_and_counts),
        cmocka_unit_test(drop_oldest_bound_accepts_and_reports_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
