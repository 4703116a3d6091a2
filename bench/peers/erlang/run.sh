#!/usr/bin/env bash
# bench/peers/erlang/run.sh NAME [SIZE] - runs one Savina-style benchmark on Erlang/OTP with
# 2 schedulers and prints exactly one JSON line on stdout, e.g.
#   {"name":"pingpong","unit":"ns/roundtrip","value":380.5,"runtime":"erlang"}
# NAME: pingpong counting threadring fjthroughput fjcreation chameneos big. SIZE: the main count
# (see README.md); omitted, the benchmark's default. Exits non-zero (no stdout) if Erlang is
# missing, the result check fails or the run crashes. Notes go to stderr.
#
# savina.erl is compiled once into a per-user cache dir (recompiled when the source is newer);
# override with SAVINA_ERL_CACHE=DIR. Needs erl/erlc (Debian: apt-get install -y erlang-base).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    sed -n '2,10s/^# \{0,1\}//p' "$0" >&2
    exit 2
fi
for tool in erl erlc; do
    command -v "$tool" >/dev/null || {
        echo "run.sh: $tool not found (apt-get install -y erlang-base)" >&2
        exit 127
    }
done

cache=${SAVINA_ERL_CACHE:-${XDG_CACHE_HOME:-${TMPDIR:-/tmp}}/spool-savina-erlang-$(id -u)}
mkdir -p "$cache"
if [ ! -f "$cache/savina.beam" ] || [ "$here/savina.erl" -nt "$cache/savina.beam" ]; then
    # Compile into a private dir, then rename: concurrent runs never see a half-written beam.
    tmp=$(mktemp -d "$cache/build.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    erlc -Werror -o "$tmp" "$here/savina.erl" >&2
    mv -f "$tmp/savina.beam" "$cache/savina.beam"
    rm -rf "$tmp" # explicitly: the exec below skips the EXIT trap
    trap - EXIT
fi

# Defaults except the scheduler count: no busy-wait (+sbwt) or binding tuning, on purpose.
exec erl +S 2 -noshell -pa "$cache" -s savina main "$@" -s init stop
