-- tally.lua - a plain Lua module (not an actor): `require` gives one copy per thread.
local M = {count = 0}
function M.bump() M.count = M.count + 1; return M.count end
last_bumper = "set by tally.lua"    -- a global assigned in a module: the thread's shared globals
return M
