-- nodes_big.lua - node "a" of tests/cli/nodes_big.sh (heartbeat_ms = 100, down_after_ms = 500 on
-- both nodes): a stream of strings of a little under 64 MiB to node b, which checks each whole.
-- Heartbeats travel apart from the bulk, so neither side may see the other down meanwhile. A
-- send refused with overload (128 MiB queued already) is tried again after a pause.
local spool = require "spool"
local check = require "check"
local util = require "nodes_util"
local content = require "nodes_big_content"

local count = util.scale(8)
spool.set_timeout(60)
util.wait_up("b", 10)
local sink = util.whereis("sink", "b")
local t0 = spool.now()
local retries, downs = 0, 0
for seq = 1, count do
  local s = content.make(seq)
  while true do
    local ok, why = spool.send(sink, "big", seq, s)
    if ok then break end
    check.eq(why, "node send queue full", "the only refusal expected")
    retries = retries + 1
    spool.sleep(0.02)
  end
  s = nil
  collectgarbage()
  -- a nodedown while streaming would be a false one
  while true do
    local who, what, why = spool.receive(0)
    if who == nil then break end
    if what == "nodedown" then
      downs = downs + 1
      util.report("nodedown", {why = why})
    end
  end
end
local intact, problem, b_downs = spool.call(sink, "result")
local seconds = spool.now() - t0
local peer = spool.metrics().nodes.b
util.report("result", {messages = count, intact = intact, retries = retries,
  seconds = ("%.2f"):format(seconds), mib_per_s = ("%.0f"):format(count * 64 / seconds),
  missed = peer.heartbeats_missed, rtt_ms = peer.rtt_ms})
check.eq(problem, nil, "b found the stream intact")
check.eq(intact, count, "every message arrived whole")
check.eq(downs, 0, "no nodedown of b at a")
check.eq(peer.downs, 0, "b never down at a (metrics)")
check.eq(b_downs, 0, "no nodedown of a at b")
print("nodes_big: all checks passed")
return 0
