-- What crosses between actors: data is copied exactly (integers and floats apart, any bytes,
-- nested and sparse tables); behaviour sent with spool.send is refused with the type and where it
-- was found; a table that contains itself is refused, never a crash.
local spool = require "spool"
local check = require "check"
local e = spool.spawn("echo_values", {thread = 1})

local function same(x, y, path)
  check.eq(type(x), type(y), path .. " type")
  if type(x) ~= "table" then
    if x ~= x then check.ok(y ~= y, path .. " NaN") return end
    check.eq(x, y, path)
    return
  end
  for k, v in pairs(x) do same(v, y[k], path .. "." .. tostring(k)) end
  for k in pairs(y) do check.ok(x[k] ~= nil, path .. " extra key " .. tostring(k)) end
end

local bytes = {}
for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
local sample = {
  1, 2.0, -3, 0.5, math.maxinteger, math.mininteger, 1 / 0, -1 / 0, 0 / 0,
  "", table.concat(bytes), "with\0nul", true, false,
  {}, {1, 2, 3}, {[1] = "a", [3] = "c"}, {x = {y = {z = {"deep"}}}}, {[2.5] = "float key", [true] = 1},
}
local n = select("#", table.unpack(sample))
local back = table.pack(spool.call(e, table.unpack(sample, 1, n)))
check.eq(back.n, n, "every value came back")
for i = 1, n do same(sample[i], back[i], "value " .. i) end
check.eq(select("#", spool.call(e, nil, nil, 3)), 3, "nils in the middle count")
check.eq(math.type(spool.call(e, 3.0)), "float", "3.0 stays a float")
check.eq(math.type(spool.call(e, 3)), "integer", "3 stays an integer")
local big = string.rep("x", 8 << 20)
check.eq(#spool.call(e, big), 8 << 20, "an 8 MiB string")
local deep = {}
local cur = deep
for _ = 1, 60 do cur.next = {}; cur = cur.next end
check.eq(type(spool.call(e, deep)), "table", "60 levels deep")

check.raises("cannot copy a function at argument 3", spool.send, e, "job", print)
check.raises("cannot copy a function at argument 2.handlers[2]", spool.send, e,
  {handlers = {"a", function() end}})
check.raises("cannot copy a coroutine", spool.send, e, coroutine.create(print))
local cyclic = {}
cyclic.me = cyclic
check.raises("cycle at argument 2.me", spool.send, e, cyclic)
local too_deep = {}
cur = too_deep
for _ = 1, 100 do cur.next = {}; cur = cur.next end
check.raises("nested deeper than", spool.send, e, too_deep)
check.raises("cannot copy a table with a metatable", spool.send, e, setmetatable({}, {}))
check.raises("an actor expected", spool.send, "not an actor", 1)
-- Actors travel as actors.
check.ok(spool.call(e, spool.self()) == spool.self(), "an actor comes back as the same actor")
-- Globals belong to each actor, even on one thread: two actors set the same global name.
spool.spawn("global_setter", {thread = 1}, spool.self(), "a")
spool.spawn("global_setter", {thread = 1}, spool.self(), "b")
for _ = 1, 2 do
  local _, mine, seen, interpreter = spool.receive(5)
  check.eq(seen, mine, "an actor sees its own global")
  check.eq(interpreter, nil, "and the interpreter's globals are untouched")
end
check.eq(rawget(_G, "shared_name"), nil, "nor are this actor's")
print("ok: values")
