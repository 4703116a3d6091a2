#!/bin/bash
# tests/cli/nodes_stop.sh - graceful stop with a frozen peer (tests/lua/nodes_stop.lua on node a,
# nodes_idle.lua as node b): b is frozen with SIGSTOP, a has messages queued for it, and a gets
# SIGTERM: a leaves the cluster and exits within 2 s (the figure printed). After SIGCONT, b sees
# a down.
#
#   nodes_stop.sh PATH/TO/spool PATH/TO/tests/lua
. "$(dirname "$0")/nodes_lib.sh"

bound_ms=2000
start_listener b nodes_idle.lua 60 --insecure
b_pid=$NODE_PID
start_node a "$(free_port)" nodes_stop.lua "$work/stopped" --insecure \
    --join "b@tcp://127.0.0.1:$NODE_PORT" || fail "node a did not start"
a_pid=$NODE_PID
wait_for a.out '^ready' 20 "$a_pid"
kill -STOP "$b_pid"
touch "$work/stopped"
wait_for a.out '^queued' 20 "$a_pid"
term_at=$(signal_at TERM "$a_pid")
while kill -0 "$a_pid" 2>/dev/null; do
    t=$(now_ms)
    if [ $((t - ${term_at%.*} * 1000 - 10#${term_at#*.} / 1000)) -gt 10000 ]; then
        fail "node a still runs 10 s after SIGTERM"
    fi
    sleep 0.01
done
gone_ms=$(($(now_ms) - ${term_at%.*} * 1000 - 10#${term_at#*.} / 1000))
wait "$a_pid"
a_status=$?
echo "SIGTERM with b frozen ($(field a.out accepted) messages queued for it," \
     "$(field a.out queued_bytes) bytes): a gone after $gone_ms ms (bound $bound_ms ms), exit status $a_status"
[ "$gone_ms" -le "$bound_ms" ] || fail "node a took $gone_ms ms to stop, more than $bound_ms"
[ "$a_status" -lt 128 ] || fail "node a was ended by a signal (status $a_status), not stopped by it"
kill -CONT "$b_pid"
wait_for b.out '^nodedown .*node=a' 15 "$b_pid"
echo "b after SIGCONT: $(grep '^nodedown .*node=a' "$work/b.out" | tail -n 1)"
kill -TERM "$b_pid"
wait_exit "$b_pid" 5
echo "PASS"
