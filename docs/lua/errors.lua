-- errors.lua - remote errors, failing actors, on_message errors, timeouts, call cycles.
local spool = require "spool"
local f = spool.spawn("fragile", {thread = 1})

-- An error inside a call comes back as a Lua error: the message, then the remote traceback.
local ok, err = pcall(f.sqrt, -1)
print(err)
print(f.sqrt(16))                              -- the object goes on serving

-- An actor that fails ends alone; its monitors hear why.
local c = spool.spawn("crasher", {thread = 1})
spool.monitor(c)
spool.send(c, "poison")
local from, kind, reason = spool.receive(1)
print(kind, from == c, (reason:gsub("\n.*", " ...")))

-- An error in on_message has nobody to go back to: it is reported on stderr and counted.
local g = spool.spawn("grumpy", {thread = 1})
spool.send(g, "x")
print(g.ping(), "unhandled:", spool.metrics().lua.unhandled)  -- g goes on serving

-- Timeouts: per proxy (spool.with_timeout), or a default for this actor's calls.
local nap = f.nap                              -- the lookup is a call too: do it first
local impatient = spool.with_timeout(f, 0.05)
print(pcall(impatient.nap, 0.2))
spool.set_timeout(0.05)
print(pcall(nap, 0.2))                         -- gives up too: f is still in the first nap
spool.set_timeout(nil)                         -- back to no timeout
print(nap(0))                                  -- answered after both naps above
print("late answers:", spool.metrics().dead_letters.late_reply)

-- A call that would wait for itself is an error at once, never a hang.
print(pcall(f.ask, spool.self()))              -- f calls back this actor, which waits for f
print(pcall(f.ask, f))                         -- f calls itself
