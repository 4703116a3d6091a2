-- nodes_order.lua - node "a" of tests/cli/nodes_order.sh: 4 sender actors (both threads) send
-- to one receiver on node b, small messages and 4-8 MiB strings mixed; the receiver checks FIFO
-- per sender and exact counts, and answers the "result" call. Overload refusals are retried by
-- the senders and must match this node's overload dead letters.
local spool = require "spool"
local check = require "check"
local util = require "nodes_util"

local n = util.scale(20000)
local nbig = 3
local senders = 4
util.wait_up("b", 10)
local sink = util.whereis("sink", "b")
local overload0 = util.dead("overload")
local t0 = spool.now()
for i = 1, senders do
  spool.spawn("nodes_order_sender", {thread = i % 2}, sink, i, n, nbig, spool.self())
end
local retries, got = 0, 0
while got < senders do
  local from, what, _, r = spool.receive(120)
  check.ok(from ~= nil, "the senders finished within 120 s")
  if what == "sent" then
    got = got + 1
    retries = retries + r
  end
end
spool.set_timeout(60)
local ok, errors, smalls, bigs = spool.call(sink, "result", senders)
local seconds = spool.now() - t0
util.report("result", {ok = ok, smalls = smalls, bigs = bigs, retries = retries,
  seconds = ("%.2f"):format(seconds)})
check.ok(ok, "receiver found: " .. tostring(errors))
check.eq(bigs, senders * nbig, "every big string arrived")
check.eq(smalls, senders * (n - nbig), "every small message arrived")
check.eq(util.dead("overload") - overload0, retries, "each overload refusal is one dead letter")
local peer = spool.metrics().nodes.b
check.eq(peer.downs, 0, "no nodedown during the test")
print("nodes_order: all checks passed")
return 0
