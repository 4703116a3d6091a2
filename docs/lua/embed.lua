-- embed.lua - run by embed.c, which preloads its C module "greeter".
local spool = require "spool"
local greeter = spool.module("greeter", {thread = 1})    -- the host's module, pinned on thread 1
print(greeter.hello("spool"), "from thread", spool.thread_of(greeter))
return 0
