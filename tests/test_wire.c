/*
 * test_wire.c - cmocka tests of nodes/wire.c: every packet kind round-trips through its writer and
 * the parser byte for byte; every truncated prefix, bad header, bad name, lying count or size,
 * trailing byte, bad FRAGMENT range and reserved bit is refused with its reason and offset, never
 * reading past the end (each input sits in a block of exactly its size, for ASan and valgrind); the
 * batch builder stops cleanly when full; integers are little-endian, checked against bytes written
 * by hand.
 */
#include "nodes/wire.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* ---------------------------------------------------------------------------------------------- */
/* Helpers                                                                                        */
/* ---------------------------------------------------------------------------------------------- */

/* A copy of n bytes in a block of exactly n bytes (1 for n = 0): a read past it is an ASan or
 * valgrind error. */
static unsigned char *exact_copy(const void *bytes, size_t n) {
    unsigned char *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    if (n)
        memcpy(copy, bytes, n);
    return copy;
}

/* Writes `value` as `width` little-endian bytes at buf + at. */
static void poke(unsigned char *buf, size_t at, uint64_t value, int width) {
    for (int i = 0; i < width; i++, value >>= 8)
        buf[at + (size_t)i] = (unsigned char)(value & 0xff);
}

/* Parses an exact-size copy; expects a refusal with `status` and `words` inside the error. */
static void assert_refused_with(const void *bytes, size_t n, const wire_limits *limits, int status,
                                const char *words) {
    unsigned char *copy = exact_copy(bytes, n);
    wire_packet packet;
    char err[256];
    int rc = wire_parse(copy, n, limits, &packet, err, sizeof err);
    if (rc != status)
        fail_msg("expected %d, got %d (\"%s\")", status, rc, err);
    if (!strstr(err, words))
        fail_msg("expected \"%s\" in \"%s\"", words, err);
    assert_int_equal(packet.kind, 0);
    assert_int_equal(packet.size, 0);
    free(copy);
}

static void assert_refused(const void *bytes, size_t n, int status, const char *words) {
    assert_refused_with(bytes, n, NULL, status, words);
}

/* Parses, expecting success. */
static void parse_ok(const void *bytes, size_t n, const wire_limits *limits, wire_packet *packet) {
    char err[256];
    int rc = wire_parse(bytes, n, limits, packet, err, sizeof err);
    if (rc != 0)
        fail_msg("parse failed: %d \"%s\"", rc, err);
    assert_int_equal(packet->size, n);
}

#define SAMPLE_ENDPOINT "tcp://127.0.0.1:7001"

static wire_hello sample_hello(const char *name) {
    wire_hello h = {.cluster = 0x1122334455667788ull,
                    .incarnation = 0xdeadbeefcafef00dull,
                    .session = 42,
                    .heartbeat_ms = 1000,
                    .max_message = 64u << 20,
                    .echo_session = 0x8877665544332211ull};
    snprintf(h.name, sizeof h.name, "%s", name);
    snprintf(h.endpoint, sizeof h.endpoint, "%s", SAMPLE_ENDPOINT);
    return h;
}

static const char payload_a[] = "hello, node";
static const char payload_b[] = {0, 1, 2, 3, (char)0xff};

/* A DATA batch of four messages of every shape (no request_id, request, error reply with an empty
 * payload, exit notice) in buf; returns its size. */
static size_t sample_data(unsigned char *buf, size_t capacity) {
    wire_batch batch;
    assert_int_equal(wire_batch_begin(&batch, buf, capacity, 7, 100), 0);
    wire_msg plain = {
        .to = 0x123456789abcull, .from = 3, .type = 5, .data = payload_a, .size = sizeof payload_a};
    wire_msg request = {.to = 9,
                        .from = WIRE_ID_MASK,
                        .type = 0xffffffffu,
                        .flags = WIRE_MSG_REQUEST,
                        .request_id = 77,
                        .data = payload_b,
                        .size = sizeof payload_b};
    wire_msg error = {.to = 0,
                      .from = 1,
                      .type = 1,
                      .flags = WIRE_MSG_REPLY | WIRE_MSG_ERROR,
                      .request_id = UINT64_MAX};
    wire_msg exit_notice = {
        .to = 4, .from = 5, .type = 2, .flags = WIRE_MSG_EXIT, .data = "x", .size = 1};
    assert_int_equal(wire_batch_add(&batch, &plain), 0);
    assert_int_equal(wire_batch_add(&batch, &request), 0);
    assert_int_equal(wire_batch_add(&batch, &error), 0);
    assert_int_equal(wire_batch_add(&batch, &exit_notice), 0);
    int n = wire_batch_end(&batch);
    assert_true(n > 0);
    assert_int_equal((size_t)n,
                     28 + (28 + sizeof payload_a) + (36 + sizeof payload_b) + (36 + 0) + (28 + 1));
    return (size_t)n;
}

static wire_fragment sample_fragment(const void *piece, uint32_t piece_size) {
    wire_fragment f = {.session = 7,
                       .seq = 12,
                       .total_size = 1000,
                       .offset = 1000 - piece_size,
                       .header = {.to = 0xabcdef012345ull,
                                  .from = 6,
                                  .type = 9,
                                  .flags = WIRE_MSG_REQUEST,
                                  .request_id = 5},
                       .piece = piece,
                       .piece_size = piece_size};
    return f;
}

/* A MEMBERS packet of three members into buf; returns its size. */
static size_t sample_members(unsigned char *buf, size_t capacity) {
    wire_members_builder builder;
    assert_int_equal(wire_members_begin(&builder, buf, capacity, 77), 0);
    assert_int_equal(wire_members_add(&builder, "b", "tcp://127.0.0.1:7002"), 0);
    assert_int_equal(wire_members_add(&builder, "node-c.example", "tcp://[::1]:7003"), 0);
    assert_int_equal(wire_members_add(&builder, "d", "x"), 0);
    int n = wire_members_end(&builder);
    assert_int_equal(n, 8 + 10 + (2 + 1 + 20) + (2 + 14 + 16) + (2 + 1 + 1));
    return (size_t)n;
}

