/*
 * nodes_garbage.c - a raw ZeroMQ peer for tests/cli/nodes_garbage.sh: connects a DEALER to a
 * node's ROUTER (plain, so the node must run --insecure) and sends it, for SECONDS, packets no
 * node would write: random bytes, truncated headers, a wrong magic, version or kind, a HELLO cut
 * short, a DATA that claims more messages than it holds, a FRAGMENT of an absurd total size,
 * three-frame messages, an empty frame, and frames over the largest packet. Exits 0 when it sent
 * them all (what the node did with them is the shell's and node a's to check).
 *
 *   nodes_garbage tcp://127.0.0.1:PORT SECONDS
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* header: "SPN1", version, kind, flags 0 */
static size_t header(unsigned char *p, int version, int kind) {
    memcpy(p, "SPN1", 4);
    p[4] = (unsigned char)version;
    p[5] = (unsigned char)kind;
    p[6] = p[7] = 0;
    return 8;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: nodes_garbage ENDPOINT SECONDS\n");
        return 2;
    }
    double seconds = atof(argv[2]);
    void *context = zmq_ctx_new();
    void *dealer = zmq_socket(context, ZMQ_DEALER);
    int linger = 0, hwm = 1000;
    zmq_setsockopt(dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(dealer, ZMQ_SNDHWM, &hwm, sizeof hwm);
    if (zmq_connect(dealer, argv[1]) != 0) {
        fprintf(stderr, "nodes_garbage: cannot connect to %s: %s\n", argv[1],
                zmq_strerror(zmq_errno()));
        return 1;
    }
    size_t big_size = 3 * 1024 * 1024;
    unsigned char *big = malloc(big_size);
    unsigned char p[512];
    if (!big)
        return 1;
    srand(7);
    for (size_t i = 0; i < big_size; i++)
        big[i] = (unsigned char)rand();
    memcpy(big, "SPN1\x01\x06\x00\x00", 8); /* a DATA header on 3 MiB: over the packet limit */

    unsigned long sent = 0, rounds = 0;
    double end = now_seconds() + seconds;
    while (now_seconds() < end) {
        size_t n;
        /* random bytes of random lengths */
        for (int i = 0; i < 20; i++) {
            n = (size_t)(rand() % (int)sizeof p);
            for (size_t j = 0; j < n; j++)
                p[j] = (unsigned char)rand();
            if (rand() % 2)
                memcpy(p, "SPN1", n < 4 ? n : 4); /* now and then a right magic */
            sent += zmq_send(dealer, p, n, ZMQ_DONTWAIT) >= 0;
        }
        /* truncated headers */
        for (n = 0; n < 8; n++)
            sent += zmq_send(dealer, "SPN1\x01\x03\x00\x00", n, ZMQ_DONTWAIT) >= 0;
        /* wrong magic, version, kind, flags */
        n = header(p, 1, 3);
        memcpy(p, "XPN1", 4);
        memset(p + n, 0, 24);
        sent += zmq_send(dealer, p, n + 24, ZMQ_DONTWAIT) >= 0;
        n = header(p, 2, 3);
        sent += zmq_send(dealer, p, n + 24, ZMQ_DONTWAIT) >= 0;
        n = header(p, 1, 99);
        sent += zmq_send(dealer, p, n + 24, ZMQ_DONTWAIT) >= 0;
        n = header(p, 1, 3);
        p[6] = 0xff;
        sent += zmq_send(dealer, p, n + 24, ZMQ_DONTWAIT) >= 0;
        /* a HELLO cut short: cluster, incarnation, session, then nothing */
        n = header(p, 1, 1);
        memset(p + n, 0x11, 24);
        sent += zmq_send(dealer, p, n + 24, ZMQ_DONTWAIT) >= 0;
        /* a HELLO with a name of 200 bytes and a bad character */
        n = header(p, 1, 1);
        memset(p + n, 0, 32);
        n += 32;
        p[n++] = 200;
        memset(p + n, '/', 200);
        n += 200;
        sent += zmq_send(dealer, p, n, ZMQ_DONTWAIT) >= 0;
        /* a DATA claiming 65535 messages, holding one header's worth */
        n = header(p, 1, 6);
        put_u64(p + n, 1);
        put_u64(p + n + 8, 1);
        put_u32(p + n + 16, 65535);
        memset(p + n + 20, 0, 24);
        sent += zmq_send(dealer, p, n + 44, ZMQ_DONTWAIT) >= 0;
        /* a FRAGMENT of total size 2^62 */
        n = header(p, 1, 7);
        memset(p + n, 0, 68);
        put_u64(p + n, 1);
        put_u64(p + n + 8, 1);
        put_u64(p + n + 16, (uint64_t)1 << 62);
        put_u32(p + n + 64, 16);
        sent += zmq_send(dealer, p, n + 68 + 16, ZMQ_DONTWAIT) >= 0;
        /* three frames in one message, and an empty frame */
        zmq_send(dealer, "SPN1", 4, ZMQ_SNDMORE | ZMQ_DONTWAIT);
        zmq_send(dealer, "\x01\x04", 2, ZMQ_SNDMORE | ZMQ_DONTWAIT);
        sent += zmq_send(dealer, "junk", 4, ZMQ_DONTWAIT) >= 0;
        sent += zmq_send(dealer, "", 0, ZMQ_DONTWAIT) >= 0;
        /* now and then a frame over the largest packet */
        if (rounds % 50 == 0)
            sent += zmq_send(dealer, big, big_size, ZMQ_DONTWAIT) >= 0;
        rounds++;
        struct timespec pause = {0, 2 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    printf("garbage sent=%lu rounds=%lu\n", sent, rounds);
    free(big);
    zmq_close(dealer);
    zmq_ctx_term(context);
    return 0;
}
