-- leaks.lua - handles inside messages that are never read stay counted at their home.
local spool = require "spool"
local m = spool.spawn("maker", {thread = 1})
local function settle() collectgarbage(); collectgarbage(); spool.sleep(0.05) end
local function handles() return spool.metrics().lua.handles end

do local f = m.adder(1); print("one handle:", handles()) end
settle(); print("after collection:", handles())

-- Refused at once (the receiver is gone, the spawn is refused): the references go back home.
local gone = spool.spawn("napper", {thread = 0})
spool.monitor(gone); spool.receive(1)
do local f = m.adder(2); print("send to a gone actor:", spool.send(gone, f)) end
do local f = m.adder(2); print("refused spawn:", pcall(spool.spawn, "napper", {thread = 9}, f)) end
settle(); print("after collection:", handles())

-- Accepted, then never read (the receiver ends first): the reference is not given back.
local napper = spool.spawn("napper", {thread = 0})
spool.monitor(napper)
do local f = m.adder(3); print("send to a napper:", spool.send(napper, f)) end
spool.receive(1)
settle(); print("after collection:", handles(), spool.metrics().dead_letters.receiver_stopped)

-- A late answer that holds a handle: the same.
local slow = spool.spawn("slow_maker", {thread = 1})
print(pcall(spool.with_timeout(slow, 0.01).adder, 4))
settle(); print("after collection:", handles(), spool.metrics().dead_letters.late_reply)
