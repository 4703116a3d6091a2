-- processes.lua - process actors: send, receive with a timeout, polling, call/reply.
local spool = require "spool"

local a = spool.spawn("adder", {thread = 1}, "a")  -- adder.lua, next to this file
print("spawned", a, "on thread", spool.thread_of(a))
for i = 1, 3 do spool.send(a, "add", i) end       -- true: accepted into a's mailbox
print("call:", spool.call(a, "total"))            -- a request; returns what spool.reply sent

-- A request is answered by spool.reply; a plain sender gets a plain message back.
spool.send(spool.self(), "note", 42)               -- to myself
print("poll:", spool.receive(0))                   -- seconds = 0: take what is there, or nil
print("poll again:", spool.receive(0))
print("wait 50 ms:", spool.receive(0.05))          -- nil after the timeout

spool.monitor(a)
spool.send(a, "stop")
local from, kind, reason = spool.receive(1)
print(kind, from == a, reason)                     -- the monitor's notice
print("send to an ended actor:", spool.send(a, "add", 1))
