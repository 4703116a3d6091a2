#!/bin/bash
# tests/cli/nodes_curve.sh - CURVE refusals between `spool run` nodes (all nodes_idle.lua), keys
# made with `spool keygen`:
#   - control: a and b, each allowing the other's key, meet;
#   - a node whose key is not in b's allowlist (x) never comes up, on either side, for 3 s;
#   - a node claiming to be a with c's key pair (c's key is allowed, but only as c) is refused;
#   - listening beyond loopback without keys, even with --insecure, refuses to start;
#   - a secret key file readable by others refuses to start.
#
#   nodes_curve.sh PATH/TO/spool PATH/TO/tests/lua
. "$(dirname "$0")/nodes_lib.sh"

keygen() { # keygen DIR NAME
    "$spool" keygen "$work/$1" --name "$2" >/dev/null || fail "spool keygen $1 --name $2 failed"
}
keygen kb b
keygen ka a
keygen kc c
keygen kx x
cp "$work/kb/b.pub" "$work/ka/"
cp "$work/kb/b.pub" "$work/kx/"
cp "$work/ka/a.pub" "$work/kb/"
cp "$work/kc/c.pub" "$work/kb/" # b allows c, as c
mkdir "$work/kfake"               # c's key pair, filed as a's
cp "$work/kc/c.key" "$work/kfake/a.key"
cp "$work/kc/c.pub" "$work/kfake/a.pub"
cp "$work/kb/b.pub" "$work/kfake/"
chmod 600 "$work/kfake/a.key"

start_listener b nodes_idle.lua 30 --keys "$work/kb"
b_pid=$NODE_PID
b_port=$NODE_PORT

# control: allowed keys meet
start_node a "$(free_port)" nodes_idle.lua 2 --keys "$work/ka" --join "b@tcp://127.0.0.1:$b_port" ||
    fail "node a did not start"
a_pid=$NODE_PID
wait_exit "$a_pid" 15
[ "$EXIT_STATUS" -eq 0 ] || fail "node a exited $EXIT_STATUS"
[ "$(field a.out list)" = b ] || fail "control: a and b with each other's keys did not meet"
wait_for b.out '^nodedown .*node=a' 10 "$b_pid"

# refusals, side by side: x (key not allowed) and a fake a (c's key)
start_node x "$(free_port)" nodes_idle.lua 3 --keys "$work/kx" --join "b@tcp://127.0.0.1:$b_port" ||
    fail "node x did not start"
x_pid=$NODE_PID
as_node=a start_node fake "$(free_port)" nodes_idle.lua 3 --keys "$work/kfake" \
    --join "b@tcp://127.0.0.1:$b_port" || fail "the fake node a did not start"
fake_pid=$NODE_PID
wait_exit "$x_pid" 15
[ "$EXIT_STATUS" -eq 0 ] || fail "node x exited $EXIT_STATUS"
wait_exit "$fake_pid" 15
[ "$EXIT_STATUS" -eq 0 ] || fail "the fake node a exited $EXIT_STATUS"
grep -q '^nodes ' "$work/x.out" || fail "node x did not report its nodes"
[ -z "$(field x.out list)" ] || fail "node x, whose key b does not allow, met $(field x.out list)"
! grep -q '^nodeup' "$work/x.out" || fail "node x saw a nodeup"
! grep -q '^nodeup .*node=x' "$work/b.out" || fail "b let node x in"
[ -z "$(field fake.out list)" ] || fail "a node claiming to be a with c's key met $(field fake.out list)"
[ "$(grep -c '^nodeup .*node=a' "$work/b.out")" -eq 1 ] || fail "b let in a node claiming to be a with c's key"
echo "refused: a key not in the allowlist (3 s, nothing met); c's key speaking as a (3 s, nothing met)"
echo "x heard: $(grep -v DEBUG "$work/x.err" | head -n 1)"
echo "the fake a heard: $(grep -v DEBUG "$work/fake.err" | head -n 1)"
kill -TERM "$b_pid"
wait_exit "$b_pid" 5

# refusing to start
refuses() { # refuses WHAT PATTERN ARGS...: spool run ARGS must exit non-zero saying PATTERN
    local what=$1 pattern=$2
    shift 2
    "$spool" run "$lua/nodes_idle.lua" 1 "$@" >"$work/refuse.out" 2>"$work/refuse.err"
    local status=$?
    [ "$status" -ne 0 ] || fail "$what: spool run started (exit 0)"
    grep -qi -E "$pattern" "$work/refuse.err" || {
        cat "$work/refuse.err"
        fail "$what: exit $status without a message matching '$pattern'"
    }
    echo "refused ($what): exit $status: $(head -n 1 "$work/refuse.err")"
}
port=$(free_port)
refuses "beyond loopback without keys" "keys|curve" --node z --listen "tcp://0.0.0.0:$port"
refuses "beyond loopback, --insecure" "loopback" --node z --listen "tcp://0.0.0.0:$port" --insecure
cp -r "$work/ka" "$work/kopen"
chmod 644 "$work/kopen/a.key"
refuses "a secret key readable by others" "chmod|readable|mode|permission" --node a \
    --listen "tcp://127.0.0.1:$port" --keys "$work/kopen"
echo "PASS"
