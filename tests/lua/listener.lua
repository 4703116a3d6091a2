-- An object that also takes plain messages (on_message) and remembers them.
local spool = require "spool"
local got = {}
return {
  on_message = function(from, what, n)
    if what == "boom" then error("on_message failed on purpose") end
    got[#got + 1] = what .. ":" .. tostring(n)
  end,
  seen = function() return got end,
}
