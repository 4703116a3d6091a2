-- An object whose functions take their time (spool.sleep yields this actor only).
local spool = require "spool"
return {
  nap = function(s) spool.sleep(s); return "rested" end,
  quick = function() return "quick" end,
}
