-- jobs.lua - (spawned by sketch.lua) a process: answers each job to its sender, then asks back.
local spool = require "spool"
local from, kind, body = spool.receive()
spool.send(from, "took", body.n)                      -- a plain message back
print("jobs.lua got the reply:", spool.call(from, "done?"))
