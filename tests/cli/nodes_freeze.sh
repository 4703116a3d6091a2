#!/bin/bash
# tests/cli/nodes_freeze.sh - kill -STOP and kill -CONT of a node (tests/lua/nodes_freeze.lua on
# node a, nodes_idle.lua as node b; both with heartbeat_ms = 100, down_after_ms = 500): a sees b
# down ("heartbeat timeout", and down "noconnection" for its monitor) within down_after + 10 %
# of the freeze, plus a slack for this loaded machine (bound: 550 + 250 ms; the figures printed);
# after SIGCONT they meet again in a new session.
#
#   nodes_freeze.sh PATH/TO/spool PATH/TO/tests/lua
. "$(dirname "$0")/nodes_lib.sh"

down_after=500
bound_ms=$((down_after * 11 / 10 + 250))
[ "$sanitized" = 1 ] && bound_ms=$((bound_ms + 500))
node_config hb.ini heartbeat_ms=100 down_after_ms=$down_after
start_listener b nodes_idle.lua 60 --insecure --config "$work/hb.ini"
b_pid=$NODE_PID
b_port=$NODE_PORT
start_node a "$(free_port)" nodes_freeze.lua --insecure --config "$work/hb.ini" \
    --join "b@tcp://127.0.0.1:$b_port" || fail "node a did not start"
a_pid=$NODE_PID
wait_for a.out '^ready' 20 "$a_pid"
stopped_at=$(signal_at STOP "$b_pid")
wait_for a.out '^seen' 25 "$a_pid"
down_ms=$(ms_between "$stopped_at" "$(field a.out down_at)")
nodedown_ms=$(ms_between "$stopped_at" "$(field a.out nodedown_at)")
echo "kill -STOP -> nodedown heartbeat timeout: $nodedown_ms ms, down noconnection: $down_ms ms" \
     "(down_after $down_after ms, bound $bound_ms ms, missed heartbeats $(field a.out missed))"
[ "$nodedown_ms" -le "$bound_ms" ] || fail "nodedown came $nodedown_ms ms after SIGSTOP"
[ "$down_ms" -le "$bound_ms" ] || fail "the monitor fired $down_ms ms after SIGSTOP"
[ "$nodedown_ms" -ge $((down_after * 9 / 10 - 100)) ] ||
    fail "nodedown came $nodedown_ms ms after SIGSTOP: sooner than down_after allows"
continued_at=$(signal_at CONT "$b_pid")
wait_for a.out '^thawed' 25 "$a_pid"
echo "kill -CONT -> nodeup: $(ms_between "$continued_at" "$(field a.out up_at)") ms" \
     "(ups $(field a.out ups), downs $(field a.out downs))"
wait_exit "$a_pid" 20
[ "$EXIT_STATUS" -eq 0 ] || fail "node a exited $EXIT_STATUS"
wait_exit "$b_pid" 10
[ "$EXIT_STATUS" -eq 0 ] || fail "node b exited $EXIT_STATUS"
echo "PASS"
