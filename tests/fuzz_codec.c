/*
 * fuzz_codec.c - libFuzzer target for interp/codec.c: arbitrary bytes are decoded with small limits
 * into a fresh lua_State; whatever decodes must encode again, and those bytes must decode to an
 * equal value, whose own encoding has the same size (map order may differ, nothing else can).
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -I. -I/usr/include/lua5.4 \
 *       tests/fuzz_codec.c interp/codec.c mailbox/memory.c -llua5.4 -lm -o /tmp/fuzz_codec
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

static void check(int ok, const char *what, const char *err) {
    if (!ok) {
        fprintf(stderr, "fuzz_codec: %s (%s)\n", what, err);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const codec_limits limits = {.max_depth = 16, .max_total = 1 << 16, .max_string = 1 << 12};
    lua_State *L = luaL_newstate();
    if (!L)
        return 0;
    luaL_openlibs(L);
    char err[256] = "";
    int rc = codec_decode(L, (const char *)data, size, &limits, err, sizeof err);
    if (rc != 0) {
        check(lua_gettop(L) == 0, "a failed decode left values on the stack", err);
        check(rc == SPOOL_EINVAL || rc == SPOOL_EMSGSIZE, "unexpected error code", err);
        check(err[0] != '\0', "an error without words", err);
        lua_close(L);
        return 0;
    }
    check(lua_gettop(L) == 1, "a decode pushed other than one value", err);

    codec_buffer first, second;
    rc = codec_encode(L, 1, NULL, &limits, &first, err, sizeof err);
    /* a decoded value may be larger once canonical (float 32 -> float 64), so allow EMSGSIZE */
    if (rc == SPOOL_EMSGSIZE) {
        lua_close(L);
        return 0;
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
    return 0;
}
