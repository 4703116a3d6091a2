-- producer.lua - sends items 1..count to the workers in turn, then "end" to each, and ends.
local spool = require "spool"
local workers, count = ...

for seq = 1, count do
  spool.send(workers[(seq - 1) % #workers + 1], "item", seq, ("item %d"):format(seq))
end
for _, w in ipairs(workers) do
  spool.send(w, "end") -- after its items: messages from one sender arrive in order
end
