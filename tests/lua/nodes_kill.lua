-- nodes_kill.lua - node "a" of tests/cli/nodes_kill.sh: watches node b (nodes_idle.lua) with a
-- node monitor and a monitor of its "idle" actor; the shell kills b with SIGKILL and reports when
-- it did. Both notices must come (down "noconnection", nodedown "disconnected"); their arrival
-- times (spool.now(), the monotonic clock) are reported. Then the shell starts b again on the
-- same port: b is up again in a new incarnation, the old id of its actor is stale (the send fails
-- and is a stale_incarnation dead letter, a call fails at once), and the new one answers.
local spool = require "spool"
local check = require "check"
local util = require "nodes_util"

spool.set_timeout(10)
util.wait_up("b", 10)
local idle = util.whereis("idle", "b")
check.eq(select(2, spool.call(idle, "ping")), "b", "b's idle answers")
local incarnation = spool.metrics().nodes.b.incarnation
spool.monitor(idle)
util.report("ready")

local down_at, nodedown_at = util.wait_down(idle, "b", "disconnected", 20)
util.report("seen", {down_at = ("%.6f"):format(down_at), nodedown_at = ("%.6f"):format(nodedown_at)})
check.eq(#spool.nodes(), 0, "b is not up")

-- b again, same port, a new life
local who = util.wait_notice({nodeup = true}, 20)
check.eq(who, "b", "nodeup of b's new life")
local peer = spool.metrics().nodes.b
check.ok(peer.incarnation ~= incarnation, "a new incarnation: " .. peer.incarnation)
local stale0 = util.dead("stale_incarnation")
local ok, why = spool.send(idle, "ping")
check.eq(ok, false, "a send to the old id fails")
check.ok(why ~= nil, "and says why")
check.eq(util.dead("stale_incarnation") - stale0, 1, "a stale_incarnation dead letter")
local t = spool.now()
local cok, cerr = pcall(spool.call, idle, "ping")
check.eq(cok, false, "a call to the old id fails")
check.ok(spool.now() - t < 1, "at once, not at its timeout: " .. tostring(cerr))
check.eq(util.dead("stale_incarnation") - stale0, 2, "the call is a stale_incarnation dead letter too")
local idle2 = util.whereis("idle", "b")
check.ok(idle2 ~= idle, "the new actor has another id")
check.eq(select(2, spool.call(idle2, "ping")), "b", "the new id answers")
spool.send(idle2, "stop")
print("nodes_kill: all checks passed")
return 0
