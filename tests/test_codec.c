/*
 * test_codec.c - cmocka tests of interp/codec*.c: every Lua type round-trips (integers and floats
 * apart, strings byte for byte, tables of every shape, ids), what cannot be copied is refused with
 * its path, limits hold, and the decoder survives truncated, lying and random input. Values mode
 * (an argument list as one array after the caller's front bytes) and the hooks that carry
 * behaviour as ext values are held to the same.
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

/* ---------------------------------------------------------------------------------------------- */
/* Values mode (codec_encode_values, codec_decode_values) and hooks                               */
/* ---------------------------------------------------------------------------------------------- */

#define TEST_HANDLE_METATABLE "test.handle"
#define TEST_EXT_HANDLE 5

/* Pushes a test handle: a userdata of `len` bytes (seed, seed + 17, ...) with the test metatable.
 * The encode hook below writes its bytes as the payload of an ext of type 5. */
static void push_handle(lua_State *L, unsigned char seed, size_t len) {
    unsigned char *bytes = lua_newuserdatauv(L, len, 0);
    for (size_t i = 0; i < len; i++)
        bytes[i] = (unsigned char)(seed + i * 17);
    luaL_newmetatable(L, TEST_HANDLE_METATABLE); /* created once, then found */
    lua_setmetatable(L, -2);
}

/* What the test hooks do and what they saw. */
typedef struct test_hooks {
    int encode_calls;
    int accepts_calls;
    int decode_calls;
    int decline;      /* encode: return non-zero for everything */
    int any_length;   /* accepts: type 5 of any length (else exactly 16) */
    int accept_ids;   /* accepts: type 1 of 8 bytes too */
    int raise;        /* decode: 1 luaL_error, 2 lua_error with a table, 3 a Lua memory error */
    int raise_after;  /* decode: raise on the call after this many calls */
    int encode_raise; /* encode: luaL_error */
} test_hooks;

static int test_hook_encode(void *user, lua_State *L, int index, int8_t *type,
                            char payload[CODEC_HOOK_PAYLOAD_MAX], uint32_t *len) {
    test_hooks *h = user;
    h->encode_calls++;
    if (h->encode_raise)
        luaL_error(L, "the encode hook gives up");
    if (h->decline || !luaL_testudata(L, index, TEST_HANDLE_METATABLE))
        return -1;
    size_t size = lua_rawlen(L, index);
    memcpy(payload, lua_touserdata(L, index),
           size < CODEC_HOOK_PAYLOAD_MAX ? size : CODEC_HOOK_PAYLOAD_MAX);
    *type = TEST_EXT_HANDLE;
    *len = (uint32_t)size; /* above CODEC_HOOK_PAYLOAD_MAX on purpose in one test */
    return 0;
}

static int test_hook_accepts(void *user, int8_t type, const char *payload, uint32_t len) {
    test_hooks *h = user;
    (void)payload;
    h->accepts_calls++;
    if (type == TEST_EXT_HANDLE)
        return h->any_length || len == 16;
    return h->accept_ids && type == CODEC_EXT_ID && len == 8;
}

/* Pushes a marker {ext = type, payload = "the bytes"} (or raises, as told). */
static void test_hook_decode(void *user, lua_State *L, int8_t type, const char *payload,
                             uint32_t len) {
    test_hooks *h = user;
    h->decode_calls++;
    if (h->raise && h->decode_calls > h->raise_after) {
        if (h->raise == 1)
            luaL_error(L, "the decode hook gives up on type %d", (int)type);
        if (h->raise == 2) {
            lua_newtable(L);
            lua_error(L);
        }
        lua_refuse_growth = 1; /* the state must come from counting_lua_alloc */
        lua_newuserdatauv(L, 1 << 16, 0);
        lua_refuse_growth = 0; /* not reached */
    }
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, type);
    lua_setfield(L, -2, "ext");
    lua_pushlstring(L, payload, len);
    lua_setfield(L, -2, "payload");
}

static codec_hooks make_hooks(test_hooks *h) {
    return (codec_hooks){test_hook_encode, test_hook_accepts, test_hook_decode, h, 0, NULL, NULL};
}

/* The value at `index` is the decode hook's marker for (type, payload, len). */
static void assert_marker(lua_State *L, int index, int type, const void *payload, size_t len) {
    index = lua_absindex(L, index);
    assert_int_equal(lua_type(L, index), LUA_TTABLE);
    assert_int_equal(lua_getfield(L, index, "ext"), LUA_TNUMBER);
    assert_int_equal(lua_tointeger(L, -1), type);
    assert_int_equal(lua_getfield(L, index, "payload"), LUA_TSTRING);
    size_t got = 0;
    const char *s = lua_tolstring(L, -1, &got);
    assert_int_equal(got, len);
    if (len)
        assert_memory_equal(s, payload, len);
    lua_pop(L, 2);
}

/* Pushes the values of a Lua expression list ("1, nil, 'x'"); returns how many. */
static int push_values(lua_State *L, const char *list) {
    int top = lua_gettop(L);
    char chunk[4096];
    snprintf(chunk, sizeof chunk, "return %s", list);
    if (luaL_loadstring(L, chunk) != LUA_OK || lua_pcall(L, 0, LUA_MULTRET, 0) != LUA_OK)
        fail_msg("%s: %s", list, lua_tostring(L, -1));
    return lua_gettop(L) - top;
}

/* Encodes the `count` values on top of the stack after `front` bytes into *out (reused), decodes
 * them back with codec_decode_values and checks them one by one; the stack is left as it was. */
static void values_round_trip(lua_State *L, int count, size_t front, const codec_hooks *hooks,
                              codec_buffer *out) {
    int top = lua_gettop(L);
    int first = top - count + 1;
    char err[512];
    int rc = codec_encode_values(L, first, count, NULL, hooks, 1, front, out, err, sizeof err);
    if (rc)
        fail_msg("encode of %d values: %d %s", count, rc, err);
    assert_int_equal(lua_gettop(L), top);
    assert_true(out->size > front);
    assert_true(out->size <= out->capacity);
    int decoded = -1;
    rc = codec_decode_values(L, out->data + front, out->size - front, NULL, hooks, &decoded, err,
                             sizeof err);
    if (rc)
        fail_msg("decode of %d values: %d %s", count, rc, err);
    assert_int_equal(decoded, count);
    assert_int_equal(lua_gettop(L), top + count);
    for (int i = 0; i < count; i++)
        if (lua_type(L, first + i) != LUA_TUSERDATA && !values_equal(L, first + i, top + 1 + i))
            fail_msg("value %d of %d did not survive the round trip", i + 1, count);
    lua_settop(L, top);
}

/* Encodes the values of `list` in values mode (label_base) expecting exactly `message`. */
static void assert_values_refused(lua_State *L, const char *list, int label_base,
                                  const codec_hooks *hooks, int status, const char *message) {
    int top = lua_gettop(L);
    int count = push_values(L, list);
    codec_buffer out = {0};
    char err[512];
    int rc =
        codec_encode_values(L, top + 1, count, NULL, hooks, label_base, 0, &out, err, sizeof err);
    if (rc != status || strcmp(err, message) != 0)
        fail_msg("%s: got %d \"%s\", expected %d \"%s\"", list, rc, err, status, message);
    assert_int_equal(lua_gettop(L), top + count);
    codec_buffer_free(&out);
    lua_settop(L, top);
}

