-- member.lua - nodes b and c of the cluster example: they only host what node a starts on them
-- (workers, and on c the pinned tally). Each ends when node a has come and gone.
local spool = require "spool"
spool.monitor_node("a")
local met = false
while true do
  local node, what, why = spool.receive()
  if what == "nodeup" then
    met = true
  elseif what == "nodedown" and met then
    print(("%s: node %s is down (%s): leaving"):format(spool.node(), node, why))
    return 0
  end
end
