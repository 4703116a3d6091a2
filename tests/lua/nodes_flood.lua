-- nodes_flood.lua - node "a" of tests/cli/nodes_flood.sh: floods node b's sink
-- (nodes_count_sink.lua) with small messages while the shell holds b stopped (SIGSTOP), with
-- queue_bytes = 8 MiB and down_after_ms long enough that b is not declared down meanwhile.
-- Sends start failing with overload (the sender sees it, and it is counted), and this process's
-- resident memory stays bounded. After SIGCONT every accepted message reaches b, exactly.
--
--   spool run nodes_flood.lua STOPPED_FILE CONTINUED_FILE QUEUE_BYTES --node a ...
local spool = require "spool"
local check = require "check"
local util = require "nodes_util"
local stopped_file, continued_file, queue_bytes = ...
queue_bytes = tonumber(queue_bytes)

local function wait_file(path, seconds)
  local deadline = spool.now() + seconds
  while spool.now() < deadline do
    local f = io.open(path)
    if f then f:close() return end
    spool.sleep(0.01)
  end
  error("no " .. path .. " within " .. seconds .. " s")
end

spool.set_timeout(30)
util.wait_up("b", 10)
local sink = util.whereis("sink", "b")
check.ok(spool.call(sink, "flush"), "b answers")
collectgarbage()
local rss0 = util.rss_kib()
util.report("ready", {rss_kib = rss0})
wait_file(stopped_file, 20)

local overload0 = util.dead("overload")
local seconds = 3
local payload = string.rep("p", 100)
local ok_count, refused, other, rss_max = 0, 0, nil, rss0
local first_refusal
local t0 = spool.now()
local i = 0
while spool.now() - t0 < seconds do
  for _ = 1, 1000 do
    i = i + 1
    local ok, why = spool.send(sink, "m", i, payload)
    if ok then
      ok_count = ok_count + 1
    elseif why == "node send queue full" then
      refused = refused + 1
      first_refusal = first_refusal or i
    else
      other = other or why
    end
  end
  local rss = util.rss_kib()
  if rss > rss_max then rss_max = rss end
  spool.sleep(0) -- let the rest of this node run
end
local peer = spool.metrics().nodes.b
util.report("flooded", {sent = i, accepted = ok_count, overload = refused,
  first_refusal = first_refusal, rss0_kib = rss0, rss_max_kib = rss_max,
  growth_kib = rss_max - rss0, queued_bytes = peer.queued_bytes, state = peer.state})
check.eq(other, nil, "no refusal but overload")
check.ok(refused > 0, "sends were refused with overload")
check.eq(util.dead("overload") - overload0, refused, "each refusal is an overload dead letter")
check.ok(peer.queued_bytes <= queue_bytes, "the queue holds at most queue_bytes: " .. peer.queued_bytes)
local bound_kib = queue_bytes // 1024 + 64 * 1024
check.ok(rss_max - rss0 < bound_kib, ("memory grew %d KiB, bound %d KiB"):format(rss_max - rss0, bound_kib))
check.eq(peer.state, "up", "b is not declared down during the stall")

-- thawed: what was accepted arrives, all of it
wait_file(continued_file, 20)
while true do
  local ok, err = pcall(spool.call, sink, "flush")
  if ok then break end
  check.ok(tostring(err):find("node send queue full", 1, true), "flush: " .. tostring(err))
  spool.sleep(0.01)
end
local delivered = spool.call(sink, "count")
util.report("drained", {delivered = delivered, accepted = ok_count})
check.eq(delivered, ok_count, "every accepted message reached b")
spool.send(sink, "stop")
print("nodes_flood: all checks passed")
return 0
