#!/bin/bash
# tests/cli/top.sh - `spool top` in a real terminal: tmux runs it against a live program
# (spool_demo_target) in a 120x40 window; capture-pane reads the screen. Checks the threads table,
# the actors with non-zero figures, that `w` moves the sort mark to p99 wait, that a resize
# redraws, that `q` ends it with exit status 0, and that Ctrl-C does too.
#
#   top.sh PATH/TO/spool PATH/TO/spool_demo_target
# shellcheck disable=SC2015 # pass() always succeeds: `check && pass || fail` is an if-else
set -u
spool=$1
demo=$2
if ! command -v tmux >/dev/null; then
    echo "FAIL: tmux is not installed (./quickstart installs it)"
    exit 1
fi

socket=/tmp/spool-cli-test-$$.sock
endpoint=ipc://$socket
work=$(mktemp -d)
server=spooltest-$$ # a tmux server of our own: nothing else's sessions are touched
session=spooltest-$$
demo_pid=
cleanup() {
    tmux -L "$server" kill-server 2>/dev/null
    if [ -n "$demo_pid" ]; then
        kill "$demo_pid" 2>/dev/null
        wait "$demo_pid" 2>/dev/null
    fi
    rm -rf "$work" "$socket"
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

if [ "$failures" -ne 0 ]; then
    echo "$failures checks failed"
    exit 1
fi
echo "all checks passed"
