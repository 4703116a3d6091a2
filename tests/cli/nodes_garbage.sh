#!/bin/bash
# tests/cli/nodes_garbage.sh - malformed frames against a running node: nodes_garbage (a raw
# ZeroMQ DEALER, tests/cli/nodes_garbage.c) sends node a's ROUTER 5 s of bad packets while a
# (tests/lua/nodes_garbage.lua) keeps calling its peer b (nodes_idle.lua). a and b stay in
# session, every call is answered, a's memory stays bounded and a says what it refused.
# (tests/test_net.c checks each refusal's reason and count in one process.)
#
#   nodes_garbage.sh PATH/TO/spool PATH/TO/tests/lua PATH/TO/nodes_garbage
. "$(dirname "$0")/nodes_lib.sh"
garbage=${3:-}
[ -x "$garbage" ] || fail "usage: nodes_garbage.sh PATH/TO/spool PATH/TO/tests/lua PATH/TO/nodes_garbage"

start_listener b nodes_idle.lua 60 --insecure
b_pid=$NODE_PID
a_port=$(free_port)
start_node a "$a_port" nodes_garbage.lua "$work/done" --insecure \
    --join "b@tcp://127.0.0.1:$NODE_PORT" || fail "node a did not start"
a_pid=$NODE_PID
wait_for a.out '^ready' 20 "$a_pid"
"$garbage" "tcp://127.0.0.1:$a_port" 5 >"$work/garbage.out" 2>&1 ||
    fail "nodes_garbage failed: $(cat "$work/garbage.out")"
touch "$work/done"
wait_exit "$a_pid" 20
[ "$EXIT_STATUS" -eq 0 ] || fail "node a exited $EXIT_STATUS"
wait_exit "$b_pid" 10
[ "$EXIT_STATUS" -eq 0 ] || fail "node b exited $EXIT_STATUS"
grep -q 'dropped a packet' "$work/a.err" || fail "a did not log the packets it dropped"
cat "$work/garbage.out"
grep '^result' "$work/a.out"
echo "a's log about it:"
grep 'dropped a packet' "$work/a.err" | head -n 5
echo "PASS"
