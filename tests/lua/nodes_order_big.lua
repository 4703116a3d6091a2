-- nodes_order_big.lua - the big strings of tests/cli/nodes_order.sh, made the same way on the
-- sending and the receiving node: 4-8 MiB, a pattern naming sender and sequence number.
local M = {}

function M.size(idx, seq)
  return 4 * 1024 * 1024 + (idx * 7919 + seq * 104729) % (4 * 1024 * 1024)
end

function M.content(idx, seq)
  local size = M.size(idx, seq)
  local chunk = ("<%d:%d>"):format(idx, seq)
  local s = string.rep(chunk, size // #chunk + 1)
  return s:sub(1, size)
end

return M
