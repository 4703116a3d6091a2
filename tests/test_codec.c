/*
 * test_codec.c - cmocka tests of interp/codec.c: every Lua type round-trips (integers and floats
 * apart, strings byte for byte, tables of every shape, ids), what cannot be copied is refused with
 * its path, limits hold, and the decoder survives truncated, lying and random input.
 */
#include "interp/codec.h"
#include "tests/lua_equal.h"

#include "mailbox/memory.h"
#include "support.h"

#include <lauxlib.h>
#include <lualib.h>
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

/* A spool_allocator that counts live bytes, checks the size given back, and can fail its Nth. */
typedef struct counting {
    size_t allocations;
    size_t fail_at; /* 1-based; 0 = never */
    size_t live_bytes;
    size_t live_blocks;
    size_t bad_frees;
} counting;

static void *counting_alloc(void *user, size_t size) {
    counting *c = user;
    c->allocations++;
    if (c->fail_at && c->allocations == c->fail_at)
        return NULL;
    size_t *block = malloc(sizeof(size_t) + size);
    if (!block)
        return NULL;
    *block = size;
    c->live_bytes += size;
    c->live_blocks++;
    return block + 1;
}

static void counting_free(void *user, void *ptr, size_t size) {
    counting *c = user;
    size_t *block = (size_t *)ptr - 1;
    if (*block != size)
        c->bad_frees++;
    c->live_bytes -= *block;
    c->live_blocks--;
    free(block);
}

/* A lua_Alloc that counts allocations, to prove a decode allocated nothing in Lua. */
static size_t lua_allocations;
static int lua_refuse_growth; /* non-zero: every allocation that grows fails */

static void *counting_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    (void)ud;
    (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    lua_allocations++;
    if (lua_refuse_growth && nsize > osize)
        return NULL;
    return realloc(ptr, nsize);
}

/* Deep equality in Lua: same types, same number subtypes, NaN equals NaN, tables key by key (a
 * float key is found only as a float key: Lua itself normalises integral float keys). */
static lua_State *new_state(void) {
    lua_State *L = luaL_newstate();
    assert_non_null(L);
    luaL_openlibs(L);
    return L;
}

/* Pushes the value of a Lua expression. */
static void push_expression(lua_State *L, const char *expression) {
    char chunk[4096];
    snprintf(chunk, sizeof chunk, "return %s", expression);
    if (luaL_dostring(L, chunk) != LUA_OK)
        fail_msg("%s: %s", expression, lua_tostring(L, -1));
}

static int values_equal(lua_State *L, int a, int b) {
    int equal = lua_deep_equal(L, a, b);
    assert_true(equal >= 0);
    return equal;
}

/* Encodes the expression, decodes it, checks equality; returns the bytes (caller frees). */
static codec_buffer round_trip(lua_State *L, const char *expression) {
    int top = lua_gettop(L);
    push_expression(L, expression);
    codec_buffer buffer;
    char err[256];
    int rc = codec_encode(L, -1, NULL, NULL, &buffer, err, sizeof err);
    if (rc)
        fail_msg("encode %s: %s", expression, err);
    assert_int_equal(lua_gettop(L), top + 1);
    rc = codec_decode(L, buffer.data, buffer.size, NULL, err, sizeof err);
    if (rc)
        fail_msg("decode %s: %s", expression, err);
    assert_int_equal(lua_gettop(L), top + 2);
    if (!values_equal(L, -1, -2))
        fail_msg("%s did not survive the round trip", expression);
    lua_settop(L, top);
    return buffer;
}

static void assert_round_trips(lua_State *L, const char *expression) {
    codec_buffer buffer = round_trip(L, expression);
    codec_buffer_free(&buffer);
}

/* Encodes the expression expecting a refusal with exactly `message`. */
static void assert_refused(lua_State *L, const char *expression, int status, const char *message) {
    int top = lua_gettop(L);
    push_expression(L, expression);
    codec_buffer buffer;
    char err[512];
    int rc = codec_encode(L, -1, NULL, NULL, &buffer, err, sizeof err);
    assert_int_equal(rc, status);
    assert_null(buffer.data);
    assert_int_equal(buffer.size, 0);
    if (strcmp(err, message) != 0)
        fail_msg("%s: got \"%s\", expected \"%s\"", expression, err, message);
    assert_int_equal(lua_gettop(L), top + 1);
    lua_settop(L, top);
}

