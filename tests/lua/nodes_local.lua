-- nodes_local.lua - the node functions in a process that is not a node: nothing changes for it,
-- and asking is not an error (spool.monitor_node is, since nothing would ever come).
local spool = require "spool"
local check = require "check"
check.eq(spool.node(), nil, "not a node")
check.eq(#spool.nodes(), 0, "no other nodes")
local id, why = spool.whereis("anyone", "b")
check.eq(id, nil, "whereis on a node")
check.eq(why, "this process is not a node", "why")
check.raises("this process is not a node", spool.monitor_node, "b")
check.eq(spool.metrics().nodes, nil, "no nodes in the metrics")
check.eq(spool.metrics().dead_letters.unknown_node, 0, "the new reasons are counted")
-- an id whose node field names a node this process never met
local stranger = spool.actor((1 << 48) | 5)
local ok = spool.send(stranger, "hello")
check.eq(ok, false, "a send to an unknown node fails")
check.eq(spool.metrics().dead_letters.unknown_node, 1, "counted as unknown_node")
-- an id of this process cannot be named to another node when this process is not a node
check.raises("cannot be named to another node", spool.send, stranger, spool.self())
-- a local spawn with opts.node = nil is the spawn of before
check.ok(spool.spawn("nodes_worker", {thread = 0}, "exit"), "local spawn")
print("nodes_local: all checks passed")
