-- late.lua - (spawned by lifetime.lua) sleeps, then prints: the program waits for it.
local spool = require "spool"
spool.sleep(0.1)
print("late.lua: done sleeping")
