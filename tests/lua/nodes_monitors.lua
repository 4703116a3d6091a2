-- nodes_monitors.lua - node "a" of tests/cli/nodes_monitors.sh: remote monitors. Workers spawned
-- on node b (nodes_exit_worker.lua) each send this actor messages, some of 1 MiB, and end
-- (normally or with an error): every message must come before the worker's exit notice, and
-- the notice says "normal" or "error". A monitor set on a worker that already ended says
-- "noproc" (from node b).
local spool = require "spool"
local check = require "check"
local util = require "nodes_util"

spool.set_timeout(10)
util.wait_up("b", 10)
local workers = util.scale(24)
local n = 40
local me = spool.self()
local ids, got, downs = {}, {}, 0
for i = 1, workers do
  local how = (i % 3 == 0) and "fail" or "end"
  ids[i] = spool.spawn("nodes_exit_worker", {node = "b", thread = i % 2}, me, i, n, how)
  spool.monitor(ids[i])
  got[i] = 0
end
for i = 1, workers do spool.send(ids[i], "go") end
local index = {}
for i, id in ipairs(ids) do index[id] = i end
while downs < workers do
  local from, what, idx, seq, big = spool.receive(30)
  check.ok(from ~= nil, "every worker's messages and exit within 30 s")
  if what == "n" then
    check.eq(seq, got[idx] + 1, "worker " .. idx .. "'s messages in order")
    if seq % 8 == 0 then check.eq(#big, 1024 * 1024, "a 1 MiB string") end
    got[idx] = seq
  elseif what == "down" then
    local i = index[from]
    check.ok(i ~= nil, "a down of one of the workers")
    check.eq(got[i], n, "worker " .. i .. ": all its messages before its exit notice")
    check.eq(idx, (i % 3 == 0) and "error" or "normal", "worker " .. i .. "'s exit reason")
    downs = downs + 1
  end
end

-- noproc: a worker that ended already
spool.monitor(ids[1])
local from, what, why = spool.receive(10)
check.eq(from, ids[1], "a notice about the ended worker")
check.eq(what, "down", "a down")
check.eq(why, "noproc", "monitor of a remote actor that ended")
local peer = spool.metrics().nodes.b
check.eq(peer.downs, 0, "no nodedown")
util.report("result", {workers = workers, messages = workers * n})
spool.send(util.whereis("idle", "b"), "stop")
print("nodes_monitors: all checks passed")
return 0
