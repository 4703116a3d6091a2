-- tally.lua - a plain Lua module with state: documents counted per worker thread.
-- Pinned with spool.module("tally", ...), it is loaded once, on one thread, and every call
-- from any thread is a message handled there, one at a time: no lock, no lost update.
local counts = {} -- thread -> documents

local tally = {}

function tally.add(thread, n)
  counts[thread] = (counts[thread] or 0) + n
end

-- A copy of the table crosses back to the caller (plain tables are copied).
function tally.counts()
  return counts
end

return tally