/* codec_decode_values expecting a refusal that says `fragment`; the stack must not move. */
static void assert_values_decode_refused(lua_State *L, const void *data, size_t size,
                                         const codec_hooks *hooks, int status,
                                         const char *fragment) {
    int top = lua_gettop(L);
    char err[256] = "";
    int count = -1;
    int rc = codec_decode_values(L, data, size, NULL, hooks, &count, err, sizeof err);
    if (rc != status)
        fail_msg("expected %d, got %d (%s)", status, rc, err);
    assert_int_equal(lua_gettop(L), top);
    assert_int_equal(count, 0);
    if (!strstr(err, fragment))
        fail_msg("\"%s\" does not say \"%s\"", err, fragment);
}

static void test_values_round_trip_none_one_and_many_keeping_every_nil(void **state) {
    (void)state;
    lua_State *L = new_state();
    lua_pushinteger(L, 99); /* something below, that must stay */
    codec_buffer out = {0};

    /* no values: an empty array */
    char err[256];
    assert_int_equal(codec_encode_values(L, 0, 0, NULL, NULL, 1, 0, &out, err, sizeof err), 0);
    assert_int_equal(out.size, 1);
    assert_int_equal((unsigned char)out.data[0], 0x90);
    int count = -1;
    assert_int_equal(
        codec_decode_values(L, out.data, out.size, NULL, NULL, &count, err, sizeof err), 0);
    assert_int_equal(count, 0);
    assert_int_equal(lua_gettop(L), 1);

    /* one value */
    values_round_trip(L, push_values(L, "42"), 0, NULL, &out);
    const unsigned char one[] = {0x91, 42};
    assert_int_equal(out.size, sizeof one);
    assert_memory_equal(out.data, one, sizeof one);

    /* nils in the middle and at both ends: the count is kept, not the Lua length */
    values_round_trip(L, push_values(L, "nil, 1, nil, nil, 'x', nil"), 0, NULL, &out);
    const unsigned char nils[] = {0x96, 0xc0, 0x01, 0xc0, 0xc0, 0xa1, 'x', 0xc0};
    assert_int_equal(out.size, sizeof nils);
    assert_memory_equal(out.data, nils, sizeof nils);
    values_round_trip(L, push_values(L, "nil"), 0, NULL, &out);

    /* every type, one after another */
    codec_push_id(L, 0x1122334455667788ull);
    lua_setglobal(L, "an_id");
    values_round_trip(L,
                      push_values(L, "true, false, -7, 2^53, 0.5, 0/0, math.mininteger, '', "
                                     "'a\\0b', {}, {1, nil, 3}, {a = {b = {1, 2}}, [2.5] = "
                                     "false}, an_id, string.rep('s', 70000)"),
                      0, NULL, &out);
    int n = push_values(L, "1, an_id, 'z'");
    assert_int_equal(codec_encode_values(L, -n, n, NULL, NULL, 1, 0, &out, err, sizeof err), 0);
    assert_int_equal(
        codec_decode_values(L, out.data, out.size, NULL, NULL, &count, err, sizeof err), 0);
    assert_int_equal(count, 3);
    spool_id id = 0;
    assert_true(codec_to_id(L, -2, &id));
    assert_true(id == 0x1122334455667788ull);
    lua_settop(L, 1);

    /* 300 values: the array 16 form */
    lua_checkstack(L, 300);
    for (int i = 0; i < 300; i++)
        lua_pushinteger(L, i);
    values_round_trip(L, 300, 0, NULL, &out);
    assert_int_equal((unsigned char)out.data[0], 0xdc);
    lua_settop(L, 1);

    assert_int_equal(lua_tointeger(L, 1), 99);
    codec_buffer_free(&out);
    lua_close(L);
}

static void test_values_leave_the_front_bytes_to_the_caller(void **state) {
    (void)state;
    lua_State *L = new_state();
    static const char header[] = "HEADER!"; /* 7 bytes and a NUL, which is not used */
    const size_t front = 7;
    codec_buffer out = {0};
    char err[256];

    /* a fresh buffer: room for the header, then the array; the caller writes the header after */
    int n = push_values(L, "1, 'ab'");
    assert_int_equal(codec_encode_values(L, 1, n, NULL, NULL, 1, front, &out, err, sizeof err), 0);
    const unsigned char array[] = {0x92, 0x01, 0xa2, 'a', 'b'};
    assert_int_equal(out.size, front + sizeof array);
    assert_memory_equal(out.data + front, array, sizeof array);
    memcpy(out.data, header, front);
    int count = 0;
    assert_int_equal(codec_decode_values(L, out.data + front, out.size - front, NULL, NULL, &count,
                                         err, sizeof err),
                     0);
    assert_int_equal(count, 2);
    lua_settop(L, 0);

    /* the header already in the reused block survives a smaller encode (same block) ... */
    const char *block = out.data;
    n = push_values(L, "true");
    assert_int_equal(codec_encode_values(L, 1, n, NULL, NULL, 1, front, &out, err, sizeof err), 0);
    assert_ptr_equal(out.data, block);
    assert_int_equal(out.size, front + 2);
    assert_memory_equal(out.data, header, front);
    assert_int_equal((unsigned char)out.data[front], 0x91);
    assert_int_equal((unsigned char)out.data[front + 1], 0xc3);
    lua_settop(L, 0);

    /* ... and one that has to grow the block (the bytes move with it) */
    size_t capacity = out.capacity;
    n = push_values(L, "string.rep('g', 5000), 7");
    assert_int_equal(codec_encode_values(L, 1, n, NULL, NULL, 1, front, &out, err, sizeof err), 0);
    assert_true(out.capacity > capacity);
    assert_memory_equal(out.data, header, front);
    /* 0x92, str 16 (3 bytes + 5000), 7 */
    assert_int_equal(out.size, front + 1 + 3 + 5000 + 1);
    lua_settop(L, 0);

    /* a front alone, no values */
    assert_int_equal(codec_encode_values(L, 0, 0, NULL, NULL, 1, front, &out, err, sizeof err), 0);
    assert_int_equal(out.size, front + 1);
    assert_memory_equal(out.data, header, front);
    assert_int_equal((unsigned char)out.data[front], 0x90);

    codec_buffer_free(&out);
    lua_close(L);
}

