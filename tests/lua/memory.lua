-- With a memory limit per interpreter (memory_host.c sets 64 MiB), an actor that runs out dies
-- alone with "not enough memory"; a pcall in another actor catches its own; all go on.
local spool = require "spool"
local check = require "check"
local hog = spool.spawn("memory_hog", {thread = 1})
spool.monitor(hog)
local _, kind, reason = spool.receive(60)
check.eq(kind, "down", "the hog ended")
check.ok(reason:find("not enough memory", 1, true), "out of memory: " .. tostring(reason))
local t = {}
local ok, err = pcall(function() for i = 1, 1e8 do t[i] = ("y"):rep(100) .. i end end)
check.eq(ok, false, "this actor ran out too")
check.ok(tostring(err):find("not enough memory", 1, true), "and caught it: " .. tostring(err))
t = nil
collectgarbage()
local again = spool.spawn("echo_values", {thread = 1})
check.eq(spool.call(again, "still here"), "still here", "thread 1's interpreter still works")
print("ok: memory")
