-- account.lua - (spawned by objects.lua, metrics.lua) an object actor: the script returns a
-- table of functions.
local spool = require "spool"
local owner, balance = ...
local log = {}
return {
  deposit = function(n) balance = balance + n; return balance end,
  statement = function() return {owner = owner, balance = balance, log = log} end,
  slow_total = function(s) spool.sleep(s); return balance end, -- waits; calls queue behind it
  -- spool.send messages (and monitor notices) go here; without it they are dead letters.
  on_message = function(from, what, n) log[#log + 1] = ("%s %s"):format(what, n) end,
}
