/*
 * fuzz_codec.c - libFuzzer target for interp/codec*.c: arbitrary bytes are decoded with small
 * limits into a fresh lua_State; whatever decodes must encode again, and those bytes must decode to
 * an equal value, whose own encoding has the same size (map order may differ, nothing else can).
 * The same bytes are also decoded a second way, as an argument list (codec_decode_values) with
 * hooks that take ext types 2 and 3 of 16 bytes as strings and import ext 4 (an id of another
 * node) into a fake node table, and checked the same way through
 * codec_encode_values; where codec_decode takes an array, the values must be its elements.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -I. -I/usr/include/lua5.4 \
 *       tests/fuzz_codec.c interp/codec.c interp/codec_encode.c interp/codec_decode.c \
 *       mailbox/memory.c -llua5.4 -lm -o /tmp/fuzz_codec
 *   /tmp/fuzz_codec -max_total_time=60
 */
#include "interp/codec.h"
#include "tests/lua_equal.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const codec_limits limits = {.max_depth = 16, .max_total = 1 << 16, .max_string = 1 << 12};

static void check(int ok, const char *what, const char *err) {
    if (!ok) {
        fprintf(stderr, "fuzz_codec: %s (%s)\n", what, err);
        abort();
    }
}

/* One value, no hooks: decode, encode, decode again, compare, encode again. */
static void fuzz_one_value(const uint8_t *data, size_t size) {
    lua_State *L = luaL_newstate();
    if (!L)
        return;
    luaL_openlibs(L);
    char err[256] = "";
    int rc = codec_decode(L, (const char *)data, size, &limits, err, sizeof err);
    if (rc != 0) {
        check(lua_gettop(L) == 0, "a failed decode left values on the stack", err);
        check(rc == SPOOL_EINVAL || rc == SPOOL_EMSGSIZE, "unexpected error code", err);
        check(err[0] != '\0', "an error without words", err);
        lua_close(L);
        return;
    }
    check(lua_gettop(L) == 1, "a decode pushed other than one value", err);

    codec_buffer first, second;
    rc = codec_encode(L, 1, NULL, &limits, &first, err, sizeof err);
    /* a decoded value may be larger once canonical (float 32 -> float 64), so allow EMSGSIZE */
    if (rc == SPOOL_EMSGSIZE) {
        lua_close(L);
        return;
    }
    check(rc == 0, "a decoded value does not encode", err);
    rc = codec_decode(L, first.data, first.size, &limits, err, sizeof err);
    check(rc == 0, "an encoded value does not decode", err);

    int equal = lua_deep_equal(L, 1, 2);
    check(equal >= 0, "the equality check failed to run", "");
    check(equal == 1, "the value changed on its way through the codec", "");

    rc = codec_encode(L, 2, NULL, &limits, &second, err, sizeof err);
    check(rc == 0, "the re-decoded value does not encode", err);
    /* Map order follows the Lua table's iteration order, which may differ between two tables
     * with the same keys: sizes must agree, bytes need not. */
    check(first.size == second.size, "two encodings of equal values differ in size", "");
    codec_buffer_free(&first);
    codec_buffer_free(&second);
    lua_close(L);
}

/* The hooks of the second way: ext 2 and 3 of 16 bytes are handles, pushed as their bytes. */
static int fuzz_accepts(void *user, int8_t type, const char *payload, uint32_t len) {
    (void)user;
    (void)payload;
    return (type == 2 || type == 3) && len == 16;
}

static void fuzz_decode_ext(void *user, lua_State *L, int8_t type, const char *payload,
                            uint32_t len) {
    (void)user;
    (void)type;
    lua_pushlstring(L, payload, len);
}

/* Ext 4 (an id of another node) becomes an id here: a fake node table, a hash of the name and the
 * incarnation in the node field (never 0), as spool_id_import would give an index. */
static int fuzz_import(void *user, const spool_remote_id *in, spool_id *out) {
    (void)user;
    uint64_t h = in->incarnation;
    for (const char *c = in->node; *c; c++)
        h = (h ^ (unsigned char)*c) * 0x100000001b3ull;
    *out = ((h % 4095) + 1) << 48 | in->local;
    return 0;
}

