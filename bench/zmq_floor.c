/*
 * zmq_floor.c - the floor for spool's nodes, no spool: plain libzmq between two processes on tcp
 * loopback. The parent binds a ROUTER on tcp://127.0.0.1:* (an ephemeral port, read back through
 * ZMQ_LAST_ENDPOINT), then forks; the child connects a DEALER. The parent (and the I/O thread of
 * its context) is pinned to CPU 0, the child to CPU 1, when possible ("unpinned": neither is).
 *
 * Measured by the DEALER, which prints the results:
 *   zmq_floor_roundtrip  the DEALER sends 16 bytes, the ROUTER echoes them; ROUND_TRIPS times.
 *                        value = us from the first send to the last echo / ROUND_TRIPS (the
 *                        median and 99th percentile of single round trips ride along).
 *   zmq_floor_stream     the DEALER sends STREAM messages of 16 bytes, the ROUTER counts them and
 *                        answers once; value = M messages/s from the first send to the answer.
 *   zmq_floor_stream_1k  the same with STREAM_1K messages of 1 KiB.
 * Every message carries its phase and sequence number; both sides check each one and the exact
 * counts, and the program exits non-zero if anything is missing, extra, out of order or late.
 * Args, in any order: [ROUND_TRIPS] [STREAM] [STREAM_1K] [unpinned]
 */
#define _GNU_SOURCE /* sched_setaffinity */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define NAME "zmq_floor"
#define DEFAULT_ROUND_TRIPS 10000L
#define DEFAULT_STREAM 2000000L
#define DEFAULT_STREAM_1K 1000000L
#define WARMUP_ROUND_TRIPS 200L
#define SMALL 16
#define LARGE 1024
#define HWM 100000
#define TIMEOUT_MS 10000 /* any single send or receive: longer means something is lost */
#define ROUTER_CPU 0
#define DEALER_CPU 1

/* The phase a message belongs to: its first 8 bytes; its sequence number is the next 8. */
enum { PHASE_WARMUP = 1, PHASE_ROUNDTRIP, PHASE_STREAM, PHASE_STREAM_1K, PHASE_END };

static long counts[PHASE_END + 1];  /* messages per phase */
static long sizes[PHASE_END + 1];   /* bytes per message, per phase */
static const char *role = "router"; /* for messages on stderr */
static pid_t dealer_pid;            /* in the ROUTER's process: stopped if the ROUTER fails */

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void quit(void) {
    fflush(stdout);
    if (dealer_pid > 0) {
        kill(dealer_pid, SIGTERM);
        waitpid(dealer_pid, NULL, 0);
    }
    _exit(1);
}

static void fail(const char *what) {
    fprintf(stderr, "%s (%s): %s: %s\n", NAME, role, what, zmq_strerror(zmq_errno()));
    quit();
}

static void failf(const char *what, long a, long b) {
    fprintf(stderr, "%s (%s): %s (%ld, expected %ld)\n", NAME, role, what, a, b);
    quit();
}

/* Pins the whole calling process (threads started later inherit it); carries on if it cannot. */
static void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
        fprintf(stderr, "%s (%s): cannot pin to CPU %d (%s): running unpinned\n", NAME, role, cpu,
                strerror(errno));
}

static void set_int(void *socket, int option, int value, const char *what) {
    if (zmq_setsockopt(socket, option, &value, sizeof value) != 0)
        fail(what);
}

static void *make_socket(void *ctx, int type) {
    void *s = zmq_socket(ctx, type);
    if (!s)
        fail("zmq_socket");
    set_int(s, ZMQ_SNDHWM, HWM, "ZMQ_SNDHWM");
    set_int(s, ZMQ_RCVHWM, HWM, "ZMQ_RCVHWM");
    set_int(s, ZMQ_SNDTIMEO, TIMEOUT_MS, "ZMQ_SNDTIMEO");
    set_int(s, ZMQ_RCVTIMEO, TIMEOUT_MS, "ZMQ_RCVTIMEO");
    return s;
}

static void close_socket(void *socket, void *ctx) {
    set_int(socket, ZMQ_LINGER, 0, "ZMQ_LINGER");
    if (zmq_close(socket) != 0)
        fail("zmq_close");
    if (zmq_ctx_term(ctx) != 0)
        fail("zmq_ctx_term");
}

static void put_header(unsigned char *buf, uint64_t phase, uint64_t seq) {
    memcpy(buf, &phase, sizeof phase);
    memcpy(buf + 8, &seq, sizeof seq);
}

