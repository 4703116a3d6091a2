-- metrics.lua - spool.metrics(): the runtime's snapshot, as a Lua table.
local spool = require "spool"
local acc = spool.spawn("account", {thread = 1, name = "acc"}, "acc", 0)
for i = 1, 1000 do acc.deposit(i) end

local m = spool.metrics()
print(("uptime %.3f s, metrics enabled: %s, 1 message in %d timed"):format(m.uptime_seconds,
  m.enabled, m.sample_every))
for _, th in ipairs(m.threads) do
  print(("thread %d: cpu %d, %d messages, %d actors"):format(th.thread, th.cpu, th.messages,
    th.actors))
end
for _, a in ipairs(m.actors) do
  print(("%s %-7s %-12s thread %d handled %d"):format(tostring(a.actor), a.name, a.behavior,
    a.thread, a.handled))
end
local dead = {}
for reason, n in pairs(m.dead_letters) do dead[#dead + 1] = reason .. "=" .. n end
table.sort(dead)
print("dead letters: " .. table.concat(dead, " "))
print(("lua: %d states, %d actors, %d calls, %d handles, %d KiB"):format(m.lua.states,
  m.lua.actors, m.lua.calls, m.lua.handles, m.lua.memory_bytes // 1024))

local one = spool.metrics(acc)                    -- one actor's entry
print(one.name, one.depth, one.high_water, one.processing.count > 0, one.wait.p99 >= 0)
