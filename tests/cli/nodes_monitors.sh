#!/bin/bash
# tests/cli/nodes_monitors.sh - remote monitors (tests/lua/nodes_monitors.lua on node a,
# nodes_idle.lua as node b, where the workers are spawned): an exit notice never overtakes the
# messages its actor sent before it ended (big ones included), the reasons "normal", "error"
# and "noproc".
#
#   nodes_monitors.sh PATH/TO/spool PATH/TO/tests/lua
. "$(dirname "$0")/nodes_lib.sh"

start_listener b nodes_idle.lua 60 --insecure
b_pid=$NODE_PID
start_node a "$(free_port)" nodes_monitors.lua --insecure --join "b@tcp://127.0.0.1:$NODE_PORT" ||
    fail "node a did not start"
a_pid=$NODE_PID
wait_exit "$a_pid" 60
[ "$EXIT_STATUS" -eq 0 ] || fail "node a exited $EXIT_STATUS"
wait_exit "$b_pid" 10
[ "$EXIT_STATUS" -eq 0 ] || fail "node b exited $EXIT_STATUS"
grep '^result' "$work/a.out"
echo "PASS"
