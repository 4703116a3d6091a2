-- hello.lua - the main actor: its arguments, its thread, its exit status.
--   spool run docs/lua/hello.lua one 2 --threads 2
local spool = require "spool"
print("args:", select("#", ...), ...)              -- always strings
print("arg[0]:", arg[0], "arg[1]:", arg[1])
print(("main actor %s on thread %d of %d"):format(tostring(spool.self()), spool.thread(),
  spool.threads()))
print("package.path starts with:", package.path:match("^[^;]*;[^;]*"))
return #arg                                         -- the exit status
