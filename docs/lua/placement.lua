-- placement.lua - where actors and modules go. Run with --config docs/lua/placement.ini.
local spool = require "spool"

local json = spool.module("cjson")                 -- no thread asked: the config rule says 1
print("cjson on", spool.thread_of(json))
for i = 1, 3 do
  local w = spool.spawn("idler", {name = "worker" .. i})  -- the rule worker* = hash
  print("worker" .. i, "on", spool.thread_of(w))
end
local a = spool.spawn("idler", {placement = "least_loaded"})
local b = spool.spawn("idler", {near = a})         -- the thread a is on now
local c = spool.spawn("idler", {placement = "near:worker1"})
print("near:", spool.thread_of(b) == spool.thread_of(a),
  spool.thread_of(c) == spool.thread_of(spool.whereis("worker1")))
print(pcall(spool.spawn, "idler", {thread = 5}))
print(pcall(spool.spawn, "idler", {placement = "sideways"}))
