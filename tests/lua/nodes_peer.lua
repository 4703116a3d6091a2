-- nodes_peer.lua - node "b" of the multi-node test (tests/cli/nodes_lua.sh runs it next to
-- nodes.lua on node "a"): an actor registered as "echo" that answers what nodes.lua asks, until
-- told to stop (exit 0) or to die without a goodbye (os.exit(3): the other node sees the
-- connection drop). Its directory is on package.path: nodes_worker and nodes_counter are found
-- here when node "a" spawns and pins them on this node.
local spool = require "spool"
local check = require "check"

check.eq(spool.node(), "b", "this node's name")
check.ok(spool.register("echo"), "echo registered")
spool.set_timeout(10)

while true do
  local from, what, x, y = spool.receive(60)
  if from == nil then error("nodes_peer: nothing from node a for 60 s") end
  if what == "stop" then return 0 end
  if what == "die" then os.exit(3, false) end -- no goodbye: a sees the connection drop
  if what == "ping" then
    -- back to the sender with what came: ids of node a travel back as ids of node a
    spool.send(x, "pong", x, y, spool.self())
  elseif what == "add" then
    spool.reply(from, x + y)
  elseif what == "call_back" then
    -- x waits for this very call: calling it back closes a cycle across nodes
    local ok, err = pcall(spool.call, x, "are you there?")
    spool.reply(from, ok, tostring(err))
  elseif what == "is_local" then
    -- an id of this node that went to node a and came back is a local id here again
    spool.reply(from, x == spool.self(), spool.id(x) == spool.id(spool.self()))
  elseif what == "handles" then
    spool.reply(from, spool.metrics().lua.handles)
  elseif what == "use" then
    -- a handle of a module pinned here, sent from node a
    spool.reply(from, x:incr(), x:get())
  elseif getmetatable(from) and what == nil then
    -- a DOWN or a node notice: ignored
  end
end
