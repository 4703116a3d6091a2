-- host_module.lua - run by examples/host_module.c, which preloads its C module "legacy" (a static
-- counter, no locks). The module is pinned on thread 1; actors on every thread hammer it.
--   host_module [CALLS_PER_ACTOR] [--direct]   (from the build directory: examples/host_module)
local spool = require "spool"

if ... == "hammer" then -- one of the actors started below
  local _, main, calls, direct = ...
  -- Pinned: a proxy, each call a message to thread 1. Direct (to see what goes wrong): the C
  -- functions themselves, called right here on this actor's thread.
  local legacy = direct and require "legacy" or spool.module("legacy", {thread = 1})
  for _ = 1, calls do
    legacy.add(1)
  end
  spool.send(main, "done")
  return
end

local calls, per_thread, mode = ...
calls, per_thread = math.tointeger(tonumber(calls)), math.tointeger(tonumber(per_thread))
local legacy = spool.module("legacy", {thread = 1}) -- loaded once, on thread 1 only

local actors = 0
for thread = 0, spool.threads() - 1 do
  for _ = 1, per_thread do -- this same file, started again as an actor (arg[0] is its path)
    spool.spawn(arg[0], {thread = thread}, "hammer", spool.self(), calls, mode == "direct")
    actors = actors + 1
  end
end
for _ = 1, actors do
  assert(spool.receive(60), "timed out waiting for the actors")
end

local count, expected = legacy.count(), actors * calls
local concurrent, foreign, first = legacy.guard()
print(("%d actors on %d threads, %d calls each: legacy counted %d of %d, entered first by %s, " ..
  "concurrent entries %d, calls from a second thread %d"):format(actors, spool.threads(), calls,
  count, expected, first, concurrent, foreign))
return (count == expected and concurrent == 0 and foreign == 0) and 0 or 1
