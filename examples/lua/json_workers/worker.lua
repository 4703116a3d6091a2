-- worker.lua - a process actor: turns JSON orders into JSON totals until "stop", then reports.
local spool = require "spool"
local main = ...

-- spool.module finds the modules main pinned, by name; these proxies live in this thread's
-- interpreter, but cjson and the tally stay where they were loaded.
local json = spool.module("cjson", {thread = 0})
local tally = spool.module("tally")

local docs, calls, first = 0, 0, nil
while true do
  local _, kind, text = spool.receive()
  if kind == "stop" then break end
  first = first or spool.now()
  local order = json.decode(text) -- a call: decoded on thread 0, the table comes back as a copy
  local total = 0
  for _, line in ipairs(order.lines) do
    total = total + line.qty * line.price
  end
  spool.send(main, "result", json.encode({id = order.id, total = total})) -- produced on thread 0
  tally.add(spool.thread(), 1) -- a call to the tally's thread
  docs, calls = docs + 1, calls + 3
end
local seconds = first and spool.now() - first or 0
spool.send(main, "done", spool.thread(), docs, calls, seconds)
