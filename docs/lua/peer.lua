-- peer.lua - (spawned by caveats.lua) reports what it sees of globals and modules on its thread.
local spool = require "spool"
local boss = ...
local tally = require "tally"
spool.send(boss, spool.thread(), tostring(greeting), tally.bump(), tostring(last_bumper))
