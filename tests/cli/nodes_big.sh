#!/bin/bash
# tests/cli/nodes_big.sh - a stream of 64 MiB messages with no false nodedown
# (tests/lua/nodes_big.lua on node a, nodes_big_recv.lua as node b; heartbeat_ms = 100,
# down_after_ms = 500): every string arrives whole (compared byte for byte), in order, and
# neither node sees the other down. Prints the throughput.
#
#   nodes_big.sh PATH/TO/spool PATH/TO/tests/lua
. "$(dirname "$0")/nodes_lib.sh"

node_config hb.ini heartbeat_ms=100 down_after_ms=500
start_listener b nodes_big_recv.lua --insecure --config "$work/hb.ini"
b_pid=$NODE_PID
start_node a "$(free_port)" nodes_big.lua --insecure --config "$work/hb.ini" \
    --join "b@tcp://127.0.0.1:$NODE_PORT" || fail "node a did not start"
a_pid=$NODE_PID
wait_exit "$a_pid" 100
[ "$EXIT_STATUS" -eq 0 ] || fail "node a exited $EXIT_STATUS"
wait_exit "$b_pid" 20
[ "$EXIT_STATUS" -eq 0 ] || fail "node b exited $EXIT_STATUS"
grep '^result' "$work/a.out"
echo "PASS"
