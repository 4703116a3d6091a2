#!/bin/bash
# tests/cli/stats.sh - `spool stats` against a live program (spool_demo_target): the table, --json
# (checked by python3's json.tool), --prom (checked by Prometheus' own `promtool check metrics`),
# --plot (a well-formed SVG naming the actors), an unreachable endpoint (exit 1 and a clear
# message within the timeout, never a hang), and a node: two `spool run --node` processes joined
# over loopback, whose peers line, JSON and Prometheus series show the other one up, then down.
#
#   stats.sh PATH/TO/spool PATH/TO/spool_demo_target
# shellcheck disable=SC2015 # pass() always succeeds: `check && pass || fail` is an if-else
set -u
spool=$1
demo=$2
for tool in python3 promtool; do
    if ! command -v "$tool" >/dev/null; then
        echo "FAIL: $tool is not installed (./quickstart installs it)"
        exit 1
    fi
done

socket=/tmp/spool-cli-test-$$.sock
endpoint=ipc://$socket
work=$(mktemp -d)
node_socket=/tmp/spool-cli-test-$$-node.sock
demo_pid=
node_pids=
cleanup() {
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

"$demo" "$endpoint" 30 >"$work/demo.out" 2>&1 &
demo_pid=$!

# The endpoint answers once the program is up: ask until it does (at most 5 s).
up=
for _ in $(seq 50); do
    if "$spool" stats --timeout 200 "$endpoint" >"$work/table.txt" 2>"$work/table.err"; then
        up=1
        break
    fi
    sleep 0.1
done
if [ -z "$up" ]; then
    echo "FAIL: $endpoint never answered"
    cat "$work/demo.out" "$work/table.err"
    exit 1
fi

# A backlog builds at the sink: wait (at most 5 s) until the snapshot shows it.
for _ in $(seq 50); do
    "$spool" stats "$endpoint" >"$work/table.txt" 2>"$work/table.err" || true
    if awk '$2 == "sink" && $5 > 0 { found = 1 } END { exit !found }' "$work/table.txt"; then
        break
    fi
    sleep 0.1
done

# 1. The table: both threads, every actor, the sink's backlog.
cat "$work/table.txt"
grep -q '^THREAD' "$work/table.txt" && [ "$(grep -cE '^ +[01] ' "$work/table.txt")" -ge 2 ] &&
    pass "table: threads" || fail "table: threads missing"
for name in producer worker1 worker2 sink; do
    grep -qw "$name" "$work/table.txt" && pass "table: $name" || fail "table: no $name"
done
awk '$2 == "sink" && $5 > 0 { found = 1 } END { exit !found }' "$work/table.txt" &&
    pass "table: sink has a backlog" || fail "table: sink has no backlog"
awk '$2 == "worker1" && $7 > 0 && $8 > 0 { found = 1 } END { exit !found }' "$work/table.txt" &&
    pass "table: worker1 counts messages" || fail "table: worker1 counted nothing"

# 2. --json: valid JSON with the keys the command line relies on.
if "$spool" stats --json "$endpoint" >"$work/metrics.json" &&
    python3 -m json.tool "$work/metrics.json" >/dev/null; then
    pass "--json is valid JSON"
else
    fail "--json is not valid JSON"
fi
python3 - "$work/metrics.json" <<'PY' && pass "--json: threads and actors" || fail "--json: content"
import json, sys
m = json.load(open(sys.argv[1]))
assert len(m["threads"]) == 2, m["threads"]
names = {a["name"] for a in m["actors"]}
assert {"producer", "worker1", "worker2", "sink"} <= names, names
assert all(isinstance(a["id"], str) and a["id"].isdigit() for a in m["actors"])
assert sum(t["messages"] for t in m["threads"]) > 0
assert m["node"] is None and m["peers"] == [], (m["node"], m["peers"])  # not a node
PY
grep -q '^node ' "$work/table.txt" && fail "table: a peers section, but no node runs" ||
    pass "table: no peers section without a node"

# 3. --prom: promtool has nothing to say about it.
if "$spool" stats --prom "$endpoint" >"$work/metrics.prom"; then
    if promtool check metrics <"$work/metrics.prom" >"$work/promtool.out" 2>&1 &&
        [ ! -s "$work/promtool.out" ]; then
        pass "--prom passes promtool check metrics"
    else
        fail "--prom: promtool check metrics says:"
        cat "$work/promtool.out"
    fi
    grep -q '^spool_mailbox_depth{.*sink' "$work/metrics.prom" && pass "--prom: sink's depth" ||
        fail "--prom: no spool_mailbox_depth for sink"
else
    fail "--prom failed"
fi

# 4. --plot: a well-formed SVG that names the actors, written after about 2 s.
if "$spool" stats --plot "$work/out.svg" --seconds 2 "$endpoint" 2>"$work/plot.err"; then
    if python3 -c 'import xml.dom.minidom,sys; xml.dom.minidom.parse(sys.argv[1])' "$work/out.svg"
    then
        pass "--plot writes well-formed XML"
    else
        fail "--plot: not well-formed XML"
    fi
    for name in producer worker1 worker2 sink; do
        grep -q ">$name - actor" "$work/out.svg" && pass "--plot: legend has $name" ||
            fail "--plot: no $name in the legend"
    done
    grep -q '<path' "$work/out.svg" && pass "--plot: draws lines" || fail "--plot: no lines"
else
    fail "--plot failed: $(cat "$work/plot.err")"
fi

# 5. A node: a (with the admin endpoint) and b joined to it, each `spool run` of a script that
# sleeps. The table shows b up with a round trip; --json and --prom have it; b leaves: down.
cat >"$work/sleep.lua" <<'LUA'
local spool = require "spool"
spool.sleep(tonumber((...)))
LUA
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$spool" run "$work/sleep.lua" 30 --threads 2 --node a --listen "tcp://127.0.0.1:$port" --insecure \
    --admin "ipc://$node_socket" >"$work/a.out" 2>&1 &
a_pid=$!
node_pids=$a_pid
"$spool" run "$work/sleep.lua" 30 --threads 2 --node b --listen tcp://127.0.0.1:0 --insecure \
    --join "a@tcp://127.0.0.1:$port" >"$work/b.out" 2>&1 &
b_pid=$!
node_pids="$a_pid $b_pid"
peer_is() { # peer_is STATE: the table in $work/node.txt has b in that state, with a round trip
    awk -v state="$1" '$1 == "b" && $2 == state && $3 != "-" { found = 1 } END { exit !found }' \
        "$work/node.txt"
}
for _ in $(seq 100); do
    "$spool" stats --timeout 500 "ipc://$node_socket" >"$work/node.txt" 2>/dev/null && peer_is up &&
        break
    sleep 0.1
done
cat "$work/node.txt"
grep -q '^node a: 1 peer, 1 up$' "$work/node.txt" && pass "node: the peers section names node a" ||
    fail "node: no 'node a: 1 peer, 1 up' line"
grep -qE '^PEER +STATE +RTT +MSGS_IN +MSGS_OUT +BYTES_IN +BYTES_OUT +QUEUED +Q_BYTES +MISSED +DEAD_LETTERS$' \
    "$work/node.txt" && pass "node: peers header" || fail "node: no peers header"
peer_is up && pass "node: b is up with a round trip" || fail "node: b is not up"
awk '$1 == "b" && $6 > 0 && $7 > 0 && $8 == 0 && $11 == "-" { found = 1 } END { exit !found }' \
    "$work/node.txt" && pass "node: b's bytes (heartbeats), empty queue, no dead letters" ||
    fail "node: b's figures"
if "$spool" stats --json "ipc://$node_socket" >"$work/node.json" &&
    python3 - "$work/node.json" <<'PY'; then
import json, sys
m = json.load(open(sys.argv[1]))
assert m["node"] == {"name": "a"}, m["node"]
assert len(m["peers"]) == 1, m["peers"]
p = m["peers"][0]
assert p["node"] == "b" and p["state"] == "up", p
assert p["endpoint"].startswith("tcp://127.0.0.1:"), p
assert p["incarnation"].isdigit() and p["incarnation"] != "0", p
assert p["ups"] == 1 and p["downs"] == 0 and p["rtt_seconds"] > 0, p
assert p["bytes_in"] > 0 and p["bytes_out"] > 0, p
for key in ("messages_in", "messages_out", "queued_messages", "queued_bytes", "heartbeats_missed"):
    assert isinstance(p[key], int) and p[key] >= 0, key
assert set(p["dead_letters"]) == set(m["dead_letters"]), p["dead_letters"]
assert all(n == 0 for n in p["dead_letters"].values()), p["dead_letters"]
PY
    pass "node: --json has node a and peer b with every field"
else
    fail "node: --json"
fi
if "$spool" stats --prom "ipc://$node_socket" >"$work/node.prom" &&
    promtool check metrics <"$work/node.prom" >"$work/promtool.out" 2>&1 &&
    [ ! -s "$work/promtool.out" ]; then
    pass "node: --prom passes promtool check metrics"
else
    fail "node: --prom: $(cat "$work/promtool.out")"
fi
grep -qx 'spool_node_info{node="a"} 1' "$work/node.prom" &&
    grep -qx 'spool_node_peer_state{peer="b",state="up"} 1' "$work/node.prom" &&
    grep -qx 'spool_node_peer_ups_total{peer="b"} 1' "$work/node.prom" &&
    grep -q '^spool_node_peer_bytes_in_total{peer="b"} [1-9]' "$work/node.prom" &&
    pass "node: --prom has node a and b's series" || fail "node: --prom lacks b's series"
# b leaves (SIGTERM: spool run says GOODBYE): a sees it down.
kill "$b_pid"
wait "$b_pid" 2>/dev/null
node_pids=$a_pid
for _ in $(seq 100); do
    "$spool" stats --timeout 500 "ipc://$node_socket" >"$work/node.txt" 2>/dev/null && peer_is down &&
        break
    sleep 0.1
done
peer_is down && grep -q '^node a: 1 peer, 0 up$' "$work/node.txt" && pass "node: b down after it left" ||
    fail "node: b not down after it left: $(cat "$work/node.txt")"

# 6. An endpoint nobody serves: exit 1 with the message, within the 2000 ms timeout.
nobody=ipc:///tmp/spool-cli-test-$$-nobody.sock
started=$(date +%s%N)
timeout 10 "$spool" stats "$nobody" >/dev/null 2>"$work/nobody.err"
status=$?
elapsed_ms=$((($(date +%s%N) - started) / 1000000))
[ "$status" -eq 1 ] && pass "unreachable: exit 1" || fail "unreachable: exit $status, not 1"
grep -qF "spool: no answer from $nobody within 2000 ms" "$work/nobody.err" &&
    pass "unreachable: says so" || fail "unreachable: said '$(cat "$work/nobody.err")'"
[ "$elapsed_ms" -lt 3500 ] && pass "unreachable: gave up after $elapsed_ms ms" ||
    fail "unreachable: took $elapsed_ms ms"
timeout 10 "$spool" stats --json --timeout 300 "$nobody" 2>"$work/nobody.err"
status=$?
[ "$status" -eq 1 ] && grep -qF "within 300 ms" "$work/nobody.err" &&
    pass "unreachable with --timeout 300" || fail "--timeout 300: exit $status, $(cat "$work/nobody.err")"

if [ "$failures" -ne 0 ]; then
    echo "$failures checks failed"
    exit 1
fi
echo "all checks passed"
