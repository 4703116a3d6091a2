/*
 * test_zap.c - cmocka tests of nodes/zap.c with real sockets: a CURVE ROUTER "a" on tcp loopback
 * whose ZAP handler runs in its own thread (zmq_poll + zap_serve_one), clients with the keys of
 * "b" (allowed) and "mallory" (not), a plain client, malformed ZAP requests sent straight to the
 * handler, and a CURVE server with no handler at all. Every wait is bounded: "never arrives" means
 * "not within QUIET_MS".
 */
#include "nodes/keys.h"
#include "nodes/zap.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "scratch.h"
#include <cmocka.h>

#define ARRIVE_MS 3000 /* how long a message that should arrive may take */
#define QUIET_MS 500   /* how long nothing must arrive for "it never gets through" */

/* In zmq.h 4.3.4 only under ZMQ_BUILD_DRAFT_API (see zap.h). */
#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif

typedef struct fixture {
    char dir[64]; /* scratch: allowed/ holds a and b, outside/ holds mallory */
    keys_pair a, b, mallory;
    uint8_t a_public[KEYS_BINARY_SIZE];
    keys_allowlist *allow; /* a and b */
    void *ctx;
    zap_handler *zap; /* owned by the ZAP thread while it runs */
    pthread_t zap_thread;
    int stop;         /* main thread writes, ZAP thread reads (__atomic) */
    int serve_errors; /* ZAP thread writes, main reads after join */
    void *server;     /* ROUTER "a", CURVE server */
    char endpoint[128];
    void *clients[4]; /* closed by the teardown */
    size_t client_count;
} fixture;

/* ---------------------------------------------------------------------------------------------- */
/* Helpers                                                                                        */
/* ---------------------------------------------------------------------------------------------- */

static void assert_contains(const char *haystack, const char *needle) {
    if (strstr(haystack, needle) == NULL)
        fail_msg("\"%s\" does not contain \"%s\"", haystack, needle);
}

static int64_t now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void set_int(void *socket, int option, int value) {
    assert_int_equal(zmq_setsockopt(socket, option, &value, sizeof value), 0);
}

/* The ZAP thread: polls the handler's socket and answers every request, until told to stop. */
static void *zap_thread_main(void *argument) {
    fixture *f = argument;
    while (!__atomic_load_n(&f->stop, __ATOMIC_ACQUIRE)) {
        zmq_pollitem_t item = {zap_socket(f->zap), 0, ZMQ_POLLIN, 0};
        int n = zmq_poll(&item, 1, 10);
        if (n < 0 && errno != EINTR) {
            f->serve_errors++;
            break;
        }
        if (n <= 0)
            continue;
        int rc;
        while ((rc = zap_serve_one(f->zap)) == 0) {
        }
        if (rc != SPOOL_ETIMEDOUT)
            f->serve_errors++;
    }
    return NULL;
}

/* Stops the ZAP thread and checks it saw no error; the handler is then the main thread's (to read
 * zap_last_verdict, an owner-thread call). Twice is fine. */
static void stop_zap_thread(fixture *f) {
    if (__atomic_exchange_n(&f->stop, 1, __ATOMIC_ACQ_REL))
        return;
    pthread_join(f->zap_thread, NULL);
    assert_int_equal(f->serve_errors, 0);
}

/* A DEALER of f's context, not connected yet; `keys` NULL means a plain (no CURVE) socket. It
 * waits 10 s before it reconnects, so a refused client knocks once during a test. */
static void *new_client(fixture *f, const keys_pair *keys, const char *routing_id) {
    assert_true(f->client_count < sizeof f->clients / sizeof f->clients[0]);
    void *client = zmq_socket(f->ctx, ZMQ_DEALER);
    assert_non_null(client);
    f->clients[f->client_count++] = client;
    set_int(client, ZMQ_LINGER, 0);
    set_int(client, ZMQ_RECONNECT_IVL, 10000);
    set_int(client, ZMQ_RCVTIMEO, ARRIVE_MS);
    if (routing_id != NULL)
        assert_int_equal(zmq_setsockopt(client, ZMQ_ROUTING_ID, routing_id, strlen(routing_id)), 0);
    if (keys != NULL) {
        char err[256] = "";
        assert_int_equal(curve_client(client, keys, f->a_public, err, sizeof err), 0);
    }
    return client;
}