static void test_values_reuse_the_callers_block_and_leak_nothing(void **state) {
    (void)state;
    lua_State *L = new_state();
    counting count = {0};
    spool_allocator a = {counting_alloc, counting_free, &count};
    codec_buffer out = {NULL, 0, 0, &a};
    char err[256];

    int n = push_values(L, "1, 2, 3, 'some text'");
    assert_int_equal(codec_encode_values(L, 1, n, NULL, NULL, 1, 4, &out, err, sizeof err), 0);
    lua_settop(L, 0);
    assert_ptr_equal(out.allocator, &a);
    assert_int_equal(count.allocations, 1);
    assert_int_equal(count.live_blocks, 1);
    assert_true(count.live_bytes == out.capacity);
    const char *block = out.data;
    size_t capacity = out.capacity;

    /* smaller: the same block, nothing allocated */
    n = push_values(L, "true");
    assert_int_equal(codec_encode_values(L, 1, n, NULL, NULL, 1, 4, &out, err, sizeof err), 0);
    lua_settop(L, 0);
    assert_int_equal(out.size, 4 + 2);
    assert_ptr_equal(out.data, block);
    assert_int_equal(out.capacity, capacity);
    assert_int_equal(count.allocations, 1);

    /* larger: grown, the old block given back */
    n = push_values(L, "string.rep('L', 3000), {1, 2, 3}");
    assert_int_equal(codec_encode_values(L, 1, n, NULL, NULL, 1, 4, &out, err, sizeof err), 0);
    lua_settop(L, 0);
    assert_true(out.capacity >= out.size);
    assert_true(out.capacity > capacity);
    assert_int_equal(count.live_blocks, 1);
    assert_true(count.live_bytes == out.capacity);
    int decoded = 0;
    assert_int_equal(
        codec_decode_values(L, out.data + 4, out.size - 4, NULL, NULL, &decoded, err, sizeof err),
        0);
    assert_int_equal(decoded, 2);
    lua_settop(L, 0);

    /* a refused value keeps the block (the caller's), and the next encode uses it */
    block = out.data;
    capacity = out.capacity;
    n = push_values(L, "1, print");
    assert_int_equal(codec_encode_values(L, 1, n, NULL, NULL, 1, 4, &out, err, sizeof err),
                     SPOOL_EINVAL);
    lua_settop(L, 0);
    assert_ptr_equal(out.data, block);
    assert_int_equal(out.capacity, capacity);
    assert_int_equal(count.live_blocks, 1);
    n = push_values(L, "'again'");
    assert_int_equal(codec_encode_values(L, 1, n, NULL, NULL, 1, 4, &out, err, sizeof err), 0);
    lua_settop(L, 0);
    assert_ptr_equal(out.data, block);

    codec_buffer_free(&out);
    assert_int_equal(count.live_bytes, 0);
    assert_int_equal(count.live_blocks, 0);
    assert_int_equal(count.bad_frees, 0);

    /* every allocation failure, with and without a block to start from: ENOMEM, no leak, and
     * the caller's block still its own */
    push_values(L, "string.rep('y', 5000), {list = {1, 2, string.rep('z', 900)}}");
    for (int start_with_block = 0; start_with_block <= 1; start_with_block++) {
        int succeeded = 0;
        for (size_t fail = 1; fail < 50 && !succeeded; fail++) {
            counting failing = {0};
            spool_allocator fa = {counting_alloc, counting_free, &failing};
            codec_buffer buffer = {NULL, 0, 0, &fa};
            if (start_with_block) {
                lua_pushinteger(L, 1);
                assert_int_equal(
                    codec_encode_values(L, -1, 1, NULL, NULL, 1, 0, &buffer, err, sizeof err), 0);
                lua_pop(L, 1);
            }
            failing.fail_at = failing.allocations + fail;
            int rc = codec_encode_values(L, 1, 2, NULL, NULL, 1, 16, &buffer, err, sizeof err);
            if (rc == 0)
                succeeded = 1;
            else
                assert_int_equal(rc, SPOOL_ENOMEM);
            assert_int_equal(lua_gettop(L), 2);
            assert_int_equal(failing.live_blocks, buffer.data ? 1 : 0);
            codec_buffer_free(&buffer);
            assert_int_equal(failing.live_bytes, 0);
            assert_int_equal(failing.bad_frees, 0);
        }
        assert_true(succeeded);
    }
    lua_close(L);
}

static void test_values_errors_name_the_argument(void **state) {
    (void)state;
    lua_State *L = new_state();
    assert_values_refused(L, "10, print, 30", 2, NULL, SPOOL_EINVAL,
                          "cannot copy a function at argument 3");
    assert_values_refused(L, "'x', {handlers = {1, print}}", 1, NULL, SPOOL_EINVAL,
                          "cannot copy a function at argument 2.handlers[2]");
    assert_values_refused(L, "(function() local t = {} t.me = t return t end)()", 1, NULL,
                          SPOOL_EINVAL, "cycle at argument 1.me");
    assert_values_refused(L, "1, 2, (function() local t = {a = {}} t.a[1] = t return t end)()", 5,
                          NULL, SPOOL_EINVAL, "cycle at argument 7.a[1]");
    assert_values_refused(L, "coroutine.create(print)", 1, NULL, SPOOL_EINVAL,
                          "cannot copy a coroutine at argument 1");
    assert_values_refused(L, "nil, setmetatable({}, {})", 1, NULL, SPOOL_EINVAL,
                          "cannot copy a table with a metatable at argument 2");
    assert_values_refused(L, "{[{}] = 1}", 3, NULL, SPOOL_EINVAL,
                          "cannot copy a table as a table key at argument 3");
    assert_values_refused(L, "io.stdout", 1, NULL, SPOOL_EINVAL,
                          "cannot copy a userdata at argument 1");
    /* limits name the argument too */
    codec_limits small = {.max_string = 4, .max_total = 64};
    int before = lua_gettop(L);
    int n = push_values(L, "'ok', {s = 'too long'}");
    codec_buffer limited = {0};
    char words[256];
    assert_int_equal(
        codec_encode_values(L, before + 1, n, &small, NULL, 1, 0, &limited, words, sizeof words),
        SPOOL_EMSGSIZE);
    assert_string_equal(words, "string of 8 bytes exceeds the limit of 4 bytes at argument 2.s");
    small.max_string = 0;
    lua_pushstring(L, "a string of more than sixty-four bytes, which is the max_total here...");
    assert_int_equal(codec_encode_values(L, before + 1, n + 1, &small, NULL, 1, 0, &limited, words,
                                         sizeof words),
                     SPOOL_EMSGSIZE);
    assert_string_equal(words, "encoded value exceeds the limit of 64 bytes at argument 3");
    /* the front counts towards max_total */
    assert_int_equal(
        codec_encode_values(L, before + 1, 1, &small, NULL, 1, 64, &limited, words, sizeof words),
        SPOOL_EMSGSIZE);
    assert_non_null(strstr(words, "exceeds the limit of 64 bytes"));
    codec_buffer_free(&limited);
    lua_settop(L, before);
    /* the same table twice is not a cycle */
    int top = lua_gettop(L);
    push_expression(L, "{1, {2}}");
    lua_pushvalue(L, -1);
    codec_buffer out = {0};
    values_round_trip(L, 2, 0, NULL, &out);
    assert_int_equal(lua_gettop(L), top + 2);
    lua_settop(L, top);

    /* bad arguments */
    char err[64];
    assert_int_equal(codec_encode_values(L, 1, 0, NULL, NULL, 0, 0, &out, err, sizeof err),
                     SPOOL_EINVAL);
    assert_int_equal(codec_encode_values(L, 1, -1, NULL, NULL, 1, 0, &out, err, sizeof err),
                     SPOOL_EINVAL);
    assert_int_equal(codec_encode_values(L, 1, 0, NULL, NULL, 1, 0, NULL, err, sizeof err),
                     SPOOL_EINVAL);
    codec_limits too_deep = {.max_depth = CODEC_DEPTH_CEILING + 1};
    assert_int_equal(codec_encode_values(L, 1, 0, &too_deep, NULL, 1, 0, &out, err, sizeof err),
                     SPOOL_EINVAL);
    codec_buffer_free(&out);
    lua_close(L);
}

