-- sqlite.lua - Debian's lua-sql-sqlite3 pinned on thread 1: environment, connection and cursor
-- are userdata that stay on thread 1; this actor holds handles, and every use is a message.
local spool = require "spool"

local luasql = spool.module("luasql.sqlite3", {thread = 1})
local env = luasql.sqlite3()                       -- a userdata: the answer is a handle
local conn = env:connect(":memory:")
print(env, conn)
print(conn:execute("create table t(x integer, name text)"))
for i = 1, 3 do conn:execute(("insert into t values(%d, 'row %d')"):format(i, i)) end

local cur = conn:execute("select x, name from t order by x")
local row = cur:fetch({}, "a")                     -- {} is copied there; the filled copy comes back
while row do
  print(row.x, math.type(row.x), row.name)
  row = cur:fetch({}, "a")
end
cur:close()

-- A handle can be sent: the reader on thread 0 uses the same connection.
local reader = spool.spawn("sqlite_reader", {thread = 0})
print(spool.call(reader, conn))
print("handles alive:", spool.metrics().lua.handles)

conn:close(); env:close()
cur, conn, env = nil, nil, nil
collectgarbage(); collectgarbage()                 -- the proxies go; their references go home
spool.sleep(0.05)
print("handles alive:", spool.metrics().lua.handles)