/* Decodes bytes expecting a refusal whose message contains `fragment`; nothing left pushed. */
static void assert_decode_refused(lua_State *L, const void *data, size_t size, int status,
                                  const char *fragment) {
    int top = lua_gettop(L);
    char err[256];
    int rc = codec_decode(L, data, size, NULL, err, sizeof err);
    if (rc != status)
        fail_msg("expected %d, got %d (%s)", status, rc, err);
    assert_int_equal(lua_gettop(L), top);
    if (!strstr(err, fragment))
        fail_msg("\"%s\" does not say \"%s\"", err, fragment);
}

/* ---------------------------------------------------------------------------------------------- */
/* Round trips                                                                                    */
/* ---------------------------------------------------------------------------------------------- */

static void test_every_scalar_type_round_trips(void **state) {
    (void)state;
    lua_State *L = new_state();
    const char *values[] = {"nil",
                            "true",
                            "false",
                            "0",
                            "1",
                            "-1",
                            "127",
                            "128",
                            "-32",
                            "-33",
                            "65535",
                            "65536",
                            "-2147483649",
                            "math.maxinteger",
                            "math.mininteger",
                            "0.5",
                            "-0.0",
                            "1e300",
                            "math.huge",
                            "-math.huge",
                            "0/0",
                            "''",
                            "'hello'",
                            "string.rep('x', 70000)"};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
        assert_round_trips(L, values[i]);
    lua_close(L);
}

static void test_integers_and_floats_stay_apart(void **state) {
    (void)state;
    lua_State *L = new_state();
    codec_buffer one = round_trip(L, "1");
    codec_buffer one_float = round_trip(L, "1.0");
    assert_int_equal(one.size, 1);
    assert_int_equal((unsigned char)one.data[0], 0x01);
    assert_int_equal(one_float.size, 9);
    assert_int_equal((unsigned char)one_float.data[0], 0xcb);
    codec_buffer_free(&one);
    codec_buffer_free(&one_float);
    assert_round_trips(L, "{1, 1.0, 2.5, -0.0, math.maxinteger, 2^63}");
    /* as keys: Lua keeps 1.5 and 2^63 as float keys, 1 and -7 as integer keys */
    assert_round_trips(L,
                       "{[1] = 'i', [1.5] = 'f', [2^63] = 'big', [-7] = 'n', [-2^63 - 2^11]= 'x'}");
    lua_close(L);
}

static void test_strings_keep_nul_and_every_byte_value(void **state) {
    (void)state;
    lua_State *L = new_state();
    char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    lua_pushlstring(L, all, sizeof all);
    codec_buffer buffer;
    assert_int_equal(codec_encode(L, -1, NULL, NULL, &buffer, NULL, 0), 0);
    assert_int_equal(codec_decode(L, buffer.data, buffer.size, NULL, NULL, 0), 0);
    size_t len = 0;
    const char *s = lua_tolstring(L, -1, &len);
    assert_int_equal(len, 256);
    assert_memory_equal(s, all, 256);
    codec_buffer_free(&buffer);
    assert_round_trips(L, "'a\\0b\\0\\0'");
    assert_round_trips(L, "{['\\0'] = '\\0\\255', ['with space'] = 1}");
    lua_close(L);
}

static void test_empty_table_round_trips_as_an_empty_map(void **state) {
    (void)state;
    lua_State *L = new_state();
    codec_buffer buffer = round_trip(L, "{}");
    assert_int_equal(buffer.size, 1);
    assert_int_equal((unsigned char)buffer.data[0], 0x80);
    codec_buffer_free(&buffer);
    /* an empty array from elsewhere decodes to an empty table too */
    const unsigned char empty_array[] = {0x90};
    assert_int_equal(codec_decode(L, (const char *)empty_array, 1, NULL, NULL, 0), 0);
    assert_int_equal(lua_type(L, -1), LUA_TTABLE);
    assert_int_equal(lua_rawlen(L, -1), 0);
    lua_close(L);
}

