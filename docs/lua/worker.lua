-- worker.lua: a script that returns a table of functions is an actor with that interface
-- (the sketch of the design brief, section 4; used by sketch.lua)
local total = 0
return { add = function(a, b) total = total + a + b; return total end }
