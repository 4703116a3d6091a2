-- Waits for one message, says goodbye to its sender, and ends normally.
local spool = require "spool"
local from = spool.receive()
spool.send(from, "bye")
