-- sqlite_reader.lua - (spawned by sqlite.lua) gets a connection handle in a message and queries
-- through it; the connection itself never leaves the module's thread.
local spool = require "spool"
local from, conn = spool.receive()
local cur = conn:execute("select count(*), sum(x) from t")   -- a cursor: another handle
local n, sum = cur:fetch()
cur:close()                                                   -- before answering: conn may close
spool.reply(from, spool.thread(), tostring(conn), n, sum)
