-- An object whose functions fail in different ways.
local spool = require "spool"
local function deeper(x) error("broken " .. x) end
return {
  fail = function(x) deeper(x) end,
  fail_table = function() error({code = 7}) end,
  ok = function(...) return ... end,
  die = function() spool.exit(5) end,
}
