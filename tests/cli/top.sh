#!/bin/bash
# tests/cli/top.sh - `spool top` in a real terminal: tmux runs it against a live program
# (spool_demo_target) in a 120x40 window; capture-pane reads the screen. Checks the threads table,
# the actors with non-zero figures, that `w` moves the sort mark to p99 wait, that a resize
# redraws, that `q` ends it with exit status 0, and that Ctrl-C does too; then against a node
# (`spool run --node a`, with b joined to it): the peers panel shows b up, `p` hides and shows it.
#
#   top.sh PATH/TO/spool PATH/TO/spool_demo_target
# shellcheck disable=SC2015 # pass() always succeeds: `check && pass || fail` is an if-else
set -u
spool=$1
demo=$2
for tool in tmux python3; do
    if ! command -v "$tool" >/dev/null; then
        echo "FAIL: $tool is not installed (./quickstart installs it)"
        exit 1
    fi
done

socket=/tmp/spool-cli-test-$$.sock
endpoint=ipc://$socket
work=$(mktemp -d)
server=spooltest-$$ # a tmux server of our own: nothing else's sessions are touched
session=spooltest-$$
node_socket=/tmp/spool-cli-test-$$-node.sock
demo_pid=
node_pids=
cleanup() {
    tmux -L "$server" kill-server 2>/dev/null
    for pid in $demo_pid $node_pids; do
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    rm -rf "$work" "$socket" "$node_socket"
}
trap cleanup EXIT

failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}
pass() { echo "ok: $*"; }
screen() { tmux -L "$server" capture-pane -p -t "$1" 2>/dev/null; }

# wait_for SESSION SECONDS TEST...: polls the screen every 0.1 s until TEST (run on the screen text
# in $work/screen.txt) holds, at most SECONDS. Returns TEST's last answer.
wait_for() {
    local target=$1 tries=$(($2 * 10))
    shift 2
    for _ in $(seq "$tries"); do
        screen "$target" >"$work/screen.txt"
        if "$@"; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}
# session_ends SESSION SECONDS: true once the session (and so the program in it) is gone.
session_ends() {
    for _ in $(seq $(($2 * 10))); do
        tmux -L "$server" has-session -t "$1" 2>/dev/null || return 0
        sleep 0.1
    done
    return 1
}

"$demo" "$endpoint" 30 >"$work/demo.out" 2>&1 &
demo_pid=$!
for _ in $(seq 50); do
    "$spool" stats --timeout 200 "$endpoint" >/dev/null 2>&1 && break
    sleep 0.1
done

# spool top in a tmux session of its own; its exit status lands in a file when it ends.
tmux -L "$server" new-session -d -x 120 -y 40 -s "$session" \
    "'$spool' top '$endpoint'; echo \$? >'$work/status'"

# A second frame (rates over an interval, not since start) with every actor on it.
frame_ready() {
    grep -q 'rates over the last' "$work/screen.txt" &&
        grep -qw sink "$work/screen.txt" && grep -qw producer "$work/screen.txt"
}
# The sink's backlog, worker1's traffic and a busy thread: figures, not just names.
figures_live() {
    awk '$2 == "sink" && $4 > 0 { depth = 1 }
         $2 == "worker1" && $6 != "0" && $7 != "0" { rates = 1 }
         END { exit !(depth && rates) }' "$work/screen.txt"
}
if wait_for "$session" 6 frame_ready; then
    pass "top shows a second frame"
else
    fail "top never showed a second frame; the screen:"
    cat "$work/screen.txt"
fi
wait_for "$session" 4 figures_live && pass "top: sink has a backlog, worker1 has in/s and out/s" ||
    fail "top: no live figures"
cp "$work/screen.txt" "$work/first.txt"
cat "$work/first.txt"
grep -qE '^THREAD +CPU +LOAD' "$work/first.txt" && pass "top: threads table" ||
    fail "top: no threads table"
[ "$(grep -cE '^ +[01] +[-0-9]+ +\[[| ]+\] +[0-9.]+%' "$work/first.txt")" -eq 2 ] &&
    pass "top: two threads with load bars" || fail "top: load bars missing"
for name in producer worker1 worker2 sink; do
    grep -qE "^[0-9]+ +$name +[01] " "$work/first.txt" && pass "top: $name" || fail "top: no $name row"
done
grep -qE 'sort: depth' "$work/first.txt" && grep -qE 'DEPTH(▼|v)' "$work/first.txt" &&
    pass "top: sorted by depth at first" || fail "top: no depth sort mark"
! grep -qE '^PEER ' "$work/first.txt" && ! grep -q 'p hide peers' "$work/first.txt" &&
    pass "top: no peers panel without a node" || fail "top: a peers panel, but no node runs"

