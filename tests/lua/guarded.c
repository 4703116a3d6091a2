/*
 * guarded.c - a Lua C module that was never meant for threads, with a guard that sees it: global
 * state touched without locks, and a check on every entry that no other thread is inside and that
 * every entry comes from the same thread. The Lua tests pin it (spool.module("guarded")) and hammer
 * it from actors on every thread; if spool ever let two threads in, `violations()` or `threads()`
 * would say so. Built as guarded.so, found through LUA_CPATH_5_4 (tests/CMakeLists.txt).
 */
#include <lauxlib.h>
#include <lua.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>

/* The module's state: plain globals, as in the C extensions spool exists for. */
static long long hits;
static long long live_objects;
static long long made_objects;

/* The guard's own state: atomics, so the guard itself is not a race. */
static int inside;
static long long violations;
static pthread_t first_thread;
static int seen_first;
static int other_threads;

static void enter(void) {
    if (__atomic_fetch_add(&inside, 1, __ATOMIC_ACQ_REL) != 0)
        __atomic_fetch_add(&violations, 1, __ATOMIC_RELAXED);
    pthread_t self = pthread_self();
    if (!__atomic_load_n(&seen_first, __ATOMIC_ACQUIRE)) {
        first_thread = self;
        __atomic_store_n(&seen_first, 1, __ATOMIC_RELEASE);
    } else if (!pthread_equal(first_thread, self)) {
        __atomic_store_n(&other_threads, 1, __ATOMIC_RELAXED);
    }
}

static void leave(void) { __atomic_fetch_sub(&inside, 1, __ATOMIC_ACQ_REL); }

/* hit([n]): hits += n (default 1), slowly enough that a second thread would overlap. */
static int l_hit(lua_State *L) {
    enter();
    lua_Integer n = luaL_optinteger(L, 1, 1);
    long long before = hits;
    for (volatile int spin = 0; spin < 50; spin++)
        ;
    hits = before + n;
    leave();
    lua_pushinteger(L, (lua_Integer)hits);
    return 1;
}

static int l_count(lua_State *L) {
    enter();
    lua_pushinteger(L, (lua_Integer)hits);
    leave();
    return 1;
}

static int l_violations(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)__atomic_load_n(&violations, __ATOMIC_RELAXED));
    return 1;
}

/* threads(): how many different threads entered (1 is the promise). */
static int l_threads(lua_State *L) {
    lua_pushinteger(L, !__atomic_load_n(&seen_first, __ATOMIC_ACQUIRE)     ? 0
                       : __atomic_load_n(&other_threads, __ATOMIC_RELAXED) ? 2
                                                                           : 1);
    return 1;
}

/* Objects: userdata with methods, that stay home and are reached through handles. */
typedef struct object {
    lua_Integer value;
} object;

static int l_new(lua_State *L) {
    enter();
    object *o = lua_newuserdatauv(L, sizeof *o, 0);
    o->value = luaL_optinteger(L, 1, 0);
    luaL_setmetatable(L, "guarded.object");
    live_objects++;
    made_objects++;
    leave();
    return 1;
}

static int l_object_get(lua_State *L) {
    enter();
    object *o = luaL_checkudata(L, 1, "guarded.object");
    lua_pushinteger(L, o->value);
    leave();
    return 1;
}

static int l_object_add(lua_State *L) {
    enter();
    object *o = luaL_checkudata(L, 1, "guarded.object");
    o->value += luaL_checkinteger(L, 2);
    lua_pushinteger(L, o->value);
    leave();
    return 1;
}

static int l_object_gc(lua_State *L) {
    enter();
    live_objects--;
    leave();
    return 0;
}

/* live(): objects not yet collected, after a full collection here. */
static int l_live(lua_State *L) {
    lua_gc(L, LUA_GCCOLLECT);
    lua_gc(L, LUA_GCCOLLECT);
    enter();
    lua_pushinteger(L, (lua_Integer)live_objects);
    lua_pushinteger(L, (lua_Integer)made_objects);
    leave();
    return 2;
}

/* is_null(v): v is the module's sentinel (a light userdata, like cjson.null). */
static int l_is_null(lua_State *L) {
    lua_pushboolean(L, lua_touserdata(L, 1) == (void *)&made_objects);
    return 1;
}

int luaopen_guarded(lua_State *L);
int luaopen_guarded(lua_State *L) {
    static const luaL_Reg methods[] = {{"get", l_object_get}, {"add", l_object_add}, {NULL, NULL}};
    luaL_newmetatable(L, "guarded.object");
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_object_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    static const luaL_Reg funcs[] = {
        {"hit", l_hit}, {"count", l_count}, {"violations", l_violations}, {"threads", l_threads},
        {"new", l_new}, {"live", l_live},   {"is_null", l_is_null},       {NULL, NULL}};
    luaL_newlib(L, funcs);
    lua_pushlightuserdata(L, &made_objects);
    lua_setfield(L, -2, "null");
    return 1;
}
