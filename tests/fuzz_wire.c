/*
 * fuzz_wire.c - libFuzzer target for nodes/wire.c: arbitrary bytes are parsed as a packet, twice:
 * as they are, and behind a valid header whose kind is picked by the first byte (so that the
 * fuzzer spends its time in the bodies). A refusal must say why; a packet that parses must hold
 * what the spec promises (names, ranges, every DATA message and FRAGMENT piece inside the input,
 * the messages back to back up to its last byte) and must be written again, byte for byte, by the
 * writers; one byte less of capacity must be SPOOL_EFULL, and a DATA batch that ran full must still
 * end into a packet that parses.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -I. tests/fuzz_wire.c \
 *       nodes/wire.c -o /tmp/fuzz_wire
 *   /tmp/fuzz_wire -max_total_time=60
 */
#include "nodes/wire.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what, const char *err) {
    if (!ok) {
        fprintf(stderr, "fuzz_wire: %s (%s)\n", what, err);
        abort();
    }
}

/* Does [p, p + n) lie inside [base, base + size)? */
static int inside(const void *p, size_t n, const uint8_t *base, size_t size) {
    const uint8_t *q = p;
    return q >= base && q <= base + size && n <= (size_t)(base + size - q);
}

static int name_ok(const char *name) {
    const char *end = memchr(name, '\0', WIRE_NAME_MAX + 1);
    size_t n = end ? (size_t)(end - name) : 0;
    if (n < 1 || n > WIRE_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-", name[i]))
            return 0;
    return 1;
}

static int endpoint_ok(const char *endpoint) {
    const char *end = memchr(endpoint, '\0', WIRE_ENDPOINT_MAX + 1);
    size_t n = end ? (size_t)(end - endpoint) : 0;
    if (n < 1 || n > WIRE_ENDPOINT_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)endpoint[i] < 0x21 || (unsigned char)endpoint[i] > 0x7e)
            return 0;
    return 1;
}

/* Writes a parsed non-DATA packet into `capacity` bytes at out. */
static int write_again(const wire_packet *packet, unsigned char *out, size_t capacity) {
    switch (packet->kind) {
    case WIRE_HELLO:
    case WIRE_WELCOME:
        return wire_hello_write(out, capacity, packet->kind, &packet->hello);
    case WIRE_HEARTBEAT:
    case WIRE_HEARTBEAT_ACK:
        return wire_heartbeat_write(out, capacity, packet->kind, &packet->heartbeat);
    case WIRE_GOODBYE:
        return wire_goodbye_write(out, capacity, &packet->goodbye);
    case WIRE_FRAGMENT:
        return wire_fragment_write(out, capacity, &packet->fragment);
    case WIRE_MEMBERS: {
        wire_packet copy = *packet;
        wire_members_builder builder;
        wire_member member;
        int rc = wire_members_begin(&builder, out, capacity, packet->members.session);
        if (rc != 0)
            return rc;
        while (wire_members_next(&copy, &member, NULL, 0) == 1) {
            check(name_ok(member.name) && endpoint_ok(member.endpoint), "a bad member accepted",
                  member.name);
            if ((rc = wire_members_add(&builder, member.name, member.endpoint)) != 0)
                return rc;
        }
        check(copy.delivered == packet->members.count, "the members are not the count", "");
        return wire_members_end(&builder);
    }
    default:
        return SPOOL_EINVAL;
    }
}

/* Walks every message of a parsed DATA packet, checks each against the input, and writes them
 * again into a batch of `capacity` bytes at out. Returns the batch's end, or the first add's error.
 */
static int walk_data(const wire_packet *parsed, const uint8_t *in, size_t n,
                     const wire_limits *limits, unsigned char *out, size_t capacity,
                     uint32_t *added) {
    wire_packet packet = *parsed;
    wire_batch batch;
    check(wire_batch_begin(&batch, out, capacity, packet.data.session, packet.data.first_seq) == 0,
          "a parsed DATA header does not begin a batch", "");
    const uint8_t *next = in + WIRE_HEADER_SIZE + WIRE_DATA_FIXED;
    uint32_t seen = 0;
    int add_rc = 0;
    wire_msg m;
    char err[256] = "";
    int rc;
    *added = 0;
    while ((rc = wire_data_next(&packet, &m, err, sizeof err)) == 1) {
        seen++;
        check(inside(m.data, m.size, in, n), "a DATA message lies outside the input", "");
        /* back to back: the payload ends the message that starts where the last one ended */
        size_t head = WIRE_MSG_FIXED + ((m.flags & WIRE_MSG_HAS_REQUEST_ID) ? 8 : 0);
        check((const uint8_t *)m.data == next + head, "a DATA message is not where it belongs", "");
        next = (const uint8_t *)m.data + m.size;
        check((m.to & ~(uint64_t)WIRE_ID_MASK) == 0 && (m.from & ~(uint64_t)WIRE_ID_MASK) == 0,
              "a DATA id above 48 bits", "");
        check((m.flags & ~WIRE_MSG_KNOWN_FLAGS) == 0, "reserved message flags accepted", "");
        check((m.flags & WIRE_MSG_HAS_REQUEST_ID) || m.request_id == 0,
              "a request_id without its flag", "");
        size_t max_message =
            limits && limits->max_message ? limits->max_message : WIRE_DEFAULT_MAX_MESSAGE;
        check(m.size <= max_message, "a DATA message over max_message", "");
        if (add_rc == 0) {
            add_rc = wire_batch_add(&batch, &m);
            if (add_rc == 0)
                (*added)++;
            else
                check(add_rc == SPOOL_EFULL, "a parsed DATA message does not add to a batch", "");
        }
    }
    check(rc == 0, "wire_data_next failed on a parsed packet", err);
    check(wire_data_next(&packet, &m, NULL, 0) == 0, "the end of a DATA packet did not stay", "");
    check(seen == parsed->data.count, "the messages are not the count", "");
    check(next == in + n, "the last DATA message does not end the packet", "");
    return *added ? wire_batch_end(&batch) : add_rc;
}

