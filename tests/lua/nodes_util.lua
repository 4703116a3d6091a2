-- nodes_util.lua - helpers for the multi-process node tests (tests/cli/nodes_*.sh, which start
-- these scripts with `spool run --node`): reports the shell script reads ("KEY=value" words on
-- one stdout line, flushed at once), waiting for a node's notices with a deadline, reading this
-- process's resident memory.
local spool = require "spool"
local M = {}

io.stdout:setvbuf("line")

-- report(tag, {key = value, ...}): prints "tag key=value ..." (keys sorted, spaces in values
-- written as "_") and flushes.
function M.report(tag, fields)
  local words = {tag}
  local keys = {}
  for k in pairs(fields or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do words[#words + 1] = k .. "=" .. tostring(fields[k]):gsub(" ", "_") end
  print(table.concat(words, " "))
  io.stdout:flush()
end

-- wait_notice(kinds, seconds): receives until a message whose second value is in kinds (a set
-- such as {nodeup = true}); returns from, what, why, at (spool.now() when it came). Other
-- messages go to on_other(from, what, ...) if given. Raises when the deadline passes.
function M.wait_notice(kinds, seconds, on_other)
  local deadline = spool.now() + seconds
  while true do
    local left = deadline - spool.now()
    if left <= 0 then break end
    local msg = table.pack(spool.receive(left))
    local at = spool.now()
    if msg[1] ~= nil then
      if kinds[msg[2]] then return msg[1], msg[2], msg[3], at end
      if on_other then on_other(table.unpack(msg, 1, msg.n)) end
    end
  end
  local names = {}
  for k in pairs(kinds) do names[#names + 1] = k end
  error("no " .. table.concat(names, "/") .. " within " .. seconds .. " s", 2)
end

-- wait_down(actor, node, why, seconds): waits for both notices of a lost node: the monitored
-- actor's ("down", "noconnection") and the node monitor's ("nodedown", why). Returns when each
-- came (spool.now()); raises on another reason or when the deadline passes.
function M.wait_down(actor, node, why, seconds)
  local check = require "check"
  local down_at, nodedown_at
  local deadline = spool.now() + seconds
  while not (down_at and nodedown_at) and spool.now() < deadline do
    local who, what, reason = spool.receive(0.5)
    if what == "down" then
      check.eq(who, actor, "down of " .. node .. "'s actor")
      check.eq(reason, "noconnection", "down reason")
      down_at = spool.now()
    elseif what == "nodedown" and who == node then
      check.eq(reason, why, "nodedown reason")
      nodedown_at = spool.now()
    end
  end
  check.ok(down_at, "a down of " .. node .. "'s actor within " .. seconds .. " s")
  check.ok(nodedown_at, "a nodedown of " .. node .. " within " .. seconds .. " s")
  return down_at, nodedown_at
end

-- answers_again(actor, node, what): polls (check.eventually) until a "ping" call to actor
-- answers with node's name: after a new session both sides may take a moment to agree.
function M.answers_again(actor, node, what)
  require("check").eventually(function()
    local ok, _, from = pcall(spool.call, actor, "ping")
    return ok and from == node
  end, what)
end

-- wait_up(node, seconds): monitors node and returns once it is up.
function M.wait_up(node, seconds)
  spool.monitor_node(node)
  local deadline = spool.now() + seconds
  while true do
    for _, n in ipairs(spool.nodes()) do
      if n == node then return end
    end
    local left = deadline - spool.now()
    if left <= 0 then error("node " .. node .. " not up within " .. seconds .. " s", 2) end
    spool.receive(math.min(left, 0.1))
  end
end

-- whereis(name, node, seconds): the id of name on node, polling until it is registered there.
function M.whereis(name, node, seconds)
  local deadline = spool.now() + (seconds or 10)
  while true do
    local id, why = spool.whereis(name, node)
    if id then return id end
    if spool.now() > deadline then error(name .. " not registered on " .. node .. ": " .. tostring(why), 2) end
    spool.sleep(0.05)
  end
end

-- rss_kib(): this process's resident set (VmRSS of /proc/self/status) in KiB.
function M.rss_kib()
  local f = assert(io.open("/proc/self/status"))
  local text = f:read("a")
  f:close()
  return tonumber(text:match("VmRSS:%s*(%d+)"))
end

-- dead(reason): this process's dead letters of that reason so far.
function M.dead(reason)
  return spool.metrics().dead_letters[reason] or 0
end

-- scale(n): n shrunk in sanitizer builds (SPOOL_TEST_SANITIZED) and grown by SPOOL_STRESS.
function M.scale(n)
  local stress = tonumber(os.getenv("SPOOL_STRESS") or "1") or 1
  if os.getenv("SPOOL_TEST_SANITIZED") == "1" then return math.max(1, n // 4) end
  return math.max(1, math.floor(n * stress))
end

return M
