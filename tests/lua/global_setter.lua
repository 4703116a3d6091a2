-- Sets a global of its own and reports what it sees.
local spool = require "spool"
local boss, value = ...
shared_name = value                       -- a global: this actor's own
spool.sleep(0.02)                         -- let the other actor on this thread set its own
spool.send(boss, value, shared_name, rawget(_G, "shared_name"))
