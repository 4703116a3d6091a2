-- nodes_order_recv.lua - node "b" of tests/cli/nodes_order.sh: an actor registered as "sink"
-- that checks what the senders of node a send it: per sender, sequence numbers 1, 2, 3, ... with
-- none missing, none twice, none out of order, small ones and 4-8 MiB strings mixed (their
-- content checked whole). It answers the "result" call once every sender said "done".
local spool = require "spool"
local util = require "nodes_util"
local big = require "nodes_order_big"

spool.register("sink")
util.report("ready")
local next_seq, bigs, smalls, done = {}, 0, 0, {}
local errors = {}
local waiting -- the "result" request, answered once every sender is done
local senders
local function err(text)
  if #errors < 10 then errors[#errors + 1] = text end
end
local function finished()
  if not senders then return false end
  for i = 1, senders do
    if not done[i] then return false end
  end
  return true
end

while true do
  local from, what, idx, seq, s = spool.receive(60)
  if from == nil then error("nodes_order_recv: nothing for 60 s") end
  if what == "m" or what == "big" then
    local want = next_seq[idx] or 1
    if seq ~= want then err(("sender %d: got seq %d, want %d"):format(idx, seq, want)) end
    next_seq[idx] = seq + 1
    if what == "big" then
      bigs = bigs + 1
      if s ~= big.content(idx, seq) then
        err(("sender %d seq %d: big string of %d bytes is not what was sent (%d)"):format(idx, seq,
          #s, #big.content(idx, seq)))
      end
    else
      smalls = smalls + 1
    end
  elseif what == "done" then
    -- ("done", idx, total): the sender's last message
    if (next_seq[idx] or 1) - 1 ~= seq then
      err(("sender %d: said it sent %d, %d arrived"):format(idx, seq, (next_seq[idx] or 1) - 1))
    end
    done[idx] = true
  elseif what == "result" then
    senders = idx
    waiting = from
  end
  if waiting and finished() then
    spool.reply(waiting, #errors == 0, table.concat(errors, "; "), smalls, bigs)
    return 0
  end
end
