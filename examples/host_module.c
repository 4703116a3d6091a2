/*
 * host_module.c - a C program that embeds spool and gives its Lua scripts a C module of its own.
 *
 * The module, "legacy", is written like an old C library: a static counter and a static buffer,
 * no locks, never meant to be entered by two threads at once. A guard at each entry point notices
 * when that happens anyway (a call inside while another one is) and when a second OS thread calls
 * it. The program registers it with spool_lua_preload and runs examples/lua/host_module.lua with
 * spool_lua_run: the script pins "legacy" on thread 1 with spool.module and hammers it from actors
 * on every thread; every call is a message handled on thread 1, one after another.
 *
 *   ./host_module [CALLS_PER_ACTOR] [--direct]
 *
 * --direct makes the actors `require "legacy"` in their own thread's interpreter instead: the
 * library is then entered from two threads at once, which the guard reports (and the exit status
 * says). Exit status: 0 when the count is exact and the guard saw nothing, 1 otherwise, 2 on usage.
 */
#define _GNU_SOURCE /* pthread_getname_np */
#include <spool.h>
#include <spool_lua.h>

#include <lauxlib.h>
#include <lua.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef HOST_MODULE_SCRIPT /* CMake gives the full path */
#define HOST_MODULE_SCRIPT "examples/lua/host_module.lua"
#endif

#define THREADS 2
#define ACTORS_PER_THREAD 2

/* ============================================================================================== */
/* The "legacy" library: global state, no locks                                                   */
/* ============================================================================================== */

static long legacy_count;          /* what it counts */
static char legacy_buffer[64];     /* its last answer, formatted in place */
static int legacy_inside;          /* guard: calls inside right now (atomic) */
static long legacy_concurrent;     /* guard: entries while another call was inside (atomic) */
static long legacy_foreign;        /* guard: calls from another thread than the first caller */
static int legacy_first_state;     /* 0: nobody entered yet, 1: being recorded, 2: recorded */
static pthread_t legacy_first;     /* the first caller's thread (written once, see above) */
static char legacy_first_name[16]; /* and its name: spool/N for a scheduler thread */

/* Every entry point starts with this: it reports instead of aborting. */
static void legacy_enter(const char *fn) {
    if (__atomic_fetch_add(&legacy_inside, 1, __ATOMIC_ACQ_REL) != 0 &&
        __atomic_fetch_add(&legacy_concurrent, 1, __ATOMIC_RELAXED) == 0)
        fprintf(stderr, "legacy: VIOLATION: %s() entered while another call was inside\n", fn);
    pthread_t self = pthread_self();
    int expected = 0;
    if (__atomic_compare_exchange_n(&legacy_first_state, &expected, 1, 0, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE)) {
        legacy_first = self;
        pthread_getname_np(self, legacy_first_name, sizeof legacy_first_name);
        __atomic_store_n(&legacy_first_state, 2, __ATOMIC_RELEASE); /* publishes the two above */
        return;
    }
    while (__atomic_load_n(&legacy_first_state, __ATOMIC_ACQUIRE) != 2)
        ; /* the first caller is recording itself right now */
    if (!pthread_equal(legacy_first, self) &&
        __atomic_fetch_add(&legacy_foreign, 1, __ATOMIC_RELAXED) == 0)
        fprintf(stderr, "legacy: VIOLATION: %s() called from a second thread\n", fn);
}

static void legacy_leave(void) { __atomic_fetch_sub(&legacy_inside, 1, __ATOMIC_RELEASE); }

/* legacy.add(n) -> "count=N": read, a little work, write back; the window where updates get lost
 * when two threads are inside. */
static int legacy_add(lua_State *L) {
    lua_Integer n = luaL_checkinteger(L, 1);
    legacy_enter("add");
    long count = legacy_count;
    for (int i = 0; i < 200; i++)
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
    legacy_count = count + (long)n;
    snprintf(legacy_buffer, sizeof legacy_buffer, "count=%ld", legacy_count);
    lua_pushstring(L, legacy_buffer);
    legacy_leave();
    return 1;
}

/* legacy.count() -> N */
static int legacy_get(lua_State *L) {
    legacy_enter("count");
    lua_pushinteger(L, legacy_count);
    legacy_leave();
    return 1;
}

