-- sink.lua - the receiver of lua_sendrecv's one-way test (a process actor): says "ready" to the
-- main actor, takes COUNT messages with spool.receive(), each an integer, sums them and sends
-- ("done", time of the last receipt, sum).  Args: main actor, COUNT
local spool = require "spool"
local benchlib = require "benchlib"
local main, count = ...
local receive = spool.receive

spool.send(main, "ready")
local sum = 0
for _ = 1, count do
    local _, v = receive()
    sum = sum + v
end
spool.send(main, "done", benchlib.now(), sum)
