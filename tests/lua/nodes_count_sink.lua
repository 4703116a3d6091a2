-- nodes_count_sink.lua - a node of the accounting tests (tests/cli/nodes_accounting.sh): an
-- actor registered as "sink" that counts the ("m", ...) messages it gets. Calls: "flush"
-- answers at once (a sender's call comes after its messages, so the count then holds them all),
-- "count" answers the count and this node's dead letters, "stop" ends the node (a goodbye).
local spool = require "spool"
local util = require "nodes_util"

spool.register("sink")
util.report("ready", {node = spool.node()})
local count = 0
while true do
  local from, what = spool.receive(90)
  if from == nil then error("nodes_count_sink: nothing for 90 s") end
  if what == "m" then
    count = count + 1
  elseif what == "flush" then
    spool.reply(from, true)
  elseif what == "count" then
    local dead = 0
    for _, n in pairs(spool.metrics().dead_letters) do dead = dead + n end
    spool.reply(from, count, dead)
  elseif what == "stop" then
    util.report("stopping", {count = count})
    return 0
  end
end
