-- worker.lua - one stage: transforms each item and passes it on to the sink, until "end".
local spool = require "spool"
local name, sink = ...

while true do
  local _, kind, seq, text = spool.receive()
  if kind == "end" then break end
  spool.send(sink, "item", name, seq, #text + seq) -- the work: a value the sink can recompute
end
spool.send(sink, "end", name)