/* Checks a received message: its size, phase and sequence number. */
static void check_message(const unsigned char *buf, int size, long want_size, uint64_t want_phase,
                          uint64_t want_seq) {
    uint64_t phase, seq;
    if (size != want_size)
        failf("message of the wrong size", size, want_size);
    memcpy(&phase, buf, sizeof phase);
    memcpy(&seq, buf + 8, sizeof seq);
    if (phase != want_phase)
        failf("message of the wrong phase", (long)phase, (long)want_phase);
    if (seq != want_seq)
        failf("message out of order or missing", (long)seq, (long)want_seq);
}

/* The ROUTER: echoes the round-trip phases, counts the streams and answers once each. */
static void router(void *socket) {
    unsigned char peer[256], id[256], buf[LARGE];
    int peer_size = 0;
    for (uint64_t phase = PHASE_WARMUP; phase <= PHASE_END; phase++) {
        for (long i = 0; i < counts[phase]; i++) {
            int n = zmq_recv(socket, id, sizeof id, 0);
            if (n < 0)
                fail("receive (routing id)");
            if (n > (int)sizeof id)
                failf("routing id too long", n, (long)sizeof id);
            if (peer_size == 0) { /* the first message: the DEALER's routing id */
                memcpy(peer, id, (size_t)n);
                peer_size = n;
            } else if (n != peer_size || memcmp(id, peer, (size_t)n) != 0)
                failf("a message from a second peer", n, peer_size);
            int more = 0;
            size_t more_size = sizeof more;
            if (zmq_getsockopt(socket, ZMQ_RCVMORE, &more, &more_size) != 0 || !more)
                failf("a message without a body", more, 1);
            n = zmq_recv(socket, buf, sizeof buf, 0);
            if (n < 0)
                fail("receive (body)");
            check_message(buf, n, sizes[phase], phase, (uint64_t)i);
            int echo = phase != PHASE_STREAM && phase != PHASE_STREAM_1K;
            if (echo || i == counts[phase] - 1) {
                if (zmq_send(socket, peer, (size_t)peer_size, ZMQ_SNDMORE) != peer_size)
                    fail("send (routing id)");
                if (!echo) /* the answer to a stream: how many arrived */
                    put_header(buf, phase, (uint64_t)(i + 1));
                if (zmq_send(socket, buf, SMALL, 0) != SMALL)
                    fail("send (echo)");
            }
        }
    }
}

static int compare_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The DEALER: one round trip of the phase's message number seq. */
static void round_trip(void *socket, uint64_t phase, uint64_t seq) {
    unsigned char buf[SMALL];
    put_header(buf, phase, seq);
    if (zmq_send(socket, buf, SMALL, 0) != SMALL)
        fail("send");
    int n = zmq_recv(socket, buf, sizeof buf, 0);
    if (n < 0)
        fail("receive (echo)");
    check_message(buf, n, SMALL, phase, seq);
}

/* The DEALER: streams the phase's messages; returns M messages/s, first send to the answer. */
static double stream(void *socket, uint64_t phase) {
    unsigned char buf[LARGE];
    long count = counts[phase];
    size_t size = (size_t)sizes[phase];
    memset(buf, 0xa5, sizeof buf);
    uint64_t t0 = now_ns();
    for (long i = 0; i < count; i++) {
        put_header(buf, phase, (uint64_t)i);
        if (zmq_send(socket, buf, size, 0) != (int)size)
            fail("send (stream)");
    }
    int n = zmq_recv(socket, buf, sizeof buf, 0);
    if (n < 0)
        fail("receive (the stream's answer)");
    uint64_t t1 = now_ns();
    check_message(buf, n, SMALL, phase, (uint64_t)count);
    return (double)count / ((double)(t1 - t0) / 1e9) / 1e6;
}