/* Bytes: `outer` (0x91: a values array of one) if non-zero, then `levels` nested arrays. */
static size_t nested_arrays(unsigned char *bytes, int outer, int levels) {
    size_t n = 0;
    if (outer)
        bytes[n++] = 0x91;
    for (int i = 0; i < levels; i++)
        bytes[n++] = i + 1 < levels ? 0x91 : 0x90;
    return n;
}

static void test_values_mode_nests_64_deep_like_codec_encode(void **state) {
    (void)state;
    lua_State *L = new_state();
    codec_buffer out = {0};
    char err[512];
    for (int levels = 63; levels <= 65; levels++) {
        push_nested(L, levels);
        lua_pushinteger(L, 1); /* a second argument: each counts its own depth */
        int rc = codec_encode_values(L, 1, 2, NULL, NULL, 1, 0, &out, err, sizeof err);
        if (levels <= 64) {
            if (rc)
                fail_msg("%d levels: %s", levels, err);
            int count = 0;
            assert_int_equal(
                codec_decode_values(L, out.data, out.size, NULL, NULL, &count, err, sizeof err), 0);
            assert_int_equal(count, 2);
            assert_true(values_equal(L, 1, 3));
        } else {
            assert_int_equal(rc, SPOOL_EINVAL);
            assert_non_null(strstr(err, "nested deeper than"));
            assert_non_null(strstr(err, " at argument 1[1]"));
        }
        lua_settop(L, 0);
    }
    /* the decoder: 64 nested arrays inside the array of values pass, 65 do not */
    unsigned char bytes[80];
    int count = 0;
    size_t size = nested_arrays(bytes, 1, 64);
    assert_int_equal(
        codec_decode_values(L, (const char *)bytes, size, NULL, NULL, &count, err, sizeof err), 0);
    assert_int_equal(count, 1);
    lua_settop(L, 0);
    size = nested_arrays(bytes, 1, 65);
    assert_values_decode_refused(L, bytes, size, NULL, SPOOL_EINVAL, "at offset 65");
    /* a lower limit is the same lower limit for each argument */
    codec_limits limits = {.max_depth = 2};
    push_nested(L, 2);
    push_nested(L, 2);
    assert_int_equal(codec_encode_values(L, 1, 2, &limits, NULL, 1, 0, &out, err, sizeof err), 0);
    assert_int_equal(
        codec_decode_values(L, out.data, out.size, &limits, NULL, &count, err, sizeof err), 0);
    assert_int_equal(count, 2);
    push_nested(L, 3);
    assert_int_equal(codec_encode_values(L, 5, 1, &limits, NULL, 1, 0, &out, err, sizeof err),
                     SPOOL_EINVAL);
    lua_settop(L, 0);
    size = nested_arrays(bytes, 1, 3);
    assert_int_equal(
        codec_decode_values(L, (const char *)bytes, size, &limits, NULL, &count, err, sizeof err),
        SPOOL_EINVAL);
    assert_int_equal(lua_gettop(L), 0);
    codec_buffer_free(&out);
    lua_close(L);
}

/* The limit in a depth error is the caller's (64), as codec_encode and codec_decode say it: the
 * array of values is not the caller's nesting, so it must not show up in the words either. */
static void test_values_mode_depth_errors_name_the_callers_limit(void **state) {
    (void)state;
    lua_State *L = new_state();
    codec_buffer out = {0};
    char encode_err[512], decode_err[256], plain_err[512];
    push_nested(L, 65);
    assert_int_equal(codec_encode(L, 1, NULL, NULL, &out, plain_err, sizeof plain_err),
                     SPOOL_EINVAL);
    assert_int_equal(
        codec_encode_values(L, 1, 1, NULL, NULL, 1, 0, &out, encode_err, sizeof encode_err),
        SPOOL_EINVAL);
    lua_settop(L, 0);
    char expected_encode[512] = "nested deeper than 64 tables at argument 1";
    for (int i = 0; i < 64; i++)
        strcat(expected_encode, "[1]");
    unsigned char bytes[80];
    size_t size = nested_arrays(bytes, 1, 65);
    int count = 0;
    assert_int_equal(codec_decode_values(L, (const char *)bytes, size, NULL, NULL, &count,
                                         decode_err, sizeof decode_err),
                     SPOOL_EINVAL);
    const char *expected_decode = "nested deeper than 64 at offset 65";
    codec_buffer_free(&out);
    lua_close(L);
    if (strcmp(encode_err, expected_encode) != 0 || strcmp(decode_err, expected_decode) != 0)
        fail_msg("codec_encode says \"%s\"; codec_encode_values says \"%s\", expected \"%s\"; "
                 "codec_decode_values says \"%s\", expected \"%s\"",
                 plain_err, encode_err, expected_encode, decode_err, expected_decode);
}

static void test_hooks_carry_a_userdata_as_ext_5_and_back(void **state) {
    (void)state;
    lua_State *L = new_state();
    test_hooks h = {0};
    codec_hooks hooks = make_hooks(&h);
    codec_buffer out = {0};
    char err[256];

    lua_pushinteger(L, 1);
    push_handle(L, 3, 16);
    lua_pushstring(L, "x");
    lua_createtable(L, 0, 1);
    push_handle(L, 100, 16);
    lua_setfield(L, -2, "h");
    assert_int_equal(codec_encode_values(L, 1, 4, NULL, &hooks, 1, 2, &out, err, sizeof err), 0);
    assert_int_equal(h.encode_calls, 2);
    assert_int_equal(lua_gettop(L), 4);
    /* 0x94, 1, fixext 16 type 5 and the userdata's bytes, "x", {h = fixext 16} */
    const unsigned char *bytes = (const unsigned char *)out.data + 2;
    assert_int_equal(out.size, 2 + 1 + 1 + 18 + 2 + 1 + 2 + 18);
    assert_int_equal(bytes[0], 0x94);
    assert_int_equal(bytes[2], 0xd8);
    assert_int_equal(bytes[3], TEST_EXT_HANDLE);
    assert_memory_equal(bytes + 4, lua_touserdata(L, 2), 16);

    int count = 0;
    assert_int_equal(
        codec_decode_values(L, out.data + 2, out.size - 2, NULL, &hooks, &count, err, sizeof err),
        0);
    assert_int_equal(count, 4);
    assert_int_equal(h.decode_calls, 2);
    assert_true(h.accepts_calls >= 2);
    assert_int_equal(lua_tointeger(L, 5), 1);
    assert_marker(L, 6, TEST_EXT_HANDLE, lua_touserdata(L, 2), 16);
    assert_string_equal(lua_tostring(L, 7), "x");
    assert_int_equal(lua_getfield(L, 8, "h"), LUA_TTABLE);
    lua_getfield(L, 4, "h");
    assert_marker(L, -2, TEST_EXT_HANDLE, lua_touserdata(L, -1), 16);
    lua_settop(L, 0);

    /* other payload sizes take the other ext forms (fixext 1/2/4/8, ext 8) */
    h.any_length = 1;
    const size_t sizes[] = {0, 1, 2, 3, 4, 8, 15, 16};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        push_handle(L, (unsigned char)i, sizes[i]);
        assert_int_equal(codec_encode_values(L, 1, 1, NULL, &hooks, 1, 0, &out, err, sizeof err),
                         0);
        assert_int_equal(out.size, 1 +
                                       (sizes[i] == 1 || sizes[i] == 2 || sizes[i] == 4 ||
                                                sizes[i] == 8 || sizes[i] == 16
                                            ? 2
                                            : 3) +
                                       sizes[i]);
        assert_int_equal(
            codec_decode_values(L, out.data, out.size, NULL, &hooks, &count, err, sizeof err), 0);
        assert_int_equal(count, 1);
        assert_marker(L, 2, TEST_EXT_HANDLE, lua_touserdata(L, 1), sizes[i]);
        lua_settop(L, 0);
    }
    /* a hook that claims more than CODEC_HOOK_PAYLOAD_MAX bytes is refused */
    push_handle(L, 1, CODEC_HOOK_PAYLOAD_MAX + 1);
    assert_int_equal(codec_encode_values(L, 1, 1, NULL, &hooks, 4, 0, &out, err, sizeof err),
                     SPOOL_EINVAL);
    assert_string_equal(err, "ext payload of 97 bytes at argument 4");
    lua_settop(L, 0);

    /* hooks see no ids: an id stays ext 1 */
    int calls = h.encode_calls;
    codec_push_id(L, 0x0102030405060708ull);
    assert_int_equal(codec_encode_values(L, 1, 1, NULL, &hooks, 1, 0, &out, err, sizeof err), 0);
    assert_int_equal(h.encode_calls, calls);
    const unsigned char id[] = {0x91, 0xd7, 0x01, 1, 2, 3, 4, 5, 6, 7, 8};
    assert_int_equal(out.size, sizeof id);
    assert_memory_equal(out.data, id, sizeof id);
    lua_settop(L, 0);
    codec_buffer_free(&out);
    lua_close(L);
}

