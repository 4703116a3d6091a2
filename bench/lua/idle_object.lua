-- idle_object.lua - an idle Lua object actor (lua_idle_actors): says it has started and becomes
-- an object with one function and one upvalue of state; nobody calls it.
require("benchlib").tick()
local count = 0
return {
    ping = function()
        count = count + 1
        return count
    end,
}
