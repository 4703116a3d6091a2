-- A pinned C module hammered from actors on every thread: every call counted exactly, and the
-- module entered by one thread only (guarded.c's guard sees concurrent or foreign entries).
local spool = require "spool"
local check = require "check"
local per_thread, calls = 4, tonumber(os.getenv("SPOOL_STRESS") or "1") * 2500
local g = spool.module("guarded", {thread = 0})
local workers, threads_used = 0, {}
for thread = 0, spool.threads() - 1 do
  for _ = 1, per_thread do
    spool.spawn("hammer_worker", {thread = thread}, spool.self(), calls)
    workers = workers + 1
  end
end
for _ = 1, workers do
  local _, kind, thread = spool.receive(60)
  check.eq(kind, "done", "a worker finished")
  threads_used[thread] = true
end
check.ok(threads_used[0] and threads_used[spool.threads() - 1], "workers ran on every thread")
check.eq(g.count(), workers * calls, "every call counted")
check.eq(g.violations(), 0, "never entered by two threads at once")
check.eq(g.threads(), 1, "entered by one thread only")
check.eq(spool.thread_of(g), 0, "the module lives on thread 0")
print(("ok: %d calls from %d actors on %d threads"):format(workers * calls, workers, spool.threads()))