static void test_a_declining_hook_leaves_behaviour_refused(void **state) {
    (void)state;
    lua_State *L = new_state();
    test_hooks h = {.decline = 1};
    codec_hooks hooks = make_hooks(&h);
    push_handle(L, 1, 16);
    lua_setglobal(L, "handle");
    assert_values_refused(L, "1, handle", 1, &hooks, SPOOL_EINVAL,
                          "cannot copy a userdata at argument 2");
    assert_values_refused(L, "{f = print}", 1, &hooks, SPOOL_EINVAL,
                          "cannot copy a function at argument 1.f");
    assert_values_refused(L, "coroutine.create(print)", 2, &hooks, SPOOL_EINVAL,
                          "cannot copy a coroutine at argument 2");
    assert_values_refused(L, "{{m = setmetatable({}, {})}}", 1, &hooks, SPOOL_EINVAL,
                          "cannot copy a table with a metatable at argument 1[1].m");
    lua_pushlightuserdata(L, L);
    lua_setglobal(L, "light");
    assert_values_refused(L, "{1, light}", 1, &hooks, SPOOL_EINVAL,
                          "cannot copy a light userdata at argument 1[2]");
    assert_true(h.encode_calls == 5);
    assert_values_refused(L, "1, 2, light", 1, NULL, SPOOL_EINVAL,
                          "cannot copy a light userdata at argument 3");
    /* the hooks that accept handles still decline what is not one */
    h.decline = 0;
    assert_values_refused(L, "handle, io.stdout", 1, &hooks, SPOOL_EINVAL,
                          "cannot copy a userdata at argument 2");
    /* no hooks, or hooks without an encoder: as codec_encode */
    assert_values_refused(L, "handle", 1, NULL, SPOOL_EINVAL,
                          "cannot copy a userdata at argument 1");
    codec_hooks decode_only = {NULL, test_hook_accepts, test_hook_decode, &h, 0, NULL, NULL};
    assert_values_refused(L, "handle", 1, &decode_only, SPOOL_EINVAL,
                          "cannot copy a userdata at argument 1");
    /* a hook that raises is an error return, not a longjmp */
    h.encode_raise = 1;
    int top = lua_gettop(L);
    int n = push_values(L, "7, handle");
    codec_buffer out = {0};
    char err[256];
    int rc = codec_encode_values(L, top + 1, n, NULL, &hooks, 1, 0, &out, err, sizeof err);
    assert_int_equal(rc, SPOOL_EINVAL);
    if (!strstr(err, "the encode hook gives up"))
        fail_msg("\"%s\"", err);
    assert_int_equal(lua_gettop(L), top + n);
    codec_buffer_free(&out);
    lua_close(L);
}

static void test_ext_5_without_hooks_is_an_unknown_ext_type(void **state) {
    (void)state;
    lua_State *L = new_state();
    test_hooks h = {0};
    codec_hooks hooks = make_hooks(&h);
    codec_buffer out = {0};
    char err[256];
    lua_pushboolean(L, 1);
    push_handle(L, 9, 16);
    assert_int_equal(codec_encode_values(L, 1, 2, NULL, &hooks, 1, 0, &out, err, sizeof err), 0);
    lua_settop(L, 0);
    assert_values_decode_refused(L, out.data, out.size, NULL, SPOOL_EINVAL,
                                 "unknown ext type 5 of 16 bytes at offset 2");
    /* codec_decode has no hooks at all */
    assert_decode_refused(L, out.data + 2, out.size - 2, SPOOL_EINVAL,
                          "unknown ext type 5 of 16 bytes at offset 0");
    /* hooks that do not accept this length refuse it too, before building anything */
    const unsigned char eight[] = {0x92, 0x01, 0xd7, 0x05, 1, 2, 3, 4, 5, 6, 7, 8};
    assert_values_decode_refused(L, eight, sizeof eight, &hooks, SPOOL_EINVAL,
                                 "unknown ext type 5 of 8 bytes at offset 2");
    const unsigned char six[] = {0x91, 0xd8, 0x06, 0,  1,  2,  3,  4,  5, 6,
                                 7,    8,    9,    10, 11, 12, 13, 14, 15};
    assert_values_decode_refused(L, six, sizeof six, &hooks, SPOOL_EINVAL,
                                 "unknown ext type 6 of 16 bytes at offset 1");
    /* an ext is never a map key, hooks or not */
    const unsigned char key[] = {0x91, 0x81, 0xd8, 0x05, 0,  1,  2,  3,  4,  5,   6,
                                 7,    8,    9,    10,   11, 12, 13, 14, 15, 0x01};
    assert_values_decode_refused(L, key, sizeof key, &hooks, SPOOL_EINVAL,
                                 "as a map key at offset 2");
    assert_int_equal(h.decode_calls, 0);
    codec_buffer_free(&out);
    lua_close(L);
}

