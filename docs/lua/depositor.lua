-- depositor.lua - (spawned by objects.lua) deposits 1 into `acc` and tells `boss` how long it took.
local spool = require "spool"
local acc, boss = ...
spool.sleep(0.02)                               -- let boss's slow call start first
local t0 = spool.metrics().uptime_seconds
local balance = acc.deposit(1)
spool.send(boss, balance, spool.metrics().uptime_seconds - t0)
