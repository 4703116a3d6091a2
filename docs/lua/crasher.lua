-- crasher.lua - (spawned by errors.lua) a process that fails on its first message.
local spool = require "spool"
local _, what = spool.receive()
error("cannot handle " .. tostring(what))
