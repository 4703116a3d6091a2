-- nodes_stop.lua - node "a" of tests/cli/nodes_stop.sh: once the shell has frozen node b
-- (nodes_idle.lua) with SIGSTOP, queues messages to it that cannot leave (10 000 small ones and
-- a 16 MiB string), reports "queued" and waits; the shell then sends this process SIGTERM, and
-- it must be gone within 2 s although b never answers its GOODBYE.
--
--   spool run nodes_stop.lua STOPPED_FILE --node a ...
local spool = require "spool"
local util = require "nodes_util"
local stopped_file = ...

util.wait_up("b", 10)
local idle = util.whereis("idle", "b")
util.report("ready")
local deadline = spool.now() + 20
while not io.open(stopped_file) do
  if spool.now() > deadline then error("no " .. stopped_file .. " within 20 s") end
  spool.sleep(0.01)
end
local accepted = 0
for i = 1, 10000 do
  if spool.send(idle, "m", i) then accepted = accepted + 1 end
end
if spool.send(idle, "big", string.rep("x", 16 * 1024 * 1024)) then accepted = accepted + 1 end
util.report("queued", {accepted = accepted, queued_bytes = spool.metrics().nodes.b.queued_bytes})
spool.receive(60) -- until SIGTERM (the shell gives up before these 60 s)
return 0
