-- nodes_accounting_sender.lua - a sender of tests/cli/nodes_accounting.sh on node a: sends n
-- messages to sink (on node b), every `every`-th one too large for this node's max_message, and
-- counts what each send said: accepted, or refused with which reason. Never retries. Then a
-- "flush" call to sink, which comes after its messages (retried while refused as overload, each
-- refusal counted as one more attempt), and the tally to boss.
local spool = require "spool"
local sink, n, every, big_size, boss = ...

local ok_count, refused = 0, {}
local small = "0123456789abcdef0123456789abcdef"
local big = string.rep("x", big_size)
for i = 1, n do
  local ok, why
  if i % every == 0 then
    ok, why = spool.send(sink, "m", i, big)
  else
    ok, why = spool.send(sink, "m", i, small)
  end
  if ok then
    ok_count = ok_count + 1
  else
    refused[why] = (refused[why] or 0) + 1
  end
end
spool.set_timeout(60)
local attempts = n
while true do -- the flush may meet a full queue too (a refused send as well): try again
  local ok, err = pcall(spool.call, sink, "flush")
  if ok then break end
  if not tostring(err):find("node send queue full", 1, true) then error(err) end
  attempts = attempts + 1
  refused["node send queue full"] = (refused["node send queue full"] or 0) + 1
  spool.sleep(0.01)
end
spool.send(boss, "tally", ok_count, refused, attempts)
