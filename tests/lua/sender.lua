-- Sends n numbered messages to `to`, then "end".
local spool = require "spool"
local to, n, tag = ...
for i = 1, n do spool.send(to, tag, i) end
spool.send(to, tag, "end")
