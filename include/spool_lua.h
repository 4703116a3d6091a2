/*
 * spool_lua.h - Lua 5.4 on every scheduler thread: scripted actors and pinned modules.
 *
 * Each scheduler thread owns one lua_State, made the first time a Lua actor runs there, with the
 * standard libraries and `spool` preloaded. A scripted actor is a coroutine in its thread's state
 * with its own globals; a pinned module is a module loaded once, on one thread, inside a module
 * actor, and reached from every thread through proxies whose every use is a message. The Lua side
 * is documented in docs/lua.md; this header is the C side: embed it, preload host modules, start
 * scripts, wait for a Lua program to end.
 *
 * Order of things: spool_runtime_create, spool_lua_create (+ spool_lua_preload), spool_lua_spawn or
 * spool_lua_run, ..., spool_lua_destroy (it stops the runtime if still running), then
 * spool_runtime_destroy. Every function returns 0 or a negative SPOOL_E* code.
 */
#ifndef SPOOL_LUA_H
#define SPOOL_LUA_H

#include "spool.h"

#ifdef __cplusplus
extern "C" {
#endif

struct lua_State;
typedef struct spool_lua spool_lua; /* opaque: the interpreters of one runtime */

/* A module's opener, as Lua declares it (lua_CFunction). */
typedef int (*spool_lua_open_fn)(struct lua_State *L);

typedef struct spool_lua_config {
    /* Prepended to package.path / package.cpath in every interpreter (";"-separated templates,
     * e.g. "/app/?.lua;/app/?/init.lua"); NULL = none. */
    const char *path;
    const char *cpath;
    /* Bytes one thread's interpreter may hold; past it, allocations fail and Lua raises "not
     * enough memory" in the actor that asked. 0 = no limit. */
    size_t memory_limit;
    /* Where the runtime's own reports go (an actor that failed, a message an object actor cannot
     * take): 1 = stderr (default), 0 = nowhere (they are still counted in spool.metrics()). */
    int report_errors;
} spool_lua_config;

/* Fills `config` with the defaults. */
SPOOL_API void spool_lua_config_init(spool_lua_config *config);

/*
 * Prepares Lua for `rt` (created, not necessarily started). Interpreters are made lazily on their
 * threads. `config` may be NULL. One spool_lua per runtime. Errors: SPOOL_EINVAL, SPOOL_ENOMEM.
 */
SPOOL_API int spool_lua_create(spool_runtime *rt, const spool_lua_config *config, spool_lua **out);

/*
 * Makes a host C module available to `require` and `spool.module(name)` in every interpreter
 * (package.preload[name] = open). Before the first Lua actor is spawned (spool_lua_spawn,
 * spool_lua_run), from the thread that sets things up. Errors: SPOOL_EINVAL (bad name or NULL
 * open), SPOOL_ESTATE (a Lua actor was spawned already), SPOOL_EEXIST, SPOOL_ENOMEM.
 */
SPOOL_API int spool_lua_preload(spool_lua *lua, const char *name, spool_lua_open_fn open);

/*
 * Starts a scripted actor: `script` is a path to a .lua file, or a module name looked up on
 * package.path ("worker" -> ./worker.lua). The script runs with args[0..argc-1] as `...` (strings)
 * and, when `as_main` is non-zero, also as the global `arg` (arg[0] = script) like the lua command.
 * `opts` as for spool_spawn (name, thread or placement); NULL = placement by default. The script
 * is read and compiled on the actor's thread when it first runs: a missing file or a syntax error
 * ends the actor with an error (reported, and its monitors told). Any thread.
 * Errors: SPOOL_EINVAL, SPOOL_ENOENT (no such script), those of spool_spawn.
 */
SPOOL_API int spool_lua_spawn(spool_lua *lua, const char *script, const char *const *args, int argc,
                              int as_main, const spool_spawn_opts *opts, spool_id *out);

/*
 * Runs a Lua program, the way `spool run` does: starts the runtime if it is not running, spawns
 * `script` as the main actor on thread 0 (args as for spool_lua_spawn, with `arg`), waits until the
 * main actor ends and every other Lua actor is done (no Lua actor sleeping, waiting for a reply or
 * a timed receive, and every message handled), then stops the runtime. *status (may be NULL) is
 * the program's exit status: the integer the main chunk returned (0 if none), or 1 if it failed;
 * the failure (message and traceback) is in `error` (may be NULL), which is empty otherwise. Call
 * from outside the runtime. Errors: SPOOL_EINVAL, SPOOL_ENOENT (no such script), SPOOL_ESTATE (the
 * runtime was stopped), those of spool_lua_spawn and spool_runtime_start.
 */
SPOOL_API int spool_lua_run(spool_lua *lua, const char *script, const char *const *args, int argc,
                            int *status, char *error, size_t error_size);

/* Counters of the Lua layer (any thread; figures may lag by a turn). */
typedef struct spool_lua_stats {
    uint64_t states;       /* interpreters made (at most one per thread) */
    uint64_t actors;       /* Lua actors alive */
    uint64_t failed;       /* actors ended by an error */
    uint64_t calls;        /* calls answered by object actors and modules */
    uint64_t handles;      /* handles alive: home objects kept for proxies elsewhere */
    uint64_t unhandled;    /* messages an object actor without on_message could not take */
    uint64_t memory_bytes; /* bytes held by all interpreters */
} spool_lua_stats;

SPOOL_API int spool_lua_stats_get(const spool_lua *lua, spool_lua_stats *out);

/*
 * Stops the runtime if it still runs (deadline 0), then closes every interpreter and frees `*lua`
 * (set to NULL). Call from outside the runtime, before spool_runtime_destroy. NULL-safe.
 */
SPOOL_API void spool_lua_destroy(spool_lua **lua);

#ifdef __cplusplus
}
#endif

#endif /* SPOOL_LUA_H */
