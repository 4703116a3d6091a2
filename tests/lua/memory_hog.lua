-- Allocates until its interpreter's memory limit stops it.
local t = {}
for i = 1, 1e8 do t[i] = ("x"):rep(100) .. i end
