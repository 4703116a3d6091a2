-- nodes_idle.lua - a quiet node for the multi-process node tests (tests/cli/nodes_*.sh): an actor
-- registered as "idle" that reports every node going up or down ("nodeup node=b at=T",
-- "nodedown node=b why=... at=T", T from spool.now()), answers the call "ping" with ("pong",
-- its node's name), ends on "stop", and after SECONDS (default 60) reports the nodes it sees up
-- ("nodes list=b,c") and ends with 0.
--
--   spool run nodes_idle.lua [SECONDS] --node NAME ...
local spool = require "spool"
local util = require "nodes_util"

local seconds = tonumber((...)) or 60
spool.register("idle")
spool.monitor_node("*")
util.report("ready", {node = spool.node()})
local deadline = spool.now() + seconds
while true do
  local left = deadline - spool.now()
  if left <= 0 then break end
  local from, what, x = spool.receive(left)
  local at = ("%.6f"):format(spool.now())
  if what == "nodeup" then
    util.report("nodeup", {node = from, at = at})
  elseif what == "nodedown" then
    util.report("nodedown", {node = from, why = x, at = at})
  elseif what == "ping" then
    spool.reply(from, "pong", spool.node())
  elseif what == "stop" then
    return 0
  end
end
util.report("nodes", {list = table.concat(spool.nodes(), ",")})
return 0
