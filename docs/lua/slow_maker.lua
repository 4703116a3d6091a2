-- slow_maker.lua - (spawned by leaks.lua) answers with a function, after a while.
local spool = require "spool"
return { adder = function(k) spool.sleep(0.03); return function(v) return v + k end end }
