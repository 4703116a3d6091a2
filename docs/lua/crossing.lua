-- crossing.lua - what is copied, what becomes a handle, what is refused.
local spool = require "spool"
local e = spool.spawn("echo", {thread = 1})
local function back(x) return spool.call(e, x) end   -- x goes to thread 1 and comes back

-- Data is copied exactly: integers and floats stay apart, strings keep every byte.
for _, x in ipairs({3, 3.0, math.maxinteger, 1 / 0, "a\0b\255"}) do
  local y = back(x)
  print(math.type(y) or type(y), y == x, #tostring(y))
end
local nan = back(0 / 0)
print("nan", nan ~= nan)
local shared = {1}
local t = back({list = {10, 20, nil, 40}, [2.5] = "float key", [true] = "bool key",
                a = shared, b = shared})
print(t.list[4], t[2.5], t[true], t.a == t.b)   -- sparse kept; `shared` became two tables
print(back(e) == e, back(spool.self()))          -- actors travel as actors

-- Behaviour in spool.send (or spool.call, spool.reply, spool.spawn arguments) is refused, with
-- the place it was found; argument 1 is the actor.
local function try(...) local ok, err = pcall(...); print(err) end
try(spool.send, e, "job", {handlers = {print}})
try(spool.send, e, setmetatable({}, {}))
try(spool.send, e, coroutine.create(print))
local cyclic = {}; cyclic.self = cyclic
try(spool.send, e, {x = cyclic})
local function nest(levels) local t = {}; for _ = 2, levels do t = {next = t} end; return t end
print(spool.send(e, nest(64)))                     -- 64 levels: the limit
local _, err = pcall(spool.send, e, nest(65))
print(err:match("^.- at argument 2"), "(then .next 64 times)")
try(spool.send, e, string.rep("x", 64 * 1024 * 1024 + 1))

-- Behaviour in what an object (or module) returns stays home: the caller gets a handle.
local m = spool.spawn("maker", {thread = 1})
local p = m.point(3, 4)
print(p, p:norm2(), p.x)                          -- methods and fields: messages to maker
local add2 = m.adder(2)
print(add2, add2(40))                             -- a function handle can be called
print(m.data().list[3], m.config.retries)
try(m.co)
try(function() p.x = 1 end)
