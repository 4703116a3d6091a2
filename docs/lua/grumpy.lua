-- grumpy.lua - (spawned by errors.lua) an object whose on_message always fails.
return {
  on_message = function(from, x) error("cannot take " .. tostring(x)) end,
  ping = function() return "pong" end,
}
