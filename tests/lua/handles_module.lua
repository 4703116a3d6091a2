-- A pure Lua module with behaviour that cannot be copied.
local M = {}
local Counter = {}
Counter.__index = Counter
function Counter:next() self.n = self.n + self.step; return self.n end
function M.counter() return setmetatable({n = 0, step = 1}, Counter) end
function M.adder(k) return function(x) return x + k end end
return M
