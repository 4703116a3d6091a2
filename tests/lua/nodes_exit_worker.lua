-- nodes_exit_worker.lua - spawned on node b by tests/lua/nodes_monitors.lua (node a): on "go",
-- sends boss n messages ("n", seq), every 8th a 1 MiB string, then ends: normally, or with an
-- error when how is "fail". Its exit notice must not overtake any of them.
local spool = require "spool"
local boss, idx, n, how = ...
local from, what = spool.receive(30)
assert(what == "go", "nodes_exit_worker: no go within 30 s")
local big = string.rep("b", 1024 * 1024)
for seq = 1, n do
  local ok, why
  if seq % 8 == 0 then
    ok, why = spool.send(boss, "n", idx, seq, big)
  else
    ok, why = spool.send(boss, "n", idx, seq)
  end
  assert(ok, why)
end
if how == "fail" then error("nodes_exit_worker " .. idx .. " fails on purpose") end
