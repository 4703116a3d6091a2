-- Answers every request with the values it got.
local spool = require "spool"
local function answer(from, ...) spool.reply(from, ...) end
while true do answer(spool.receive()) end
