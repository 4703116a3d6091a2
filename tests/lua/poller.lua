-- Stays in its first turn until `expected` messages have reached its mailbox (they wait
-- meanwhile), then polls the mailbox dry and reports what it got.
local spool = require "spool"
local boss, expected = ...
local t0 = os.clock()
repeat until spool.metrics(spool.self()).enqueued >= expected or os.clock() - t0 > 10
local got = {}
while true do
  local _, x = spool.receive(0)
  if x == nil then break end
  got[#got + 1] = x
end
spool.send(boss, table.concat(got, " "))
