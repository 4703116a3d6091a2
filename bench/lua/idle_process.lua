-- idle_process.lua - an idle Lua process actor (lua_idle_actors): says it has started, then blocks
-- in spool.receive() for good.
local spool = require "spool"
require("benchlib").tick()
spool.receive()