/* legacy.guard() -> concurrent entries, calls from a second thread, the first caller's name */
static int legacy_guard(lua_State *L) {
    lua_pushinteger(L, __atomic_load_n(&legacy_concurrent, __ATOMIC_RELAXED));
    lua_pushinteger(L, __atomic_load_n(&legacy_foreign, __ATOMIC_RELAXED));
    lua_pushstring(
        L, __atomic_load_n(&legacy_first_state, __ATOMIC_ACQUIRE) == 2 ? legacy_first_name : "");
    return 3;
}

/* The opener, as `require "legacy"` calls it: spool_lua_preload registers it by name. */
static int luaopen_legacy(lua_State *L) {
    static const luaL_Reg functions[] = {
        {"add", legacy_add}, {"count", legacy_get}, {"guard", legacy_guard}, {NULL, NULL}};
    luaL_newlib(L, functions);
    return 1;
}

/* ============================================================================================== */
/* The host                                                                                       */
/* ============================================================================================== */

static int fail(const char *what, int rc) {
    fprintf(stderr, "host_module: %s: %s\n", what, spool_strerror(rc));
    return 1;
}

int main(int argc, char **argv) {
    long calls = 20000;
    int direct = 0;
    for (int i = 1; i < argc; i++) {
        char *end;
        if (strcmp(argv[i], "--direct") == 0) {
            direct = 1;
            continue;
        }
        calls = strtol(argv[i], &end, 10);
        if (end == argv[i] || *end != '\0' || calls <= 0) {
            fprintf(stderr, "usage: %s [CALLS_PER_ACTOR] [--direct]\n", argv[0]);
            return 2;
        }
    }

    spool_config config;
    spool_config_init(&config);
    config.threads = THREADS; /* the script pins "legacy" on thread 1 */
    char error[256] = "";
    config.error = error;
    config.error_size = sizeof error;
    spool_runtime *rt = NULL;
    int rc = spool_runtime_create(&config, &rt);
    if (rc != 0) {
        fprintf(stderr, "host_module: spool_runtime_create: %s: %s\n", spool_strerror(rc), error);
        return 1;
    }
    spool_lua *lua = NULL;
    if ((rc = spool_lua_create(rt, NULL, &lua)) != 0) {
        spool_runtime_destroy(&rt);
        return fail("spool_lua_create", rc);
    }
    /* Before the runtime starts: from now on `require "legacy"` finds it on every thread. */
    if ((rc = spool_lua_preload(lua, "legacy", luaopen_legacy)) != 0) {
        spool_lua_destroy(&lua);
        spool_runtime_destroy(&rt);
        return fail("spool_lua_preload", rc);
    }

    /* The script's `...`: calls per actor, actors per thread, how to reach the library. */
    char calls_text[32], actors_text[16];
    snprintf(calls_text, sizeof calls_text, "%ld", calls);
    snprintf(actors_text, sizeof actors_text, "%d", ACTORS_PER_THREAD);
    const char *args[] = {calls_text, actors_text, direct ? "direct" : "pinned"};
    int status = 0;
    char failure[2048] = "";
    /* Starts the runtime, runs the script as the main actor and returns once every actor is done
     * (the runtime is stopped then); status is what the script returned. */
    rc = spool_lua_run(lua, HOST_MODULE_SCRIPT, args, (int)(sizeof args / sizeof args[0]), &status,
                       failure, sizeof failure);
    spool_lua_destroy(&lua);
    spool_runtime_destroy(&rt);
    if (rc != 0)
        return fail("spool_lua_run(" HOST_MODULE_SCRIPT ")", rc);
    if (failure[0] != '\0')
        fprintf(stderr, "host_module: the script failed: %s\n", failure);

    /* The runtime is gone: the host may look at the library's statics itself. */
    long expected = calls * THREADS * ACTORS_PER_THREAD;
    int ok = status == 0 && legacy_count == expected && legacy_concurrent == 0 &&
             legacy_foreign == 0 && strcmp(legacy_first_name, "spool/1") == 0;
    printf("host_module: legacy counted %ld of %ld, first entered by %s, concurrent entries: %ld, "
           "calls from a second thread: %ld, script status %d: %s\n",
           legacy_count, expected, legacy_first_name[0] ? legacy_first_name : "nobody",
           legacy_concurrent, legacy_foreign, status, ok ? "OK" : "FAILED");
    return ok ? 0 : 1;
}
