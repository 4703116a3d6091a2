-- A worker that calls the pinned module n times, then tells `boss` how it went.
local spool = require "spool"
local boss, n = ...
local g = spool.module("guarded")
for _ = 1, n do g.hit() end
spool.send(boss, "done", spool.thread())