static void connect_and_send(fixture *f, void *client, const char *text) {
    assert_int_equal(zmq_connect(client, f->endpoint), 0);
    assert_int_equal(zmq_send(client, text, strlen(text), 0), (int)strlen(text));
}

/* One message at the ROUTER within timeout_ms: 0 and its routing id, body and authenticated peer
 * name (zap_peer_name's code in *name_rc), or -1 if none came. */
static int receive_at(void *server, int timeout_ms, char *routing_id, char *body, char *peer,
                      int *name_rc) {
    zmq_pollitem_t item = {server, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, timeout_ms) <= 0)
        return -1;
    zmq_msg_t id, data;
    zmq_msg_init(&id);
    zmq_msg_init(&data);
    assert_true(zmq_msg_recv(&id, server, 0) >= 0);
    assert_true(zmq_msg_more(&id));
    assert_true(zmq_msg_recv(&data, server, 0) >= 0);
    assert_false(zmq_msg_more(&data));
    snprintf(routing_id, 64, "%.*s", (int)zmq_msg_size(&id), (const char *)zmq_msg_data(&id));
    snprintf(body, 64, "%.*s", (int)zmq_msg_size(&data), (const char *)zmq_msg_data(&data));
    *name_rc = zap_peer_name(&data, peer, 64);
    zmq_msg_close(&id);
    zmq_msg_close(&data);
    return 0;
}

/* Waits (at most ARRIVE_MS) until the handler has answered `answered` requests in all. */
static zap_counts wait_for_answers(fixture *f, uint64_t answered) {
    zap_counts counts;
    int64_t deadline = now_ms() + ARRIVE_MS;
    for (;;) {
        zap_stats(f->zap, &counts);
        uint64_t total = counts.accepted;
        for (int i = 0; i < ZAP_REFUSAL_COUNT; i++)
            total += counts.refused[i];
        if (total >= answered || now_ms() > deadline)
            return counts;
        usleep(2000);
    }
}

static void assert_counts(const zap_counts *counts, uint64_t accepted, uint64_t unknown_key,
                          uint64_t wrong_mechanism, uint64_t wrong_domain, uint64_t malformed) {
    assert_int_equal(counts->accepted, accepted);
    assert_int_equal(counts->refused[ZAP_REFUSED_UNKNOWN_KEY], unknown_key);
    assert_int_equal(counts->refused[ZAP_REFUSED_WRONG_MECHANISM], wrong_mechanism);
    assert_int_equal(counts->refused[ZAP_REFUSED_WRONG_DOMAIN], wrong_domain);
    assert_int_equal(counts->refused[ZAP_REFUSED_MALFORMED], malformed);
}

/* Nothing reaches the server for QUIET_MS. */
static void assert_nothing_arrives(fixture *f) {
    char routing_id[64], body[64], peer[64];
    int name_rc = 0;
    int rc = receive_at(f->server, QUIET_MS, routing_id, body, peer, &name_rc);
    if (rc == 0)
        fail_msg("a message got through: \"%s\" from routing id \"%s\"", body, routing_id);
}

