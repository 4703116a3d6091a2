-- Takes requests and never answers them.
local spool = require "spool"
while true do spool.receive() end
