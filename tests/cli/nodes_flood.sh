#!/bin/bash
# tests/cli/nodes_flood.sh - a flood against a stalled receiver (tests/lua/nodes_flood.lua on
# node a, nodes_count_sink.lua as node b, SIGSTOPped while a sends small messages as fast as it
# can for 3 s; queue_bytes = 8 MiB, so max_message = 1 MiB): sends fail with overload, a's
# resident memory grows by less than queue_bytes + 64 MiB, and after SIGCONT every accepted
# message arrives.
#
#   nodes_flood.sh PATH/TO/spool PATH/TO/tests/lua
. "$(dirname "$0")/nodes_lib.sh"

queue_bytes=$((8 * 1024 * 1024))
# Under AddressSanitizer every freed block waits in a quarantine (256 MiB by default) before it is
# reused, which is resident memory the bound below is not about: keep the quarantine small.
if [ "$sanitized" = 1 ]; then
    export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4:thread_local_quarantine_size_kb=256"
fi
node_config flood.ini queue_bytes=$queue_bytes max_message=1048576 heartbeat_ms=1000 down_after_ms=30000
start_listener b nodes_count_sink.lua --insecure --config "$work/flood.ini"
b_pid=$NODE_PID
start_node a "$(free_port)" nodes_flood.lua "$work/stopped" "$work/continued" "$queue_bytes" \
    --insecure --config "$work/flood.ini" --join "b@tcp://127.0.0.1:$NODE_PORT" ||
    fail "node a did not start"
a_pid=$NODE_PID
wait_for a.out '^ready' 20 "$a_pid"
kill -STOP "$b_pid"
touch "$work/stopped"
wait_for a.out '^flooded' 30 "$a_pid"
echo "a's VmRSS while b was stopped: $(field a.out rss0_kib) KiB before, $(field a.out rss_max_kib) KiB at most" \
     "(growth $(field a.out growth_kib) KiB); sent $(field a.out sent), accepted $(field a.out accepted)," \
     "overload $(field a.out overload) (first at send $(field a.out first_refusal))"
kill -CONT "$b_pid"
touch "$work/continued"
wait_exit "$a_pid" 60
[ "$EXIT_STATUS" -eq 0 ] || fail "node a exited $EXIT_STATUS"
wait_exit "$b_pid" 20
[ "$EXIT_STATUS" -eq 0 ] || fail "node b exited $EXIT_STATUS"
grep '^drained' "$work/a.out"
echo "PASS"
