# tests/cli/nodes_lib.sh - sourced by the multi-process node tests (tests/cli/nodes_*.sh): a
# scratch directory, `spool run` nodes started in the background on free loopback ports, waits
# with deadlines, signals stamped on the monotonic clock (the clock of spool.now()), and a trap
# that kills every process the test started. Not a test itself.
#
#   . nodes_lib.sh PATH/TO/spool PATH/TO/tests/lua
#
# SPOOL_TEST_SANITIZED=1 (set by tests/CMakeLists.txt in sanitizer builds) tells the tests to
# shrink their sizes and widen their time bounds; SPOOL_STRESS scales sizes up.

if [ $# -lt 2 ] || [ ! -x "$1" ] || [ ! -d "$2" ]; then
    echo "FAIL: usage: $(basename "$0") PATH/TO/spool PATH/TO/tests/lua"
    exit 1
fi
spool=$1
lua=$2
sanitized=${SPOOL_TEST_SANITIZED:-0}
work=$(mktemp -d)
node_pids=()
logs=()
declare -A ended # pid -> exit status, for nodes that ended before their caller waited

cleanup() {
    local p
    for p in "${node_pids[@]}"; do
        kill -9 "$p" 2>/dev/null
    done
    { wait; } 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "FAIL: interrupted"; exit 1' INT TERM

# dump_logs: every node's stdout and stderr, for a failure report.
dump_logs() {
    local f
    for f in "${logs[@]}"; do
        echo "--- $f"
        tail -n 40 "$work/$f" 2>/dev/null
    done
}

# fail WHY...: say why, show the logs, exit 1 (the trap kills the nodes).
fail() {
    echo "FAIL: $*"
    dump_logs
    exit 1
}

# skip WHY...: ctest reports SKIPPED for exit 77 (SKIP_RETURN_CODE in tests/CMakeLists.txt).
skip() {
    echo "SKIPPED: $*"
    exit 77
}

# free_port: a TCP port free on 127.0.0.1 right now (the kernel's choice; start_node retries
# when someone takes it meanwhile).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# now_ms: CLOCK_MONOTONIC in ms, the clock spool.now() reads.
now_ms() {
    python3 -c 'import time; print(int(time.monotonic() * 1000))'
}

# signal_at SIG PID: sends signal SIG (a name: KILL, STOP, CONT, TERM) to PID and prints the
# monotonic time just before, in seconds.
signal_at() {
    python3 -c 'import os, signal, sys, time
sig = signal.Signals["SIG" + sys.argv[1]]
t = time.monotonic()
os.kill(int(sys.argv[2]), sig)
print("%.6f" % t)' "$1" "$2"
}

# start_node NAME PORT SCRIPT [ARGS...]: `spool run SCRIPT ARGS --threads 2 --node NAME --listen
# tcp://127.0.0.1:PORT` in the background, output in $work/NAME.out and .err (appended, so a
# restarted node keeps its earlier life's log); as_node=OTHER start_node NAME ... names the
# node OTHER but keeps the files under NAME. Sets NODE_PID. Fails when it could not start
# (exit status 2 within 0.3 s: the port taken, a bad option); the caller may try another port.
start_node() {
    local name=$1 port=$2 script=$3 status
    shift 3
    case " ${logs[*]:-} " in *" $name.out "*) ;; *) logs+=("$name.out" "$name.err") ;; esac
    "$spool" run "$lua/$script" "$@" --threads 2 --node "${as_node:-$name}" \
        --listen "tcp://127.0.0.1:$port" >>"$work/$name.out" 2>>"$work/$name.err" &
    NODE_PID=$!
    node_pids+=("$NODE_PID")
    sleep 0.3
    if ! kill -0 "$NODE_PID" 2>/dev/null; then
        wait "$NODE_PID"
        status=$?
        ended[$NODE_PID]=$status
        [ "$status" -ne 2 ]
        return
    fi
}

# start_listener NAME SCRIPT [ARGS...]: start_node on a free port, tried 3 times; sets NODE_PID
# and NODE_PORT.
start_listener() {
    local name=$1 attempt
    shift
    for attempt in 1 2 3; do
        NODE_PORT=$(free_port)
        if start_node "$name" "$NODE_PORT" "$@"; then
            return 0
        fi
        echo "node $name did not start on port $NODE_PORT (attempt $attempt):"
        tail -n 5 "$work/$name.err"
    done
    fail "node $name never started"
}

# wait_for FILE PATTERN SECONDS [PID]: polls until FILE has a line matching PATTERN (grep -E);
# fails at once if PID (the process that should write it) has ended.
wait_for() {
    local file=$1 pattern=$2 deadline=$(($(date +%s) + $3)) pid=${4:-}
    while ! grep -Eq "$pattern" "$work/$file" 2>/dev/null; do
        if [ "$(date +%s)" -gt "$deadline" ]; then
            fail "no '$pattern' in $file within $3 s"
        fi
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            grep -Eq "$pattern" "$work/$file" 2>/dev/null && return 0
            fail "no '$pattern' in $file: its process ended"
        fi
        sleep 0.02
    done
}

# field FILE KEY: the value of the last "KEY=value" word in FILE.
field() {
    grep -Eo "(^| )$2=[^ ]*" "$work/$1" | tail -n 1 | sed 's/^ *[^=]*=//'
}

# wait_exit PID SECONDS: waits for PID to end within SECONDS; sets EXIT_STATUS; fails otherwise.
wait_exit() {
    local pid=$1 deadline=$(($(date +%s) + $2))
    if [ -n "${ended[$pid]:-}" ]; then
        EXIT_STATUS=${ended[$pid]}
        return
    fi
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$(date +%s)" -gt "$deadline" ]; then
            fail "process $pid did not end within $2 s"
        fi
        sleep 0.02
    done
    wait "$pid"
    EXIT_STATUS=$?
}

# reap PID: waits for a node the test killed, without the shell's "Killed" line.
reap() {
    { wait "$1"; } 2>/dev/null
    ended[$1]=$?
}

# ms_between T0 T1: (T1 - T0) in ms, rounded, for times in seconds with decimals.
ms_between() {
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%d", (b - a) * 1000 + 0.5 }'
}

# node_config FILE KEY=VALUE...: writes a config file with a [node] section.
node_config() {
    local file=$1
    shift
    {
        echo "[node]"
        for kv in "$@"; do
            echo "${kv%%=*} = ${kv#*=}"
        done
    } >"$work/$file"
}
