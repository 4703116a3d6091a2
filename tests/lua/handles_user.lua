-- Gets a handle in a message, uses it, answers, and forgets it.
local spool = require "spool"
local from, obj = spool.receive()
local v = obj:add(10)
spool.reply(from, v, obj:get())
