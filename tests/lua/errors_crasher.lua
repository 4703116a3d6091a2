-- A process that crashes on its first message.
local spool = require "spool"
local from, what = spool.receive()
error("crashed on " .. tostring(what))
