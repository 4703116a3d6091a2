-- nodes_partition.lua - node "a" of tests/cli/nodes_partition.sh, in its own network namespace
-- (heartbeat_ms = 100, down_after_ms = 500): node b (nodes_idle.lua) is in another, joined by a
-- veth pair. The shell cuts the link: b goes down here with "heartbeat timeout" (time reported);
-- it heals the link: b comes up again in a new session and its actor answers.
local spool = require "spool"
local check = require "check"
local util = require "nodes_util"

spool.set_timeout(10)
util.wait_up("b", 15)
local idle = util.whereis("idle", "b")
check.eq(select(2, spool.call(idle, "ping")), "b", "b's idle answers")
util.report("ready")
local who, what, why, at = util.wait_notice({nodedown = true}, 20)
check.eq(who, "b", "nodedown of b")
check.eq(why, "heartbeat timeout", "the cut link is seen by heartbeats")
util.report("down", {at = ("%.6f"):format(at)})
who, what, why, at = util.wait_notice({nodeup = true}, 30)
check.eq(who, "b", "nodeup of b after the link healed")
local peer = spool.metrics().nodes.b
check.ok(peer.ups >= 2, "a new session: ups = " .. peer.ups)
util.answers_again(idle, "b", "b's idle answers again")
util.report("up", {at = ("%.6f"):format(at), ups = peer.ups, downs = peer.downs})
spool.send(idle, "stop")
print("nodes_partition: all checks passed")
return 0