# `w`: sorted by p99 wait, the mark on that column.
tmux -L "$server" send-keys -t "$session" w
sorted_by_wait() {
    grep -q 'sort: p99 wait' "$work/screen.txt" && grep -qE 'P99 WAIT(▼|v)' "$work/screen.txt" &&
        ! grep -qE 'DEPTH(▼|v)' "$work/screen.txt"
}
wait_for "$session" 3 sorted_by_wait && pass "top: w sorts by p99 wait" ||
    fail "top: w did not move the sort mark"

# A smaller window: redrawn to fit, the key line on the new last row.
tmux -L "$server" resize-window -t "$session" -x 90 -y 20
redrawn() {
    [ "$(wc -l <"$work/screen.txt")" -eq 20 ] && tail -n 1 "$work/screen.txt" | grep -q 'q quit'
}
wait_for "$session" 3 redrawn && pass "top: redraws after a resize" ||
    fail "top: no redraw after a resize"

# `q` ends it, with status 0.
tmux -L "$server" send-keys -t "$session" q
session_ends "$session" 3 && pass "top: q quits" || fail "top: still running after q"
[ "$(cat "$work/status" 2>/dev/null)" = 0 ] && pass "top: exit status 0" ||
    fail "top: exit status '$(cat "$work/status" 2>/dev/null)'"

# Ctrl-C ends it cleanly too.
rm -f "$work/status"
tmux -L "$server" new-session -d -x 100 -y 30 -s "$session-c" \
    "'$spool' top '$endpoint'; echo \$? >'$work/status'"
wait_for "$session-c" 5 grep -q '^THREAD' "$work/screen.txt" || fail "top (second) never drew"
tmux -L "$server" send-keys -t "$session-c" C-c
session_ends "$session-c" 3 && [ "$(cat "$work/status" 2>/dev/null)" = 0 ] &&
    pass "top: Ctrl-C ends it with status 0" || fail "top: Ctrl-C did not end it cleanly"

# A node: a serves the endpoint, b joins it (each a `spool run` of a script that sleeps).
cat >"$work/sleep.lua" <<'LUA'
local spool = require "spool"
spool.sleep(tonumber((...)))
LUA
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$spool" run "$work/sleep.lua" 30 --threads 2 --node a --listen "tcp://127.0.0.1:$port" --insecure \
    --admin "ipc://$node_socket" >"$work/a.out" 2>&1 &
node_pids=$!
"$spool" run "$work/sleep.lua" 30 --threads 2 --node b --listen tcp://127.0.0.1:0 --insecure \
    --join "a@tcp://127.0.0.1:$port" >"$work/b.out" 2>&1 &
node_pids="$node_pids $!"
for _ in $(seq 50); do
    "$spool" stats --timeout 200 "ipc://$node_socket" >/dev/null 2>&1 && break
    sleep 0.1
done
rm -f "$work/status"
tmux -L "$server" new-session -d -x 120 -y 40 -s "$session-n" \
    "'$spool' top 'ipc://$node_socket'; echo \$? >'$work/status'"
# b up with a round trip, on a second frame (rates over an interval).
peers_shown() {
    grep -q 'rates over the last' "$work/screen.txt" &&
        grep -qE '^PEER +STATE +RTT +MSGS IN/S +OUT/S +BYTES IN/S +OUT/S +QUEUED +MISSED +DEAD' \
            "$work/screen.txt" &&
        grep -qE '^b +up +[0-9.]+[nmu]?s +' "$work/screen.txt"
}
if wait_for "$session-n" 10 peers_shown; then
    pass "top: the peers panel shows b up"
else
    fail "top: no peers panel with b up; the screen:"
    cat "$work/screen.txt"
fi
grep -q 'node a' "$work/screen.txt" && pass "top: the header names node a" ||
    fail "top: no 'node a' in the header"
grep -q 'p hide peers' "$work/screen.txt" && pass "top: the key line offers p" ||
    fail "top: no 'p hide peers' in the key line"
tmux -L "$server" send-keys -t "$session-n" p
peers_hidden() {
    ! grep -qE '^PEER ' "$work/screen.txt" && grep -q 'p show peers' "$work/screen.txt" &&
        grep -qE '^ID +NAME' "$work/screen.txt"
}
wait_for "$session-n" 3 peers_hidden && pass "top: p hides the peers" || fail "top: p did not hide them"
tmux -L "$server" send-keys -t "$session-n" p
wait_for "$session-n" 3 peers_shown && pass "top: p shows them again" ||
    fail "top: p did not show them again"
tmux -L "$server" send-keys -t "$session-n" q
session_ends "$session-n" 3 && [ "$(cat "$work/status" 2>/dev/null)" = 0 ] &&
    pass "top (node): q quits with status 0" || fail "top (node): q did not end it cleanly"

if [ "$failures" -ne 0 ]; then
    echo "$failures checks failed"
    exit 1
fi
echo "all checks passed"
