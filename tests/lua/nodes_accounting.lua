-- nodes_accounting.lua - node "a" of tests/cli/nodes_accounting.sh: exact accounting of 1 M
-- sends and more. Every message is delivered or a dead letter with its reason, and each dead
-- letter was also said by the send's return:
--   phase 1: 2 senders send 500 000 messages each to b's sink; every 1000th is over this node's
--            max_message (64 KiB here) -> too_large; with a small queue_bytes some may be
--            refused as overload.
--   phase 2: node c leaves (goodbye); sends to its sink -> node_down.
--   phase 3: c is restarted by the shell (same name, same port): sends to the old sink id ->
--            stale_incarnation; to the new one -> delivered at c.
-- Then sent = delivered (counted by the sinks) + dead letters by reason, exactly.
local spool = require "spool"
local check = require "check"
local util = require "nodes_util"

local per_sender = util.scale(500000)
local every, big_size = 1000, 70000
local k = 1000 -- sends in each later phase
local reasons = {"unknown_node", "node_down", "overload", "too_large", "stale_incarnation",
  "no_receiver", "mailbox_full", "dropped_oldest", "receiver_stopped", "shutdown", "late_reply"}
local function dead_now()
  local d = spool.metrics().dead_letters
  local t = {}
  for _, r in ipairs(reasons) do t[r] = d[r] or 0 end
  return t
end

spool.set_timeout(60)
util.wait_up("b", 10)
util.wait_up("c", 10)
local sink_b = util.whereis("sink", "b")
local sink_c = util.whereis("sink", "c")
local dead0 = dead_now()
local sent, refused_by_why = 0, {}
local function tally_refusal(why, n)
  refused_by_why[why] = (refused_by_why[why] or 0) + n
end

-- phase 1
local t0 = spool.now()
for i = 1, 2 do
  local s = spool.spawn("nodes_accounting_sender", {thread = i % 2}, sink_b, per_sender, every,
    big_size, spool.self())
  spool.monitor(s)
end
local accepted_b, tallies = 0, 0
while tallies < 2 do
  local from, what, ok_count, refused, attempts = spool.receive(120)
  check.ok(from ~= nil, "the senders finished within 120 s")
  if what == "tally" then
    tallies = tallies + 1
    accepted_b = accepted_b + ok_count
    sent = sent + attempts
    for why, n in pairs(refused) do tally_refusal(why, n) end
  elseif what == "down" then
    check.eq(ok_count, "normal", "a sender ended")
  end
end
local phase1 = spool.now() - t0
local dead1 = dead_now()
check.eq(dead1.too_large - dead0.too_large, 2 * (per_sender // every), "too_large dead letters")
check.eq(refused_by_why["message too large"], 2 * (per_sender // every), "sends that said too large")
check.eq(dead1.overload - dead0.overload, refused_by_why["node send queue full"] or 0,
  "overload dead letters = sends that said the queue was full")

-- phase 2: c leaves, sends to it are node_down
spool.send(sink_c, "stop")
local who, _, why = util.wait_notice({nodedown = true}, 10)
check.eq(who, "c", "c went down")
check.eq(why, "goodbye", "c said goodbye")
for i = 1, k do
  local ok, w = spool.send(sink_c, "m", i)
  check.eq(ok, false, "a send to a node that left fails")
  tally_refusal(w, 1)
end
sent = sent + k
local dead2 = dead_now()
check.eq(dead2.node_down - dead1.node_down, k, "node_down dead letters")

-- phase 3: c restarted by the shell; the old id is stale, a new one works
util.report("c_gone")
local deadline = spool.now() + 20
local up = false
while not up and spool.now() < deadline do
  local w, what = spool.receive(0.2)
  up = (w == "c" and what == "nodeup")
end
check.ok(up, "c came back within 20 s")
for i = 1, k do
  local ok, w = spool.send(sink_c, "m", i)
  check.eq(ok, false, "a send to an id of c's earlier life fails")
  tally_refusal(w, 1)
end
sent = sent + k
local dead3 = dead_now()
check.eq(dead3.stale_incarnation - dead2.stale_incarnation, k, "stale_incarnation dead letters")
local sink_c2 = util.whereis("sink", "c")
check.ok(sink_c2 ~= sink_c, "c's new sink is another id")
local accepted_c = 0
for i = 1, k do
  if spool.send(sink_c2, "m", i) then accepted_c = accepted_c + 1 else tally_refusal("c2", 1) end
end
sent = sent + k
check.ok(spool.call(sink_c2, "flush"), "flush c")

-- the books
local delivered_b, dead_at_b = spool.call(sink_b, "count")
local delivered_c = spool.call(sink_c2, "count")
local dead_end = dead_now()
local dead_total, refused_total = 0, 0
local parts = {}
for _, r in ipairs(reasons) do
  local n = dead_end[r] - dead0[r]
  dead_total = dead_total + n
  if n > 0 then parts[#parts + 1] = r .. ":" .. n end
end
for w, n in pairs(refused_by_why) do refused_total = refused_total + n end
util.report("books", {sent = sent, delivered_b = delivered_b, delivered_c = delivered_c,
  dead = dead_total, refused = refused_total, reasons = table.concat(parts, ","),
  phase1_s = ("%.2f"):format(phase1)})
check.eq(delivered_b, accepted_b, "b got every message a's sends accepted for it")
check.eq(delivered_c, accepted_c, "c got every message a's sends accepted for it")
check.eq(dead_at_b, 0, "no dead letters at b")
check.eq(delivered_b + delivered_c + dead_total, sent, "delivered + dead letters = sent")
check.eq(refused_total, dead_total, "each dead letter was said by its send")
spool.send(sink_b, "stop")
spool.send(sink_c2, "stop")
print("nodes_accounting: all checks passed")
return 0
