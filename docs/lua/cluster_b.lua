-- cluster_b.lua - node b of the docs' two-node example: a registered actor that greets, and the
-- scripts and modules next to this file (cluster_job.lua, tally.lua) that node a starts here.
local spool = require "spool"
spool.register("greeter")
spool.monitor_node("a")  -- ("a", "nodedown", "not connected") at once if a is not up yet
local met = false
while true do
  local from, what, who = spool.receive()
  if what == "hello" then
    spool.reply(from, ("hello %s, from node %s"):format(who, spool.node()))
  elseif what == "nodeup" then
    met = true
  elseif what == "nodedown" and met then -- node a left (who: the reason), so do we
    print("b: node " .. from .. " is down (" .. who .. ")")
    return 0
  end
end
