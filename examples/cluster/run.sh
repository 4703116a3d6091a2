#!/bin/bash
# examples/cluster/run.sh [SPOOL] [JOBS] - three nodes on this machine, started by one script:
# b and c host workers (and c the pinned tally), a hands out the jobs, kills b halfway and sees its
# work fail over to the workers left. Plain connections on loopback (--insecure); see
# docs/nodes.md for keys. Exits with node a's status.
set -u
here=$(cd "$(dirname "$0")" && pwd)
spool=${1:-$here/../../build/tools/cli/spool}
jobs=${2:-2000}
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pa=$(port) pb=$(port) pc=$(port)
a="a@tcp://127.0.0.1:$pa"
"$spool" run "$here/member.lua" --node b --listen "tcp://127.0.0.1:$pb" --join "$a" --insecure &
b=$!
"$spool" run "$here/member.lua" --node c --listen "tcp://127.0.0.1:$pc" --join "$a" --insecure &
c=$!
trap 'kill -9 $b $c 2>/dev/null' EXIT
timeout 60 "$spool" run "$here/main.lua" --node a --listen "tcp://127.0.0.1:$pa" --insecure -- "$b" "$jobs"
status=$?
wait $c
exit $status
