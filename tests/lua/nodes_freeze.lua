-- nodes_freeze.lua - node "a" of tests/cli/nodes_freeze.sh (heartbeat_ms = 100, down_after_ms =
-- 500 on both nodes): the shell freezes node b (nodes_idle.lua) with SIGSTOP; heartbeats stop, and
-- a's monitors fire: nodedown "heartbeat timeout" and down "noconnection", their times reported.
-- No false alarm before: b must stay up for the first second. Then the shell thaws b (SIGCONT):
-- it comes back in a new session of the same incarnation (a nodeup), and its actor answers.
local spool = require "spool"
local check = require "check"
local util = require "nodes_util"

spool.set_timeout(10)
util.wait_up("b", 10)
local idle = util.whereis("idle", "b")
local incarnation = spool.metrics().nodes.b.incarnation
spool.monitor(idle)
-- a quiet second first: heartbeats every 100 ms keep it up
local quiet_until = spool.now() + 1
while spool.now() < quiet_until do
  local who, what, why = spool.receive(quiet_until - spool.now())
  check.ok(what ~= "nodedown" and what ~= "down", "a false alarm: " .. tostring(what) .. " " .. tostring(why))
end
check.eq(select(2, spool.call(idle, "ping")), "b", "b's idle answers")
util.report("ready")

local down_at, nodedown_at = util.wait_down(idle, "b", "heartbeat timeout", 20)
local peer = spool.metrics().nodes.b
check.ok(peer.heartbeats_missed > 0, "missed heartbeats counted: " .. peer.heartbeats_missed)
util.report("seen", {down_at = ("%.6f"):format(down_at), nodedown_at = ("%.6f"):format(nodedown_at),
  missed = peer.heartbeats_missed})

-- thawed by the shell: a new session
local who, _, _, up_at = util.wait_notice({nodeup = true}, 20)
check.eq(who, "b", "nodeup of b after the thaw")
peer = spool.metrics().nodes.b
check.eq(peer.incarnation, incarnation, "the same incarnation (the process did not restart)")
check.ok(peer.ups >= 2, "a new session: ups = " .. peer.ups)
util.answers_again(idle, "b", "b's idle answers again through its old id")
util.report("thawed", {up_at = ("%.6f"):format(up_at), ups = peer.ups, downs = peer.downs})
spool.send(idle, "stop")
print("nodes_freeze: all checks passed")
return 0
