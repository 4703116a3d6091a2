-- tally.lua - the pinned module of the cluster example: one table of counts, loaded on one thread
-- of node c (spool.module("tally", {node = "c"})), called from workers on every node.
local tally = {counts = {}, total = 0}

function tally.add(node, job)
  tally.counts[node] = (tally.counts[node] or 0) + 1
  tally.total = tally.total + 1
  return tally.total
end

function tally.report()
  return tally.counts, tally.total
end

return tally
