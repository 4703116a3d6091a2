-- echo.lua - (spawned by crossing.lua) a process that answers every request with what it got.
local spool = require "spool"
while true do
  local from, x = spool.receive()
  spool.reply(from, x)
end