static void test_hooks_that_accept_ext_1_decode_ids(void **state) {
    (void)state;
    lua_State *L = new_state();
    test_hooks h = {0};
    codec_hooks hooks = make_hooks(&h);
    codec_buffer out = {0};
    char err[256];
    codec_push_id(L, 0x0102030405060708ull);
    lua_createtable(L, 0, 1);
    codec_push_id(L, 42);
    lua_setfield(L, -2, "to");
    assert_int_equal(codec_encode_values(L, 1, 2, NULL, &hooks, 1, 0, &out, err, sizeof err), 0);
    lua_settop(L, 0);

    /* hooks that do not claim type 1: ids as ever */
    int count = 0;
    assert_int_equal(
        codec_decode_values(L, out.data, out.size, NULL, &hooks, &count, err, sizeof err), 0);
    assert_int_equal(count, 2);
    spool_id id = 0;
    assert_true(codec_to_id(L, 1, &id));
    assert_true(id == 0x0102030405060708ull);
    assert_int_equal(h.decode_calls, 0);
    lua_settop(L, 0);

    /* hooks that do: the hook gets the 8 bytes */
    h.accept_ids = 1;
    assert_int_equal(
        codec_decode_values(L, out.data, out.size, NULL, &hooks, &count, err, sizeof err), 0);
    assert_int_equal(count, 2);
    assert_int_equal(h.decode_calls, 2);
    const unsigned char first[] = {1, 2, 3, 4, 5, 6, 7, 8};
    assert_marker(L, 1, CODEC_EXT_ID, first, 8);
    assert_int_equal(lua_getfield(L, 2, "to"), LUA_TTABLE);
    const unsigned char second[] = {0, 0, 0, 0, 0, 0, 0, 42};
    assert_marker(L, -1, CODEC_EXT_ID, second, 8);
    lua_settop(L, 0);
    codec_buffer_free(&out);
    lua_close(L);
}

static void test_hooked_truncated_prefixes_are_refused_and_never_read_past_the_end(void **state) {
    (void)state;
    lua_State *L = new_state();
    test_hooks h = {.any_length = 1};
    codec_hooks hooks = make_hooks(&h);
    codec_buffer out = {0};
    char err[256];
    push_handle(L, 1, 16);
    lua_pushstring(L, "between");
    push_handle(L, 2, 3);
    push_expression(L, "{a = 1, list = {2.5, 'y'}}");
    push_handle(L, 3, 16);
    lua_setfield(L, -2, "h");
    push_handle(L, 4, 0);
    assert_int_equal(codec_encode_values(L, 1, 5, NULL, &hooks, 1, 0, &out, err, sizeof err), 0);
    lua_settop(L, 0);
    int count = 0;
    assert_int_equal(
        codec_decode_values(L, out.data, out.size, NULL, &hooks, &count, err, sizeof err), 0);
    assert_int_equal(count, 5);
    lua_settop(L, 0);
    h.decode_calls = 0;

    /* each prefix in a block of exactly its size, so that a read past the end is one valgrind
     * and ASan see */
    for (size_t prefix = 0; prefix < out.size; prefix++) {
        char *copy = malloc(prefix ? prefix : 1);
        assert_non_null(copy);
        memcpy(copy, out.data, prefix);
        count = -1;
        int rc = codec_decode_values(L, copy, prefix, NULL, &hooks, &count, err, sizeof err);
        free(copy);
        if (rc != SPOOL_EINVAL)
            fail_msg("prefix %zu of %zu: %d", prefix, out.size, rc);
        assert_int_equal(lua_gettop(L), 0);
        assert_int_equal(count, 0);
        const char *expected = prefix == 0 ? "not an array" : "truncated";
        if (!strstr(err, expected))
            fail_msg("prefix %zu of %zu: \"%s\"", prefix, out.size, err);
    }
    assert_int_equal(h.decode_calls, 0);

    /* ext headers claiming more payload than there is, with hooks that accept any length */
    const unsigned char ext8[] = {0x91, 0xc7, 200, 0x05, 1, 2, 3, 4};
    const unsigned char ext16[] = {0x91, 0xc8, 0xff, 0xff, 0x05, 1, 2};
    const unsigned char ext32[] = {0x91, 0xc9, 0xff, 0xff, 0xff, 0xff, 0x05, 1};
    const unsigned char fixext16[] = {0x91, 0xd8, 0x05, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13};
    const struct {
        const unsigned char *bytes;
        size_t size;
        const char *message;
    } lies[] = {
        {ext8, sizeof ext8, "truncated: an ext payload at offset 4 needs 200 bytes, 4 left"},
        {ext16, sizeof ext16, "truncated: an ext payload at offset 5 needs 65535 bytes, 2 left"},
        {ext32, sizeof ext32,
         "truncated: an ext payload at offset 7 needs 4294967295 bytes, 1 left"},
        {fixext16, sizeof fixext16,
         "truncated: an ext payload at offset 3 needs 16 bytes, 13 left"},
    };
    for (size_t i = 0; i < sizeof lies / sizeof lies[0]; i++) {
        char *copy = malloc(lies[i].size);
        assert_non_null(copy);
        memcpy(copy, lies[i].bytes, lies[i].size);
        assert_values_decode_refused(L, copy, lies[i].size, &hooks, SPOOL_EINVAL, lies[i].message);
        free(copy);
    }
    assert_int_equal(h.decode_calls, 0);
    codec_buffer_free(&out);
    lua_close(L);
}

/* An accepts hook that says yes to type 5 on its first call only. */
static int test_hook_accepts_once(void *user, int8_t type, const char *payload, uint32_t len) {
    test_hooks *h = user;
    (void)payload;
    (void)len;
    return h->accepts_calls++ == 0 && type == TEST_EXT_HANDLE;
}

/* The decoder asks accepts() while validating; whatever accepts() answers later, a 1-byte ext of
 * type 5 must never be built as an id (8 bytes read from a 1-byte payload, past the input). The
 * input sits in a larger array so that the read past `size` is no undefined behaviour here. */
static void test_an_ext_validated_for_the_hooks_is_never_built_as_an_id(void **state) {
    (void)state;
    lua_State *L = new_state();
    test_hooks h = {0};
    codec_hooks hooks = {NULL, test_hook_accepts_once, test_hook_decode, &h, 0, NULL, NULL};
    unsigned char bytes[16];
    memset(bytes, 0xee, sizeof bytes);
    const unsigned char input[] = {0x91, 0xd4, TEST_EXT_HANDLE, 0xab}; /* [fixext 1, type 5] */
    memcpy(bytes, input, sizeof input);
    int count = -1;
    char err[256] = "";
    int rc = codec_decode_values(L, (const char *)bytes, sizeof input, NULL, &hooks, &count, err,
                                 sizeof err);
    spool_id id = 0;
    if (rc == 0 && codec_to_id(L, -1, &id)) {
        lua_close(L);
        fail_msg("accepts() asked %d times; a 1-byte ext of type 5 came back as the id "
                 "0x%016llx (7 bytes read past the input) and the decode hook was called %d times",
                 h.accepts_calls, (unsigned long long)id, h.decode_calls);
    }
    if (rc == 0) {
        assert_int_equal(count, 1);
        const unsigned char payload[] = {0xab};
        assert_marker(L, -1, TEST_EXT_HANDLE, payload, 1);
    } else {
        assert_int_equal(lua_gettop(L), 0);
    }
    lua_close(L);
}

