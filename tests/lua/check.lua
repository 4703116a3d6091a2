-- check.lua - tiny assertions for the Lua integration tests (run by `spool run`, one file each).
-- A failed check raises: the main actor fails, spool run prints the traceback and exits 1.
local M = {}

function M.eq(got, want, what)
  if got ~= want or math.type(got) ~= math.type(want) then
    error(("%s: got %s (%s), want %s (%s)"):format(what, tostring(got), math.type(got) or type(got),
      tostring(want), math.type(want) or type(want)), 2)
  end
end

function M.ok(cond, what)
  if not cond then error(what, 2) end
end

-- raises(pattern, f, ...): f(...) must raise an error matching pattern (plain text search).
function M.raises(pattern, f, ...)
  local ok, err = pcall(f, ...)
  if ok then error(("expected an error with %q, got none"):format(pattern), 2) end
  if not tostring(err):find(pattern, 1, true) then
    error(("expected an error with %q, got: %s"):format(pattern, tostring(err)), 2)
  end
  return tostring(err)
end

-- eventually(f, what): polls f() every 10 ms for up to 5 s until it returns true.
function M.eventually(f, what)
  local spool = require "spool"
  for _ = 1, 500 do
    if f() then return end
    spool.sleep(0.01)
  end
  error("never happened: " .. what, 2)
end

return M