/* ---------------------------------------------------------------------------------------------- */
/* Fixture: keys, allowlist, context, handler and its thread, the CURVE ROUTER "a"                */
/* ---------------------------------------------------------------------------------------------- */

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/spool-test-zap-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    *state = f;
    char allowed[PATH_MAX], outside[PATH_MAX], err[256] = "";
    snprintf(allowed, sizeof allowed, "%s/allowed", f->dir);
    snprintf(outside, sizeof outside, "%s/outside", f->dir);
    assert_int_equal(keys_generate(allowed, "a", 0, NULL, err, sizeof err), 0);
    assert_int_equal(keys_generate(allowed, "b", 0, NULL, err, sizeof err), 0);
    assert_int_equal(keys_generate(outside, "mallory", 0, NULL, err, sizeof err), 0);
    assert_int_equal(keys_load_secret(allowed, "a", &f->a, err, sizeof err), 0);
    assert_int_equal(keys_load_secret(allowed, "b", &f->b, err, sizeof err), 0);
    assert_int_equal(keys_load_secret(outside, "mallory", &f->mallory, err, sizeof err), 0);
    assert_non_null(zmq_z85_decode(f->a_public, f->a.public_key));
    assert_int_equal(keys_allowlist_load(allowed, NULL, &f->allow, err, sizeof err), 0);
    assert_int_equal(f->allow->count, 2);

    f->ctx = zmq_ctx_new();
    assert_non_null(f->ctx);
    /* The handler first: a CURVE server must never bind without it. */
    assert_int_equal(zap_open(f->ctx, f->allow, &f->zap, err, sizeof err), 0);
    assert_int_equal(pthread_create(&f->zap_thread, NULL, zap_thread_main, f), 0);

    f->server = zmq_socket(f->ctx, ZMQ_ROUTER);
    assert_non_null(f->server);
    set_int(f->server, ZMQ_LINGER, 0);
    set_int(f->server, ZMQ_RCVTIMEO, ARRIVE_MS);
    assert_int_equal(curve_server(f->server, &f->a, err, sizeof err), 0);
    assert_int_equal(zmq_bind(f->server, "tcp://127.0.0.1:*"), 0);
    size_t size = sizeof f->endpoint;
    assert_int_equal(zmq_getsockopt(f->server, ZMQ_LAST_ENDPOINT, f->endpoint, &size), 0);
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    for (size_t i = 0; i < f->client_count; i++)
        zmq_close(f->clients[i]);
    if (f->server != NULL)
        zmq_close(f->server);
    if (f->zap != NULL) {
        stop_zap_thread(f);
        zap_close(&f->zap);
        assert_null(f->zap);
    }
    if (f->ctx != NULL)
        zmq_ctx_term(f->ctx);
    keys_allowlist_destroy(&f->allow);
    keys_pair_wipe(&f->a);
    keys_pair_wipe(&f->b);
    keys_pair_wipe(&f->mallory);
    remove_tree(f->dir);
    free(f);
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Through the handshake                                                                          */
/* ---------------------------------------------------------------------------------------------- */

static void test_an_allowed_key_gets_through_and_is_named_by_it(void **state) {
    fixture *f = *state;
    void *b = new_client(f, &f->b, "b");
    connect_and_send(f, b, "hello from b");

    char routing_id[64], body[64], peer[64];
    int name_rc = -1;
    assert_int_equal(receive_at(f->server, ARRIVE_MS, routing_id, body, peer, &name_rc), 0);
    assert_string_equal(body, "hello from b");
    assert_int_equal(name_rc, 0);
    assert_string_equal(peer, "b");

    /* And back: the connection is whole. */
    assert_int_equal(zmq_send(f->server, routing_id, strlen(routing_id), ZMQ_SNDMORE),
                     (int)strlen(routing_id));
    assert_int_equal(zmq_send(f->server, "hello from a", 12, 0), 12);
    char reply[32] = "";
    assert_int_equal(zmq_recv(b, reply, sizeof reply - 1, 0), 12);
    assert_string_equal(reply, "hello from a");

    zap_counts counts;
    zap_stats(f->zap, &counts);
    assert_counts(&counts, 1, 0, 0, 0, 0);
}

static void test_zap_peer_name_refuses_a_buffer_too_small(void **state) {
    fixture *f = *state;
    void *b = new_client(f, &f->b, NULL);
    connect_and_send(f, b, "x");
    zmq_pollitem_t item = {f->server, 0, ZMQ_POLLIN, 0};
    assert_int_equal(zmq_poll(&item, 1, ARRIVE_MS), 1);
    zmq_msg_t id, data;
    zmq_msg_init(&id);
    zmq_msg_init(&data);
    assert_true(zmq_msg_recv(&id, f->server, 0) >= 0);
    assert_true(zmq_msg_recv(&data, f->server, 0) >= 0);
    /* "b" needs two bytes with its NUL. */
    char one[1] = {'?'};
    assert_int_equal(zap_peer_name(&data, one, sizeof one), SPOOL_EINVAL);
    assert_int_equal(one[0], '\0');
    char two[2] = "?";
    assert_int_equal(zap_peer_name(&data, two, sizeof two), 0);
    assert_string_equal(two, "b");
    zmq_msg_close(&id);
    zmq_msg_close(&data);
}

