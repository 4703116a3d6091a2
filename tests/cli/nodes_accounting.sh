#!/bin/bash
# tests/cli/nodes_accounting.sh - exact accounting over 1 M sends (tests/lua/nodes_accounting.lua
# on node a): delivered + dead letters by reason = sent, with too_large (a's max_message is 64
# KiB here), overload (a small queue_bytes), node_down (node c left) and stale_incarnation (c
# restarted at the same port) made on purpose. Nodes b and c run nodes_count_sink.lua.
#
#   nodes_accounting.sh PATH/TO/spool PATH/TO/tests/lua
. "$(dirname "$0")/nodes_lib.sh"

node_config a.ini max_message=65536 queue_bytes=4194304
start_listener b nodes_count_sink.lua --insecure
b_pid=$NODE_PID
b_port=$NODE_PORT
start_listener c nodes_count_sink.lua --insecure --join "b@tcp://127.0.0.1:$b_port"
c_pid=$NODE_PID
c_port=$NODE_PORT
start_node a "$(free_port)" nodes_accounting.lua --insecure --config "$work/a.ini" \
    --join "b@tcp://127.0.0.1:$b_port" || fail "node a did not start"
a_pid=$NODE_PID

wait_for a.out "^c_gone" 120 "$a_pid"
wait_exit "$c_pid" 10
[ "$EXIT_STATUS" -eq 0 ] || fail "node c exited $EXIT_STATUS after its stop"
start_node c "$c_port" nodes_count_sink.lua --insecure --join "b@tcp://127.0.0.1:$b_port" ||
    fail "node c did not start again on port $c_port"
c_pid=$NODE_PID

wait_exit "$a_pid" 60
[ "$EXIT_STATUS" -eq 0 ] || fail "node a exited $EXIT_STATUS"
wait_exit "$b_pid" 20
[ "$EXIT_STATUS" -eq 0 ] || fail "node b exited $EXIT_STATUS"
wait_exit "$c_pid" 20
[ "$EXIT_STATUS" -eq 0 ] || fail "node c exited $EXIT_STATUS"
grep '^books' "$work/a.out"
echo "PASS"
