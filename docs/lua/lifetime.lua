-- lifetime.lua - when `spool run` ends: the main chunk has returned and no actor is busy.
local spool = require "spool"
spool.spawn("late", {thread = 1})          -- sleeping: the program waits for it
spool.spawn("idler", {thread = 1})         -- waits in spool.receive() forever: stopped at the end
print("main: returning 3")
return 3
