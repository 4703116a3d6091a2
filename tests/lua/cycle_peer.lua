-- An object that calls back the actor it is given.
local spool = require "spool"
return {
  ping_back = function(other) return other.pong() end,
  relay = function(other, peer) return peer.ping_back(other) end,
  self_call = function() return spool.self().self_call() end,
}
