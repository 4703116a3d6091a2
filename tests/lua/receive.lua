-- Erlang-style actors: per-sender FIFO from many senders on both threads, exact counts; messages
-- that arrive while the actor waits for a call are kept, in order; names; exit; down notices.
local spool = require "spool"
local check = require "check"
local senders, n = 6, tonumber(os.getenv("SPOOL_STRESS") or "1") * 2000
for i = 1, senders do
  spool.spawn("sender", {thread = i % spool.threads()}, spool.self(), n, "s" .. i)
end
local last, ended, total = {}, 0, 0
while ended < senders do
  local _, tag, i = spool.receive(30)
  check.ok(tag ~= nil, "a message before the timeout")
  if i == "end" then
    check.eq(last[tag], n, tag .. " sent everything before its end")
    ended = ended + 1
  else
    check.eq(i, (last[tag] or 0) + 1, tag .. " in order")
    last[tag] = i
    total = total + 1
  end
end
check.eq(total, senders * n, "every message, once")

-- Kept while waiting for a call: they come afterwards, in order.
local slow = spool.spawn("slow", {thread = 1})
spool.spawn("sender", {thread = 0}, spool.self(), 5, "during")
check.eq(slow.nap(0.05), "rested", "the call answers")
for i = 1, 5 do
  local _, tag, k = spool.receive(5)
  check.eq(tag, "during", "kept message " .. i)
  check.eq(k, i, "kept in order")
end
check.eq(select(3, spool.receive(5)), "end", "and the last one")

-- Polls on a full bounded mailbox: the poll's own wake-up is neither refused nor pushes a
-- message out (its start message takes one of the three places while it runs).
-- reject: its start message, then 2 of the 6 are taken, exactly.
local p = spool.spawn("poller", {thread = 1, mailbox = 3, overflow = "reject"}, spool.self(), 3)
for i = 1, 6 do spool.send(p, i) end
check.eq(select(2, spool.receive(15)), "1 2", "a poll on a full reject mailbox")
-- drop_oldest: all 6 are taken and the oldest dropped at the turn, down to the bound; a message
-- its sender is still linking when the turn looks may survive one more look (the drop is
-- best-effort at turn time), so the check is: at least the bound arrives, in order, ending with
-- the newest. (A wake-up that took a place, as before spool_send_self, delivered only 2: "5 6".)
local dropped0 = spool.metrics().dead_letters.dropped_oldest
p = spool.spawn("poller", {thread = 1, mailbox = 3, overflow = "drop_oldest"}, spool.self(), 7)
for i = 1, 6 do spool.send(p, i) end
local got = {}
for n in select(2, spool.receive(15)):gmatch("%d+") do got[#got + 1] = tonumber(n) end
check.ok(#got >= 3, "at least the bound arrived: " .. table.concat(got, " "))
check.eq(got[#got], 6, "the newest among them")
for i = 2, #got do check.ok(got[i] > got[i - 1], "in order: " .. table.concat(got, " ")) end
-- Nothing lost silently: what did not arrive was counted as dropped (the exact count of
-- drop_oldest is test_actors' business).
check.eventually(function()
  return spool.metrics().dead_letters.dropped_oldest - dropped0 >= 6 - #got
end, "the rest counted as dropped")

-- Names.
check.eq(spool.register("main"), true, "register")
check.ok(spool.whereis("main") == spool.self(), "whereis finds it")
local ok, why = spool.register("main")
check.eq(ok, false, "a name is taken once")
check.eq(why, "name taken", "and says so")
check.eq(spool.whereis("nobody"), nil, "an unknown name")
check.eq(select("#", spool.whereis("nobody")), 1, "is an explicit nil")
check.eq(select(2, spool.register("other")), "the actor has a name already", "one name per actor")
local named = spool.spawn("slow", {name = "sleepy", thread = 1})
check.ok(spool.whereis("sleepy") == named, "spawn registers its name")
check.raises("the name 'sleepy' is taken", spool.spawn, "slow", {name = "sleepy"})
check.eq(spool.whereis("sleepy").quick(), "quick", "call through whereis")

-- Down notices: a normal end, an actor already gone, a stop from outside.
local quick = spool.spawn("waiter", {thread = 1})
spool.monitor(quick) -- before it can end: it waits for a message
spool.send(quick, "go")
local saw_bye, saw_down = false, false
for _ = 1, 2 do
  local from, kind, reason = spool.receive(5)
  if kind == "down" then
    check.ok(from == quick, "down names the actor")
    check.eq(reason, "normal", "a normal end")
    check.ok(saw_bye, "after its last message")
    saw_down = true
  else
    check.eq(kind, "bye", "its last message")
    saw_bye = true
  end
end
check.ok(saw_bye and saw_down, "its last message and its down notice")
spool.monitor(quick)
check.eq(select(3, spool.receive(5)), "noproc", "monitoring a dead actor: noproc at once")
spool.monitor(named)
spool.stop(named, 1)
check.eq(select(3, spool.receive(5)), "exit 1", "stopped with a reason (1 is not an error)")
check.eq(spool.whereis("sleepy"), nil, "its name is free again")

-- An object that takes plain messages.
local l = spool.spawn("listener", {thread = 0})
spool.send(l, "a", 1)
spool.send(l, "b", 2)
local seen = l.seen()
check.eq(#seen, 2, "on_message saw both")
check.eq(seen[1] .. seen[2], "a:1b:2", "in order")
local unhandled = spool.metrics().lua.unhandled
spool.send(l, "boom")
check.eq(#l.seen(), 2, "a failing on_message leaves the object serving")
check.eq(spool.metrics().lua.unhandled, unhandled + 1, "and is counted")
print("ok: receive")
