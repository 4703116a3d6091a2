-- cluster_job.lua - started on node b by cluster_a.lua: answers with where it runs.
local spool = require "spool"
local boss, n = ...
spool.send(boss, "done", n * n, spool.node())
