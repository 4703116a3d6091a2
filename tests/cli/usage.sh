#!/bin/sh
# tests/cli/usage.sh - the `spool` command line's help and usage errors, no endpoint needed:
# --help for each command (exit 0) and bad usage (exit 2). `spool run` itself: run.sh; `spool
# keygen` itself: keygen.sh.
#
#   usage.sh PATH/TO/spool
set -u
spool=$1
out=$(mktemp)
trap 'rm -f "$out"' EXIT
failures=0

# expect STATUS TEXT COMMAND...: COMMAND exits with STATUS and prints TEXT (stdout or stderr).
expect() {
    want_status=$1
    want_text=$2
    shift 2
    timeout 10 "$@" >"$out" 2>&1
    status=$?
    if [ "$status" -ne "$want_status" ] || ! grep -qF -- "$want_text" "$out"; then
        echo "FAIL: $* exited $status (want $want_status) and said:"
        cat "$out"
        failures=$((failures + 1))
    else
        echo "ok: $*"
    fi
}

expect 0 "usage: spool COMMAND" "$spool" --help
expect 0 "usage: spool stats" "$spool" stats --help
expect 0 "usage: spool top" "$spool" top --help
expect 0 "q quits" "$spool" top --help
expect 2 "usage: spool COMMAND" "$spool"
expect 2 "unknown command 'frobnicate'" "$spool" frobnicate
expect 2 "which endpoint?" "$spool" stats
expect 2 "which endpoint?" "$spool" top
expect 2 "unknown option '--bogus'" "$spool" stats --bogus ipc:///tmp/x.sock
expect 2 "--timeout wants a whole number" "$spool" stats --timeout soon ipc:///tmp/x.sock
expect 2 "--plot takes --seconds N" "$spool" stats --plot out.svg ipc:///tmp/x.sock
expect 0 "usage: spool run" "$spool" run --help
expect 2 "spool run: which script?" "$spool" run
expect 2 "spool run: unknown option '--bogus'" "$spool" run main.lua --bogus
expect 0 "usage: spool keygen" "$spool" keygen --help
expect 2 "spool keygen: which directory?" "$spool" keygen
expect 1 "cannot connect to nonsense" "$spool" stats nonsense

if [ "$failures" -ne 0 ]; then
    echo "$failures checks failed"
    exit 1
fi
echo "all checks passed"
