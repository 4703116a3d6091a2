-- Timeouts: calls give up after their time with a clear error; the late answer is a counted dead
-- letter; spool.receive and spool.sleep wait only their caller.
local spool = require "spool"
local check = require "check"
local s = spool.spawn("slow", {thread = 1})
local impatient = spool.with_timeout(s, 0.05)
local late_before = spool.metrics().dead_letters.late_reply
local t0 = spool.now()
check.raises("timeout", impatient.nap, 0.5)
local waited = spool.now() - t0
check.ok(waited >= 0.04 and waited < 0.45, ("gave up after the timeout (%.3f s)"):format(waited))
-- Calls to one object are served one at a time: this one waits for the nap above to end.
check.eq(s.nap(0.01), "rested", "the same actor answers calls without a timeout")
check.eq(spool.metrics().dead_letters.late_reply, late_before + 1, "the late answer is counted")

-- A default timeout for this actor's calls.
spool.set_timeout(0.05)
check.raises("timeout", s.nap, 0.5)
spool.set_timeout(nil)
check.eq(s.quick(), "quick", "the actor is fine afterwards")

-- spool.receive with a timeout returns nil; 0 polls.
t0 = spool.now()
check.eq(spool.receive(0.05), nil, "nothing arrives: nil")
check.ok(spool.now() - t0 >= 0.04, "receive waited")
check.eq(spool.receive(0), nil, "a poll")
spool.send(spool.self(), "hello")
local from, what = spool.receive(0)
check.eq(what, "hello", "a poll finds a message already there")
check.ok(from == spool.self(), "from myself")

-- Waiting where the actor cannot yield (inside table.sort's comparator) is an error, and leaves
-- no timer behind to end the next wait early.
check.raises("cannot wait here", table.sort, {2, 1}, function(x, y) spool.sleep(0.2); return x < y end)
check.raises("cannot end the actor here", table.sort, {2, 1}, function() spool.exit(3) end)
t0 = spool.now()
check.eq(spool.receive(0.3), nil, "the next timed receive (and the actor did not end)")
check.ok(spool.now() - t0 >= 0.25, "waits its whole time")
check.eq(select("#", spool.receive(0.01)), 1, "a timeout is an explicit nil")

-- spool.call on a process that never answers, with a timeout.
local mute = spool.spawn("mute", {thread = 0})
check.raises("timeout", spool.call, spool.with_timeout(mute, 0.05), "anyone?")
spool.stop(mute)
local a, b = spool.now(), spool.now()
check.ok(b >= a and math.type(a) == "float", "spool.now() is a clock that does not go back")
print("ok: timeouts")
