-- pong.lua - the far end of lua_sendrecv's ping-pong (a process actor): COUNT times, takes a
-- message with spool.receive() and sends its value back to its sender; with "call", takes
-- requests of spool.call instead and answers them with spool.reply.  Args: COUNT, "send"|"call"
local spool = require "spool"
local count, how = ...
local receive, send, reply = spool.receive, spool.send, spool.reply

if how == "call" then
    for _ = 1, count do
        local request, v = receive()
        reply(request, v)
    end
else
    for _ = 1, count do
        local from, v = receive()
        send(from, v)
    end
end
