-- A call that would wait for itself is an error, never a hang: A calls B and B calls A while A
-- waits; an object calling itself; a process calling itself with spool.call.
local spool = require "spool"
local check = require "check"
local a = spool.spawn("cycle_a", {thread = 0})
local b = spool.spawn("cycle_peer", {thread = 1})
local err = check.raises("call cycle", a.start, b) -- a.start -> b.ping_back(a) -> a.pong()
check.ok(err:find(tostring(a), 1, true), "the error names the actor waiting: " .. err)
check.eq(a.pong(), "pong", "A is fine afterwards")
local c = spool.spawn("cycle_peer", {thread = 0})
check.eq(c.relay(a, b), "pong", "a chain through three actors without a cycle works")
check.raises("call cycle", a.start, c) -- the same cycle with both on one thread
check.raises("call cycle", b.self_call)
check.raises("call cycle", spool.call, spool.self(), "me?")
print("ok: cycles")