static int dealer(const char *endpoint, int pinned) {
    role = "dealer";
    if (pinned)
        pin(DEALER_CPU);
    void *ctx = zmq_ctx_new();
    if (!ctx)
        fail("zmq_ctx_new");
    void *socket = make_socket(ctx, ZMQ_DEALER);
    if (zmq_connect(socket, endpoint) != 0)
        fail("zmq_connect");

    for (long i = 0; i < counts[PHASE_WARMUP]; i++)
        round_trip(socket, PHASE_WARMUP, (uint64_t)i);

    long trips = counts[PHASE_ROUNDTRIP];
    uint64_t *each = malloc((size_t)trips * sizeof *each);
    if (!each) {
        fprintf(stderr, "%s (%s): out of memory for %ld round trips\n", NAME, role, trips);
        quit();
    }
    uint64_t t0 = now_ns(), t = t0;
    for (long i = 0; i < trips; i++) {
        round_trip(socket, PHASE_ROUNDTRIP, (uint64_t)i);
        uint64_t t1 = now_ns();
        each[i] = t1 - t;
        t = t1;
    }
    double mean_us = (double)(t - t0) / (double)trips / 1e3;
    qsort(each, (size_t)trips, sizeof *each, compare_u64);
    double median_us = (double)each[trips / 2] / 1e3;
    double p99_us = (double)each[(long)((double)trips * 0.99)] / 1e3;
    free(each);

    double rate = stream(socket, PHASE_STREAM);
    double rate_1k = stream(socket, PHASE_STREAM_1K);

    round_trip(socket, PHASE_END, 0); /* the ROUTER has seen everything */
    close_socket(socket, ctx);

    const char *pin_word = pinned ? "true" : "false";
    printf("{\"name\":\"zmq_floor_roundtrip\",\"unit\":\"us/roundtrip\",\"value\":%.2f,"
           "\"median_us\":%.2f,\"p99_us\":%.2f,\"round_trips\":%ld,\"pinned\":%s}\n",
           mean_us, median_us, p99_us, trips, pin_word);
    printf("{\"name\":\"zmq_floor_stream\",\"unit\":\"M msg/s\",\"value\":%.3f,\"messages\":%ld,"
           "\"bytes\":%d,\"pinned\":%s}\n",
           rate, counts[PHASE_STREAM], SMALL, pin_word);
    printf("{\"name\":\"zmq_floor_stream_1k\",\"unit\":\"M msg/s\",\"value\":%.3f,\"messages\":%ld,"
           "\"bytes\":%d,\"pinned\":%s}\n",
           rate_1k, counts[PHASE_STREAM_1K], LARGE, pin_word);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv) {
    long numbers[3] = {DEFAULT_ROUND_TRIPS, DEFAULT_STREAM, DEFAULT_STREAM_1K};
    int given = 0, pinned = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "unpinned") == 0) {
            pinned = 0;
            continue;
        }
        long v = atol(argv[i]);
        if (v <= 0 || given == 3) {
            fprintf(stderr, "usage: %s [ROUND_TRIPS] [STREAM] [STREAM_1K] [unpinned]\n", argv[0]);
            return 2;
        }
        numbers[given++] = v;
    }
    counts[PHASE_WARMUP] = WARMUP_ROUND_TRIPS;
    counts[PHASE_ROUNDTRIP] = numbers[0];
    counts[PHASE_STREAM] = numbers[1];
    counts[PHASE_STREAM_1K] = numbers[2];
    counts[PHASE_END] = 1;
    sizes[PHASE_WARMUP] = sizes[PHASE_ROUNDTRIP] = sizes[PHASE_STREAM] = sizes[PHASE_END] = SMALL;
    sizes[PHASE_STREAM_1K] = LARGE;

    /* Pinned before the context exists, so its I/O thread shares the CPU. */
    if (pinned)
        pin(ROUTER_CPU);
    void *ctx = zmq_ctx_new();
    if (!ctx)
        fail("zmq_ctx_new");
    void *socket = make_socket(ctx, ZMQ_ROUTER);
    if (zmq_bind(socket, "tcp://127.0.0.1:*") != 0)
        fail("zmq_bind");
    char endpoint[256];
    size_t endpoint_size = sizeof endpoint;
    if (zmq_getsockopt(socket, ZMQ_LAST_ENDPOINT, endpoint, &endpoint_size) != 0)
        fail("ZMQ_LAST_ENDPOINT");

    fflush(stdout);
    pid_t child = fork();
    if (child < 0) {
        perror(NAME ": fork");
        return 1;
    }
    if (child == 0) /* the parent's context is left alone: a fork copies no threads */
        _exit(dealer(endpoint, pinned));

    dealer_pid = child;
    router(socket);
    /* LINGER 0 drops what is not yet written: close only once the DEALER has its last echo. */
    int status = 0;
    if (waitpid(child, &status, 0) != child) {
        perror(NAME ": waitpid");
        return 1;
    }
    dealer_pid = 0;
    close_socket(socket, ctx);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "%s: the dealer failed (status %d)\n", NAME, status);
        return 1;
    }
    return 0;
}
