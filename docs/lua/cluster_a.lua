-- cluster_a.lua - node a of the docs' two-node example (start cluster_b.lua as node b first).
local spool = require "spool"
spool.set_timeout(5)
spool.monitor_node("*")                        -- every node's ups and downs
if #spool.nodes() == 0 then
  local node, what = spool.receive(5)          -- ("b", "nodeup") once the session is up
  print(node, what)
end
print("I am " .. spool.node() .. ", up: " .. table.concat(spool.nodes(), ", "))

local greeter = spool.whereis("greeter", "b")  -- asks node b (waits like a call)
print(greeter, spool.call(greeter, "hello", "a"))

local job = spool.spawn("cluster_job", {node = "b"}, spool.self(), 7) -- found on b's path
local _, _, square, where = spool.receive(5)
print(job, square, where)

local tally = spool.module("tally", {node = "b", thread = 0}) -- pinned on node b
print(tally.bump(), tally.bump())

spool.monitor(job)                             -- it ended already: noproc, from node b
print(select(2, spool.receive(5)))
local peer = spool.metrics().nodes.b
print(peer.state, peer.messages_out > 0, peer.rtt_ms >= 0)
return 0
