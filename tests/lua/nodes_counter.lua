-- nodes_counter.lua - a module nodes.lua pins on node "b" (spool.module with opts.node): plain
-- functions, and objects with behaviour that stay on node b as handles.
local spool = require "spool"
local M = {}
local total = 0
function M.add(n) total = total + n; return total end
function M.where() return spool.node(), spool.thread() end
local Counter = {}
Counter.__index = Counter
function Counter:incr() self.n = self.n + 1; return self.n end
function Counter:get() return self.n end
function M.counter() return setmetatable({n = 0}, Counter) end
return M