static void test_decode_values_refuses_what_is_not_one_array_and_pushes_nothing(void **state) {
    (void)state;
    lua_State *L = new_state();
    lua_pushstring(L, "below");
    const unsigned char map[] = {0x81, 0xa1, 'k', 0x01};
    assert_values_decode_refused(L, map, sizeof map, NULL, SPOOL_EINVAL,
                                 "values: the input is not an array");
    const unsigned char integer[] = {0x05};
    assert_values_decode_refused(L, integer, sizeof integer, NULL, SPOOL_EINVAL, "not an array");
    const unsigned char nil[] = {0xc0};
    assert_values_decode_refused(L, nil, sizeof nil, NULL, SPOOL_EINVAL, "not an array");
    const unsigned char str[] = {0xa2, 'h', 'i'};
    assert_values_decode_refused(L, str, sizeof str, NULL, SPOOL_EINVAL, "not an array");
    assert_values_decode_refused(L, "", 0, NULL, SPOOL_EINVAL, "not an array");
    const unsigned char trailing[] = {0x91, 0x01, 0x02};
    assert_values_decode_refused(L, trailing, sizeof trailing, NULL, SPOOL_EINVAL,
                                 "trailing bytes: the value ends at offset 2 of 3");
    const unsigned char two_arrays[] = {0x90, 0x90};
    assert_values_decode_refused(L, two_arrays, sizeof two_arrays, NULL, SPOOL_EINVAL,
                                 "trailing bytes: the value ends at offset 1 of 2");
    const unsigned char short_array[] = {0x93, 0x01, 0x02};
    assert_values_decode_refused(L, short_array, sizeof short_array, NULL, SPOOL_EINVAL,
                                 "truncated");
    /* found only while building, after two values were pushed: they are taken back */
    const unsigned char duplicate[] = {0x93, 0x01, 0xa1, 's', 0x82, 0xa1,
                                       'k',  0x01, 0xa1, 'k', 0x02};
    assert_values_decode_refused(L, duplicate, sizeof duplicate, NULL, SPOOL_EINVAL,
                                 "duplicate map key at offset 8");
    codec_limits small = {.max_total = 2};
    int count = -1;
    assert_int_equal(codec_decode_values(L, (const char *)trailing, sizeof trailing, &small, NULL,
                                         &count, NULL, 0),
                     SPOOL_EMSGSIZE);
    assert_int_equal(count, 0);
    char err[64];
    assert_int_equal(
        codec_decode_values(L, (const char *)map, sizeof map, NULL, NULL, NULL, err, sizeof err),
        SPOOL_EINVAL);
    assert_int_equal(lua_gettop(L), 1);
    assert_string_equal(lua_tostring(L, 1), "below");
    lua_close(L);
}