static void test_an_unknown_key_never_gets_a_message_through(void **state) {
    fixture *f = *state;
    void *mallory = new_client(f, &f->mallory, "mallory");
    /* Watch the client: it is told "400", it does not just time out. */
    assert_int_equal(
        zmq_socket_monitor(mallory, "inproc://monitor-mallory", ZMQ_EVENT_HANDSHAKE_FAILED_AUTH),
        0);
    void *monitor = zmq_socket(f->ctx, ZMQ_PAIR);
    assert_non_null(monitor);
    f->clients[f->client_count++] = monitor;
    set_int(monitor, ZMQ_LINGER, 0);
    set_int(monitor, ZMQ_RCVTIMEO, ARRIVE_MS);
    assert_int_equal(zmq_connect(monitor, "inproc://monitor-mallory"), 0);
    connect_and_send(f, mallory, "let me in");

    zap_counts counts = wait_for_answers(f, 1);
    assert_counts(&counts, 0, 1, 0, 0, 0);
    assert_nothing_arrives(f);
    zap_stats(f->zap, &counts);
    assert_counts(&counts, 0, 1, 0, 0, 0);

    uint8_t event[6];
    assert_int_equal(zmq_recv(monitor, event, sizeof event, 0), 6);
    uint16_t number;
    uint32_t value;
    memcpy(&number, event, 2);
    memcpy(&value, event + 2, 4);
    assert_int_equal(number, ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
    assert_int_equal(value, 400);
    char endpoint[256];
    assert_true(zmq_recv(monitor, endpoint, sizeof endpoint, 0) >= 0);
    zmq_socket_monitor(mallory, NULL, 0);
}

static void test_a_name_comes_only_from_the_key(void **state) {
    fixture *f = *state;
    /* Mallory's key calling itself "b": refused like any unknown key. */
    void *impostor = new_client(f, &f->mallory, "b");
    connect_and_send(f, impostor, "i am b");
    zap_counts counts = wait_for_answers(f, 1);
    assert_counts(&counts, 0, 1, 0, 0, 0);
    assert_nothing_arrives(f);

    /* b's key calling itself "mallory": let in, and named "b" whatever it says. */
    void *b = new_client(f, &f->b, "mallory");
    connect_and_send(f, b, "i am mallory");
    char routing_id[64], body[64], peer[64];
    int name_rc = -1;
    assert_int_equal(receive_at(f->server, ARRIVE_MS, routing_id, body, peer, &name_rc), 0);
    assert_string_equal(body, "i am mallory");
    assert_string_equal(routing_id, "mallory"); /* what it claims */
    assert_int_equal(name_rc, 0);
    assert_string_equal(peer, "b"); /* what its key says */
    zap_stats(f->zap, &counts);
    assert_counts(&counts, 1, 1, 0, 0, 0);
    stop_zap_thread(f);
    zap_verdict verdict;
    zap_last_verdict(f->zap, &verdict);
    assert_int_equal(verdict.accepted, 1);
    assert_string_equal(verdict.status, "200");
    assert_string_equal(verdict.node, "b");
    assert_string_equal(verdict.address, "127.0.0.1");
}

static void test_a_plain_client_gets_nothing_through(void **state) {
    fixture *f = *state;
    void *plain = new_client(f, NULL, "b");
    connect_and_send(f, plain, "no keys");
    assert_nothing_arrives(f);
    /* The mechanisms differ, so the handshake ends before any ZAP request. */
    zap_counts counts;
    zap_stats(f->zap, &counts);
    assert_counts(&counts, 0, 0, 0, 0, 0);
}

/* ---------------------------------------------------------------------------------------------- */
/* Requests straight to the handler                                                               */
/* ---------------------------------------------------------------------------------------------- */

typedef struct frame {
    const void *data;
    size_t size;
} frame;

#define TEXT(s)                                                                                    \
    { (s), sizeof(s) - 1 }

typedef struct reply {
    size_t frames;
    char version[8];
    size_t request_id_size;
    char request_id[32];
    char status[8];
    char text[128];
    char user_id[64];
    size_t metadata_size;
} reply;

/* Sends `count` frames as one request from `requester` (REQ) and reads the whole reply. */
static reply ask(void *requester, const frame *frames, size_t count) {
    for (size_t i = 0; i < count; i++) {
        int more = i + 1 < count ? ZMQ_SNDMORE : 0;
        assert_int_equal(zmq_send(requester, frames[i].data, frames[i].size, more),
                         (int)frames[i].size);
    }
    reply r;
    memset(&r, 0, sizeof r);
    int more = 1;
    while (more) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, requester, 0) < 0)
            fail_msg("no reply from the ZAP handler: %s", zmq_strerror(errno));
        const char *data = zmq_msg_data(&part);
        int size = (int)zmq_msg_size(&part);
        switch (r.frames) {
        case 0:
            snprintf(r.version, sizeof r.version, "%.*s", size, data);
            break;
        case 1:
            r.request_id_size = (size_t)size;
            snprintf(r.request_id, sizeof r.request_id, "%.*s", size, data);
            break;
        case 2:
            snprintf(r.status, sizeof r.status, "%.*s", size, data);
            break;
        case 3:
            snprintf(r.text, sizeof r.text, "%.*s", size, data);
            break;
        case 4:
            snprintf(r.user_id, sizeof r.user_id, "%.*s", size, data);
            break;
        case 5:
            r.metadata_size = (size_t)size;
            break;
        default:
            break;
        }
        r.frames++;
        more = zmq_msg_more(&part);
        zmq_msg_close(&part);
    }
    return r;
}

