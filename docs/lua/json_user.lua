-- json_user.lua - (spawned by pin_cjson.lua) uses the pinned cjson from another thread.
local spool = require "spool"
local boss, n = ...
local json = spool.module("cjson")           -- already pinned: the same module actor
local text = json.encode({n = n, from = spool.thread()})
spool.send(boss, text, spool.thread_of(json))
