#!/bin/bash
# tests/cli/nodes_partition.sh - a network partition: nodes a (tests/lua/nodes_partition.lua)
# and b (nodes_idle.lua) in two network namespaces joined by a veth pair (10.99.0.1 and
# 10.99.0.2, with CURVE keys since they listen beyond loopback; heartbeat_ms = 100,
# down_after_ms = 500). The link is set down: both sides declare the other down ("heartbeat
# timeout") within down_after + 10 % + a slack (bound 800 ms; figures printed). The link is set
# up: they meet again in new sessions. Needs root and network namespaces: exit 77 (SKIPPED in
# ctest) when the machine does not allow them.
#
#   nodes_partition.sh PATH/TO/spool PATH/TO/tests/lua
. "$(dirname "$0")/nodes_lib.sh"

down_after=500
bound_ms=$((down_after * 11 / 10 + 250))
[ "$sanitized" = 1 ] && bound_ms=$((bound_ms + 500))
ns_a=spool_part_a_$$
ns_b=spool_part_b_$$
veth_a=spva$$
veth_b=spvb$$
command -v ip >/dev/null || skip "no ip command (iproute2)"
[ "$(id -u)" -eq 0 ] || skip "network namespaces need root"
trap 'cleanup; ip netns del "$ns_a" 2>/dev/null; ip netns del "$ns_b" 2>/dev/null' EXIT
ip netns add "$ns_a" 2>"$work/ip.err" || skip "ip netns add failed: $(cat "$work/ip.err")"
ip netns add "$ns_b" 2>"$work/ip.err" || skip "ip netns add failed: $(cat "$work/ip.err")"
ip link add "$veth_a" type veth peer name "$veth_b" 2>"$work/ip.err" ||
    skip "no veth pair: $(cat "$work/ip.err")"
ip link set "$veth_a" netns "$ns_a" || fail "cannot move $veth_a into $ns_a"
ip link set "$veth_b" netns "$ns_b" || fail "cannot move $veth_b into $ns_b"
ip -n "$ns_a" addr add 10.99.0.1/24 dev "$veth_a" || fail "no address for $veth_a"
ip -n "$ns_b" addr add 10.99.0.2/24 dev "$veth_b" || fail "no address for $veth_b"
for ns in "$ns_a" "$ns_b"; do ip -n "$ns" link set lo up; done
ip -n "$ns_a" link set "$veth_a" up || fail "cannot set $veth_a up"
ip -n "$ns_b" link set "$veth_b" up || fail "cannot set $veth_b up"

"$spool" keygen "$work/ka" --name a >/dev/null || fail "keygen a"
"$spool" keygen "$work/kb" --name b >/dev/null || fail "keygen b"
cp "$work/ka/a.pub" "$work/kb/"
cp "$work/kb/b.pub" "$work/ka/"
node_config hb.ini heartbeat_ms=100 down_after_ms=$down_after
port=47000
logs+=(a.out a.err b.out b.err)
ip netns exec "$ns_b" "$spool" run "$lua/nodes_idle.lua" 60 --threads 2 --node b \
    --listen "tcp://10.99.0.2:$port" --keys "$work/kb" --config "$work/hb.ini" \
    >"$work/b.out" 2>"$work/b.err" &
b_pid=$!
node_pids+=("$b_pid")
wait_for b.out '^ready' 10 "$b_pid"
ip netns exec "$ns_a" "$spool" run "$lua/nodes_partition.lua" --threads 2 --node a \
    --listen "tcp://10.99.0.1:$port" --join "b@tcp://10.99.0.2:$port" --keys "$work/ka" \
    --config "$work/hb.ini" >"$work/a.out" 2>"$work/a.err" &
a_pid=$!
node_pids+=("$a_pid")
wait_for a.out '^ready' 20 "$a_pid"
sleep 0.5

cut_ms=$(now_ms)
ip -n "$ns_a" link set "$veth_a" down || fail "cannot set $veth_a down"
wait_for a.out '^down' 10 "$a_pid"
wait_for b.out '^nodedown .*node=a' 10 "$b_pid"
a_ms=$(($(field a.out at | awk '{ printf "%d", $1 * 1000 }') - cut_ms))
b_ms=$(($(grep '^nodedown .*node=a' "$work/b.out" | head -n 1 | grep -Eo 'at=[0-9.]+' |
    awk -F= '{ printf "%d", $2 * 1000 }') - cut_ms))
b_why=$(grep '^nodedown .*node=a' "$work/b.out" | head -n 1 | grep -Eo 'why=[^ ]+')
echo "link down -> a sees b down after $a_ms ms, b sees a down after $b_ms ms ($b_why)" \
     "(down_after $down_after ms, bound $bound_ms ms)"
[ "$a_ms" -le "$bound_ms" ] || fail "a saw b down $a_ms ms after the cut"
[ "$b_ms" -le "$bound_ms" ] || fail "b saw a down $b_ms ms after the cut"
[ "$b_why" = "why=heartbeat_timeout" ] || fail "b's nodedown reason: $b_why"

heal_ms=$(now_ms)
ip -n "$ns_a" link set "$veth_a" up || fail "cannot set $veth_a up again"
wait_for a.out '^up' 30 "$a_pid"
wait_for b.out '^nodeup .*node=a' 30 "$b_pid"
a_up=$(($(field a.out at | awk '{ printf "%d", $1 * 1000 }') - heal_ms))
echo "link up -> a sees b up again after $a_up ms (ups $(field a.out ups), downs $(field a.out downs))"
[ "$(grep -c '^nodeup .*node=a' "$work/b.out")" -ge 2 ] || fail "b did not see a up again"
wait_exit "$a_pid" 20
[ "$EXIT_STATUS" -eq 0 ] || fail "node a exited $EXIT_STATUS"
wait_exit "$b_pid" 10
[ "$EXIT_STATUS" -eq 0 ] || fail "node b exited $EXIT_STATUS"
echo "PASS"
