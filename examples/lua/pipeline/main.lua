-- main.lua - producer -> workers -> sink, placed by the config file, not by the code.
--   spool run main.lua [ITEMS] --config placement.ini
local spool = require "spool"
local count = math.tointeger(tonumber(... or "10000"))
assert(count and count > 0, "usage: spool run main.lua [ITEMS] --config placement.ini")
local nworkers = 4

-- Each actor gets a name and no thread: the config's [placement] rules match the names.
local sink = spool.spawn("sink", {name = "sink"}, spool.self(), nworkers, count)
local placed = {{"sink", sink}}
local workers = {}
for i = 1, nworkers do
  local name = "worker" .. i
  workers[i] = spool.spawn("worker", {name = name}, name, sink) -- actors travel as arguments
  placed[#placed + 1] = {name, workers[i]}
end
-- The producer last, so that everything downstream exists when the first item leaves.
local producer = spool.spawn("producer", {name = "producer"}, workers, count)
table.insert(placed, 1, {"producer", producer})

-- Where each one lives. Ask now: spool.thread_of gives nil once an actor has ended.
print(("%-9s thread %d"):format("main", spool.thread()))
for _, p in ipairs(placed) do
  print(("%-9s thread %s"):format(p[1], spool.thread_of(p[2])))
end

local _, kind, received, problems = spool.receive(60)
assert(kind == "result", "timed out waiting for the sink")
for i = 1, math.min(#problems, 10) do print("problem: " .. problems[i]) end
local ok = received == count and #problems == 0
print(("sink: %d of %d items, %s: %s"):format(received, count,
  #problems == 0 and "each once, in order" or #problems .. " problems", ok and "OK" or "FAILED"))
return ok and 0 or 1
