-- maker.lua - (spawned by crossing.lua, leaks.lua) an object whose answers hold behaviour:
-- those become handles.
local Point = {}
Point.__index = Point
function Point:norm2() return self.x * self.x + self.y * self.y end
return {
  point = function(x, y) return setmetatable({x = x, y = y}, Point) end,  -- a handle
  adder = function(k) return function(v) return v + k end end,            -- a handle
  data = function() return {kind = "data", list = {1, 2, 3}} end,         -- a copy
  co = function() return coroutine.create(print) end,                     -- refused
  config = {retries = 3},                                                 -- a field that is data
}
