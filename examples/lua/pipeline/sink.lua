-- sink.lua - counts what the workers pass on and checks it: every item once, each worker's items
-- in the order the producer sent them, each value right. Reports to main when all workers ended.
local spool = require "spool"
local main, workers, count = ...

local seen, last, received, ended, problems = {}, {}, 0, 0, {}
local function problem(...) problems[#problems + 1] = string.format(...) end

while ended < workers do
  local _, kind, name, seq, value = spool.receive()
  if kind == "end" then
    ended = ended + 1
  else
    received = received + 1
    if seen[seq] then problem("item %d twice", seq) end
    if seq <= (last[name] or 0) then problem("%s: item %d after %d", name, seq, last[name]) end
    if value ~= #("item " .. seq) + seq then problem("item %d: wrong value %s", seq, value) end
    seen[seq], last[name] = true, seq
  end
end
for seq = 1, count do
  if not seen[seq] then problem("item %d missing", seq) end
end
spool.send(main, "result", received, problems)
