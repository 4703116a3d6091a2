-- module_call.lua - the main script of bench_lua_module_call (thread 0). A module pinned on thread
-- 0 (bench_add.lua: add(a, b); and cjson when it is installed: encode of a small table); CALLERS
-- Lua actors on thread 1 each make CALLS calls through the module's proxy, one at a time (call +
-- reply). Reports M calls/s from the first caller's start to the last caller's end, for CALLERS
-- callers ("add"), for one ("add_1") and for CALLERS callers of cjson.encode ("cjson", absent
-- when cjson cannot be loaded), and each thread's busy ns per call ("<result>_busy<thread>").
-- Callers on thread THREAD instead of 1 (0: everything on one thread). Args: CALLS CALLERS [THREAD]
local spool = require "spool"
local benchlib = require "benchlib"
local args = {...}
local calls, callers = math.tointeger(tonumber(args[1])), math.tointeger(tonumber(args[2]))
local caller_thread = math.tointeger(tonumber(args[3] or "1"))
assert(calls and calls > 0 and callers and callers > 0 and caller_thread,
       "args: CALLS CALLERS [THREAD]")
local warmup = 200

local me = spool.self()

local function phase(result, module, n)
    local ids = {}
    for i = 1, n do
        ids[i] = spool.spawn("module_caller", {thread = caller_thread}, me, module, calls, warmup)
    end
    for _ = 1, n do
        local _, what = spool.receive()
        assert(what == "ready", what)
    end
    local m0 = spool.metrics()
    for i = 1, n do
        spool.send(ids[i], "go")
    end
    local first, last, errors = math.huge, 0, 0
    for _ = 1, n do
        local _, what, t0, t1, e = spool.receive()
        assert(what == "done", what)
        first = math.min(first, t0)
        last = math.max(last, t1)
        errors = errors + e
    end
    if errors ~= 0 then
        error(("%s: %d wrong answers"):format(result, errors))
    end
    local m1 = spool.metrics()
    benchlib.result(result, n * calls / ((last - first) / 1e9) / 1e6)
    -- where the time went: each thread's busy time (not idle, not spinning) per call
    for i, t in ipairs(m1.threads) do
        local busy = t.busy_seconds - m0.threads[i].busy_seconds
        benchlib.result(("%s_busy%d"):format(result, t.thread), busy / (n * calls) * 1e9)
    end
end

local add = spool.module("bench_add", {thread = 0})
phase("add", "bench_add", callers)
phase("add_1", "bench_add", 1)
local expected = (callers + 1) * (calls + warmup)
if add.calls() ~= expected then
    error(("the module answered %d calls, expected %d"):format(add.calls(), expected))
end

if pcall(spool.module, "cjson", {thread = 0}) then
    phase("cjson", "cjson", callers)
else
    io.stderr:write("lua_module_call: no cjson (Debian: lua-cjson), no cjson figure\n")
end