static void test_arrays_sparse_arrays_and_mixed_tables_round_trip(void **state) {
    (void)state;
    lua_State *L = new_state();
    codec_buffer array = round_trip(L, "{10, 'b', true, 4.5, {}}");
    assert_int_equal((unsigned char)array.data[0], 0x95); /* fixarray of 5 */
    codec_buffer_free(&array);
    codec_buffer sparse = round_trip(L, "{[1] = 'a', [1000] = 'z'}");
    assert_int_equal((unsigned char)sparse.data[0], 0x82); /* fixmap of 2 */
    codec_buffer_free(&sparse);
    codec_buffer holes = round_trip(L, "{1, 2, nil, 4}");
    assert_int_equal((unsigned char)holes.data[0], 0x83);
    codec_buffer_free(&holes);
    codec_buffer from_two = round_trip(L, "{[2] = 'b', [3] = 'c'}");
    assert_int_equal((unsigned char)from_two.data[0], 0x82);
    codec_buffer_free(&from_two);
    codec_buffer mixed = round_trip(L, "{1, 2, x = 3, [true] = false}");
    assert_int_equal((unsigned char)mixed.data[0], 0x84);
    codec_buffer_free(&mixed);
    assert_round_trips(L, "{[0] = 0, [-1] = -1, 1}");
    assert_round_trips(L, "{a = {b = {c = {1, 2, {d = 'e'}}}}, list = {{}, {{}}, {x = {}}}}");
    /* a big array: 100000 elements, the array16/32 forms */
    assert_round_trips(L, "(function() local t = {} for i = 1, 100000 do t[i] = i * 2 end "
                          "return t end)()");
    /* a shared subtable is encoded twice */
    assert_round_trips(L, "(function() local s = {1} return {a = s, b = s, c = {s}} end)()");
    lua_close(L);
}

static void test_ids_round_trip_as_ext_type_1(void **state) {
    (void)state;
    lua_State *L = new_state();
    spool_id id = 0x0102030405060708ull;
    codec_push_id(L, id);
    codec_buffer buffer;
    assert_int_equal(codec_encode(L, -1, NULL, NULL, &buffer, NULL, 0), 0);
    const unsigned char expected[] = {0xd7, 0x01, 1, 2, 3, 4, 5, 6, 7, 8};
    assert_int_equal(buffer.size, sizeof expected);
    assert_memory_equal(buffer.data, expected, sizeof expected);
    assert_int_equal(codec_decode(L, buffer.data, buffer.size, NULL, NULL, 0), 0);
    spool_id back = 0;
    assert_true(codec_to_id(L, -1, &back));
    assert_true(back == id);
    assert_true(lua_compare(L, -1, -2, LUA_OPEQ)); /* __eq compares ids */
    codec_buffer_free(&buffer);
    /* inside a table, and ext 8 (non-canonical) is accepted too */
    lua_newtable(L);
    codec_push_id(L, 42);
    lua_setfield(L, -2, "to");
    lua_setglobal(L, "message");
    assert_round_trips(L, "message");
    const unsigned char ext8[] = {0xc7, 8, 1, 0, 0, 0, 0, 0, 0, 0, 9};
    assert_int_equal(codec_decode(L, (const char *)ext8, sizeof ext8, NULL, NULL, 0), 0);
    assert_true(codec_to_id(L, -1, &back));
    assert_true(back == 9);
    lua_close(L);
}

static void test_decode_accepts_bin_and_float32(void **state) {
    (void)state;
    lua_State *L = new_state();
    const unsigned char bin[] = {0xc4, 3, 'a', 0, 'b'};
    assert_int_equal(codec_decode(L, (const char *)bin, sizeof bin, NULL, NULL, 0), 0);
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(s, "a\0b", 3);
    const unsigned char f32[] = {0xca, 0x3f, 0xc0, 0, 0}; /* 1.5 */
    assert_int_equal(codec_decode(L, (const char *)f32, sizeof f32, NULL, NULL, 0), 0);
    assert_false(lua_isinteger(L, -1));
    assert_true(lua_tonumber(L, -1) == 1.5);
    lua_close(L);
}

/* ---------------------------------------------------------------------------------------------- */
/* Refusals with their path                                                                       */
/* ---------------------------------------------------------------------------------------------- */

