-- stubs.lua - what one use of a proxy costs, counted in messages handled by the module's actor.
local spool = require "spool"
local json = spool.module("cjson", {thread = 1})
local function handled()            -- counted when the module actor's turn ends: let it end
  spool.sleep(0.01); return spool.metrics(json).handled
end

local before = handled()
json.encode({})                                 -- first use: fetch the field, then call it
print("first call:", handled() - before)
before = handled()
for _ = 1, 100 do json.encode({}) end           -- later uses: the cached stub, one call each
print("100 calls:", handled() - before)
before = handled()
local encode = json.encode                      -- the stub is a plain function: keep it
for _ = 1, 100 do encode({}) end
print("100 calls through a local:", handled() - before)
before = handled()
local _ = json._VERSION, json._VERSION          -- data fields are fetched on every read
print("2 reads of a data field:", handled() - before, json._VERSION)