static void assert_reply(const reply *r, const char *request_id, const char *status,
                         const char *text_part, const char *user_id) {
    assert_int_equal(r->frames, 6);
    assert_string_equal(r->version, "1.0");
    assert_string_equal(r->request_id, request_id);
    assert_string_equal(r->status, status);
    assert_contains(r->text, text_part);
    assert_string_equal(r->user_id, user_id);
    assert_int_equal(r->metadata_size, 0);
}

static void test_malformed_requests_are_answered_counted_and_survived(void **state) {
    fixture *f = *state;
    void *requester = zmq_socket(f->ctx, ZMQ_REQ);
    assert_non_null(requester);
    f->clients[f->client_count++] = requester;
    set_int(requester, ZMQ_LINGER, 0);
    set_int(requester, ZMQ_RCVTIMEO, ARRIVE_MS);
    assert_int_equal(zmq_connect(requester, ZAP_ENDPOINT), 0);

    uint8_t b_key[KEYS_BINARY_SIZE];
    assert_non_null(zmq_z85_decode(b_key, f->b.public_key));
    frame good[] = {TEXT("1.0"), TEXT("7"),     TEXT("spool"),        TEXT("10.1.2.3"),
                    TEXT("b"),   TEXT("CURVE"), {b_key, sizeof b_key}};
    reply r;

    /* Too few frames, with and without a request id to echo. */
    r = ask(requester, good, 3);
    assert_reply(&r, "7", "500", "3 frames", "");
    r = ask(requester, good, 1);
    assert_reply(&r, "", "500", "1 frames", "");
    assert_int_equal(r.request_id_size, 0);

    /* Another version. */
    frame version[7];
    memcpy(version, good, sizeof good);
    version[0] = (frame)TEXT("2.0");
    r = ask(requester, version, 7);
    assert_reply(&r, "7", "500", "version", "");

    /* A key of 31 bytes, and one of 33. */
    frame short_key[7];
    memcpy(short_key, good, sizeof good);
    short_key[6].size = 31;
    r = ask(requester, short_key, 7);
    assert_reply(&r, "7", "500", "31 bytes", "");
    uint8_t long_key[33] = {0};
    short_key[6] = (frame){long_key, sizeof long_key};
    r = ask(requester, short_key, 7);
    assert_reply(&r, "7", "500", "33 bytes", "");

    /* A CURVE request with too many frames: 8, and 20 (more than the handler keeps). */
    frame many[20];
    memcpy(many, good, sizeof good);
    for (size_t i = 7; i < 20; i++)
        many[i] = (frame)TEXT("extra");
    r = ask(requester, many, 8);
    assert_reply(&r, "7", "500", "8 frames", "");
    r = ask(requester, many, 20);
    assert_reply(&r, "7", "500", "20 frames", "");

    /* Well formed, but refused. */
    frame mechanism[7];
    memcpy(mechanism, good, sizeof good);
    mechanism[5] = (frame)TEXT("PLAIN");
    r = ask(requester, mechanism, 7);
    assert_reply(&r, "7", "400", "CURVE", "");
    frame domain[7];
    memcpy(domain, good, sizeof good);
    domain[2] = (frame)TEXT("global");
    r = ask(requester, domain, 7);
    assert_reply(&r, "7", "400", "domain", "");

    /* A large request id comes back whole. */
    size_t big_size = 100000;
    char *big = malloc(big_size);
    assert_non_null(big);
    memset(big, 'r', big_size);
    frame big_id[7];
    memcpy(big_id, good, sizeof good);
    big_id[1] = (frame){big, big_size};
    r = ask(requester, big_id, 7);
    assert_int_equal(r.request_id_size, big_size);
    assert_string_equal(r.status, "200");
    free(big);

    /* And a good one after all that. */
    r = ask(requester, good, 7);
    assert_reply(&r, "7", "200", "OK", "b");

    zap_counts counts;
    zap_stats(f->zap, &counts);
    assert_counts(&counts, 2, 0, 1, 1, 7);

    /* The handshake still works for a real client. */
    void *b = new_client(f, &f->b, "b");
    connect_and_send(f, b, "still here");
    char routing_id[64], body[64], peer[64];
    int name_rc = -1;
    assert_int_equal(receive_at(f->server, ARRIVE_MS, routing_id, body, peer, &name_rc), 0);
    assert_string_equal(peer, "b");
}

