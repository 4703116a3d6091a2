-- worker.lua - a worker of the cluster example, started on a node by main.lua on node a:
-- spool.spawn("worker", {node = "b"}, boss, tally). Each job is a number n; the answer is the sum
-- of the squares 1..n, and the job is counted in the tally pinned on node c.
local spool = require "spool"
local boss, tally = ...
spool.set_timeout(5)
while true do
  local from, what, job, n = spool.receive()
  if what == "job" then
    local sum = 0
    for i = 1, n do sum = sum + i * i end
    tally.add(spool.node(), job)             -- a call to node c, from whichever node this is
    spool.send(boss, "done", job, sum, spool.node())
  elseif what == "quit" then
    return 0
  end
end
