-- collect.lua - runs a full garbage collection of its thread's interpreter (lua_idle_actors, before
-- each reading), says it is done, and ends.
collectgarbage("collect")
collectgarbage("collect")
require("benchlib").tick()
