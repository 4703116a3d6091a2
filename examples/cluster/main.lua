-- main.lua - node a of the cluster example (run.sh starts b and c first, then this):
--   * waits for nodes b and c, pins the tally module on node c;
--   * spreads workers over a, b and c and monitors each one;
--   * hands out JOBS jobs; halfway, node b is killed (kill -9, its pid is the first argument);
--   * the workers on b are seen down through their monitors ("noconnection"), and the jobs they
--     held go to the workers left: every job is answered, and the answers are checked.
local spool = require "spool"
local b_pid, jobs = ...
local JOBS = tonumber(jobs) or 2000
spool.set_timeout(10)

spool.monitor_node("*")
local deadline = spool.now() + 10
while #spool.nodes() < 2 do
  assert(spool.now() < deadline, "nodes b and c did not come up")
  spool.receive(1)
end
print("a: up with " .. table.concat(spool.nodes(), ", "))

local tally = spool.module("tally", {node = "c", thread = 0})
local workers, node_of, held = {}, {}, {}
for _, node in ipairs({"a", "b", "c"}) do
  for _ = 1, 2 do
    local w = spool.spawn("worker", {node = node}, spool.self(), tally)
    spool.monitor(w)
    workers[#workers + 1] = w
    node_of[w] = node
    held[w] = {}
  end
end

local function expected(n) return n * (n + 1) * (2 * n + 1) // 6 end
local function size_of(job) return 1000 + job % 500 end

local alive, next_worker = {}, 1
for _, w in ipairs(workers) do alive[#alive + 1] = w end
local function give(job)
  next_worker = next_worker % #alive + 1
  local w = alive[next_worker]
  held[w][job] = true
  spool.send(w, "job", job, size_of(job))
end

local done, answered, by_node, moved = 0, {}, {}, 0
local in_flight, next_job, killed = 0, 1, false
local WINDOW = 64
while done < JOBS do
  while in_flight < WINDOW and next_job <= JOBS do
    give(next_job)
    next_job = next_job + 1
    in_flight = in_flight + 1
  end
  local from, what, job, sum, node = spool.receive(10)
  assert(from, "no answer for 10 s")
  if what == "done" then
    for _, w in ipairs(workers) do held[w][job] = nil end
    if not answered[job] then
      assert(sum == expected(size_of(job)), "wrong sum for job " .. job)
      answered[job] = node
      by_node[node] = (by_node[node] or 0) + 1
      done = done + 1
      in_flight = in_flight - 1
    end
    if done == JOBS // 2 and not killed and b_pid then
      print("a: killing node b (kill -9 " .. b_pid .. ")")
      os.execute("kill -9 " .. b_pid)
      killed = true
    end
  elseif what == "down" then
    -- job here is the reason: "noconnection" when b's connection died
    print(("a: worker %s on node %s is down (%s)"):format(from, node_of[from], job))
    for i, w in ipairs(alive) do
      if w == from then table.remove(alive, i) break end
    end
    for lost in pairs(held[from]) do
      held[from][lost] = nil
      moved = moved + 1
      give(lost)
    end
  elseif what == "nodedown" then
    print("a: node " .. from .. " is down (" .. job .. ")")
  end
end

local counts, total = tally.report()
print(("a: %d jobs answered (a %d, b %d, c %d); %d moved from b's workers"):format(
  done, by_node.a or 0, by_node.b or 0, by_node.c or 0, moved))
print(("a: tally on node c counted %d jobs (a %d, b %d, c %d)"):format(
  total, counts.a or 0, counts.b or 0, counts.c or 0))
-- At most once: a job b finished and counted just before it died, whose answer was lost with the
-- connection, is counted again when it runs elsewhere; none is missing.
assert(done == JOBS and total >= JOBS, "jobs lost")
for _, w in ipairs(alive) do spool.send(w, "quit") end
return 0
