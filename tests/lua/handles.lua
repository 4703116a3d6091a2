-- Handles: userdata stays home; methods and fields are messages; handles can be sent to other
-- actors; when the last proxy anywhere is collected, the home lets go of the object.
local spool = require "spool"
local check = require "check"
local g = spool.module("guarded", {thread = 1})
local live0 = g.live()
do
  local obj = g.new(5)                       -- a userdata: the caller gets a handle
  check.ok(tostring(obj):find("handle<", 1, true), "a handle: " .. tostring(obj))
  check.eq(obj:get(), 5, "a method call through the handle")
  check.eq(obj:add(2), 7, "state lives at home")
  check.eq(obj.get ~= nil, true, "a field that is a function")
  local user = spool.spawn("handles_user", {thread = 0})
  local v, after = spool.call(user, obj)     -- the handle travels to another actor
  check.eq(v, 17, "the other actor used the same object")
  check.eq(after, 17, "and saw its state")
  check.eq(obj:get(), 17, "the object is shared, not copied")
  check.eq(g.live(), live0 + 1, "one object alive at home")
  check.eq(spool.metrics().lua.handles >= 1, true, "handles are counted")
end
collectgarbage(); collectgarbage()           -- the proxies go: their references go home
check.eventually(function() return g.live() == live0 end, "the home released the object")
check.eventually(function() return spool.metrics().lua.handles == 0 end, "no handle left")

-- Many handles made and dropped: nothing leaks.
for i = 1, 200 do local o = g.new(i); check.eq(o:get(), i, "handle " .. i) end
collectgarbage(); collectgarbage()
check.eventually(function() return g.live() == live0 end, "200 objects released")
local live, made = g.live()
check.eq(made >= 201, true, "every object was made at home")

-- A handle sent to an actor that is gone goes back home: no reference is left behind.
do
  local gone = spool.spawn("sender", {thread = 0}, spool.self(), 0, "bye")
  spool.monitor(gone)
  check.eq(select(3, spool.receive(5)), "end", "its only message")
  check.eq(select(2, spool.receive(5)), "down", "and it is gone")
  local o = g.new(1)
  check.eq(spool.send(gone, "take this", o), false, "a send to a gone actor fails")
end
collectgarbage(); collectgarbage()
check.eventually(function() return g.live() == live0 end, "the refused handle was released")

-- A handle is never a copy: a table with a metatable stays home too.
local m = spool.module("handles_module", {thread = 1})
local counter = m.counter()
check.eq(counter:next(), 1, "a table with a metatable is a handle")
check.eq(counter:next(), 2, "with its state at home")
check.eq(counter.step, 1, "a field that is data is copied")
local f = m.adder(3)                         -- a closure: a handle that can be called
check.eq(f(4), 7, "calling a function handle")
-- A light userdata (a sentinel such as cjson.null) stays home too, and keeps its identity.
local null = g.null
check.ok(tostring(null):find("handle<", 1, true), "a light userdata is a handle")
check.ok(g.null == null, "the same sentinel is the same handle")
check.eq(g.is_null(null), true, "and is the sentinel again at home")
print("ok: handles")