static void test_an_address_with_control_bytes_is_made_printable(void **state) {
    fixture *f = *state;
    void *requester = zmq_socket(f->ctx, ZMQ_REQ);
    assert_non_null(requester);
    f->clients[f->client_count++] = requester;
    set_int(requester, ZMQ_LINGER, 0);
    set_int(requester, ZMQ_RCVTIMEO, ARRIVE_MS);
    assert_int_equal(zmq_connect(requester, ZAP_ENDPOINT), 0);
    uint8_t key[KEYS_BINARY_SIZE] = {1};
    frame request[] = {TEXT("1.0"), TEXT("1"),     TEXT("spool"),    {"1.2\n\033[2J\0x", 10},
                       TEXT("b"),   TEXT("CURVE"), {key, sizeof key}};
    reply r = ask(requester, request, 7);
    assert_reply(&r, "1", "400", "allowlist", "");
    stop_zap_thread(f);
    zap_verdict verdict;
    zap_last_verdict(f->zap, &verdict);
    assert_int_equal(verdict.accepted, 0);
    assert_int_equal(verdict.reason, ZAP_REFUSED_UNKNOWN_KEY);
    assert_string_equal(verdict.address, "1.2??[2J?x");
    assert_string_equal(zap_refusal_name(verdict.reason), "unknown_key");
}

/* ---------------------------------------------------------------------------------------------- */
/* Without a handler, and argument errors                                                         */
/* ---------------------------------------------------------------------------------------------- */

/* A CURVE server "a" on a context of its own, which has no ZAP handler; `enforce` is the value of
 * ZMQ_ZAP_ENFORCE_DOMAIN set after curve_server. Whether b's message gets through. */
