-- idler.lua - (spawned by names.lua, lifetime.lua, placement.lua) waits for messages; "exit" ends
-- it with a reason.
local spool = require "spool"
while true do
  local _, what, reason = spool.receive()
  if what == "exit" then spool.exit(reason) end
end
