-- pin_cjson.lua - pinning an existing Lua C module (Debian's lua-cjson) on thread 0.
local spool = require "spool"

local json = spool.module("cjson", {thread = 0})   -- require "cjson" runs once, on thread 0
print(json, "on thread", spool.thread_of(json), spool.whereis("cjson") == json)
print(json.encode({1, 2, 3}))                      -- a message to thread 0 and its answer
local t = json.decode('{"a": [1, 2.5, "x"], "b": true}')
print(t.a[1], math.type(t.a[1]), t.a[2], t.a[3], t.b)  -- a copy of the decoded table

-- Actors on every thread share the one module: each call is a message, handled one at a time.
for i = 1, 2 do spool.spawn("json_user", {thread = i % 2}, spool.self(), i) end
for _ = 1, 2 do print(spool.receive(1)) end

-- Once per runtime: asking for another thread is an error; asking without a thread is fine.
print(pcall(spool.module, "cjson", {thread = 1}))
print(spool.module("cjson") == json)
-- Loading errors come back at spool.module, with require's own message.
local ok, err = pcall(spool.module, "no_such_module")
print(ok, err:match("[^\n]*"))                         -- the first line of it
-- cjson.null is a light userdata: it stays on thread 0, and a null comes back as a handle to it.
local v = json.decode('[1, null]')
print(v[2], v[2] == json.null, json.encode(v))
