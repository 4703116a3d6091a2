-- nodes_big_recv.lua - node "b" of tests/cli/nodes_big.sh: an actor registered as "sink" that
-- takes ("big", seq, s) strings of a little under 64 MiB and checks each whole against what the
-- sender made (nodes_big_content.lua), then answers the "result" call with what it found: how
-- many arrived intact, the first problem, and whether node a ever went down.
local spool = require "spool"
local util = require "nodes_util"
local content = require "nodes_big_content"

spool.register("sink")
spool.monitor_node("a")
util.report("ready")
local intact, problem, downs, expected = 0, nil, 0, 1
local met = false -- a nodedown before the first nodeup is "not connected": a was not up yet
while true do
  local from, what, seq, s = spool.receive(90)
  if from == nil then error("nodes_big_recv: nothing for 90 s") end
  if what == "big" then
    if seq ~= expected then
      problem = problem or ("got %d, want %d"):format(seq, expected)
    elseif s ~= content.make(seq) then
      problem = problem or ("message %d: %d bytes, not what was sent"):format(seq, #s)
    else
      intact = intact + 1
    end
    expected = seq + 1
    s = nil
    collectgarbage()
  elseif what == "nodeup" then
    met = true
  elseif what == "nodedown" and met then
    downs = downs + 1
    util.report("nodedown", {why = seq})
  elseif what == "result" then
    spool.reply(from, intact, problem, downs)
    return 0
  end
end
