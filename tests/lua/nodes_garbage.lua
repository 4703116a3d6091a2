-- nodes_garbage.lua - node "a" of tests/cli/nodes_garbage.sh: while a raw ZeroMQ peer
-- (nodes_garbage.c) sends this node's ROUTER malformed packets, keeps calling node b's "idle"
-- actor every 50 ms. Nothing of the garbage may reach the cluster: b stays up (no nodedown, no
-- new peer), every call is answered, and this process's memory stays bounded.
--
--   spool run nodes_garbage.lua DONE_FILE --node a ...
local spool = require "spool"
local check = require "check"
local util = require "nodes_util"
local done_file = ...

spool.set_timeout(5)
util.wait_up("b", 10)
local idle = util.whereis("idle", "b")
check.eq(select(2, spool.call(idle, "ping")), "b", "b's idle answers")
collectgarbage()
local rss0, rss_max = util.rss_kib(), 0
util.report("ready")
local calls, slowest = 0, 0
local deadline = spool.now() + 60
while not io.open(done_file) do
  check.ok(spool.now() < deadline, "no " .. done_file .. " within 60 s")
  local t = spool.now()
  local _, node = spool.call(idle, "ping")
  check.eq(node, "b", "b answers during the garbage")
  calls = calls + 1
  slowest = math.max(slowest, spool.now() - t)
  rss_max = math.max(rss_max, util.rss_kib())
  local who, what, why = spool.receive(0.05)
  check.ok(what ~= "nodedown", "no nodedown: " .. tostring(who) .. " " .. tostring(why))
  check.ok(what ~= "nodeup", "no nodeup of anyone: " .. tostring(who))
end
local peer = spool.metrics().nodes.b
local nodes = spool.nodes()
util.report("result", {calls = calls, slowest_ms = ("%.1f"):format(slowest * 1000),
  growth_kib = rss_max - rss0, peers = table.concat(nodes, ","), downs = peer.downs})
check.eq(#nodes, 1, "only b is a member")
check.eq(nodes[1], "b", "b is a member")
check.eq(peer.state, "up", "b is up")
check.eq(peer.downs, 0, "b never went down")
check.ok(rss_max - rss0 < 64 * 1024, "memory grew " .. (rss_max - rss0) .. " KiB")
spool.send(idle, "stop")
print("nodes_garbage: all checks passed")
return 0
