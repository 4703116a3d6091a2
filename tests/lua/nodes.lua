-- nodes.lua - node "a" of the multi-node test (tests/cli/nodes_lua.sh starts nodes_peer.lua as
-- node "b" first): ids inside values, send and receive, call and reply, a call cycle across nodes,
-- whereis on a node, spawn and pinned modules on a node, handles whose home is on the other node,
-- remote monitors (normal, error, noproc, noconnection), node monitors, metrics per peer.
local spool = require "spool"
local check = require "check"
spool.set_timeout(10)

check.eq(spool.node(), "a", "this node's name")

-- Node monitors: b may not be up yet (then a nodedown "not connected" comes first).
check.ok(spool.monitor_node("b"), "monitor_node")
local function notice(kinds, seconds)
  local deadline = spool.now() + (seconds or 10)
  while spool.now() < deadline do
    local who, what, why = spool.receive(0.5)
    if who ~= nil and kinds[what] then return who, what, why end
  end
  error("no " .. next(kinds) .. " in time")
end
if #spool.nodes() == 0 then
  local who = notice({nodeup = true})
  check.eq(who, "b", "nodeup names the node")
end
local nodes = spool.nodes()
check.eq(#nodes, 1, "one other node")
check.eq(nodes[1], "b", "spool.nodes()")
check.raises("not a node name", spool.monitor_node, "no such/name")

-- whereis on a node
local echo, why = spool.whereis("echo", "b")
if not echo then -- b's main may not have registered yet
  check.eventually(function()
    echo, why = spool.whereis("echo", "b")
    return echo ~= nil
  end, "echo registered on b")
end
check.ok(tostring(echo):find("actor<b:", 1, true), "a remote proxy shows its node: " .. tostring(echo))
local none, nowhy = spool.whereis("nobody", "b")
check.eq(none, nil, "no such name on b")
check.eq(nowhy, "not registered there", "why")
local gone, gonewhy = spool.whereis("echo", "zz")
check.eq(gone, nil, "a node that is not up")
check.ok(tostring(gonewhy):find("not up", 1, true), "why: " .. tostring(gonewhy))
check.eq(spool.whereis("nobody", "a"), nil, "this node's own name: the local registry")

-- send and receive: ids inside values cross in their node-independent form
local me = spool.self()
check.eq(spool.send(echo, "ping", me, {me, nested = {me}}), true, "send to node b")
local from, what, x, y, there = spool.receive(10)
check.eq(what, "pong", "echo answered")
check.eq(from, echo, "from is the remote actor")
check.eq(x, me, "my id went to b and came back as my id")
check.eq(y[1], me, "in a table too")
check.eq(y.nested[1], me, "and deeper")
check.eq(there, echo, "b's own id came as the same proxy")

-- call and reply
check.eq(spool.call(echo, "add", 2, 3), 5, "call across nodes")
local same, same_id = spool.call(echo, "is_local", echo)
check.eq(same, true, "b's id that went to a and back is local on b")
check.eq(same_id, true, "same integer id")

-- a call cycle across nodes is seen at once (the chain travels in node-independent form)
local ok, err = spool.call(echo, "call_back", me)
check.eq(ok, false, "the call back failed")
check.ok(err:find("call cycle", 1, true), "a cycle across nodes: " .. err)

-- spawn on another node: the script is found there
local w = spool.spawn("nodes_worker", {node = "b"}, "hi", me)
check.ok(tostring(w):find("actor<b:", 1, true), "spawned on b: " .. tostring(w))
local wf, hello, node, thread, arg = spool.receive(10)
check.eq(hello, "hello", "the worker said hello")
check.eq(wf, w, "from the spawned actor")
check.eq(node, "b", "it runs on b")
check.eq(arg, "hi", "with its arguments")
local w1 = spool.spawn("nodes_worker", {node = "b", thread = 1}, "on 1", me)
local _, _, _, thread1 = spool.receive(10)
check.eq(thread1, 1, "opts travel with the spawn")
check.ok(w1 ~= w, "two actors")
check.raises("not found", spool.spawn, "nodes_no_such_script", {node = "b"})
check.raises("spool.spawn on node b", spool.spawn, "nodes_no_such_script", {node = "b"})
check.raises("cannot ask node zz", spool.spawn, "nodes_worker", {node = "zz"})
local wl = spool.spawn("nodes_worker", {node = "a"}, "here", me) -- this node's own name: local
local _, _, herenode = spool.receive(10)
check.eq(herenode, "a", "opts.node naming this node spawns here")
check.ok(not tostring(wl):find(":", 1, true), "a local id: " .. tostring(wl))

-- remote monitors: normal, error, noproc
local waiter = spool.spawn("nodes_worker", {node = "b"}, "wait")
spool.monitor(waiter)
spool.send(waiter, "go")
local df, dwhat, dwhy = notice({down = true})
check.eq(df, waiter, "down names the remote actor")
check.eq(dwhy, "normal", "it ended normally")
local failing = spool.spawn("nodes_worker", {node = "b"}, "fail")
spool.monitor(failing)
local _, _, fwhy = notice({down = true})
check.ok(fwhy == "error" or fwhy == "noproc", "a failed remote actor: " .. tostring(fwhy))
local quick = spool.spawn("nodes_worker", {node = "b"}, "exit")
spool.sleep(0.3)
spool.monitor(quick)
local qf, _, qwhy = notice({down = true})
check.eq(qf, quick, "down of the ended one")
check.eq(qwhy, "noproc", "monitor of a remote actor that ended")

-- a module pinned on node b: its functions are messages to b, its objects handles at home there
local m = spool.module("nodes_counter", {node = "b", thread = 1})
check.eq(m.add(5), 5, "a remote module function")
check.eq(m.add(2), 7, "its state lives on b")
local wn, wt = m.where()
check.eq(wn, "b", "it runs on b")
check.eq(wt, 1, "on the thread asked for")
check.eq(spool.module("nodes_counter", {node = "b"}), m, "cached per node")
check.raises("already pinned on thread 1 of node b", spool.module, "nodes_counter",
  {node = "b", thread = 0})
check.raises("spool.module(\"nodes_no_such_module\") on node b", spool.module,
  "nodes_no_such_module", {node = "b"})
local handles0 = spool.call(echo, "handles")
do
  local c = m.counter()
  check.ok(tostring(c):find("handle<b:", 1, true), "a handle homed on b: " .. tostring(c))
  check.eq(c:incr(), 1, "a method through a remote handle")
  check.eq(c:incr(), 2, "state at home")
  local n, got = spool.call(echo, "use", c) -- the handle goes to another actor of b
  check.eq(n, 3, "b used the same object")
  check.eq(got, 3, "and saw its state")
  check.eq(c:get(), 3, "shared, not copied")
end
collectgarbage()
collectgarbage()
check.eventually(function() return spool.call(echo, "handles") == handles0 end,
  "the references went home across the connection")

-- metrics per peer
local peer = spool.metrics().nodes.b
check.ok(peer ~= nil, "metrics.nodes.b")
check.eq(peer.state, "up", "state")
check.ok(peer.messages_out > 0 and peer.messages_in > 0, "messages counted")
check.ok(peer.bytes_out > 0, "bytes counted")
check.ok(type(peer.dead_letters.node_down) == "number", "dead letters per reason")
check.ok(spool.metrics().dead_letters.node_down ~= nil, "the new reasons in dead_letters")

-- noconnection: b dies without a goodbye; monitors across the connection fire
spool.monitor(echo)
spool.send(echo, "die")
local seen_down, seen_nodedown
local deadline = spool.now() + 15
while not (seen_down and seen_nodedown) and spool.now() < deadline do
  local who, kind, reason = spool.receive(0.5)
  if kind == "down" then
    check.eq(who, echo, "down of echo")
    check.eq(reason, "noconnection", "the connection was lost")
    seen_down = true
  elseif kind == "nodedown" then
    check.eq(who, "b", "nodedown names b")
    check.ok(type(reason) == "string" and #reason > 0, "with a reason")
    seen_nodedown = true
  end
end
check.ok(seen_down, "down noconnection came")
check.ok(seen_nodedown, "nodedown came")
check.eq(#spool.nodes(), 0, "b is not up any more")
local sent, sent_why = spool.send(echo, "after")
check.eq(sent, false, "a send to a node that is down fails")
check.ok(sent_why ~= nil, "and says why")
check.ok(spool.metrics().dead_letters.node_down >= 1, "counted as node_down")
print("nodes: all checks passed")
return 0
