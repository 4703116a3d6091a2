-- fragile.lua - (spawned by errors.lua) an object whose functions fail, wait, or call back.
local spool = require "spool"
local function check(n) if n < 0 then error("negative: " .. n) end return n end
return {
  sqrt = function(n) return math.sqrt(check(n)) end,
  nap = function(s) spool.sleep(s); return "rested" end,
  ask = function(other) return other.answer() end,  -- calls back whoever is passed
}
