-- main.lua - JSON workers on every thread, one pinned cjson, one pinned tally.
--   spool run main.lua [DOCUMENTS]
local spool = require "spool"
local documents = math.tointeger(tonumber(... or "50000"))
assert(documents and documents > 0, "usage: spool run main.lua [DOCUMENTS]")
local threads = spool.threads()

-- Pin the modules before any worker asks for them: cjson (a C module with no thread safety) is
-- loaded on thread 0 only, the tally (tally.lua, next to this script) on the last thread.
spool.module("cjson", {thread = 0})
local tally = spool.module("tally", {thread = threads - 1})

local workers = {}
for i = 1, 2 * threads do -- two workers per thread
  workers[i] = spool.spawn("worker", {thread = (i - 1) % threads}, spool.self())
end

local function messages_per_thread() -- what each scheduler thread has handled so far
  local m, out = spool.metrics(), {}
  for _, t in ipairs(m.threads) do out[t.thread] = t.messages end
  return out, m.uptime_seconds -- the runtime's clock (os.clock would be CPU time)
end
local messages0, started = messages_per_thread()

local order = '{"id":%d,"lines":[{"qty":%d,"price":%d},{"qty":2,"price":%d}]}'
local expected = 0 -- the sum of all the totals the workers should find
for id = 1, documents do
  local qty, price = id % 7 + 1, id % 100
  expected = expected + qty * price + 2 * price
  spool.send(workers[id % #workers + 1], "doc", order:format(id, qty, price, price)) -- a copy
end
for _, w in ipairs(workers) do spool.send(w, "stop") end -- behind the documents: FIFO per sender

local sum, results, done, per = 0, 0, 0, {}
while done < #workers do
  local _, kind, a, b, c, d = spool.receive(60)
  assert(kind, "timed out waiting for the workers")
  if kind == "result" then -- the workers' JSON: {"id":..,"total":..}
    sum, results = sum + tonumber(a:match('"total":(%d+)')), results + 1
  else -- "done", thread, documents, calls, seconds
    local p = per[a] or {docs = 0, calls = 0, seconds = 0}
    p.docs, p.calls, p.seconds = p.docs + b, p.calls + c, math.max(p.seconds, d)
    per[a], done = p, done + 1
  end
end
local messages1, finished = messages_per_thread()
local elapsed = finished - started

local counts, counted = tally.counts(), 0 -- a copy of the tally's table
local function rate(n, seconds) return seconds > 0 and n / seconds or 0 end
print("thread  documents  messages/s   calls/s  runtime msgs/s   tally")
for t = 0, threads - 1 do
  local p = per[t]
  print(("%6d %10d %11.0f %9.0f %15.0f %7d"):format(t, p.docs, rate(p.docs, p.seconds),
    rate(p.calls, p.seconds), rate(messages1[t] - messages0[t], elapsed), counts[t] or 0))
  counted = counted + (counts[t] or 0)
end
local ok = counted == documents and results == documents and sum == expected
print(("%d documents in %.2f s on %d threads: tally %d, results %d, totals %s: %s"):format(
  documents, elapsed, threads, counted, results, sum == expected and "right" or "WRONG",
  ok and "OK" or "FAILED"))
return ok and 0 or 1
