#!/bin/bash
# tests/cli/nodes_order.sh - FIFO per sender across nodes with big messages mixed in: node a
# (tests/lua/nodes_order.lua) runs 4 sender actors that each send 20000 small messages and three
# 4-8 MiB strings to one receiver on node b (nodes_order_recv.lua), which checks per-sender
# order, exact counts and the big strings' content. Fragments of a big message interleave with
# the other senders' messages, so this is where an order bug would show.
#
#   nodes_order.sh PATH/TO/spool PATH/TO/tests/lua
. "$(dirname "$0")/nodes_lib.sh"

start_listener b nodes_order_recv.lua --insecure
b_pid=$NODE_PID
wait_for b.out '^ready' 10
start_node a "$(free_port)" nodes_order.lua --insecure --join "b@tcp://127.0.0.1:$NODE_PORT" ||
    fail "node a did not start"
a_pid=$NODE_PID
wait_exit "$a_pid" 150
[ "$EXIT_STATUS" -eq 0 ] || fail "node a exited $EXIT_STATUS"
wait_exit "$b_pid" 20
[ "$EXIT_STATUS" -eq 0 ] || fail "node b exited $EXIT_STATUS"
grep '^result' "$work/a.out"
echo "PASS"
