/*
 * lua_module_call.c - pinned-module calls from Lua: bench/lua/module_call.lua runs as the main
 * actor of a 2-thread runtime; a pure-Lua module (bench/lua/bench_add.lua) is pinned on thread 0
 * with spool.module, and CALLERS Lua actors on thread 1 each make CALLS calls `m.add(i, 1)`, one
 * at a time (the caller waits for each answer: call + reply), every answer checked, and the
 * module's own count checked at the end. Results, in M calls/s from the first caller's start to
 * the last caller's end:
 *   lua_module_call          CALLERS callers (brief: >= 1 M calls/s with several callers)
 *   lua_module_call_1caller  one caller
 *   lua_module_call_cjson    CALLERS callers of cjson.encode({id, name, ok, xs = {1, 2, 3}}) on a
 *                            cjson pinned on thread 0 (absent without Debian's lua-cjson)
 * Each line also has "busy_ns_per_call": [thread 0, thread 1], the threads' busy time (metrics:
 * not idle, not spinning) per call, which says which side limits the rate.
 * With "same", the callers are on thread 0 too (results suffixed "_same"): what a call costs
 * without the hop between threads (both ends on one CPU).
 * Args, in any order: [CALLS per caller] [CALLERS] [cross|same] [unpinned]
 */
#define BENCH_NAME "lua_module_call"
#include "lua_bench.h"

#define DEFAULT_CALLS 50000L
#define DEFAULT_CALLERS 4L
#define CPUS "0,1" /* scheduler threads 0 and 1 are pinned here unless "unpinned" is given */

static int same;

/* A figure of the script: the result `key` + `suffix`. */
static double figure(const char *key, const char *suffix) {
    char name[96];
    snprintf(name, sizeof name, "%s%s", key, suffix);
    return bench_lua_result(name);
}

static void print(const char *name, const char *key, long calls, long callers, int pinned) {
    printf("{\"name\":\"%s%s%s\",\"unit\":\"M calls/s\",\"value\":%.3f,\"calls\":%ld,"
           "\"callers\":%ld,\"busy_ns_per_call\":[%.1f,%.1f],\"pinned\":%s}\n",
           name, same ? "_same" : "", bench_suffix(), figure(key, ""), calls * callers, callers,
           figure(key, "_busy0"), figure(key, "_busy1"), pinned ? "true" : "false");
}

int main(int argc, char **argv) {
    long numbers[2] = {DEFAULT_CALLS, DEFAULT_CALLERS};
    int pinned;
    static const char *const modes[] = {"cross", "same", NULL};
    if (bench_parse(argc, argv, numbers, 2, modes, &same, &pinned,
                    "[CALLS] [CALLERS] [cross|same]"))
        return 2;
    long calls = numbers[0], callers = numbers[1];
    char calls_s[32], callers_s[32];
    snprintf(calls_s, sizeof calls_s, "%ld", calls);
    snprintf(callers_s, sizeof callers_s, "%ld", callers);
    const char *args[] = {calls_s, callers_s, same ? "0" : "1"};
    bench_lua_run("module_call", args, 3, pinned ? CPUS : NULL);

    fprintf(stderr,
            "lua_module_call: module on thread 0, %ld Lua callers on thread %d x %ld calls, one in "
            "flight each, CPUs %s: add %.3f M calls/s (1 caller: %.3f)%s; busy ns per call: "
            "thread 0 %.0f, thread 1 %.0f; budget >= 1 M calls/s with several callers (%s)\n",
            callers, same ? 0 : 1, calls, pinned ? CPUS : "unpinned", figure("add", ""),
            figure("add_1", ""), bench_lua_has("cjson") ? "" : ", no cjson",
            figure("add", "_busy0"), figure("add", "_busy1"),
            figure("add", "") >= 1.0 ? "met" : "MISSED");
    print("lua_module_call", "add", calls, callers, pinned);
    print("lua_module_call_1caller", "add_1", calls, 1, pinned);
    if (bench_lua_has("cjson"))
        print("lua_module_call_cjson", "cjson", calls, callers, pinned);
    return 0;
}
