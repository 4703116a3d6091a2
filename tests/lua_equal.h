/*
 * lua_equal.h - deep equality of two Lua values, as the codec's tests and its fuzz target both need
 * it: same types, integers and floats apart, NaN equal to NaN, tables equal key by key (raw). One
 * copy, so the tests and the fuzzer can never disagree on what "came back unchanged" means.
 */
#ifndef SPOOL_TEST_LUA_EQUAL_H
#define SPOOL_TEST_LUA_EQUAL_H

#include <lauxlib.h>
#include <lua.h>

static const char lua_equal_chunk[] =
    "local function eq(a, b)\n"
    "  if type(a) ~= type(b) or math.type(a) ~= math.type(b) then return false end\n"
    "  if type(a) == 'number' and a ~= a then return b ~= b end\n"
    "  if type(a) ~= 'table' then return a == b end\n"
    "  local n = 0\n"
    "  for k, v in pairs(a) do\n"
    "    n = n + 1\n"
    "    local w = rawget(b, k)\n"
    "    if w == nil or not eq(v, w) then return false end\n"
    "  end\n"
    "  for _ in pairs(b) do n = n - 1 end\n"
    "  return n == 0\n"
    "end\n"
    "return eq\n";

/* Its address is the registry key of the compiled function. */
static const char lua_equal_key = 0;

/* 1 if the values at a and b are deeply equal, 0 if not, -1 if Lua failed (message on the stack's
 * top is popped). The state needs the standard libraries (math). The stack is left as it was. */
static inline int lua_deep_equal(lua_State *L, int a, int b) {
    a = lua_absindex(L, a);
    b = lua_absindex(L, b);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &lua_equal_key) != LUA_TFUNCTION) {
        lua_pop(L, 1);
        if (luaL_dostring(L, lua_equal_chunk) != LUA_OK) {
            lua_pop(L, 1);
            return -1;
        }
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &lua_equal_key);
    }
    lua_pushvalue(L, a);
    lua_pushvalue(L, b);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
        lua_pop(L, 1);
        return -1;
    }
    int equal = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return equal;
}

#endif
