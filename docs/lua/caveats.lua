-- caveats.lua - where the actor's coroutine matters, and what is per actor or per thread.
local spool = require "spool"

-- Waiting (call, receive, sleep, any use of a proxy) only in the actor's own coroutine.
local co = coroutine.wrap(function()
  print("send from a coroutine:", spool.send(spool.self(), "hi"))   -- send does not wait: fine
  return pcall(spool.sleep, 0)
end)
print(co())
print("received:", select(2, spool.receive(0)))
print(pcall(table.sort, {2, 1}, function(x, y) spool.sleep(0); return x < y end))
setmetatable({}, {__gc = function() print("in __gc:", pcall(spool.call, spool.self())) end})
collectgarbage()

-- coroutine.yield() in the actor's own coroutine: the actor fails (nothing would resume it).
local y = spool.spawn("yielder", {thread = 1})
spool.monitor(y)
print(select(3, spool.receive(1)):match("[^\n]*"))

-- Globals are per actor; `require` is per thread (one module table, one set of its globals).
greeting = "main's global"
local tally = require "tally"
print("main:", spool.thread(), greeting, tally.bump(), last_bumper)
for _, thread in ipairs({0, 0, 1}) do
  spool.spawn("peer", {thread = thread}, spool.self())
  print("peer:", select(2, spool.receive(1)))
end