static int gets_through_without_a_handler(fixture *f, int enforce) {
    void *ctx = zmq_ctx_new();
    assert_non_null(ctx);
    void *server = zmq_socket(ctx, ZMQ_ROUTER);
    assert_non_null(server);
    set_int(server, ZMQ_LINGER, 0);
    char err[256] = "";
    assert_int_equal(curve_server(server, &f->a, err, sizeof err), 0);
    set_int(server, ZMQ_ZAP_ENFORCE_DOMAIN, enforce);
    assert_int_equal(zmq_bind(server, "tcp://127.0.0.1:*"), 0);
    char endpoint[128];
    size_t size = sizeof endpoint;
    assert_int_equal(zmq_getsockopt(server, ZMQ_LAST_ENDPOINT, endpoint, &size), 0);

    void *client = zmq_socket(ctx, ZMQ_DEALER);
    assert_non_null(client);
    set_int(client, ZMQ_LINGER, 0);
    assert_int_equal(curve_client(client, &f->b, f->a_public, err, sizeof err), 0);
    assert_int_equal(zmq_connect(client, endpoint), 0);
    assert_int_equal(zmq_send(client, "hello", 5, 0), 5);

    char routing_id[64], body[64], peer[64];
    int name_rc = 0;
    int got =
        receive_at(server, enforce ? QUIET_MS : ARRIVE_MS, routing_id, body, peer, &name_rc) == 0;
    if (got) /* accepted without a handler: no User-Id, so no name */
        assert_int_equal(name_rc, SPOOL_ENOENT);
    zmq_close(client);
    zmq_close(server);
    zmq_ctx_term(ctx);
    return got;
}

static void test_without_a_handler_a_curve_server_refuses_everyone(void **state) {
    fixture *f = *state;
    assert_false(gets_through_without_a_handler(f, 1)); /* what curve_server sets */
    /* The control: without ZMQ_ZAP_ENFORCE_DOMAIN, libzmq lets any key in. */
    assert_true(gets_through_without_a_handler(f, 0));
}

static void test_a_plain_connection_has_no_peer_name(void **state) {
    fixture *f = *state;
    void *server = zmq_socket(f->ctx, ZMQ_PAIR);
    void *client = zmq_socket(f->ctx, ZMQ_PAIR);
    assert_non_null(server);
    assert_non_null(client);
    f->clients[f->client_count++] = server;
    f->clients[f->client_count++] = client;
    assert_int_equal(zmq_bind(server, "inproc://plain"), 0);
    assert_int_equal(zmq_connect(client, "inproc://plain"), 0);
    assert_int_equal(zmq_send(client, "hi", 2, 0), 2);
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    set_int(server, ZMQ_RCVTIMEO, ARRIVE_MS);
    assert_int_equal(zmq_msg_recv(&msg, server, 0), 2);
    char name[64] = "?";
    assert_int_equal(zap_peer_name(&msg, name, sizeof name), SPOOL_ENOENT);
    assert_string_equal(name, "");
    assert_int_equal(zap_peer_name(NULL, name, sizeof name), SPOOL_EINVAL);
    assert_int_equal(zap_peer_name(&msg, NULL, 0), SPOOL_EINVAL);
    zmq_msg_close(&msg);
}

static void test_one_handler_per_context(void **state) {
    fixture *f = *state;
    char err[256] = "";
    zap_handler *second = (zap_handler *)&second;
    assert_int_equal(zap_open(f->ctx, f->allow, &second, err, sizeof err), SPOOL_EEXIST);
    assert_null(second);
    assert_contains(err, "already has a ZAP handler");
    assert_int_equal(zap_open(NULL, f->allow, &second, err, sizeof err), SPOOL_EINVAL);
    assert_int_equal(zap_open(f->ctx, NULL, &second, err, sizeof err), SPOOL_EINVAL);
    assert_int_equal(zap_open(f->ctx, f->allow, NULL, err, sizeof err), SPOOL_EINVAL);
    assert_int_equal(zap_serve_one(NULL), SPOOL_EINVAL);
    assert_null(zap_socket(NULL));
    zap_close(NULL);
    zap_handler *none = NULL;
    zap_close(&none);
    assert_string_equal(zap_refusal_name(ZAP_REFUSAL_COUNT), "?");
}