static void test_a_raising_decode_hook_is_an_error_return_not_a_longjmp(void **state) {
    (void)state;
    lua_State *L = lua_newstate(counting_lua_alloc, NULL);
    assert_non_null(L);
    luaL_openlibs(L);
    test_hooks h = {0};
    codec_hooks hooks = make_hooks(&h);
    codec_buffer out = {0};
    char err[256];
    /* "x", handle, {handle, handle}: the hook raises on its second call, with values pushed */
    lua_pushstring(L, "x");
    push_handle(L, 1, 16);
    lua_createtable(L, 2, 0);
    push_handle(L, 2, 16);
    lua_rawseti(L, -2, 1);
    push_handle(L, 3, 16);
    lua_rawseti(L, -2, 2);
    assert_int_equal(codec_encode_values(L, 1, 3, NULL, &hooks, 1, 0, &out, err, sizeof err), 0);
    lua_settop(L, 0);
    lua_pushinteger(L, 7);

    const struct {
        int raise;
        int status;
        const char *message;
    } cases[] = {
        {1, SPOOL_EINVAL, "Lua error while decoding: the decode hook gives up on type 5"},
        {2, SPOOL_EINVAL, "Lua error while decoding: ?"},
        {3, SPOOL_ENOMEM, "not enough memory"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        h = (test_hooks){.raise = cases[i].raise, .raise_after = 1};
        int count = -1;
        int rc = codec_decode_values(L, out.data, out.size, NULL, &hooks, &count, err, sizeof err);
        lua_refuse_growth = 0;
        if (rc != cases[i].status || !strstr(err, cases[i].message))
            fail_msg("raise %d: got %d \"%s\", expected %d \"%s\"", cases[i].raise, rc, err,
                     cases[i].status, cases[i].message);
        assert_int_equal(h.decode_calls, 2);
        assert_int_equal(count, 0);
        assert_int_equal(lua_gettop(L), 1);
        assert_int_equal(lua_tointeger(L, 1), 7);
    }
    /* the state is fine afterwards */
    h = (test_hooks){0};
    int count = 0;
    assert_int_equal(
        codec_decode_values(L, out.data, out.size, NULL, &hooks, &count, err, sizeof err), 0);
    assert_int_equal(count, 3);
    assert_int_equal(lua_gettop(L), 4);
    codec_buffer_free(&out);
    lua_close(L);
}

/* ---------------------------------------------------------------------------------------------- */
/* Ids across nodes (ext 4)                                                                       */
/* ---------------------------------------------------------------------------------------------- */

/* A fake node "a", incarnation 7: local ids (node field 0) export as ("a", 7, id); ids whose node
 * field is 1 are of node "b", incarnation 9. Import is the inverse; anything else is refused. */
static int fake_export(void *user, spool_id id, spool_remote_id *out) {
    (void)user;
    uint64_t node = id >> 48;
    if (node > 1)
        return SPOOL_ENOENT;
    snprintf(out->node, sizeof out->node, "%s", node == 0 ? "a" : "b");
    out->incarnation = node == 0 ? 7 : 9;
    out->local = id & 0xffffffffffffull;
    return 0;
}

static int fake_import(void *user, const spool_remote_id *in, spool_id *out) {
    int *imports = user;
    if (imports)
        (*imports)++;
    if (strcmp(in->node, "a") == 0 && in->incarnation == 7)
        *out = in->local;
    else if (strcmp(in->node, "b") == 0 && in->incarnation == 9)
        *out = (1ull << 48) | in->local;
    else
        return SPOOL_ENOMEM;
    return 0;
}

static void test_a_remote_id_has_the_documented_layout(void **state) {
    (void)state;
    spool_remote_id id = {"node-b", 0x0102030405060708ull, 0xa1b2c3d4e5f6ull};
    char out[CODEC_REMOTE_ID_MAX];
    uint32_t len = codec_remote_id_write(&id, out);
    const unsigned char expected[] = {6, 'n', 'o', 'd', 'e',  '-',  'b',  1,    2,    3,   4,
                                      5, 6,   7,   8,   0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6};
    assert_int_equal(len, sizeof expected);
    assert_memory_equal(out, expected, sizeof expected);
    spool_remote_id back;
    uint32_t used = 0;
    assert_int_equal(codec_remote_id_read(out, len, &back, &used), 0);
    assert_int_equal(used, len);
    assert_string_equal(back.node, "node-b");
    assert_true(back.incarnation == id.incarnation && back.local == id.local);
    /* the longest name makes the longest form */
    memset(id.node, 'n', SPOOL_NODE_NAME_MAX);
    id.node[SPOOL_NODE_NAME_MAX] = '\0';
    assert_int_equal(codec_remote_id_write(&id, out), CODEC_REMOTE_ID_MAX);
    /* what cannot be written */
    const char *bad_names[] = {"", ".a", "-a", "a b", "a/b", "n\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        spool_remote_id bad = {"", 1, 1};
        snprintf(bad.node, sizeof bad.node, "%s", bad_names[i]);
        assert_int_equal(codec_remote_id_write(&bad, out), 0);
    }
    spool_remote_id no_life = {"a", 0, 1}, too_wide = {"a", 1, 1ull << 48};
    assert_int_equal(codec_remote_id_write(&no_life, out), 0);
    assert_int_equal(codec_remote_id_write(&too_wide, out), 0);
}

static void test_ids_bound_for_another_node_go_as_ext_4_and_come_back(void **state) {
    (void)state;
    lua_State *L = new_state();
    int imports = 0;
    codec_hooks out_hooks = {NULL, NULL, NULL, NULL, 0, fake_export, NULL};
    codec_hooks in_hooks = {NULL, NULL, NULL, &imports, 0, NULL, fake_import};
    codec_buffer out = {0};
    char err[256];

    /* a local id and one of node b, inside a table */
    codec_push_id(L, 0x123456);
    lua_createtable(L, 0, 1);
    codec_push_id(L, (1ull << 48) | 5);
    lua_setfield(L, -2, "peer");
    assert_int_equal(codec_encode_values(L, 1, 2, NULL, &out_hooks, 1, 0, &out, err, sizeof err),
                     0);
    const unsigned char expected[] = {0x92, 0xd8, CODEC_EXT_REMOTE_ID,
                                      1,    'a',  0,
                                      0,    0,    0,
                                      0,    0,    0,
                                      7,    0,    0,
                                      0,    0x12, 0x34,
                                      0x56, 0x81, 0xa4,
                                      'p',  'e',  'e',
                                      'r',  0xd8, CODEC_EXT_REMOTE_ID,
                                      1,    'b',  0,
                                      0,    0,    0,
                                      0,    0,    0,
                                      9,    0,    0,
                                      0,    0,    0,
                                      5};
    assert_int_equal(out.size, sizeof expected);
    assert_memory_equal(out.data, expected, sizeof expected);

    int count = 0;
    assert_int_equal(
        codec_decode_values(L, out.data, out.size, NULL, &in_hooks, &count, err, sizeof err), 0);
    assert_int_equal(count, 2);
    assert_int_equal(imports, 2);
    spool_id id = 0;
    assert_true(codec_to_id(L, 3, &id));
    assert_true(id == 0x123456);
    assert_int_equal(lua_getfield(L, 4, "peer"), LUA_TUSERDATA);
    assert_true(codec_to_id(L, -1, &id));
    assert_true(id == ((1ull << 48) | 5));
    lua_settop(L, 0);

    /* hooks that take ids get the imported id as an ext 1 of 8 bytes */
    test_hooks h = {.accept_ids = 1};
    codec_hooks claiming = make_hooks(&h);
    claiming.id_import = fake_import;
    assert_int_equal(
        codec_decode_values(L, out.data, out.size, NULL, &claiming, &count, err, sizeof err), 0);
    const unsigned char local_be[] = {0, 0, 0, 0, 0, 0x12, 0x34, 0x56};
    assert_marker(L, 1, CODEC_EXT_ID, local_be, sizeof local_be);
    lua_settop(L, 0);

    /* an id that has no node-independent form is refused, with the id */
    codec_push_id(L, 2ull << 48);
    assert_int_equal(codec_encode_values(L, 1, 1, NULL, &out_hooks, 1, 0, &out, err, sizeof err),
                     SPOOL_EINVAL);
    assert_non_null(strstr(err, "cannot send id 0x0002000000000000 to another node"));
    lua_settop(L, 0);

    /* without id_export (a local receiver) ids stay ext 1, as before */
    codec_push_id(L, 0x123456);
    assert_int_equal(codec_encode_values(L, 1, 1, NULL, &in_hooks, 1, 0, &out, err, sizeof err), 0);
    assert_int_equal(out.size, 11);
    assert_int_equal((unsigned char)out.data[1], 0xd7);
    assert_int_equal(out.data[2], CODEC_EXT_ID);
    codec_buffer_free(&out);
    lua_close(L);
}

static void test_malformed_or_unimportable_ext_4_is_refused(void **state) {
    (void)state;
    lua_State *L = new_state();
    codec_hooks hooks = {NULL, NULL, NULL, NULL, 0, NULL, fake_import};
    /* [ext 8 of n bytes, type 4, payload] */
    static const struct {
        unsigned char bytes[40];
        size_t size;
        const char *says;
    } inputs[] = {
        /* too short for any id */
        {{0x91, 0xc7, 3, 4, 1, 'a', 0}, 7, "malformed id of another node"},
        /* name length 0 */
        {{0x91, 0xc7, 16, 4, 0, 'a', 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 1},
         20,
         "malformed id of another node"},
        /* name longer than the payload */
        {{0x91, 0xc7, 16, 4, 9, 'a', 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 1},
         20,
         "malformed id of another node"},
        /* a byte no node name has */
        {{0x91, 0xc7, 16, 4, 1, ' ', 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 1},
         20,
         "malformed id of another node"},
        /* incarnation 0 */
        {{0x91, 0xc7, 16, 4, 1, 'a', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1},
         20,
         "malformed id of another node"},
        /* one byte more than the id */
        {{0x91, 0xc7, 17, 4, 1, 'a', 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 1, 0},
         21,
         "malformed id of another node"},
        /* truncated payload */
        {{0x91, 0xc7, 16, 4, 1, 'a', 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0}, 17, "truncated"},
        /* a node the importer refuses (a full node table) */
        {{0x91, 0xc7, 16, 4, 1, 'c', 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 1},
         20,
         "cannot import the id of actor 1 on node c"},
    };
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++)
        assert_values_decode_refused(L, inputs[i].bytes, inputs[i].size, &hooks, SPOOL_EINVAL,
                                     inputs[i].says);
    /* a well-formed one without an importer (codec_decode): refused, not guessed */
    const unsigned char good[] = {0xc7, 16, 4, 1, 'a', 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 1};
    char err[256];
    assert_int_equal(codec_decode(L, (const char *)good, sizeof good, NULL, err, sizeof err),
                     SPOOL_EINVAL);
    assert_non_null(strstr(err, "with no runtime to import it"));
    assert_int_equal(lua_gettop(L), 0);
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
        cmocka_unit_test(test_values_round_trip_none_one_and_many_keeping_every_nil),
        cmocka_unit_test(test_values_leave_the_front_bytes_to_the_caller),
        cmocka_unit_test(test_values_reuse_the_callers_block_and_leak_nothing),
        cmocka_unit_test(test_values_errors_name_the_argument),
        cmocka_unit_test(test_values_mode_nests_64_deep_like_codec_encode),
        cmocka_unit_test(test_values_mode_depth_errors_name_the_callers_limit),
        cmocka_unit_test(test_hooks_carry_a_userdata_as_ext_5_and_back),
        cmocka_unit_test(test_a_declining_hook_leaves_behaviour_refused),
        cmocka_unit_test(test_ext_5_without_hooks_is_an_unknown_ext_type),
        cmocka_unit_test(test_hooks_that_accept_ext_1_decode_ids),
        cmocka_unit_test(test_hooked_truncated_prefixes_are_refused_and_never_read_past_the_end),
        cmocka_unit_test(test_an_ext_validated_for_the_hooks_is_never_built_as_an_id),
        cmocka_unit_test(test_decode_values_refuses_what_is_not_one_array_and_pushes_nothing),
        cmocka_unit_test(test_a_raising_decode_hook_is_an_error_return_not_a_longjmp),
        cmocka_unit_test(test_a_remote_id_has_the_documented_layout),
        cmocka_unit_test(test_ids_bound_for_another_node_go_as_ext_4_and_come_back),
        cmocka_unit_test(test_malformed_or_unimportable_ext_4_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