/* The count in an array header (the input was validated: the header is all there). */
static uint32_t array_count(const uint8_t *data) {
    if (data[0] >= 0x90 && data[0] <= 0x9f)
        return data[0] & 0x0f;
    if (data[0] == 0xdc)
        return (uint32_t)data[1] << 8 | data[2];
    return (uint32_t)data[1] << 24 | (uint32_t)data[2] << 16 | (uint32_t)data[3] << 8 | data[4];
}

/* The same bytes as an argument list with hooks: decode, compare with codec_decode's table,
 * encode after a front, decode again, compare, encode again into the reused buffer. */
static void fuzz_values(const uint8_t *data, size_t size) {
    lua_State *L = luaL_newstate();
    if (!L)
        return;
    luaL_openlibs(L);
    const codec_hooks hooks = {NULL, fuzz_accepts, fuzz_decode_ext, NULL, 0, NULL, fuzz_import};
    int is_array =
        size > 0 && ((data[0] >= 0x90 && data[0] <= 0x9f) || data[0] == 0xdc || data[0] == 0xdd);
    char err[256] = "", plain_err[256] = "";
    int count = -1;
    int rc =
        codec_decode_values(L, (const char *)data, size, &limits, &hooks, &count, err, sizeof err);
    if (rc != 0) {
        check(lua_gettop(L) == 0, "a failed values decode left values on the stack", err);
        check(count == 0, "a failed values decode set a count", err);
        check(rc == SPOOL_EINVAL || rc == SPOOL_EMSGSIZE, "unexpected values error code", err);
        check(err[0] != '\0', "a values error without words", err);
        /* the hooks only add ext types, and the array of values is not counted as depth: an
         * array codec_decode takes, codec_decode_values takes too */
        if (is_array) {
            int plain =
                codec_decode(L, (const char *)data, size, &limits, plain_err, sizeof plain_err);
            check(plain != 0, "codec_decode takes an array that codec_decode_values refuses", err);
        }
        lua_close(L);
        return;
    }
    check(is_array, "codec_decode_values took what is not an array", "");
    check(count >= 0 && lua_gettop(L) == count, "the count is not what was pushed", "");
    check((uint32_t)count == array_count(data), "the count is not the array's", "");

    /* where codec_decode takes the same bytes, its table holds the same values */
    if (codec_decode(L, (const char *)data, size, &limits, plain_err, sizeof plain_err) == 0) {
        check(lua_type(L, -1) == LUA_TTABLE, "codec_decode of an array is not a table", "");
        for (int i = 1; i <= count; i++) {
            lua_rawgeti(L, count + 1, i);
            int equal = lua_deep_equal(L, i, -1);
            check(equal == 1, "codec_decode and codec_decode_values disagree", "");
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }

    const size_t front = 3;
    codec_buffer first = {0}, second = {0};
    rc = codec_encode_values(L, 1, count, &limits, NULL, 1, front, &first, err, sizeof err);
    if (rc == SPOOL_EMSGSIZE) { /* float 32 -> float 64, as above */
        codec_buffer_free(&first);
        lua_close(L);
        return;
    }
    check(rc == 0, "decoded values do not encode", err);
    check(first.size > front, "values encoded to nothing", "");
    memcpy(first.data, "hdr", front);
    int again = -1;
    rc = codec_decode_values(L, first.data + front, first.size - front, &limits, NULL, &again, err,
                             sizeof err);
    check(rc == 0, "encoded values do not decode", err);
    check(again == count, "the count changed on its way through the codec", "");
    for (int i = 1; i <= count; i++) {
        int equal = lua_deep_equal(L, i, count + i);
        check(equal >= 0, "the equality check failed to run", "");
        check(equal == 1, "a value changed on its way through the codec", "");
    }
    rc = codec_encode_values(L, count + 1, count, &limits, NULL, 1, 0, &second, err, sizeof err);
    check(rc == 0, "the re-decoded values do not encode", err);
    check(second.size + front == first.size, "two encodings of equal values differ in size", "");
    /* the first buffer again, reused: the front bytes stay the caller's */
    size_t first_size = first.size;
    rc = codec_encode_values(L, count + 1, count, &limits, NULL, 1, front, &first, err, sizeof err);
    check(rc == 0, "the re-decoded values do not encode into a reused buffer", err);
    check(first.size == first_size, "a reused buffer changed the size", "");
    check(memcmp(first.data, "hdr", front) == 0, "the front bytes were overwritten", "");
    codec_buffer_free(&first);
    codec_buffer_free(&second);
    lua_close(L);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_one_value(data, size);
    fuzz_values(data, size);
    return 0;
}
