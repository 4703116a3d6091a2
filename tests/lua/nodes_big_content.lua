-- nodes_big_content.lua - the strings of tests/cli/nodes_big.sh, made alike on both nodes: a
-- little under 64 MiB (the most one message holds), a pattern that names the message.
local M = {}
M.size = 64 * 1024 * 1024 - 4096

function M.make(seq)
  local chunk = ("[%d|%s]"):format(seq, string.rep(string.char(97 + seq % 26), 13 + seq % 7))
  return string.rep(chunk, M.size // #chunk + 1):sub(1, M.size)
end

return M
