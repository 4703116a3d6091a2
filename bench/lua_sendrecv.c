/*
 * lua_sendrecv.c - spool.send / spool.receive between Lua actors: bench/lua/sendrecv.lua runs as
 * the main actor (thread 0) of a 2-thread runtime. Results:
 *   lua_send_oneway        MESSAGES spool.send(sink, i) from the main actor on thread 0, in one
 *                          go, to a process actor on thread 1 looping on spool.receive(); M msg/s
 *                          from the first send to the last receipt (the sum is checked); the
 *                          line also has "busy_ns_per_message": [sender's thread, receiver's]
 *   lua_pingpong           ROUND_TRIPS spool.send + spool.receive between the main actor (thread
 *                          0) and a process actor on thread 1 that sends each value back; ns per
 *                          round trip
 *   lua_pingpong_same      the same, both on thread 0
 *   lua_call_roundtrip     ROUND_TRIPS spool.call to a process actor on thread 1 that answers
 *                          with spool.reply; ns per round trip
 *   lua_call_roundtrip_same  the same, both on thread 0
 * Args, in any order: [MESSAGES] [ROUND_TRIPS] [unpinned]
 */
#define BENCH_NAME "lua_sendrecv"
#include "lua_bench.h"

#define DEFAULT_MESSAGES 1000000L
#define DEFAULT_ROUND_TRIPS 100000L
#define CPUS "0,1" /* scheduler threads 0 and 1 are pinned here unless "unpinned" is given */

int main(int argc, char **argv) {
    long numbers[2] = {DEFAULT_MESSAGES, DEFAULT_ROUND_TRIPS};
    int pinned;
    if (bench_parse(argc, argv, numbers, 2, NULL, NULL, &pinned, "[MESSAGES] [ROUND_TRIPS]"))
        return 2;
    long messages = numbers[0], trips = numbers[1];
    char messages_s[32], trips_s[32];
    snprintf(messages_s, sizeof messages_s, "%ld", messages);
    snprintf(trips_s, sizeof trips_s, "%ld", trips);
    const char *args[] = {messages_s, trips_s};
    bench_lua_run("sendrecv", args, 2, pinned ? CPUS : NULL);

    const char *cpus = pinned ? CPUS : "unpinned";
    const char *pin = pinned ? "true" : "false";
    fprintf(stderr,
            "lua_sendrecv: %ld messages one way (thread 0 -> 1), %ld round trips, CPUs %s: "
            "%.3f M msg/s, ping-pong %.0f ns (one thread: %.0f), call %.0f ns (one thread: %.0f)\n",
            messages, trips, cpus, bench_lua_result("oneway"), bench_lua_result("pingpong"),
            bench_lua_result("pingpong_same"), bench_lua_result("call"),
            bench_lua_result("call_same"));
    printf("{\"name\":\"lua_send_oneway%s\",\"unit\":\"M msg/s\",\"value\":%.3f,\"messages\":%ld,"
           "\"busy_ns_per_message\":[%.1f,%.1f],\"pinned\":%s}\n",
           bench_suffix(), bench_lua_result("oneway"), messages, bench_lua_result("oneway_busy0"),
           bench_lua_result("oneway_busy1"), pin);
    static const struct {
        const char *name, *key;
    } trip_results[] = {{"lua_pingpong", "pingpong"},
                        {"lua_pingpong_same", "pingpong_same"},
                        {"lua_call_roundtrip", "call"},
                        {"lua_call_roundtrip_same", "call_same"}};
    for (size_t i = 0; i < sizeof trip_results / sizeof trip_results[0]; i++)
        printf("{\"name\":\"%s%s\",\"unit\":\"ns/roundtrip\",\"value\":%.2f,\"round_trips\":%ld,"
               "\"pinned\":%s}\n",
               trip_results[i].name, bench_suffix(), bench_lua_result(trip_results[i].key), trips,
               pin);
    return 0;
}