static void push_nested(lua_State *L, int levels) {
    char expression[256];
    snprintf(expression, sizeof expression,
             "(function() local root = {} local t = root for i = 2, %d do local u = {} t[1] = u "
             "t = u end return root end)()",
             levels);
    push_expression(L, expression);
}

static void test_nesting_to_64_is_accepted_and_65_refused(void **state) {
    (void)state;
    lua_State *L = new_state();
    for (int levels = 63; levels <= 65; levels++) {
        push_nested(L, levels);
        codec_buffer buffer;
        char err[512];
        int rc = codec_encode(L, -1, NULL, NULL, &buffer, err, sizeof err);
        if (levels <= 64) {
            assert_int_equal(rc, 0);
            assert_int_equal(codec_decode(L, buffer.data, buffer.size, NULL, err, sizeof err), 0);
            assert_true(values_equal(L, -1, -2));
            lua_pop(L, 1);
            codec_buffer_free(&buffer);
        } else {
            assert_int_equal(rc, SPOOL_EINVAL);
            char expected[512] = "nested deeper than 64 tables at value";
            for (int i = 0; i < 64; i++)
                strcat(expected, "[1]");
            assert_string_equal(err, expected);
        }
        lua_pop(L, 1);
    }
    /* the decoder counts the same way: 64 nested arrays pass, 65 do not */
    unsigned char bytes[65];
    memset(bytes, 0x91, sizeof bytes);
    bytes[63] = 0x90;
    assert_int_equal(codec_decode(L, (const char *)bytes, 64, NULL, NULL, 0), 0);
    lua_pop(L, 1);
    bytes[63] = 0x91;
    bytes[64] = 0x90;
    assert_decode_refused(L, bytes, 65, SPOOL_EINVAL, "nested deeper than 64 at offset 64");
    /* and a lower limit is a lower limit */
    codec_limits limits = {.max_depth = 2};
    push_nested(L, 3);
    codec_buffer buffer;
    assert_int_equal(codec_encode(L, -1, NULL, &limits, &buffer, NULL, 0), SPOOL_EINVAL);
    limits.max_depth = CODEC_DEPTH_CEILING + 1;
    assert_int_equal(codec_encode(L, -1, NULL, &limits, &buffer, NULL, 0), SPOOL_EINVAL);
    lua_close(L);
}

static void test_cycles_are_refused_with_their_path(void **state) {
    (void)state;
    lua_State *L = new_state();
    assert_refused(L, "(function() local t = {} t.self = t return t end)()", SPOOL_EINVAL,
                   "cycle at value.self");
    assert_refused(L, "(function() local t = {a = {b = {}}} t.a.b.c = t return t end)()",
                   SPOOL_EINVAL, "cycle at value.a.b.c");
    assert_refused(L, "(function() local t = {{}, {}} t[2][1] = t[2] return t end)()", SPOOL_EINVAL,
                   "cycle at value[2][1]");
    assert_refused(L, "(function() local t = {} t[t] = 1 return t end)()", SPOOL_EINVAL,
                   "cannot copy a table as a table key at value");
    lua_close(L);
}

static int a_c_function(lua_State *L) {
    (void)L;
    return 0;
}

static void test_behaviour_is_refused_with_its_path(void **state) {
    (void)state;
    lua_State *L = new_state();
    assert_refused(L, "{handlers = {1, 2, {cb = print}}}", SPOOL_EINVAL,
                   "cannot copy a function at value.handlers[3].cb");
    assert_refused(L, "function() end", SPOOL_EINVAL, "cannot copy a function at value");
    assert_refused(L, "{co = coroutine.create(print)}", SPOOL_EINVAL,
                   "cannot copy a coroutine at value.co");
    assert_refused(L, "{conn = setmetatable({}, {})}", SPOOL_EINVAL,
                   "cannot copy a table with a metatable at value.conn");
    assert_refused(L, "{f = io.stdout}", SPOOL_EINVAL, "cannot copy a userdata at value.f");
    assert_refused(L, "{['not an identifier'] = {[2.5] = {[true] = {['end'] = print}}}}",
                   SPOOL_EINVAL,
                   "cannot copy a function at value[\"not an identifier\"][2.5][true][\"end\"]");
    assert_refused(L, "{[print] = 1}", SPOOL_EINVAL,
                   "cannot copy a function as a table key at value");
    assert_refused(L, "{x = {['a\"\\\\\\n'] = print}}", SPOOL_EINVAL,
                   "cannot copy a function at value.x[\"a\\\"\\\\\\10\"]");
    lua_pushlightuserdata(L, L);
    lua_setglobal(L, "light");
    assert_refused(L, "{light}", SPOOL_EINVAL, "cannot copy a light userdata at value[1]");
    lua_pushcfunction(L, a_c_function);
    lua_setglobal(L, "cfn");
    assert_refused(L, "{k = cfn}", SPOOL_EINVAL, "cannot copy a function at value.k");
    /* an 8-byte userdata that is not an id */
    *(uint64_t *)lua_newuserdatauv(L, 8, 0) = 1;
    lua_setglobal(L, "fake");
    assert_refused(L, "{id = fake}", SPOOL_EINVAL, "cannot copy a userdata at value.id");
    lua_close(L);
}

