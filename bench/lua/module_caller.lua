-- module_caller.lua - one caller of lua_module_call (spawned on thread 1 by module_call.lua):
-- warms up, says "ready", waits for "go", makes CALLS calls one after the other (each waits for
-- its answer), checks every answer and sends back ("done", t0, t1, errors).
-- Args: main actor, module name ("bench_add" or "cjson"), CALLS, WARMUP
local spool = require "spool"
local benchlib = require "benchlib"
local main, module, calls, warmup = ...

local m = spool.module(module, {thread = 0})
local now = benchlib.now
local errors = 0
local loop

if module == "bench_add" then
    loop = function(n)
        for i = 1, n do
            if m.add(i, 1) ~= i + 1 then
                errors = errors + 1
            end
        end
    end
else -- cjson.encode of a small table
    local t = {id = 0, name = "spool", ok = true, xs = {1, 2, 3}}
    loop = function(n)
        for i = 1, n do
            t.id = i
            local s = m.encode(t)
            if type(s) ~= "string" or #s < 40 then
                errors = errors + 1
            end
        end
    end
end

loop(warmup)
spool.send(main, "ready")
spool.receive() -- "go"
local t0 = now()
loop(calls)
local t1 = now()
spool.send(main, "done", t0, t1, errors)
