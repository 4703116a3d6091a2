/*
 * lua_bench.h - what the Lua benchmarks share (on top of bench.h): a runtime with its Lua layer
 * (include/spool_lua.h) whose scripts are found in bench/lua/ (BENCH_LUA_DIR, set by CMake), and
 * a host module the scripts require as "benchlib":
 *   benchlib.now()               monotonic clock, integer ns (the same clock as bench_now_ns)
 *   benchlib.result(name, value) hands a figure back to the C driver (bench_lua_result)
 *   benchlib.tick()              counts one (bench_lua_ticks): "I have started"
 * The timing is done inside the scripts, around the loop measured; the driver prints the JSON
 * lines, like every other benchmark.
 */
#ifndef SPOOL_LUA_BENCH_H
#define SPOOL_LUA_BENCH_H

#include "bench.h"

#include <spool_lua.h>

#include <lauxlib.h>
#include <lua.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#ifndef BENCH_LUA_DIR
#error "BENCH_LUA_DIR: the directory of the benchmark scripts (bench/CMakeLists.txt sets it)"
#endif

#define BENCH_LUA_RESULTS_MAX 32

static struct {
    char name[64];
    double value;
} bench_lua_results[BENCH_LUA_RESULTS_MAX];
static int bench_lua_result_count;
static pthread_mutex_t bench_lua_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_long bench_lua_ticks;

static int benchlib_now(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)bench_now_ns());
    return 1;
}

static int benchlib_result(lua_State *L) {
    const char *name = luaL_checkstring(L, 1);
    double value = (double)luaL_checknumber(L, 2);
    pthread_mutex_lock(&bench_lua_lock);
    int full = bench_lua_result_count == BENCH_LUA_RESULTS_MAX;
    if (!full) {
        snprintf(bench_lua_results[bench_lua_result_count].name, sizeof bench_lua_results[0].name,
                 "%s", name);
        bench_lua_results[bench_lua_result_count].value = value;
        bench_lua_result_count++;
    }
    pthread_mutex_unlock(&bench_lua_lock);
    if (full)
        return luaL_error(L, "benchlib.result: more than %d results", BENCH_LUA_RESULTS_MAX);
    return 0;
}

static int benchlib_tick(lua_State *L) {
    (void)L;
    atomic_fetch_add_explicit(&bench_lua_ticks, 1, memory_order_release);
    return 0;
}

static int luaopen_benchlib(lua_State *L) {
    static const luaL_Reg funcs[] = {
        {"now", benchlib_now}, {"result", benchlib_result}, {"tick", benchlib_tick}, {NULL, NULL}};
    luaL_newlib(L, funcs);
    return 1;
}

/* The figure a script reported under `name`, or exits. */
static inline double bench_lua_result(const char *name) {
    pthread_mutex_lock(&bench_lua_lock);
    for (int i = 0; i < bench_lua_result_count; i++) {
        if (strcmp(bench_lua_results[i].name, name) == 0) {
            double v = bench_lua_results[i].value;
            pthread_mutex_unlock(&bench_lua_lock);
            return v;
        }
    }
    pthread_mutex_unlock(&bench_lua_lock);
    fprintf(stderr, "%s: the script reported no '%s'\n", BENCH_NAME, name);
    exit(1);
}

/* 1 if the script reported `name`. */
static inline int bench_lua_has(const char *name) {
    int found = 0;
    pthread_mutex_lock(&bench_lua_lock);
    for (int i = 0; i < bench_lua_result_count; i++)
        found |= strcmp(bench_lua_results[i].name, name) == 0;
    pthread_mutex_unlock(&bench_lua_lock);
    return found;
}

/* The Lua layer of `rt` (not started): scripts from BENCH_LUA_DIR, benchlib preloaded. */
static inline spool_lua *bench_lua_create(spool_runtime *rt) {
    spool_lua_config config;
    spool_lua_config_init(&config);
    config.path = BENCH_LUA_DIR "/?.lua";
    spool_lua *lua = NULL;
    bench_check(spool_lua_create(rt, &config, &lua), "lua create");
    bench_check(spool_lua_preload(lua, "benchlib", luaopen_benchlib), "preload benchlib");
    return lua;
}

/*
 * Runs bench/lua/SCRIPT.lua as the main actor (thread 0) of a fresh 2-thread runtime pinned to
 * `cpus` (NULL: unpinned), with args[0..argc-1] as its `...`, the way `spool run` does; exits if
 * it fails. The results are then in bench_lua_result().
 */
static inline void bench_lua_run(const char *script, const char *const *args, int argc,
                                 const char *cpus) {
    spool_runtime *rt = bench_runtime(2, cpus);
    spool_lua *lua = bench_lua_create(rt);
    char path[512], error[2048];
    snprintf(path, sizeof path, "%s/%s.lua", BENCH_LUA_DIR, script);
    int status = 0;
    int rc = spool_lua_run(lua, path, args, argc, &status, error, sizeof error);
    spool_lua_destroy(&lua);
    spool_runtime_destroy(&rt);
    if (rc != 0 || status != 0) {
        fprintf(stderr, "%s: %s: %s (status %d) %s\n", BENCH_NAME, path,
                rc ? spool_strerror(rc) : "failed", status, error);
        exit(1);
    }
}

#endif
