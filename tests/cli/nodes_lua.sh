#!/bin/sh
# tests/cli/nodes_lua.sh - the Lua layer across two nodes on loopback: tests/lua/nodes_peer.lua
# runs as node "b", then tests/lua/nodes.lua as node "a" joining it; nodes.lua makes its checks
# (docs/lua.md, "Nodes") and ends by asking b to die without a goodbye. Passes when a exits 0
# and b exits 3 (its os.exit). Ports: two free-looking ones from the process id, tried 3 times.
#
#   nodes_lua.sh PATH/TO/spool PATH/TO/tests/lua
set -u
if [ $# -ne 2 ] || [ ! -x "$1" ] || [ ! -f "$2/nodes.lua" ]; then
    echo "FAIL: usage: nodes_lua.sh PATH/TO/spool PATH/TO/tests/lua"
    exit 1
fi
spool=$1
lua=$2
work=$(mktemp -d)
b_pid=
trap '[ -n "$b_pid" ] && kill -9 "$b_pid" 2>/dev/null; rm -rf "$work"' EXIT

for attempt in 1 2 3; do
    port=$((20000 + ($$ * 7 + attempt * 101) % 30000))
    timeout 90 "$spool" run "$lua/nodes_peer.lua" --threads 2 --node b \
        --listen "tcp://127.0.0.1:$port" --insecure >"$work/b.out" 2>"$work/b.err" &
    b_pid=$!
    sleep 0.3
    if kill -0 "$b_pid" 2>/dev/null; then
        break
    fi
    wait "$b_pid"
    b_pid=
    echo "node b could not start on port $port (attempt $attempt):"
    cat "$work/b.err"
done
if [ -z "$b_pid" ]; then
    echo "FAIL: node b never started"
    exit 1
fi

timeout 60 "$spool" run "$lua/nodes.lua" --threads 2 --node a --listen tcp://127.0.0.1:0 \
    --join "b@tcp://127.0.0.1:$port" --insecure >"$work/a.out" 2>"$work/a.err"
a_status=$?
wait "$b_pid"
b_status=$?
b_pid=
failures=0
if [ "$a_status" -ne 0 ]; then
    echo "FAIL: node a (nodes.lua) exited $a_status"
    failures=1
fi
if [ "$b_status" -ne 3 ]; then
    echo "FAIL: node b (nodes_peer.lua) exited $b_status, want 3 (told to die)"
    failures=1
fi
if [ "$failures" -ne 0 ]; then
    echo "--- a stdout"; cat "$work/a.out"
    echo "--- a stderr"; cat "$work/a.err"
    echo "--- b stdout"; cat "$work/b.out"
    echo "--- b stderr"; cat "$work/b.err"
    exit 1
fi
cat "$work/a.out"
echo "PASS"
