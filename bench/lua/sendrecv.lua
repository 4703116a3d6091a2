-- sendrecv.lua - the main script of bench_lua_sendrecv (the main actor, thread 0):
--   oneway        MESSAGES spool.send of an integer from this actor (thread 0) to a process actor
--                 on thread 1 looping on spool.receive(): M msg/s, first send to last receipt;
--                 and each thread's busy ns per message (oneway_busy0, oneway_busy1)
--   pingpong      ROUND_TRIPS spool.send + spool.receive between this actor and a process actor on
--                 thread 1 that sends every value back: ns per round trip
--   pingpong_same the same with both actors on thread 0
--   call          ROUND_TRIPS spool.call to a process actor on thread 1 answering with
--                 spool.reply: ns per round trip
--   call_same     the same with both actors on thread 0
-- Every received value is checked. Args: MESSAGES ROUND_TRIPS
local spool = require "spool"
local benchlib = require "benchlib"
local args = {...}
local messages, trips = math.tointeger(tonumber(args[1])), math.tointeger(tonumber(args[2]))
assert(messages and messages > 0 and trips and trips > 0, "args: MESSAGES ROUND_TRIPS")
local now, send, receive, call = benchlib.now, spool.send, spool.receive, spool.call
local me = spool.self()
local warmup = 1000

-- One way: the main actor sends all, in one go, as a producer does.
do
    local sink = spool.spawn("sink", {thread = 1}, me, messages)
    local _, what = receive()
    assert(what == "ready", what)
    local m0 = spool.metrics()
    local t0 = now()
    for i = 1, messages do
        send(sink, i)
    end
    local _, done, t1, sum = receive()
    local m1 = spool.metrics()
    assert(done == "done", done)
    local expected = messages * (messages + 1) // 2
    if sum ~= expected then
        error(("oneway: the sink summed %d, expected %d"):format(sum, expected))
    end
    benchlib.result("oneway", messages / ((t1 - t0) / 1e9) / 1e6)
    for i, t in ipairs(m1.threads) do -- busy ns per message, per thread
        local busy = t.busy_seconds - m0.threads[i].busy_seconds
        benchlib.result(("oneway_busy%d"):format(t.thread), busy / messages * 1e9)
    end
end

local function pingpong(result, thread, how)
    local pong = spool.spawn("pong", {thread = thread}, warmup + trips, how)
    local function bounce(n)
        for i = 1, n do
            local v
            if how == "call" then
                v = call(pong, i)
            else
                send(pong, i)
                v = select(2, receive())
            end
            if v ~= i then
                error(("%s: got %s back for %d"):format(result, tostring(v), i))
            end
        end
    end
    bounce(warmup)
    local t0 = now()
    bounce(trips)
    local t1 = now()
    benchlib.result(result, (t1 - t0) / trips)
end

pingpong("pingpong", 1, "send")
pingpong("pingpong_same", 0, "send")
pingpong("call", 1, "call")
pingpong("call_same", 0, "call")
