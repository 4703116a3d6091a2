-- names.lua - names, monitors, exit reasons, ids.
local spool = require "spool"

local a = spool.spawn("idler", {name = "idler-a"})  -- registered at spawn
print(spool.whereis("idler-a") == a, spool.whereis("nobody") == nil)
print(spool.register("idler-a"))                      -- a name is taken once
print(spool.register("another", a))                   -- and an actor has one name at most
print(spool.register("main"), spool.whereis("main") == spool.self())
print(spool.unregister("main"), spool.whereis("main") == nil)

-- ids: an actor is also a 64-bit integer, e.g. to keep it in a table key or a file.
local n = spool.id(a)
print(("%d %x"):format(n, n), spool.actor(n) == a)

-- Monitors: one "down" notice per monitor, with the reason.
local function down() return select(3, spool.receive(1)) end
spool.monitor(a)
spool.stop(a, 7)                                      -- after what a has queued
print(down(), spool.whereis("idler-a") == nil)       -- the name is free again
spool.monitor(a)
print(down())                                         -- gone already
local b = spool.spawn("idler", {})
spool.monitor(b); spool.send(b, "exit")               -- spool.exit() inside: normal
print(down())
local c = spool.spawn("idler", {})
spool.monitor(c); spool.send(c, "exit", 3)
print(down())
local d = spool.spawn("idler", {})
spool.monitor(d); spool.send(d, "exit", 1)
print(down())