/* Fails every allocation; counts the calls. */
static void *failing_alloc(void *user, size_t size) {
    (void)size;
    (*(int *)user)++;
    return NULL;
}

static void failing_free(void *user, void *ptr, size_t size) {
    (void)user;
    (void)size;
    if (ptr != NULL)
        fail_msg("free of a block never allocated");
}

static void test_open_without_memory_leaves_nothing_bound(void **state) {
    fixture *f = *state;
    void *ctx = zmq_ctx_new();
    assert_non_null(ctx);
    int calls = 0;
    keys_allowlist failing = *f->allow;
    failing.allocator = (spool_allocator){failing_alloc, failing_free, &calls};
    char err[256] = "";
    zap_handler *h = (zap_handler *)&h;
    assert_int_equal(zap_open(ctx, &failing, &h, err, sizeof err), SPOOL_ENOMEM);
    assert_null(h);
    assert_int_equal(calls, 1);
    assert_contains(err, "out of memory");
    /* Nothing was bound: a handler opens on that context now. */
    assert_int_equal(zap_open(ctx, f->allow, &h, err, sizeof err), 0);
    assert_non_null(zap_socket(h));
    assert_int_equal(zap_serve_one(h), SPOOL_ETIMEDOUT); /* nothing waiting: returns at once */
    zap_close(&h);
    assert_null(h);
    zmq_ctx_term(ctx);
}

static void test_curve_setup_refuses_bad_arguments_without_quoting_secrets(void **state) {
    fixture *f = *state;
    void *socket = zmq_socket(f->ctx, ZMQ_DEALER);
    assert_non_null(socket);
    f->clients[f->client_count++] = socket;
    char err[256] = "";
    assert_int_equal(curve_server(NULL, &f->a, err, sizeof err), SPOOL_EINVAL);
    assert_int_equal(curve_server(socket, NULL, err, sizeof err), SPOOL_EINVAL);
    assert_int_equal(curve_client(socket, &f->b, NULL, err, sizeof err), SPOOL_EINVAL);

    keys_pair bad = f->b;
    bad.secret_key[20] = '\0';
    err[0] = '\0';
    assert_int_equal(curve_server(socket, &bad, err, sizeof err), SPOOL_EINVAL);
    assert_contains(err, "40 Z85 characters");
    assert_int_equal(curve_client(socket, &bad, f->a_public, err, sizeof err), SPOOL_EINVAL);

    /* 40 characters, but not Z85 (a space): libzmq refuses, and the message names no key. */
    bad = f->b;
    bad.secret_key[5] = ' ';
    err[0] = '\0';
    assert_int_equal(curve_server(socket, &bad, err, sizeof err), SPOOL_EINVAL);
    assert_contains(err, "ZMQ_CURVE_SECRETKEY");
    assert_null(strstr(err, f->b.secret_key + 6));
    keys_pair_wipe(&bad);
}

int main(void) {
    const struct CMUnitTest tests[] = {
#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        TEST(test_an_allowed_key_gets_through_and_is_named_by_it),
        TEST(test_zap_peer_name_refuses_a_buffer_too_small),
        TEST(test_an_unknown_key_never_gets_a_message_through),
        TEST(test_a_name_comes_only_from_the_key),
        TEST(test_a_plain_client_gets_nothing_through),
        TEST(test_malformed_requests_are_answered_counted_and_survived),
        TEST(test_an_address_with_control_bytes_is_made_printable),
        TEST(test_without_a_handler_a_curve_server_refuses_everyone),
        TEST(test_a_plain_connection_has_no_peer_name),
        TEST(test_one_handler_per_context),
        TEST(test_open_without_memory_leaves_nothing_bound),
        TEST(test_curve_setup_refuses_bad_arguments_without_quoting_secrets),
#undef TEST
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
