-- sketch.lua - the Lua sketch of the design brief (section 4), as it runs today.
local spool = require "spool"
local w = spool.spawn("worker", {thread = 1, name = "w1"})  -- a fresh actor from worker.lua on thread 1
print(w.add(1, 2))                       -- a call: message to w's mailbox, this actor yields until the reply
local json = spool.module("cjson", {thread = 0})  -- pin a Lua C module: loaded once, on thread 0 only
print(json.encode({1, 2, 3}))            -- runs on thread 0, one call at a time, from any thread
local luasql = spool.module("luasql.sqlite3", {thread = 1})  -- Debian's lua-sql-sqlite3
local db = luasql.sqlite3():connect(":memory:")  -- userdata stays on thread 1; db is a handle
db:execute("create table t(x)")          -- method call on a handle: a message to the module
-- Erlang-style actors: a script that loops on receive
local w2 = spool.spawn("jobs", {thread = 1})
spool.send(w2, "job", {n = 42})          -- values copied; handles may be sent too
local from, kind, body = spool.receive(1.0)  -- yields this actor only; nil on timeout
print(kind, body)
from, kind = spool.receive(1.0)          -- the request jobs.lua makes with spool.call
spool.reply(from, "done")                -- answers a spool.call(w2, ...) or sends back to a sender
spool.self(); spool.thread(); spool.sleep(0.1); spool.monitor(w); spool.metrics()