/* ---------------------------------------------------------------------------------------------- */
/* Limits and memory                                                                              */
/* ---------------------------------------------------------------------------------------------- */

static void test_a_100_mib_string_respects_the_limit_and_frees_its_memory(void **state) {
    (void)state;
    lua_State *L = new_state();
    counting count = {0};
    spool_allocator a = {counting_alloc, counting_free, &count};
    push_expression(L, "{big = string.rep('\\1', 100 * 1024 * 1024)}");
    codec_buffer buffer;
    char err[256];
    assert_int_equal(codec_encode(L, -1, &a, NULL, &buffer, err, sizeof err), SPOOL_EMSGSIZE);
    assert_string_equal(
        err, "string of 104857600 bytes exceeds the limit of 67108864 bytes at value.big");
    assert_int_equal(count.live_bytes, 0);
    assert_int_equal(count.live_blocks, 0);

    /* a raised string limit alone still meets the total limit */
    codec_limits limits = {.max_string = 200u << 20};
    assert_int_equal(codec_encode(L, -1, &a, &limits, &buffer, err, sizeof err), SPOOL_EMSGSIZE);
    assert_string_equal(err, "encoded value exceeds the limit of 67108864 bytes at value.big");
    assert_int_equal(count.live_bytes, 0);

    limits.max_total = 200u << 20;
    assert_int_equal(codec_encode(L, -1, &a, &limits, &buffer, err, sizeof err), 0);
    assert_true(count.live_bytes == buffer.capacity);
    assert_true(buffer.size > 100u << 20);
    assert_int_equal(codec_decode(L, buffer.data, buffer.size, NULL, err, sizeof err),
                     SPOOL_EMSGSIZE);
    assert_int_equal(lua_gettop(L), 1);
    assert_int_equal(codec_decode(L, buffer.data, buffer.size, &limits, err, sizeof err), 0);
    assert_true(values_equal(L, -1, -2));
    codec_buffer_free(&buffer);
    codec_buffer_free(&buffer); /* idempotent */
    assert_int_equal(count.live_bytes, 0);
    assert_int_equal(count.live_blocks, 0);
    assert_int_equal(count.bad_frees, 0);
    lua_close(L);
}

static void test_every_allocation_failure_is_enomem_and_leaks_nothing(void **state) {
    (void)state;
    lua_State *L = new_state();
    push_expression(L, "{s = string.rep('y', 5000), list = {1, 2, 3, {x = string.rep('z', 900)}}}");
    int succeeded = 0;
    for (size_t n = 1; n < 100 && !succeeded; n++) {
        counting count = {.fail_at = n};
        spool_allocator a = {counting_alloc, counting_free, &count};
        codec_buffer buffer;
        char err[256];
        int rc = codec_encode(L, -1, &a, NULL, &buffer, err, sizeof err);
        if (rc == 0) {
            succeeded = 1;
            codec_buffer_free(&buffer);
        } else {
            assert_int_equal(rc, SPOOL_ENOMEM);
            assert_null(buffer.data);
        }
        assert_int_equal(lua_gettop(L), 1);
        assert_int_equal(count.live_bytes, 0);
        assert_int_equal(count.bad_frees, 0);
    }
    assert_true(succeeded);
    lua_close(L);
}

