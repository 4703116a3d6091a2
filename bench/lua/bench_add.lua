-- bench_add.lua - the pinned module of lua_module_call: pure Lua, with state of its own (a count
-- of the calls it answered) that lives on the thread it is pinned to.
local M = {}
local calls = 0

function M.add(a, b)
    calls = calls + 1
    return a + b
end

function M.calls()
    return calls
end

return M