static void fuzz_packet(const uint8_t *in, size_t n, const wire_limits *limits) {
    wire_packet packet;
    char err[256] = "";
    int rc = wire_parse(in, n, limits, &packet, err, sizeof err);
    if (rc != 0) {
        check(rc == SPOOL_EINVAL || rc == SPOOL_EMSGSIZE, "unexpected error code", err);
        check(err[0] != '\0', "an error without words", err);
        check(packet.kind == 0 && packet.size == 0, "a refused packet left fields behind", err);
        return;
    }
    check(packet.size == n, "the packet's size is not the input's", "");
    check(n >= WIRE_HEADER_SIZE && memcmp(in, WIRE_MAGIC, 4) == 0 && in[4] == WIRE_VERSION &&
              in[5] == packet.kind && in[6] == 0 && in[7] == 0,
          "a parsed packet with a bad header", "");
    size_t max_packet = limits && limits->max_packet ? limits->max_packet : WIRE_DEFAULT_MAX_PACKET;
    check(n - WIRE_HEADER_SIZE <= max_packet, "a packet over max_packet", "");

    switch (packet.kind) {
    case WIRE_HELLO:
    case WIRE_WELCOME:
        check(name_ok(packet.hello.name), "a bad name accepted", packet.hello.name);
        check(endpoint_ok(packet.hello.endpoint), "a bad endpoint accepted", packet.hello.endpoint);
        break;
    case WIRE_GOODBYE:
        check(inside(packet.goodbye.reason, packet.goodbye.reason_len, in, n) &&
                  packet.goodbye.reason_len <= WIRE_REASON_MAX,
              "a GOODBYE reason outside the input", "");
        break;
    case WIRE_FRAGMENT: {
        const wire_fragment *f = &packet.fragment;
        check(inside(f->piece, f->piece_size, in, n) &&
                  (const uint8_t *)f->piece + f->piece_size == in + n,
              "a FRAGMENT piece outside the input or not at its end", "");
        check(f->piece_size >= 1 && f->piece_size <= WIRE_PIECE_MAX, "a bad piece size", "");
        check(f->offset <= f->total_size && f->piece_size <= f->total_size - f->offset,
              "a piece past total_size", "");
        check(f->seq != 0, "seq 0 accepted", "");
        break;
    }
    default:
        break;
    }

    /* written again into a block of exactly its size: the same bytes */
    unsigned char *out = malloc(n);
    check(out != NULL, "out of memory", "");
    if (packet.kind == WIRE_DATA) {
        uint32_t added = 0;
        int written = walk_data(&packet, in, n, limits, out, n, &added);
        check(written >= 0 && (size_t)written == n && added == packet.data.count,
              "a parsed DATA packet does not write again", "");
        check(memcmp(out, in, n) == 0, "a DATA packet written again differs", "");
        /* one byte short: the last message is refused and the batch still ends into a packet */
        int short_written = walk_data(&packet, in, n, limits, out, n - 1, &added);
        check(added == packet.data.count - 1, "a batch one byte short took every message", "");
        if (added > 0) {
            check(short_written > 0, "a full batch does not end", "");
            wire_packet again;
            rc = wire_parse(out, (size_t)short_written, limits, &again, err, sizeof err);
            check(rc == 0 && again.data.count == added, "a full batch ended into a bad packet",
                  err);
        } else {
            check(short_written == SPOOL_EFULL, "a batch with no room did not say EFULL", "");
        }
    } else {
        int written = write_again(&packet, out, n);
        check(written >= 0 && (size_t)written == n, "a parsed packet does not write again", "");
        check(memcmp(out, in, n) == 0, "a packet written again differs", "");
        check(write_again(&packet, out, n - 1) == SPOOL_EFULL, "one byte short is not EFULL", "");
    }
    free(out);

    /* larger limits take whatever the smaller ones took */
    const wire_limits unlimited = {SIZE_MAX - WIRE_HEADER_SIZE, SIZE_MAX};
    rc = wire_parse(in, n, &unlimited, &packet, err, sizeof err);
    check(rc == 0, "larger limits refuse what smaller ones took", err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const wire_limits small = {.max_packet = 512, .max_message = 100};
    /* the bytes as they are, with the default limits and with small ones */
    fuzz_packet(data, size, NULL);
    fuzz_packet(data, size, &small);
    if (size == 0)
        return 0;
    /* the rest behind a valid header: kind 1..8 from the first byte, in a block of exact size */
    size_t n = WIRE_HEADER_SIZE + size - 1;
    uint8_t *framed = malloc(n);
    if (!framed)
        return 0;
    memcpy(framed, WIRE_MAGIC, 4);
    framed[4] = WIRE_VERSION;
    framed[5] = (uint8_t)(1 + data[0] % 8);
    framed[6] = 0;
    framed[7] = 0;
    memcpy(framed + WIRE_HEADER_SIZE, data + 1, size - 1);
    fuzz_packet(framed, n, (data[0] & 0x80) ? &small : NULL);
    free(framed);
    return 0;
}
