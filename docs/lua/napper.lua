-- napper.lua - (spawned by leaks.lua) naps, then ends without reading its mailbox.
local spool = require "spool"
spool.sleep(0.05)
