-- objects.lua - object actors: calls through the proxy, on_message, one call at a time.
local spool = require "spool"

local acc = spool.spawn("account", {thread = 1, name = "alice"}, "alice", 100)
print(acc.deposit(50))                     -- a call: this actor yields until the answer
spool.send(acc, "tip", 5)                  -- a plain message: on_message(from, "tip", 5)
local s = acc.statement()                  -- the answer is a copy of the table
print(s.owner, s.balance, s.log[1])
s.balance = 0                              -- changes the copy only
print(acc.statement().balance, spool.whereis("alice") == acc)

-- One call at a time: while slow_total sleeps, the depositor's call waits in acc's mailbox.
spool.spawn("depositor", {thread = 0}, acc, spool.self())
print("slow_total:", acc.slow_total(0.1))
local _, balance, waited = spool.receive(1)
print(("deposit answered %d after %.2f s"):format(balance, waited))

-- Wrong use is an error at the caller.
print(pcall(spool.call, acc, "statement"))
print(pcall(function() return acc.nothing_here() end))