/* One packet of every kind, written into bufs[i] (4 KiB each); sizes in sizes[i]. */
enum { SAMPLE_KINDS = 10 };
static void sample_packets(unsigned char bufs[SAMPLE_KINDS][4096], size_t sizes[SAMPLE_KINDS]) {
    wire_hello hello = sample_hello("node-a_1.example");
    wire_heartbeat heartbeat = {.session = 1, .sent_ns = 2, .last_seq_received = 3};
    wire_goodbye goodbye = {.session = 9, .reason = "shutting down", .reason_len = 13};
    wire_goodbye silent = {.session = 10, .reason = NULL, .reason_len = 0};
    wire_fragment fragment = sample_fragment("piece of a large message", 24);
    int n[SAMPLE_KINDS];
    n[0] = wire_hello_write(bufs[0], 4096, WIRE_HELLO, &hello);
    n[1] = wire_hello_write(bufs[1], 4096, WIRE_WELCOME, &hello);
    n[2] = wire_heartbeat_write(bufs[2], 4096, WIRE_HEARTBEAT, &heartbeat);
    n[3] = wire_heartbeat_write(bufs[3], 4096, WIRE_HEARTBEAT_ACK, &heartbeat);
    n[4] = wire_goodbye_write(bufs[4], 4096, &goodbye);
    n[5] = wire_goodbye_write(bufs[5], 4096, &silent);
    n[6] = (int)sample_data(bufs[6], 4096);
    n[7] = wire_fragment_write(bufs[7], 4096, &fragment);
    /* a DATA of one message without payload: the smallest DATA */
    wire_batch batch;
    wire_msg empty = {.to = 1};
    assert_int_equal(wire_batch_begin(&batch, bufs[8], 4096, 1, 1), 0);
    assert_int_equal(wire_batch_add(&batch, &empty), 0);
    n[8] = wire_batch_end(&batch);
    n[9] = (int)sample_members(bufs[9], 4096);
    for (int i = 0; i < SAMPLE_KINDS; i++) {
        assert_true(n[i] > 0);
        sizes[i] = (size_t)n[i];
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* Round trips                                                                                    */
/* ---------------------------------------------------------------------------------------------- */

static void test_hello_and_welcome_round_trip(void **state) {
    (void)state;
    wire_hello hello = sample_hello("node-a_1.example");
    for (int kind = WIRE_HELLO; kind <= WIRE_WELCOME; kind++) {
        unsigned char buf[256];
        size_t size = wire_hello_size(&hello, (wire_kind)kind);
        assert_int_equal(size, 8 + (kind == WIRE_HELLO ? 34 : 42) + strlen(hello.name) +
                                   strlen(SAMPLE_ENDPOINT));
        assert_int_equal(wire_hello_write(buf, sizeof buf, (wire_kind)kind, &hello), (int)size);
        unsigned char *copy = exact_copy(buf, size);
        wire_packet packet;
        parse_ok(copy, size, NULL, &packet);
        assert_int_equal(packet.kind, kind);
        assert_true(packet.hello.cluster == hello.cluster);
        assert_true(packet.hello.incarnation == hello.incarnation);
        assert_true(packet.hello.session == hello.session);
        assert_int_equal(packet.hello.heartbeat_ms, 1000);
        assert_int_equal(packet.hello.max_message, 64u << 20);
        assert_string_equal(packet.hello.name, "node-a_1.example");
        assert_string_equal(packet.hello.endpoint, SAMPLE_ENDPOINT);
        assert_true(packet.hello.echo_session == (kind == WIRE_WELCOME ? hello.echo_session : 0));
        /* written again from what was parsed: the same bytes */
        unsigned char again[256];
        assert_int_equal(wire_hello_write(again, size, (wire_kind)kind, &packet.hello), (int)size);
        assert_memory_equal(again, copy, size);
        free(copy);
    }
}

static void test_heartbeat_and_ack_round_trip(void **state) {
    (void)state;
    wire_heartbeat heartbeat = {
        .session = UINT64_MAX, .sent_ns = 123456789012345ull, .last_seq_received = 0};
    for (int kind = WIRE_HEARTBEAT; kind <= WIRE_HEARTBEAT_ACK; kind++) {
        unsigned char buf[64];
        assert_int_equal(wire_heartbeat_size(), 32);
        assert_int_equal(wire_heartbeat_write(buf, 32, (wire_kind)kind, &heartbeat), 32);
        unsigned char *copy = exact_copy(buf, 32);
        wire_packet packet;
        parse_ok(copy, 32, NULL, &packet);
        assert_int_equal(packet.kind, kind);
        assert_true(packet.heartbeat.session == UINT64_MAX);
        assert_true(packet.heartbeat.sent_ns == 123456789012345ull);
        assert_true(packet.heartbeat.last_seq_received == 0);
        free(copy);
    }
}

static void test_goodbye_round_trips_with_and_without_a_reason(void **state) {
    (void)state;
    char reason[255];
    memset(reason, (char)0xe2, sizeof reason); /* bytes are not checked: not even utf-8 */
    size_t lengths[] = {0, 1, 255};
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        wire_goodbye goodbye = {.session = 5, .reason = reason, .reason_len = lengths[i]};
        unsigned char buf[300];
        size_t size = wire_goodbye_size(&goodbye);
        assert_int_equal(size, 17 + lengths[i]);
        assert_int_equal(wire_goodbye_write(buf, sizeof buf, &goodbye), (int)size);
        unsigned char *copy = exact_copy(buf, size);
        wire_packet packet;
        parse_ok(copy, size, NULL, &packet);
        assert_int_equal(packet.kind, WIRE_GOODBYE);
        assert_true(packet.goodbye.session == 5);
        assert_int_equal(packet.goodbye.reason_len, lengths[i]);
        assert_ptr_equal(packet.goodbye.reason, (const char *)copy + 17);
        if (lengths[i])
            assert_memory_equal(packet.goodbye.reason, reason, lengths[i]);
        free(copy);
    }
}

static void test_data_round_trips_every_message_shape(void **state) {
    (void)state;
    unsigned char buf[512];
    size_t size = sample_data(buf, sizeof buf);
    unsigned char *copy = exact_copy(buf, size);
    wire_packet packet;
    parse_ok(copy, size, NULL, &packet);
    assert_int_equal(packet.kind, WIRE_DATA);
    assert_true(packet.data.session == 7);
    assert_true(packet.data.first_seq == 100);
    assert_int_equal(packet.data.count, 4);

    wire_msg m;
    char err[128];
    assert_int_equal(wire_data_next(&packet, &m, err, sizeof err), 1);
    assert_true(m.to == 0x123456789abcull && m.from == 3 && m.type == 5 && m.flags == 0);
    assert_true(m.request_id == 0);
    assert_int_equal(m.size, sizeof payload_a);
    assert_memory_equal(m.data, payload_a, sizeof payload_a);
    assert_ptr_equal(m.data, copy + 28 + 28);

    assert_int_equal(wire_data_next(&packet, &m, err, sizeof err), 1);
    assert_true(m.to == 9 && m.from == WIRE_ID_MASK && m.type == 0xffffffffu);
    assert_int_equal(m.flags, WIRE_MSG_REQUEST);
    assert_true(m.request_id == 77);
    assert_int_equal(m.size, sizeof payload_b);
    assert_memory_equal(m.data, payload_b, sizeof payload_b);

    assert_int_equal(wire_data_next(&packet, &m, err, sizeof err), 1);
    assert_int_equal(m.flags, WIRE_MSG_REPLY | WIRE_MSG_ERROR);
    assert_true(m.request_id == UINT64_MAX);
    assert_int_equal(m.size, 0);

    assert_int_equal(wire_data_next(&packet, &m, err, sizeof err), 1);
    assert_int_equal(m.flags, WIRE_MSG_EXIT);
    assert_true(m.request_id == 0);
    assert_int_equal(m.size, 1);
    assert_memory_equal(m.data, "x", 1);
    assert_ptr_equal((const unsigned char *)m.data + 1, copy + size);

    /* the end, and it stays the end */
    assert_int_equal(wire_data_next(&packet, &m, err, sizeof err), 0);
    assert_int_equal(wire_data_next(&packet, &m, err, sizeof err), 0);
    free(copy);
}

static void test_fragment_round_trips(void **state) {
    (void)state;
    static unsigned char piece[WIRE_PIECE_MAX];
    for (size_t i = 0; i < sizeof piece; i++)
        piece[i] = (unsigned char)(i * 31);
    uint32_t piece_sizes[] = {1, 24, WIRE_PIECE_MAX};
    for (size_t i = 0; i < 3; i++) {
        wire_fragment fragment = sample_fragment(piece, piece_sizes[i]);
        fragment.total_size = (uint64_t)WIRE_PIECE_MAX * 3;
        fragment.offset = fragment.total_size - piece_sizes[i];
        size_t size = wire_fragment_size(&fragment);
        assert_int_equal(size, 76 + (size_t)piece_sizes[i]);
        unsigned char *buf = malloc(size);
        assert_non_null(buf);
        assert_int_equal(wire_fragment_write(buf, size, &fragment), (int)size);
        wire_packet packet;
        /* the largest fragment fits the default limits */
        parse_ok(buf, size, NULL, &packet);
        assert_int_equal(packet.kind, WIRE_FRAGMENT);
        const wire_fragment *f = &packet.fragment;
        assert_true(f->session == 7 && f->seq == 12);
        assert_true(f->total_size == fragment.total_size && f->offset == fragment.offset);
        assert_true(f->header.to == 0xabcdef012345ull && f->header.from == 6);
        assert_int_equal(f->header.type, 9);
        assert_int_equal(f->header.flags, WIRE_MSG_REQUEST);
        assert_true(f->header.request_id == 5);
        assert_int_equal(f->piece_size, piece_sizes[i]);
        assert_ptr_equal(f->piece, buf + 76);
        assert_memory_equal(f->piece, piece, piece_sizes[i]);
        free(buf);
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* Hostile input                                                                                  */
/* ---------------------------------------------------------------------------------------------- */

static void test_every_truncated_prefix_of_every_kind_is_refused(void **state) {
    (void)state;
    static unsigned char bufs[SAMPLE_KINDS][4096];
    size_t sizes[SAMPLE_KINDS];
    sample_packets(bufs, sizes);
    for (int k = 0; k < SAMPLE_KINDS; k++) {
        for (size_t prefix = 0; prefix < sizes[k]; prefix++) {
            /* each prefix in a block of exactly its size */
            unsigned char *copy = exact_copy(bufs[k], prefix);
            wire_packet packet;
            char err[256];
            int rc = wire_parse(copy, prefix, NULL, &packet, err, sizeof err);
            if (rc != SPOOL_EINVAL || !strstr(err, "truncated"))
                fail_msg("sample %d, prefix %zu of %zu: %d \"%s\"", k, prefix, sizes[k], rc, err);
            assert_int_equal(packet.kind, 0);
            free(copy);
        }
        unsigned char *copy = exact_copy(bufs[k], sizes[k]);
        wire_packet packet;
        parse_ok(copy, sizes[k], NULL, &packet);
        free(copy);
    }
    assert_refused(NULL, 0, SPOOL_EINVAL,
                   "truncated: the header at offset 0 needs 8 bytes, 0 left");
    assert_refused("SPN1\1\3", 6, SPOOL_EINVAL,
                   "truncated: the header at offset 0 needs 8 bytes, 6 left");
}

static void test_trailing_bytes_are_refused_for_every_kind(void **state) {
    (void)state;
    static unsigned char bufs[SAMPLE_KINDS][4096];
    size_t sizes[SAMPLE_KINDS];
    sample_packets(bufs, sizes);
    for (int k = 0; k < SAMPLE_KINDS; k++) {
        bufs[k][sizes[k]] = 0;
        char words[128];
        snprintf(words, sizeof words, "trailing bytes: the %s packet ends at offset %zu of %zu",
                 wire_kind_name(bufs[k][5]), sizes[k], sizes[k] + 1);
        assert_refused(bufs[k], sizes[k] + 1, SPOOL_EINVAL, words);
    }
}

static void test_bad_magic_version_kind_and_header_flags_are_refused(void **state) {
    (void)state;
    unsigned char buf[64];
    wire_heartbeat heartbeat = {1, 2, 3};
    assert_int_equal(wire_heartbeat_write(buf, sizeof buf, WIRE_HEARTBEAT, &heartbeat), 32);

    unsigned char bad[64];
    memcpy(bad, buf, 32);
    bad[3] = '2';
    assert_refused(bad, 32, SPOOL_EINVAL, "bad magic 53 50 4e 32 at offset 0");
    memcpy(bad, "GET / HTTP/1.1\r\n", 16);
    assert_refused(bad, 32, SPOOL_EINVAL, "bad magic");

    int versions[] = {0, 2, 255};
    for (int i = 0; i < 3; i++) {
        memcpy(bad, buf, 32);
        bad[4] = (unsigned char)versions[i];
        char words[64];
        snprintf(words, sizeof words, "unsupported protocol version %d at offset 4", versions[i]);
        assert_refused(bad, 32, SPOOL_EINVAL, words);
    }
    int kinds[] = {0, 9, 255};
    for (int i = 0; i < 3; i++) {
        memcpy(bad, buf, 32);
        bad[5] = (unsigned char)kinds[i];
        char words[64];
        snprintf(words, sizeof words, "unknown packet kind %d at offset 5", kinds[i]);
        assert_refused(bad, 32, SPOOL_EINVAL, words);
    }
    memcpy(bad, buf, 32);
    bad[6] = 1;
    assert_refused(bad, 32, SPOOL_EINVAL, "reserved header flags 0x0001 at offset 6");
    bad[6] = 0;
    bad[7] = 0x80;
    assert_refused(bad, 32, SPOOL_EINVAL, "reserved header flags 0x8000 at offset 6");
}

static void test_names_must_be_1_to_63_bytes_of_the_allowed_characters(void **state) {
    (void)state;
    unsigned char buf[256];
    char name63[64];
    memset(name63, 'n', 63);
    name63[63] = '\0';
    wire_hello hello = sample_hello(name63);
    int n = wire_hello_write(buf, sizeof buf, WIRE_HELLO, &hello);
    assert_int_equal(n, 8 + 34 + 63 + (int)strlen(SAMPLE_ENDPOINT));
    wire_packet packet;
    parse_ok(buf, (size_t)n, NULL, &packet);
    assert_string_equal(packet.hello.name, name63);
    /* every allowed character */
    hello = sample_hello("AZaz09_.-");
    n = wire_hello_write(buf, sizeof buf, WIRE_WELCOME, &hello);
    parse_ok(buf, (size_t)n, NULL, &packet);
    assert_string_equal(packet.hello.name, "AZaz09_.-");

    /* the parser: empty, 64 bytes, bad characters */
    hello = sample_hello("ab");
    n = wire_hello_write(buf, sizeof buf, WIRE_HELLO, &hello); /* name_len at 40, name at 41 */
    unsigned char bad[256];
    memcpy(bad, buf, (size_t)n);
    bad[40] = 0;
    assert_refused(bad, 41, SPOOL_EINVAL, "name of 0 bytes at offset 40 (a name has 1..63)");
    memset(bad + 41, 'a', 64);
    bad[40] = 64;
    assert_refused(bad, 41 + 64, SPOOL_EINVAL, "name of 64 bytes at offset 40");
    bad[40] = 255;
    assert_refused(bad, 41 + 64, SPOOL_EINVAL, "name of 255 bytes at offset 40");
    const unsigned char refused[] = {' ', '/', ':', '@', 0, 0x7f, 0x80, 0xff, '\n', '*'};
    for (size_t i = 0; i < sizeof refused; i++) {
        memcpy(bad, buf, (size_t)n);
        bad[42] = refused[i];
        char words[96];
        snprintf(words, sizeof words, "name byte 0x%02x at offset 42 is not one of [A-Za-z0-9_.-]",
                 refused[i]);
        assert_refused(bad, (size_t)n, SPOOL_EINVAL, words);
    }

    /* a name starts with neither '.' nor '-' (the rule of nodes/keys.c: names are file names) */
    for (int i = 0; i < 2; i++) {
        memcpy(bad, buf, (size_t)n);
        bad[41] = i ? '-' : '.';
        char words[64];
        snprintf(words, sizeof words, "name at offset 41 starts with '%c'", i ? '-' : '.');
        assert_refused(bad, (size_t)n, SPOOL_EINVAL, words);
        wire_hello leading = sample_hello(i ? "-a" : ".a");
        assert_int_equal(wire_hello_write(buf + 128, 128, WIRE_HELLO, &leading), SPOOL_EINVAL);
    }

    /* the writer refuses the same */
    wire_hello empty = sample_hello("");
    assert_int_equal(wire_hello_size(&empty, WIRE_HELLO), 0);
    assert_int_equal(wire_hello_write(buf, sizeof buf, WIRE_HELLO, &empty), SPOOL_EINVAL);
    wire_hello long_name = sample_hello("");
    memset(long_name.name, 'a', sizeof long_name.name); /* 64 bytes, no NUL */
    assert_int_equal(wire_hello_write(buf, sizeof buf, WIRE_HELLO, &long_name), SPOOL_EINVAL);
    wire_hello spaced = sample_hello("a b");
    assert_int_equal(wire_hello_write(buf, sizeof buf, WIRE_WELCOME, &spaced), SPOOL_EINVAL);
    assert_int_equal(wire_hello_write(buf, sizeof buf, WIRE_DATA, &hello), SPOOL_EINVAL);
}

static void test_endpoints_must_be_1_to_255_printable_bytes(void **state) {
    (void)state;
    unsigned char buf[512];
    wire_packet packet;
    /* the longest, of every allowed byte */
    wire_hello hello = sample_hello("ab");
    for (int i = 0; i < WIRE_ENDPOINT_MAX; i++)
        hello.endpoint[i] = (char)(0x21 + i % (0x7f - 0x21));
    hello.endpoint[WIRE_ENDPOINT_MAX] = '\0';
    int n = wire_hello_write(buf, sizeof buf, WIRE_WELCOME, &hello);
    assert_int_equal(n, 8 + 42 + 2 + WIRE_ENDPOINT_MAX);
    parse_ok(buf, (size_t)n, NULL, &packet);
    assert_string_equal(packet.hello.endpoint, hello.endpoint);
    assert_true(packet.hello.echo_session == hello.echo_session);

    /* the parser: empty, a byte outside 0x21..0x7e, truncated */
    hello = sample_hello("ab");
    n = wire_hello_write(buf, sizeof buf, WIRE_HELLO,
                         &hello); /* endpoint_len at 43, endpoint at 44 */
    assert_int_equal(buf[43], strlen(SAMPLE_ENDPOINT));
    unsigned char bad[512];
    memcpy(bad, buf, (size_t)n);
    bad[43] = 0;
    assert_refused(bad, 44, SPOOL_EINVAL,
                   "endpoint of 0 bytes at offset 43 (an endpoint has 1..255)");
    const unsigned char refused[] = {' ', 0, 0x7f, 0x80, 0xff, '\n', '\t'};
    for (size_t i = 0; i < sizeof refused; i++) {
        memcpy(bad, buf, (size_t)n);
        bad[47] = refused[i];
        char words[96];
        snprintf(words, sizeof words,
                 "endpoint byte 0x%02x at offset 47 is not printable ASCII (0x21..0x7e)",
                 refused[i]);
        assert_refused(bad, (size_t)n, SPOOL_EINVAL, words);
    }
    memcpy(bad, buf, (size_t)n);
    assert_refused(bad, (size_t)n - 1, SPOOL_EINVAL, "truncated: endpoint at offset 44 needs 20");
    assert_refused(bad, 43, SPOOL_EINVAL,
                   "truncated: endpoint_len at offset 43 needs 1 bytes, 0 left");

    /* the writer refuses the same */
    wire_hello empty = sample_hello("ab");
    empty.endpoint[0] = '\0';
    assert_int_equal(wire_hello_size(&empty, WIRE_HELLO), 0);
    assert_int_equal(wire_hello_write(buf, sizeof buf, WIRE_HELLO, &empty), SPOOL_EINVAL);
    wire_hello spaced = sample_hello("ab");
    snprintf(spaced.endpoint, sizeof spaced.endpoint, "tcp://a b:1");
    assert_int_equal(wire_hello_write(buf, sizeof buf, WIRE_WELCOME, &spaced), SPOOL_EINVAL);
    wire_hello long_endpoint = sample_hello("ab");
    memset(long_endpoint.endpoint, 'e', sizeof long_endpoint.endpoint); /* 256 bytes, no NUL */
    assert_int_equal(wire_hello_write(buf, sizeof buf, WIRE_HELLO, &long_endpoint), SPOOL_EINVAL);
}

static void test_members_round_trip_and_refuse_bad_counts_and_members(void **state) {
    (void)state;
    unsigned char buf[512];
    size_t n = sample_members(buf, sizeof buf);
    unsigned char *copy = exact_copy(buf, n);
    wire_packet packet;
    parse_ok(copy, n, NULL, &packet);
    assert_int_equal(packet.kind, WIRE_MEMBERS);
    assert_true(packet.members.session == 77);
    assert_int_equal(packet.members.count, 3);
    wire_member member;
    const char *names[] = {"b", "node-c.example", "d"};
    const char *endpoints[] = {"tcp://127.0.0.1:7002", "tcp://[::1]:7003", "x"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(wire_members_next(&packet, &member, NULL, 0), 1);
        assert_string_equal(member.name, names[i]);
        assert_string_equal(member.endpoint, endpoints[i]);
    }
    assert_int_equal(wire_members_next(&packet, &member, NULL, 0), 0);
    assert_int_equal(wire_members_next(&packet, &member, NULL, 0), 0);
    free(copy);

    /* counts: 0, over 1024, more than the bytes could hold (count at offset 16) */
    unsigned char bad[512];
    memcpy(bad, buf, n);
    bad[16] = 0;
    bad[17] = 0;
    assert_refused(bad, n, SPOOL_EINVAL, "MEMBERS count 0 at offset 16");
    bad[16] = 0x01;
    bad[17] = 0x04; /* 1025 */
    assert_refused(bad, n, SPOOL_EMSGSIZE, "MEMBERS count 1025 at offset 16 exceeds 1024");
    bad[16] = 0x00; /* 1024: 4 bytes each would need 4096 */
    assert_refused(bad, n, SPOOL_EINVAL, "truncated: MEMBERS count 1024 at offset 16");
    bad[16] = 4;
    bad[17] = 0; /* one member more than there is */
    assert_refused(bad, n, SPOOL_EINVAL, "truncated: name_len at offset");
    bad[16] = 2; /* one less: the third is trailing */
    assert_refused(bad, n, SPOOL_EINVAL, "trailing bytes: the MEMBERS packet ends at offset");
    /* a member's name and endpoint are checked as HELLO's (first member's name at offset 19) */
    memcpy(bad, buf, n);
    bad[19] = '/';
    assert_refused(bad, n, SPOOL_EINVAL, "name byte 0x2f at offset 19");
    memcpy(bad, buf, n);
    bad[21 + 3] = ' ';
    assert_refused(bad, n, SPOOL_EINVAL, "endpoint byte 0x20 at offset 24");
    memcpy(bad, buf, n);
    bad[18] = 0;
    assert_refused(bad, n, SPOOL_EINVAL, "name of 0 bytes at offset 18");

    /* the builder: refusals, a full buffer, 1024 members at most */
    wire_members_builder builder;
    assert_int_equal(wire_members_begin(&builder, buf, 17, 1), SPOOL_EFULL);
    assert_int_equal(wire_members_begin(NULL, buf, sizeof buf, 1), SPOOL_EINVAL);
    assert_int_equal(wire_members_begin(&builder, NULL, sizeof buf, 1), SPOOL_EINVAL);
    assert_int_equal(wire_members_begin(&builder, buf, 18 + 2 + 1 + 2, 1), 0);
    assert_int_equal(wire_members_end(&builder), SPOOL_EINVAL); /* no member */
    assert_int_equal(wire_members_add(&builder, "-a", "x"), SPOOL_EINVAL);
    assert_int_equal(wire_members_add(&builder, "a", ""), SPOOL_EINVAL);
    assert_int_equal(wire_members_add(&builder, "a", "a b"), SPOOL_EINVAL);
    assert_int_equal(wire_members_add(&builder, "a", NULL), SPOOL_EINVAL);
    assert_int_equal(wire_members_add(&builder, "a", "xyz"), SPOOL_EFULL);
    assert_int_equal(wire_members_add(&builder, "a", "xy"), 0);
    assert_int_equal(wire_members_add(&builder, "b", "x"), SPOOL_EFULL);
    assert_int_equal(wire_members_end(&builder), 23);
    static unsigned char big[8 + 10 + 1025 * 4];
    assert_int_equal(wire_members_begin(&builder, big, sizeof big, 1), 0);
    for (int i = 0; i < 1024; i++)
        assert_int_equal(wire_members_add(&builder, "a", "x"), 0);
    assert_int_equal(wire_members_add(&builder, "a", "x"), SPOOL_EFULL);
    int size = wire_members_end(&builder);
    parse_ok(big, (size_t)size, NULL, &packet);
    assert_int_equal(packet.members.count, 1024);

    /* the iterator refuses what is not a parsed MEMBERS packet */
    char err[64];
    wire_packet none;
    memset(&none, 0, sizeof none);
    assert_int_equal(wire_members_next(&none, &member, err, sizeof err), SPOOL_EINVAL);
    assert_string_equal(err, "not a parsed MEMBERS packet");
    assert_int_equal(wire_members_next(NULL, &member, NULL, 0), SPOOL_EINVAL);
}

static void test_data_counts_of_zero_too_many_or_beyond_the_bytes_are_refused(void **state) {
    (void)state;
    unsigned char buf[512];
    size_t size = sample_data(buf, sizeof buf); /* count at 24, 4 messages */
    unsigned char bad[512];

    memcpy(bad, buf, size);
    poke(bad, 24, 0, 4);
    assert_refused(bad, size, SPOOL_EINVAL, "DATA count 0 at offset 24");
    poke(bad, 24, 65536, 4);
    assert_refused(bad, size, SPOOL_EMSGSIZE, "DATA count 65536 at offset 24 exceeds 65535");
    poke(bad, 24, UINT32_MAX, 4);
    assert_refused(bad, size, SPOOL_EMSGSIZE, "DATA count 4294967295 at offset 24");
    /* 65535 claimed, a few hundred bytes there: refused before a single message is read */
    poke(bad, 24, 65535, 4);
    char words[128];
    snprintf(words, sizeof words,
             "truncated: DATA count 65535 at offset 24, only %zu bytes left (28 a message)",
             size - 28);
    assert_refused(bad, size, SPOOL_EINVAL, words);
    /* 5 claimed, 4 there, and 5 * 28 fits the bytes: the walk finds the end */
    poke(bad, 24, 5, 4);
    snprintf(words, sizeof words, "truncated: message 4 to at offset %zu needs 8 bytes, 0 left",
             size);
    assert_refused(bad, size, SPOOL_EINVAL, words);
    /* 3 claimed, 4 there: the fourth is trailing bytes */
    poke(bad, 24, 3, 4);
    assert_refused(bad, size, SPOOL_EINVAL, "trailing bytes: the DATA packet ends at offset");
}

static void test_data_message_sizes_past_the_end_or_over_the_limit_are_refused(void **state) {
    (void)state;
    unsigned char buf[512];
    size_t size = sample_data(buf, sizeof buf);
    /* the last message: to, from, type, flags (exit notice: no request_id), size 1, "x" */
    size_t last_size_at = size - 1 - 4;
    unsigned char bad[512];
    memcpy(bad, buf, size);
    poke(bad, last_size_at, 2, 4);
    char words[128];
    snprintf(words, sizeof words,
             "truncated: message 3 payload at offset %zu needs 2 bytes, 1 left", size - 1);
    assert_refused(bad, size, SPOOL_EINVAL, words);
    /* the first message claims every byte of the packet and more */
    memcpy(bad, buf, size);
    poke(bad, 28 + 24, size, 4);
    assert_refused(bad, size, SPOOL_EINVAL, "truncated: message 0 payload at offset 56");
    /* a size over max_message is over a limit */
    memcpy(bad, buf, size);
    poke(bad, 28 + 24, UINT32_MAX, 4);
    assert_refused(bad, size, SPOOL_EMSGSIZE,
                   "message 0: size 4294967295 at offset 52 exceeds the limit of 67108864");
    wire_limits huge = {.max_message = SIZE_MAX};
    assert_refused_with(bad, size, &huge, SPOOL_EINVAL,
                        "truncated: message 0 payload at offset 56 needs 4294967295 bytes");
    wire_limits small = {.max_message = 5};
    assert_refused_with(buf, size, &small, SPOOL_EMSGSIZE,
                        "message 0: size 12 at offset 52 exceeds the limit of 5");
    small.max_message = 12;
    wire_packet packet;
    parse_ok(buf, size, &small, &packet);
}

static void test_message_flags_ids_and_request_id_presence(void **state) {
    (void)state;
    unsigned char buf[512];
    wire_batch batch;
    /* which flags carry a request_id: bits 0, 1, 2 alone or together; not bit 3 */
    for (uint32_t flags = 0; flags <= WIRE_MSG_KNOWN_FLAGS; flags++) {
        int has = (flags & 7) != 0;
        wire_msg msg = {.to = 1,
                        .from = 2,
                        .type = 3,
                        .flags = flags,
                        .request_id = has ? 99 : 0,
                        .data = "ab",
                        .size = 2};
        assert_int_equal(wire_msg_size(&msg), (size_t)(has ? 38 : 30));
        assert_int_equal(wire_batch_begin(&batch, buf, sizeof buf, 1, 1), 0);
        assert_int_equal(wire_batch_add(&batch, &msg), 0);
        int n = wire_batch_end(&batch);
        assert_int_equal(n, 28 + (has ? 38 : 30));
        wire_packet packet;
        parse_ok(buf, (size_t)n, NULL, &packet);
        wire_msg m;
        assert_int_equal(wire_data_next(&packet, &m, NULL, 0), 1);
        assert_int_equal(m.flags, flags);
        assert_true(m.request_id == (has ? 99u : 0u));
        assert_memory_equal(m.data, "ab", 2);
    }

    /* reserved bits in a DATA message */
    wire_msg msg = {.to = 1, .from = 2, .type = 3};
    assert_int_equal(wire_batch_begin(&batch, buf, sizeof buf, 1, 1), 0);
    assert_int_equal(wire_batch_add(&batch, &msg), 0);
    int n = wire_batch_end(&batch);
    unsigned char bad[512];
    uint32_t reserved[] = {0x10, 0x80000000u, 0xfffffff0u};
    for (int i = 0; i < 3; i++) {
        memcpy(bad, buf, (size_t)n);
        poke(bad, 28 + 20, reserved[i], 4);
        char words[96];
        snprintf(words, sizeof words, "message 0: reserved flags 0x%08x at offset 48", reserved[i]);
        assert_refused(bad, (size_t)n, SPOOL_EINVAL, words);
    }
    /* ids above 48 bits */
    memcpy(bad, buf, (size_t)n);
    poke(bad, 28, 1ull << 48, 8);
    assert_refused(bad, (size_t)n, SPOOL_EINVAL,
                   "message 0: 'to' 0x0001000000000000 at offset 28 uses the high 16 bits");
    memcpy(bad, buf, (size_t)n);
    poke(bad, 36, UINT64_MAX, 8);
    assert_refused(bad, (size_t)n, SPOOL_EINVAL,
                   "message 0: 'from' 0xffffffffffffffff at offset 36");

    /* a request flag without its request_id: the size is read where the id would be, and the
     * packet no longer adds up */
    memcpy(bad, buf, (size_t)n);
    poke(bad, 28 + 20, WIRE_MSG_REPLY, 4);
    assert_refused(bad, (size_t)n, SPOOL_EINVAL, "truncated: message 0 request_id at offset 52");

    /* the writer refuses what the parser would */
    assert_int_equal(wire_batch_begin(&batch, buf, sizeof buf, 1, 1), 0);
    wire_msg wrong = {.to = 1ull << 48};
    assert_int_equal(wire_batch_add(&batch, &wrong), SPOOL_EINVAL);
    wrong = (wire_msg){.from = 1ull << 63};
    assert_int_equal(wire_batch_add(&batch, &wrong), SPOOL_EINVAL);
    wrong = (wire_msg){.flags = 0x10};
    assert_int_equal(wire_batch_add(&batch, &wrong), SPOOL_EINVAL);
    wrong = (wire_msg){.flags = WIRE_MSG_EXIT, .request_id = 3}; /* it would be lost */
    assert_int_equal(wire_batch_add(&batch, &wrong), SPOOL_EINVAL);
    wrong = (wire_msg){.data = NULL, .size = 3};
    assert_int_equal(wire_batch_add(&batch, &wrong), SPOOL_EINVAL);
    assert_int_equal(wire_msg_size(&wrong), 0);
    assert_int_equal(batch.count, 0);
    assert_int_equal(wire_batch_end(&batch), SPOOL_EINVAL); /* count 0 is no packet */
}

static void test_fragment_ranges_limits_and_request_id_are_checked(void **state) {
    (void)state;
    static unsigned char buf[WIRE_PIECE_MAX + 256];
    const char *piece = "0123456789";
    wire_fragment fragment = sample_fragment(piece, 10); /* offset 990 of 1000 */
    int n = wire_fragment_write(buf, sizeof buf, &fragment);
    assert_int_equal(n, 86);
    unsigned char bad[128];
    /* offsets: seq 16, total_size 24, offset 32, to 40, from 48, type 56, flags 60,
     * request_id 64, piece_size 72, piece 76 */

    memcpy(bad, buf, 86);
    poke(bad, 32, 991, 8); /* 991 + 10 > 1000 */
    assert_refused(
        bad, 86, SPOOL_EINVAL,
        "piece of 10 bytes at offset 991 (field at offset 32) ends past total_size 1000");
    poke(bad, 32, UINT64_MAX - 5, 8); /* would wrap */
    assert_refused(bad, 86, SPOOL_EINVAL, "ends past total_size 1000");
    poke(bad, 32, 1001, 8);
    assert_refused(bad, 86, SPOOL_EINVAL, "ends past total_size 1000");
    poke(bad, 32, 0, 8);
    poke(bad, 24, 10, 8); /* the whole message in one piece: fine */
    wire_packet packet;
    parse_ok(bad, 86, NULL, &packet);
    assert_true(packet.fragment.total_size == 10);

    memcpy(bad, buf, 86);
    poke(bad, 72, 0, 4);
    assert_refused(bad, 86, SPOOL_EINVAL, "piece_size 0 at offset 72");
    poke(bad, 72, WIRE_PIECE_MAX + 1, 4);
    assert_refused(bad, 86, SPOOL_EMSGSIZE, "piece_size 1048577 at offset 72 exceeds 1048576");
    poke(bad, 72, 11, 4);
    assert_refused(bad, 86, SPOOL_EINVAL, "ends past total_size 1000");
    poke(bad, 32, 0, 8); /* in range now, but the bytes are not there */
    assert_refused(bad, 86, SPOOL_EINVAL, "truncated: piece at offset 76 needs 11 bytes, 10 left");
    poke(bad, 72, 9, 4);
    assert_refused(bad, 86, SPOOL_EINVAL, "trailing bytes: the FRAGMENT packet ends at offset 85");

    /* total_size against max_message: the default (64 MiB) and a caller's */
    memcpy(bad, buf, 86);
    poke(bad, 24, (64u << 20) + 1, 8);
    assert_refused(bad, 86, SPOOL_EMSGSIZE,
                   "total_size 67108865 at offset 24 exceeds the limit of 67108864");
    poke(bad, 24, 64u << 20, 8);
    parse_ok(bad, 86, NULL, &packet);
    wire_limits small = {.max_message = 999};
    assert_refused_with(buf, 86, &small, SPOOL_EMSGSIZE, "total_size 1000 at offset 24");

    /* seq, flags, ids, request_id */
    memcpy(bad, buf, 86);
    poke(bad, 16, 0, 8);
    assert_refused(bad, 86, SPOOL_EINVAL, "seq 0 at offset 16 (sequence numbers start at 1)");
    memcpy(bad, buf, 86);
    poke(bad, 60, WIRE_MSG_REQUEST | 0x100, 4);
    assert_refused(bad, 86, SPOOL_EINVAL, "reserved message flags 0x00000101 at offset 60");
    memcpy(bad, buf, 86);
    poke(bad, 40, 1ull << 50, 8);
    assert_refused(bad, 86, SPOOL_EINVAL, "'to' 0x0004000000000000 at offset 40 uses the high");
    memcpy(bad, buf, 86);
    poke(bad, 60, WIRE_MSG_EXIT, 4); /* request_id 5 but no flag that says it is one */
    assert_refused(bad, 86, SPOOL_EINVAL,
                   "request_id 5 at offset 64 without a request, reply or error flag");
    poke(bad, 64, 0, 8); /* "0 if none" */
    parse_ok(bad, 86, NULL, &packet);
    assert_true(packet.fragment.header.request_id == 0);

    /* the writer refuses the same */
    wire_fragment wrong = fragment;
    wrong.offset = 991;
    assert_int_equal(wire_fragment_write(buf, sizeof buf, &wrong), SPOOL_EINVAL);
    assert_int_equal(wire_fragment_size(&wrong), 0);
    wrong = fragment;
    wrong.piece_size = 0;
    assert_int_equal(wire_fragment_write(buf, sizeof buf, &wrong), SPOOL_EINVAL);
    wrong = fragment;
    wrong.piece_size = WIRE_PIECE_MAX + 1;
    wrong.total_size = UINT64_MAX;
    wrong.offset = 0;
    assert_int_equal(wire_fragment_write(buf, sizeof buf, &wrong), SPOOL_EMSGSIZE);
    wrong = fragment;
    wrong.seq = 0;
    assert_int_equal(wire_fragment_write(buf, sizeof buf, &wrong), SPOOL_EINVAL);
    wrong = fragment;
    wrong.header.flags = 0;
    assert_int_equal(wire_fragment_write(buf, sizeof buf, &wrong), SPOOL_EINVAL);
    wrong.header.request_id = 0;
    assert_int_equal(wire_fragment_write(buf, sizeof buf, &wrong), 86);
    wrong = fragment;
    wrong.header.from = 1ull << 48;
    assert_int_equal(wire_fragment_write(buf, sizeof buf, &wrong), SPOOL_EINVAL);
}

static void test_sequence_numbers_start_at_1_and_never_wrap(void **state) {
    (void)state;
    unsigned char buf[256];
    wire_batch batch;
    wire_msg msg = {.to = 1};
    assert_int_equal(wire_batch_begin(&batch, buf, sizeof buf, 1, 0), SPOOL_EINVAL);
    assert_int_equal(wire_batch_add(&batch, &msg), SPOOL_EINVAL); /* a refused begin */

    /* the last seq: one message fits, a second would wrap */
    assert_int_equal(wire_batch_begin(&batch, buf, sizeof buf, 1, UINT64_MAX), 0);
    assert_int_equal(wire_batch_add(&batch, &msg), 0);
    assert_int_equal(wire_batch_add(&batch, &msg), SPOOL_EINVAL);
    int n = wire_batch_end(&batch);
    assert_int_equal(n, 56);
    wire_packet packet;
    parse_ok(buf, (size_t)n, NULL, &packet);
    assert_true(packet.data.first_seq == UINT64_MAX);

    unsigned char bad[256];
    memcpy(bad, buf, (size_t)n);
    poke(bad, 16, 0, 8);
    assert_refused(bad, (size_t)n, SPOOL_EINVAL,
                   "first_seq 0 at offset 16 (sequence numbers start at 1)");
    /* two messages from UINT64_MAX - 1 is fine, from UINT64_MAX it wraps */
    assert_int_equal(wire_batch_begin(&batch, buf, sizeof buf, 1, UINT64_MAX - 1), 0);
    assert_int_equal(wire_batch_add(&batch, &msg), 0);
    assert_int_equal(wire_batch_add(&batch, &msg), 0);
    n = wire_batch_end(&batch);
    parse_ok(buf, (size_t)n, NULL, &packet);
    memcpy(bad, buf, (size_t)n);
    poke(bad, 16, UINT64_MAX, 8);
    assert_refused(bad, (size_t)n, SPOOL_EINVAL,
                   "DATA first_seq 18446744073709551615 at offset 16 + count 2 wraps");
}

static void test_packets_over_max_packet_are_refused(void **state) {
    (void)state;
    unsigned char buf[512];
    size_t size = sample_data(buf, sizeof buf);
    wire_limits limits = {.max_packet = size - 8};
    wire_packet packet;
    parse_ok(buf, size, &limits, &packet);
    limits.max_packet = size - 9;
    char words[96];
    snprintf(words, sizeof words, "packet of %zu bytes exceeds the limit of %zu (8 + %zu)", size,
             size - 1, size - 9);
    assert_refused_with(buf, size, &limits, SPOOL_EMSGSIZE, words);

    /* the default: 1 MiB + 68 of body (the largest FRAGMENT) and not a byte more */
    size_t largest = 8 + WIRE_DEFAULT_MAX_PACKET;
    unsigned char *big = calloc(1, largest + 1);
    assert_non_null(big);
    wire_heartbeat heartbeat = {1, 2, 3};
    assert_int_equal(wire_heartbeat_write(big, largest + 1, WIRE_HEARTBEAT, &heartbeat), 32);
    assert_refused(big, largest + 1, SPOOL_EMSGSIZE, "exceeds the limit of 1048652 (8 + 1048644)");
    assert_refused(big, largest, SPOOL_EINVAL, "trailing bytes"); /* size is not the problem */
    free(big);
}

/* ---------------------------------------------------------------------------------------------- */
/* Byte order                                                                                     */
/* ---------------------------------------------------------------------------------------------- */

static void test_integers_are_little_endian_on_the_wire(void **state) {
    (void)state;
    /* a HEARTBEAT written by hand */
    const unsigned char heartbeat[] = {
        'S',  'P',  'N',  '1',  1,    3,    0,    0,    /* header */
        0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* session */
        0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, /* sent_ns */
        0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* last_seq_received */
    };
    wire_packet packet;
    unsigned char *copy = exact_copy(heartbeat, sizeof heartbeat);
    parse_ok(copy, sizeof heartbeat, NULL, &packet);
    assert_true(packet.heartbeat.session == 0x0102030405060708ull);
    assert_true(packet.heartbeat.sent_ns == 0x1122334455667788ull);
    assert_true(packet.heartbeat.last_seq_received == 1);
    free(copy);
    unsigned char written[32];
    wire_heartbeat values = {0x0102030405060708ull, 0x1122334455667788ull, 1};
    assert_int_equal(wire_heartbeat_write(written, sizeof written, WIRE_HEARTBEAT, &values), 32);
    assert_memory_equal(written, heartbeat, 32);

    /* a DATA written by hand: one request of 3 bytes */
    unsigned char data[] = {
        'S',  'P',  'N',  '1',  1,    6,    0, 0,    /* header */
        0xef, 0xbe, 0xad, 0xde, 0,    0,    0, 0,    /* session 0xdeadbeef */
        0x00, 0x01, 0,    0,    0,    0,    0, 0,    /* first_seq 256 */
        0x01, 0x00, 0x00, 0x00,                      /* count 1 */
        0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0, 0,    /* to 0x010203040506 */
        0x02, 0,    0,    0,    0,    0,    0, 0,    /* from 2 */
        0x04, 0x03, 0x02, 0x01,                      /* type 0x01020304 */
        0x01, 0x00, 0x00, 0x00,                      /* flags: request */
        0x2a, 0,    0,    0,    0,    0,    0, 0x80, /* request_id 0x800000000000002a */
        0x03, 0x00, 0x00, 0x00,                      /* size 3 */
        'a',  'b',  'c',
    };
    copy = exact_copy(data, sizeof data);
    parse_ok(copy, sizeof data, NULL, &packet);
    assert_true(packet.data.session == 0xdeadbeefull);
    assert_true(packet.data.first_seq == 256);
    assert_int_equal(packet.data.count, 1);
    wire_msg m;
    assert_int_equal(wire_data_next(&packet, &m, NULL, 0), 1);
    assert_true(m.to == 0x010203040506ull && m.from == 2);
    assert_int_equal(m.type, 0x01020304u);
    assert_int_equal(m.flags, WIRE_MSG_REQUEST);
    assert_true(m.request_id == 0x800000000000002aull);
    assert_int_equal(m.size, 3);
    assert_memory_equal(m.data, "abc", 3);
    unsigned char rewritten[sizeof data];
    wire_batch batch;
    assert_int_equal(wire_batch_begin(&batch, rewritten, sizeof rewritten, 0xdeadbeef, 256), 0);
    assert_int_equal(wire_batch_add(&batch, &m), 0);
    assert_int_equal(wire_batch_end(&batch), (int)sizeof data);
    assert_memory_equal(rewritten, data, sizeof data);
    free(copy);

    /* the same fields big-endian are other numbers, and refused as such */
    data[24] = 0, data[27] = 1; /* count 00 00 00 01: 16777216 */
    assert_refused(data, sizeof data, SPOOL_EMSGSIZE, "DATA count 16777216 at offset 24");
    data[24] = 1, data[27] = 0;
    const unsigned char to_big_endian[8] = {0, 0, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06};
    memcpy(data + 28, to_big_endian, 8);
    assert_refused(data, sizeof data, SPOOL_EINVAL, "'to' 0x0605040302010000 at offset 28");
    /* header flags: bytes 01 00 are 0x0001 */
    const unsigned char flagged[] = {'S', 'P', 'N', '1', 1, 3, 0x01, 0x00};
    assert_refused(flagged, sizeof flagged, SPOOL_EINVAL, "reserved header flags 0x0001");
}

/* ---------------------------------------------------------------------------------------------- */
/* Writers and the batch builder                                                                  */
/* ---------------------------------------------------------------------------------------------- */

static void test_writers_refuse_a_buffer_too_small(void **state) {
    (void)state;
    unsigned char buf[256];
    wire_hello hello = sample_hello("abc");
    size_t size = wire_hello_size(&hello, WIRE_WELCOME);
    assert_int_equal(wire_hello_write(buf, size - 1, WIRE_WELCOME, &hello), SPOOL_EFULL);
    assert_int_equal(wire_hello_write(buf, size, WIRE_WELCOME, &hello), (int)size);
    wire_heartbeat heartbeat = {0};
    assert_int_equal(wire_heartbeat_write(buf, 31, WIRE_HEARTBEAT_ACK, &heartbeat), SPOOL_EFULL);
    assert_int_equal(wire_heartbeat_write(buf, 32, WIRE_HELLO, &heartbeat), SPOOL_EINVAL);
    wire_goodbye goodbye = {.session = 1, .reason = "bye", .reason_len = 3};
    assert_int_equal(wire_goodbye_write(buf, 19, &goodbye), SPOOL_EFULL);
    assert_int_equal(wire_goodbye_write(buf, 20, &goodbye), 20);
    goodbye.reason_len = 256;
    assert_int_equal(wire_goodbye_size(&goodbye), 0);
    assert_int_equal(wire_goodbye_write(buf, sizeof buf, &goodbye), SPOOL_EMSGSIZE);
    goodbye = (wire_goodbye){.session = 1, .reason = NULL, .reason_len = 1};
    assert_int_equal(wire_goodbye_write(buf, sizeof buf, &goodbye), SPOOL_EINVAL);
    wire_fragment fragment = sample_fragment("abc", 3);
    assert_int_equal(wire_fragment_write(buf, 78, &fragment), SPOOL_EFULL);
    assert_int_equal(wire_fragment_write(buf, 79, &fragment), 79);
    assert_int_equal(wire_fragment_write(NULL, 79, &fragment), SPOOL_EINVAL);
    wire_batch batch;
    assert_int_equal(wire_batch_begin(&batch, buf, 27, 1, 1), SPOOL_EFULL);
    assert_int_equal(wire_batch_begin(NULL, buf, 27, 1, 1), SPOOL_EINVAL);
    assert_int_equal(wire_batch_end(&batch), SPOOL_EINVAL);
}

static void test_a_full_batch_refuses_the_message_and_stays_valid(void **state) {
    (void)state;
    unsigned char buf[200];
    wire_batch batch;
    assert_int_equal(wire_batch_begin(&batch, buf, sizeof buf, 3, 10), 0);
    char payload[100];
    memset(payload, 'p', sizeof payload);
    wire_msg small = {.to = 1, .type = 1, .data = payload, .size = 40}; /* 68 bytes */
    wire_msg large = {.to = 2,
                      .type = 2,
                      .flags = WIRE_MSG_REQUEST,
                      .request_id = 8,
                      .data = payload,
                      .size = 100};                      /* 136 bytes */
    assert_int_equal(wire_batch_add(&batch, &small), 0); /* 28 + 68 = 96 */
    assert_int_equal(wire_batch_add(&batch, &large), SPOOL_EFULL);
    assert_int_equal(batch.size, 96);
    assert_int_equal(batch.count, 1);
    assert_int_equal(wire_batch_add(&batch, &small), 0); /* 164 */
    assert_int_equal(wire_batch_add(&batch, &small), SPOOL_EFULL);
    int n = wire_batch_end(&batch);
    assert_int_equal(n, 164);
    /* the bytes the refusals did not write stay as they were */
    unsigned char *copy = exact_copy(buf, (size_t)n);
    wire_packet packet;
    parse_ok(copy, (size_t)n, NULL, &packet);
    assert_int_equal(packet.data.count, 2);
    wire_msg m;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(wire_data_next(&packet, &m, NULL, 0), 1);
        assert_true(m.to == 1 && m.size == 40);
    }
    assert_int_equal(wire_data_next(&packet, &m, NULL, 0), 0);
    free(copy);

    /* a message that fits exactly */
    wire_msg exact = {.to = 3, .data = payload, .size = 200 - 164 - 28};
    assert_int_equal(wire_batch_add(&batch, &exact), 0);
    assert_int_equal(wire_batch_end(&batch), 200);
    parse_ok(buf, 200, NULL, &packet);
    assert_int_equal(packet.data.count, 3);
}

static void test_a_batch_holds_at_most_65535_messages(void **state) {
    (void)state;
    size_t capacity = 28 + (size_t)28 * 65536;
    unsigned char *buf = malloc(capacity);
    assert_non_null(buf);
    wire_batch batch;
    assert_int_equal(wire_batch_begin(&batch, buf, capacity, 1, 1), 0);
    wire_msg msg = {.to = 5};
    for (uint32_t i = 0; i < WIRE_DATA_MAX_COUNT; i++)
        assert_int_equal(wire_batch_add(&batch, &msg), 0);
    assert_int_equal(wire_batch_add(&batch, &msg), SPOOL_EFULL);
    int n = wire_batch_end(&batch);
    assert_int_equal(n, 28 + 28 * 65535);
    unsigned char *copy = exact_copy(buf, (size_t)n);
    wire_limits limits = {.max_packet = (size_t)n};
    wire_packet packet;
    parse_ok(copy, (size_t)n, &limits, &packet);
    uint32_t seen = 0;
    wire_msg m;
    int rc;
    while ((rc = wire_data_next(&packet, &m, NULL, 0)) == 1) {
        assert_true(m.to == 5);
        seen++;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(seen, 65535);
    free(copy);
    free(buf);
}

static void test_data_next_refuses_what_is_not_a_parsed_data_packet(void **state) {
    (void)state;
    unsigned char buf[64];
    wire_heartbeat heartbeat = {1, 2, 3};
    assert_int_equal(wire_heartbeat_write(buf, sizeof buf, WIRE_HEARTBEAT, &heartbeat), 32);
    wire_packet packet;
    parse_ok(buf, 32, NULL, &packet);
    wire_msg m;
    char err[64];
    assert_int_equal(wire_data_next(&packet, &m, err, sizeof err), SPOOL_EINVAL);
    assert_string_equal(err, "not a parsed DATA packet");
    /* a refused parse leaves a packet that iterates nothing */
    buf[0] = 'X';
    assert_int_equal(wire_parse(buf, 32, NULL, &packet, NULL, 0), SPOOL_EINVAL);
    assert_int_equal(wire_data_next(&packet, &m, NULL, 0), SPOOL_EINVAL);
    assert_int_equal(wire_parse(NULL, 5, NULL, &packet, err, sizeof err), SPOOL_EINVAL);
    assert_string_equal(err, "no input");
    assert_int_equal(wire_parse(buf, 32, NULL, NULL, err, sizeof err), SPOOL_EINVAL);
    assert_string_equal(wire_kind_name(WIRE_FRAGMENT), "FRAGMENT");
    assert_string_equal(wire_kind_name(WIRE_MEMBERS), "MEMBERS");
    assert_string_equal(wire_kind_name(0), "unknown");
}

/* ---------------------------------------------------------------------------------------------- */
/* Random input                                                                                   */
/* ---------------------------------------------------------------------------------------------- */

static uint64_t next_random(uint64_t *s) {
    /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Writes a parsed packet again into an exact-size block; returns whether the bytes are the same. */
static int rewrites_identically(const wire_packet *packet, const unsigned char *bytes) {
    unsigned char *out = malloc(packet->size);
    assert_non_null(out);
    int n = -1;
    wire_packet copy = *packet;
    switch (packet->kind) {
    case WIRE_HELLO:
    case WIRE_WELCOME:
        n = wire_hello_write(out, packet->size, packet->kind, &packet->hello);
        break;
    case WIRE_HEARTBEAT:
    case WIRE_HEARTBEAT_ACK:
        n = wire_heartbeat_write(out, packet->size, packet->kind, &packet->heartbeat);
        break;
    case WIRE_GOODBYE:
        n = wire_goodbye_write(out, packet->size, &packet->goodbye);
        break;
    case WIRE_FRAGMENT:
        n = wire_fragment_write(out, packet->size, &packet->fragment);
        break;
    case WIRE_MEMBERS: {
        wire_members_builder builder;
        wire_member member;
        assert_int_equal(wire_members_begin(&builder, out, packet->size, packet->members.session),
                         0);
        while (wire_members_next(&copy, &member, NULL, 0) == 1)
            assert_int_equal(wire_members_add(&builder, member.name, member.endpoint), 0);
        n = wire_members_end(&builder);
        break;
    }
    case WIRE_DATA: {
        wire_batch batch;
        wire_msg m;
        assert_int_equal(wire_batch_begin(&batch, out, packet->size, packet->data.session,
                                          packet->data.first_seq),
                         0);
        while (wire_data_next(&copy, &m, NULL, 0) == 1)
            assert_int_equal(wire_batch_add(&batch, &m), 0);
        n = wire_batch_end(&batch);
        break;
    }
    }
    int same = n >= 0 && (size_t)n == packet->size && memcmp(out, bytes, packet->size) == 0;
    free(out);
    return same;
}

static void test_random_and_mutated_input_never_crashes(void **state) {
    (void)state;
    const char *env = getenv("SPOOL_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 0) : 0x5eed;
    uint64_t s = seed;
    static unsigned char bufs[SAMPLE_KINDS][4096];
    size_t sizes[SAMPLE_KINDS];
    sample_packets(bufs, sizes);
    const char *stress = getenv("SPOOL_STRESS");
    long rounds = 20000 * (stress && atol(stress) > 0 ? atol(stress) : 1);
    unsigned char work[4096 + 16];
    size_t parsed = 0;
    for (long round = 0; round < rounds; round++) {
        uint64_t r = next_random(&s);
        const int k = (int)(r % SAMPLE_KINDS);
        size_t n;
        if (r >> 60 == 0) { /* pure noise behind a valid header */
            n = 8 + (size_t)(next_random(&s) % 128);
            for (size_t i = 0; i < n; i++)
                work[i] = (unsigned char)next_random(&s);
            memcpy(work, bufs[k], 8);
        } else { /* a valid packet with a few bytes changed, a length changed */
            n = sizes[k];
            memcpy(work, bufs[k], n);
            int flips = 1 + (int)(next_random(&s) % 4);
            for (int f = 0; f < flips; f++)
                work[next_random(&s) % n] ^= (unsigned char)(1u << (next_random(&s) % 8));
            if (next_random(&s) % 4 == 0)
                n = (size_t)(next_random(&s) % (n + 16));
        }
        unsigned char *copy = exact_copy(work, n);
        wire_packet packet;
        char err[256] = "";
        int rc = wire_parse(copy, n, NULL, &packet, err, sizeof err);
        if (rc == 0) {
            parsed++;
            if (!rewrites_identically(&packet, copy))
                fail_msg("seed 0x%llx, round %ld: a parsed packet does not write back the same",
                         (unsigned long long)seed, round);
        } else if ((rc != SPOOL_EINVAL && rc != SPOOL_EMSGSIZE) || err[0] == '\0') {
            fail_msg("seed 0x%llx, round %ld: %d \"%s\"", (unsigned long long)seed, round, rc, err);
        }
        free(copy);
    }
    assert_true(parsed > 0); /* some flips land in payloads, names, reasons */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello_and_welcome_round_trip),
        cmocka_unit_test(test_heartbeat_and_ack_round_trip),
        cmocka_unit_test(test_goodbye_round_trips_with_and_without_a_reason),
        cmocka_unit_test(test_data_round_trips_every_message_shape),
        cmocka_unit_test(test_fragment_round_trips),
        cmocka_unit_test(test_every_truncated_prefix_of_every_kind_is_refused),
        cmocka_unit_test(test_trailing_bytes_are_refused_for_every_kind),
        cmocka_unit_test(test_bad_magic_version_kind_and_header_flags_are_refused),
        cmocka_unit_test(test_names_must_be_1_to_63_bytes_of_the_allowed_characters),
        cmocka_unit_test(test_endpoints_must_be_1_to_255_printable_bytes),
        cmocka_unit_test(test_members_round_trip_and_refuse_bad_counts_and_members),
        cmocka_unit_test(test_data_counts_of_zero_too_many_or_beyond_the_bytes_are_refused),
        cmocka_unit_test(test_data_message_sizes_past_the_end_or_over_the_limit_are_refused),
        cmocka_unit_test(test_message_flags_ids_and_request_id_presence),
        cmocka_unit_test(test_fragment_ranges_limits_and_request_id_are_checked),
        cmocka_unit_test(test_sequence_numbers_start_at_1_and_never_wrap),
        cmocka_unit_test(test_packets_over_max_packet_are_refused),
        cmocka_unit_test(test_integers_are_little_endian_on_the_wire),
        cmocka_unit_test(test_writers_refuse_a_buffer_too_small),
        cmocka_unit_test(test_a_full_batch_refuses_the_message_and_stays_valid),
        cmocka_unit_test(test_a_batch_holds_at_most_65535_messages),
        cmocka_unit_test(test_data_next_refuses_what_is_not_a_parsed_data_packet),
        cmocka_unit_test(test_random_and_mutated_input_never_crashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
