-- nodes_worker.lua - spawned on node "b" by nodes.lua on node "a" (spool.spawn with opts.node):
-- tells `to` which node and thread it runs on and what it was given; "exit" ends at once, "fail"
-- raises, "wait" waits for one message first.
local spool = require "spool"
local mode, to = ...
if mode == "exit" then return end
if mode == "fail" then error("the worker fails on purpose") end
if mode == "wait" then
  spool.receive(30)
  return
end
spool.send(to, "hello", spool.node(), spool.thread(), mode)
