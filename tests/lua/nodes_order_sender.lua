-- nodes_order_sender.lua - one of the 4 senders of tests/cli/nodes_order.sh on node a: sends
-- sink (on node b) ("m", idx, seq) for seq = 1..n, with a few 4-8 MiB strings ("big", idx, seq,
-- s) in between, then ("done", idx, n); tells boss ("sent", idx, retries). A send refused with
-- overload (the peer's queue is full) was not queued: it is sent again after a pause, so order
-- still holds; any other refusal is an error.
local spool = require "spool"
local big = require "nodes_order_big"
local sink, idx, n, nbig, boss = ...

local function send(...)
  local retries = 0
  while true do
    local ok, why = spool.send(sink, ...)
    if ok then return retries end
    if why ~= "node send queue full" then
      error(("sender %d: send refused: %s"):format(idx, tostring(why)))
    end
    retries = retries + 1
    spool.sleep(0.002)
  end
end

local retries = 0
local every = n // (nbig + 1)
for seq = 1, n do
  if nbig > 0 and seq % every == 0 and seq // every <= nbig then
    retries = retries + send("big", idx, seq, big.content(idx, seq))
  else
    retries = retries + send("m", idx, seq)
  end
end
retries = retries + send("done", idx, n)
spool.send(boss, "sent", idx, retries)
