-- Run by lua_consumer: pins the host's own C module and calls it from an actor on another thread.
local spool = require "spool"
local greeter = spool.module("greeter", {thread = 1})
assert(greeter.hello("installed") == "hello installed")
return 0
