-- adder.lua - a process actor (spawned by processes.lua): it loops on spool.receive.
local spool = require "spool"
local name = ...                                  -- the extra argument of spool.spawn
local total = 0
while true do
  local from, op, n = spool.receive()             -- waits; this actor only
  if op == "add" then                             -- a plain message: no answer expected
    total = total + n
  elseif op == "total" then                       -- a spool.call: `from` is a request
    spool.reply(from, name, total)
  elseif op == "stop" then
    break                                         -- the body ends: a normal exit
  end
end
