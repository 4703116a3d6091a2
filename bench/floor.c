/*
 * floor.c - the hardware floor, no spool: two plain threads pinned to CPU 0 and CPU 1 bounce one
 * 64-byte cache line ROUND_TRIPS times (A waits for even and writes odd, B waits for odd and writes
 * even): "cacheline_roundtrip", ns per round trip. Then one thread does XCHG_OPS uncontended atomic
 * exchanges: "atomic_xchg", ns per operation. Args: [ROUND_TRIPS] [XCHG_OPS]
 */
#define _GNU_SOURCE /* pthread_setaffinity_np */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define DEFAULT_ROUND_TRIPS 10000000L
#define DEFAULT_XCHG_OPS 10000000L

/* The ball has a cache line to itself. */
static struct {
    _Alignas(64) atomic_ulong value;
    char pad[64 - sizeof(atomic_ulong)];
} ball;

static unsigned long round_trips;
static pthread_barrier_t start;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Pins the calling thread; says so on stderr and carries on unpinned if it cannot. */
static void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    int rc = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    if (rc != 0)
        fprintf(stderr, "floor: cannot pin to CPU %d (error %d): running unpinned\n", cpu, rc);
}

static void wait_for(unsigned long v) {
    while (atomic_load_explicit(&ball.value, memory_order_acquire) != v) {
    }
}

static void *player_b(void *arg) {
    (void)arg;
    pin(1);
    pthread_barrier_wait(&start);
    for (unsigned long i = 0; i < round_trips; i++) {
        wait_for(2 * i + 1);
        atomic_store_explicit(&ball.value, 2 * i + 2, memory_order_release);
    }
    return NULL;
}

int main(int argc, char **argv) {
    long trips = argc > 1 ? atol(argv[1]) : DEFAULT_ROUND_TRIPS;
    long xchg_ops = argc > 2 ? atol(argv[2]) : DEFAULT_XCHG_OPS;
    if (trips <= 0 || xchg_ops <= 0) {
        fprintf(stderr, "usage: %s [ROUND_TRIPS] [XCHG_OPS]\n", argv[0]);
        return 2;
    }
    round_trips = (unsigned long)trips;

    /* Player A is the main thread. */
    pthread_t b;
    if (pthread_barrier_init(&start, NULL, 2) != 0 || pthread_create(&b, NULL, player_b, NULL)) {
        fprintf(stderr, "floor: cannot start the second thread\n");
        return 1;
    }
    pin(0);
    pthread_barrier_wait(&start);
    uint64_t t0 = now_ns();
    for (unsigned long i = 0; i < round_trips; i++) {
        atomic_store_explicit(&ball.value, 2 * i + 1, memory_order_release);
        wait_for(2 * i + 2);
    }
    uint64_t t1 = now_ns();
    pthread_join(b, NULL);
    printf("{\"name\":\"cacheline_roundtrip\",\"unit\":\"ns/roundtrip\",\"value\":%.2f,"
           "\"round_trips\":%ld}\n",
           (double)(t1 - t0) / (double)trips, trips);

    /* Uncontended: the line stays in this core's cache in exclusive state. */
    atomic_ulong word = 0;
    unsigned long seen = 0;
    t0 = now_ns();
    for (unsigned long i = 0; i < (unsigned long)xchg_ops; i++)
        seen += atomic_exchange_explicit(&word, i, memory_order_seq_cst);
    t1 = now_ns();
    if (seen == 1) /* use the result so the loop cannot be dropped */
        fprintf(stderr, "floor: unexpected\n");
    printf("{\"name\":\"atomic_xchg\",\"unit\":\"ns/op\",\"value\":%.2f,\"ops\":%ld}\n",
           (double)(t1 - t0) / (double)xchg_ops, xchg_ops);
    return 0;
}
