-- Errors: a Lua error inside a call comes back to the caller with the message and the remote
-- traceback, and the object goes on serving; a failing actor dies alone and its monitors get the
-- reason; a call to an actor that is gone fails cleanly.
local spool = require "spool"
local check = require "check"
local w = spool.spawn("errors_worker", {thread = 1})
local err = check.raises("broken here", w.fail, "here")
check.ok(err:find("errors_worker.lua:3", 1, true), "the message names the remote line: " .. err)
check.ok(err:find("[remote, actor<", 1, true), "the remote part is marked: " .. err)
check.ok(err:find("stack traceback", 1, true), "a remote traceback: " .. err)
check.ok(err:find("in upvalue 'deeper'", 1, true) or err:find("deeper", 1, true),
  "the traceback shows the remote frames: " .. err)
check.raises("an error object of type table", w.fail_table)
local a, b, c = w.ok(1, "two", 3.0)
check.eq(a, 1, "the object still serves after errors")
check.eq(c, 3.0, "floats stay floats")
check.raises("attempt to call a nil value (field 'nope')", function() return w.nope() end)
check.eq(w.nope, nil, "a missing field reads as nil")

-- A failing actor dies alone: its monitor hears why; the others go on.
local crasher = spool.spawn("errors_crasher", {thread = 1})
spool.monitor(crasher)
spool.send(crasher, "poison")
local from, kind, reason = spool.receive(10)
check.ok(from == crasher, "the notice names the crasher")
check.eq(kind, "down", "a down notice")
check.ok(reason:find("crashed on poison", 1, true), "the reason carries the error: " .. reason)
check.eq(w.ok(42), 42, "the other actor on that thread is unaffected")

-- An actor that exits inside a call: the caller learns it ended before answering.
spool.monitor(w)
check.raises("ended before answering", w.die)
local _, kind2, reason2 = spool.receive(10)
check.eq(kind2, "down", "its monitor hears")
check.eq(reason2, "exit 5", "with its exit reason")
check.raises("call to actor<", w.ok, 1) -- gone: the call cannot even be sent
check.eq(spool.metrics().lua.failed >= 1, true, "failures are counted")

-- spool.spawn with only a script name.
local m = spool.spawn("mute")
check.eq(spool.stop(m), true, "spawned without options, then stopped")

-- A module that does not exist: a clear error at spool.module, not later.
check.raises("module 'no_such_module_xyz' not found", spool.module, "no_such_module_xyz")
-- A script that does not exist.
check.raises("script 'no_such_script_xyz' not found", spool.spawn, "no_such_script_xyz")
print("ok: errors")