static void test_string_limit_applies_to_decoding(void **state) {
    (void)state;
    lua_State *L = new_state();
    const unsigned char str[] = {0xa5, 'h', 'e', 'l', 'l', 'o'};
    codec_limits limits = {.max_string = 4};
    char err[256];
    assert_int_equal(codec_decode(L, (const char *)str, sizeof str, &limits, err, sizeof err),
                     SPOOL_EMSGSIZE);
    assert_string_equal(err, "string of 5 bytes at offset 0 exceeds the limit of 4");
    assert_int_equal(lua_gettop(L), 0);
    lua_close(L);
}

/* ---------------------------------------------------------------------------------------------- */
/* Hostile input                                                                                  */
/* ---------------------------------------------------------------------------------------------- */

static void test_every_truncated_prefix_is_refused_cleanly(void **state) {
    (void)state;
    lua_State *L = new_state();
    lua_newtable(L);
    codec_push_id(L, 77);
    lua_setfield(L, -2, "id");
    lua_setglobal(L, "with_id");
    codec_buffer buffer =
        round_trip(L, "{1, -200, 70000, -5000000000, 2.5, 'short', string.rep('s', 300), "
                      "{a = true, b = false, [3.5] = {}}, with_id, {[1000] = 'sparse'}}");
    for (size_t prefix = 0; prefix < buffer.size; prefix++) {
        char err[256];
        int rc = codec_decode(L, buffer.data, prefix, NULL, err, sizeof err);
        if (rc != SPOOL_EINVAL)
            fail_msg("prefix %zu of %zu: %d", prefix, buffer.size, rc);
        assert_int_equal(lua_gettop(L), 0);
        assert_true(strstr(err, "truncated") != NULL);
    }
    /* the whole buffer, of course, decodes */
    assert_int_equal(codec_decode(L, buffer.data, buffer.size, NULL, NULL, 0), 0);
    codec_buffer_free(&buffer);
    lua_close(L);
}

