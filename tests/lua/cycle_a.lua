-- The other side of the cycle: calls the peer, which calls back.
local spool = require "spool"
local me
me = {
  start = function(peer) return peer.ping_back(spool.self()) end,
  pong = function() return "pong" end,
}
return me