static void test_a_map_claiming_2_to_the_32_entries_allocates_nothing(void **state) {
    (void)state;
    lua_State *L = lua_newstate(counting_lua_alloc, NULL);
    assert_non_null(L);
    const unsigned char map[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
    const unsigned char array[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x01};
    const unsigned char str[] = {0xdb, 0xff, 0xff, 0xff, 0xf0};
    size_t before = lua_allocations;
    char err[256];
    assert_int_equal(codec_decode(L, (const char *)map, sizeof map, NULL, err, sizeof err),
                     SPOOL_EINVAL);
    assert_string_equal(err,
                        "truncated: a map of 4294967295 entries at offset 0, only 0 bytes left");
    assert_decode_refused(L, array, sizeof array, SPOOL_EINVAL, "an array of 4294967295 entries");
    assert_decode_refused(L, str, sizeof str, SPOOL_EMSGSIZE, "string of 4294967280 bytes");
    codec_limits big = {.max_string = (size_t)1 << 33};
    assert_int_equal(codec_decode(L, (const char *)str, sizeof str, &big, err, sizeof err),
                     SPOOL_EINVAL);
    assert_string_equal(err, "truncated: a string at offset 5 needs 4294967280 bytes, 0 left");
    assert_int_equal(lua_allocations, before);
    assert_int_equal(lua_gettop(L), 0);
    lua_close(L);
}

static void test_trailing_bytes_are_refused(void **state) {
    (void)state;
    lua_State *L = new_state();
    const unsigned char two[] = {0x01, 0x02};
    assert_decode_refused(L, two, sizeof two, SPOOL_EINVAL,
                          "trailing bytes: the value ends at offset 1 of 2");
    const unsigned char map[] = {0x81, 0xa1, 'k', 0xc3, 0xc0};
    assert_decode_refused(L, map, sizeof map, SPOOL_EINVAL, "ends at offset 4 of 5");
    lua_close(L);
}

static void test_keys_lua_cannot_use_and_unknown_types_are_refused(void **state) {
    (void)state;
    lua_State *L = new_state();
    const unsigned char nil_key[] = {0x81, 0xc0, 0x01};
    assert_decode_refused(L, nil_key, sizeof nil_key, SPOOL_EINVAL, "nil map key at offset 1");
    const unsigned char nan_key[] = {0x81, 0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0, 0x01};
    assert_decode_refused(L, nan_key, sizeof nan_key, SPOOL_EINVAL, "NaN map key at offset 1");
    const unsigned char nan32_key[] = {0x81, 0xca, 0x7f, 0xc0, 0, 0, 0x01};
    assert_decode_refused(L, nan32_key, sizeof nan32_key, SPOOL_EINVAL, "NaN map key");
    const unsigned char integral_key[] = {0x81, 0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0x01};
    assert_decode_refused(L, integral_key, sizeof integral_key, SPOOL_EINVAL,
                          "float map key 1 at offset 1 has an integer value");
    const unsigned char table_key[] = {0x81, 0x90, 0x01};
    assert_decode_refused(L, table_key, sizeof table_key, SPOOL_EINVAL,
                          "an array as a map key at offset 1");
    const unsigned char id_key[] = {0x81, 0xd7, 0x01, 0, 0, 0, 0, 0, 0, 0, 1, 0x01};
    assert_decode_refused(L, id_key, sizeof id_key, SPOOL_EINVAL, "as a map key at offset 1");
    const unsigned char duplicate[] = {0x82, 0xa1, 'k', 0x01, 0xa1, 'k', 0x02};
    assert_decode_refused(L, duplicate, sizeof duplicate, SPOOL_EINVAL,
                          "duplicate map key at offset 4");
    const unsigned char ext2[] = {0xd7, 0x02, 0, 0, 0, 0, 0, 0, 0, 1};
    assert_decode_refused(L, ext2, sizeof ext2, SPOOL_EINVAL,
                          "unknown ext type 2 of 8 bytes at offset 0");
    const unsigned char ext1_short[] = {0xd6, 0x01, 0, 0, 0, 1};
    assert_decode_refused(L, ext1_short, sizeof ext1_short, SPOOL_EINVAL, "unknown ext type 1");
    const unsigned char huge_uint[] = {0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0};
    assert_decode_refused(L, huge_uint, sizeof huge_uint, SPOOL_EINVAL,
                          "unsigned integer 9223372036854775808 at offset 0 does not fit");
    const unsigned char c1[] = {0x91, 0xc1};
    assert_decode_refused(L, c1, sizeof c1, SPOOL_EINVAL, "never-used byte 0xc1 at offset 1");
    assert_decode_refused(L, "", 0, SPOOL_EINVAL, "truncated: a value at offset 0");
    codec_limits small = {.max_total = 1};
    assert_int_equal(codec_decode(L, (const char *)c1, sizeof c1, &small, NULL, 0), SPOOL_EMSGSIZE);
    /* the largest uint that fits and int64 minimum are fine */
    const unsigned char max_uint[] = {0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(codec_decode(L, (const char *)max_uint, sizeof max_uint, NULL, NULL, 0), 0);
    assert_true(lua_tointeger(L, -1) == INT64_MAX);
    lua_close(L);
}

static void test_lua_out_of_memory_is_enomem_and_leaves_the_stack(void **state) {
    (void)state;
    lua_State *L = lua_newstate(counting_lua_alloc, NULL);
    assert_non_null(L);
    lua_createtable(L, 0, 0);
    lua_pushstring(L, "a string that Lua has to allocate while decoding");
    lua_setfield(L, -2, "some key that is long enough not to be interned early");
    codec_buffer buffer;
    assert_int_equal(codec_encode(L, -1, NULL, NULL, &buffer, NULL, 0), 0);
    lua_settop(L, 0);
    lua_pushinteger(L, 7);
    lua_refuse_growth = 1;
    char err[256];
    assert_int_equal(codec_decode(L, buffer.data, buffer.size, NULL, err, sizeof err),
                     SPOOL_ENOMEM);
    lua_refuse_growth = 0;
    assert_non_null(strstr(err, "not enough memory"));
    assert_int_equal(lua_gettop(L), 1);
    assert_int_equal(lua_tointeger(L, 1), 7);
    assert_int_equal(codec_decode(L, buffer.data, buffer.size, NULL, err, sizeof err), 0);
    assert_int_equal(lua_gettop(L), 2);
    codec_buffer_free(&buffer);
    lua_close(L);
}

static uint64_t next_random(uint64_t *s) {
    /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void test_random_bytes_never_crash(void **state) {
    (void)state;
    lua_State *L = new_state();
    const char *seed_text = getenv("SPOOL_SEED");
    uint64_t seed = seed_text ? strtoull(seed_text, NULL, 0) : 20240601;
    uint64_t s = seed;
    codec_limits limits = {.max_depth = 16, .max_total = 4096, .max_string = 1024};
    long rounds = support_stress(100000);
    long decoded = 0;
    unsigned char bytes[96];
    for (long round = 0; round < rounds; round++) {
        size_t size = next_random(&s) % sizeof bytes;
        for (size_t i = 0; i < size; i++) {
            uint64_t r = next_random(&s);
            /* bias towards containers and small headers so some inputs are valid */
            bytes[i] =
                (r & 3) == 0 ? (unsigned char)(0x80 | ((r >> 8) & 0x1f)) : (unsigned char)(r >> 16);
        }
        char err[256];
        int rc = codec_decode(L, (const char *)bytes, size, &limits, err, sizeof err);
        if (rc == 0) {
            decoded++;
            lua_pop(L, 1);
        } else if (rc != SPOOL_EINVAL && rc != SPOOL_EMSGSIZE) {
            fail_msg("seed %llu round %ld: %d %s", (unsigned long long)seed, round, rc, err);
        }
        if (lua_gettop(L) != 0)
            fail_msg("seed %llu round %ld: stack left at %d", (unsigned long long)seed, round,
                     lua_gettop(L));
    }
    print_message("random: %ld of %ld buffers decoded (seed %llu)\n", decoded, rounds,
                  (unsigned long long)seed);
    lua_close(L);
}

/* The round-trip tests lean on lua_deep_equal: it must tell different values apart. */
static void test_deep_equal_tells_values_apart(void **state) {
    (void)state;
    lua_State *L = new_state();
    static const char *const pairs[][3] = {
        /* a, b, equal? */
        {"1", "1.0", "no"},
        {"0/0", "0/0", "yes"},
        {"{a = 1}", "{a = 1, b = 2}", "no"},
        {"{a = 1, b = 2}", "{a = 1}", "no"},
        {"{1, {2, 'x'}}", "{1, {2, 'x'}}", "yes"},
        {"{1, {2, 'x'}}", "{1, {2, 'y'}}", "no"},
        {"'a\\0b'", "'a\\0c'", "no"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        push_expression(L, pairs[i][0]);
        push_expression(L, pairs[i][1]);
        int expected = pairs[i][2][0] == 'y';
        if (values_equal(L, -2, -1) != expected)
            fail_msg("deep_equal(%s, %s) should be %s", pairs[i][0], pairs[i][1], pairs[i][2]);
        lua_pop(L, 2);
    }
    lua_close(L);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deep_equal_tells_values_apart),
        cmocka_unit_test(test_every_scalar_type_round_trips),
        cmocka_unit_test(test_integers_and_floats_stay_apart),
        cmocka_unit_test(test_strings_keep_nul_and_every_byte_value),
        cmocka_unit_test(test_empty_table_round_trips_as_an_empty_map),
        cmocka_unit_test(test_arrays_sparse_arrays_and_mixed_tables_round_trip),
        cmocka_unit_test(test_ids_round_trip_as_ext_type_1),
        cmocka_unit_test(test_decode_accepts_bin_and_float32),
        cmocka_unit_test(test_nesting_to_64_is_accepted_and_65_refused),
        cmocka_unit_test(test_cycles_are_refused_with_their_path),
        cmocka_unit_test(test_behaviour_is_refused_with_its_path),
        cmocka_unit_test(test_a_100_mib_string_respects_the_limit_and_frees_its_memory),
        cmocka_unit_test(test_every_allocation_failure_is_enomem_and_leaks_nothing),
        cmocka_unit_test(test_string_limit_applies_to_decoding),
        cmocka_unit_test(test_every_truncated_prefix_is_refused_cleanly),
        cmocka_unit_test(test_a_map_claiming_2_to_the_32_entries_allocates_nothing),
        cmocka_unit_test(test_trailing_bytes_are_refused),
        cmocka_unit_test(test_keys_lua_cannot_use_and_unknown_types_are_refused),
        cmocka_unit_test(test_lua_out_of_memory_is_enomem_and_leaves_the_stack),
        cmocka_unit_test(test_random_bytes_never_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
