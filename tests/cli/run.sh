#!/bin/sh
# tests/cli/run.sh - `spool run`: small Lua programs in a temporary directory. A script's `...`,
# its return value as the exit status and its `print` on stdout; spool's options anywhere before
# `--` and everything after it for the script; a failing script (traceback on stderr, non-zero);
# --help naming every option; usage errors (exit 2); a missing script; `require` of a module next
# to the script from another directory; the global `arg`.
#
#   run.sh PATH/TO/spool
set -u
if [ $# -ne 1 ] || [ ! -x "$1" ]; then
    echo "FAIL: usage: run.sh PATH/TO/spool (got '${1-}', which is not an executable)"
    exit 1
fi
case $1 in
/*) spool=$1 ;;
*) spool=$(pwd)/$1 ;;
esac
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

# spool_run STATUS ARGS...: runs `spool run ARGS...` (from the current directory), stdout into
# $work/out, stderr into $work/err; fails the check unless it exits with STATUS ("failure": an
# exit status from 1 to 123, not a crash, a signal or the timeout). Returns 0 when it is right.
spool_run() {
    want_status=$1
    shift
    timeout 20 "$spool" run "$@" >"$work/out" 2>"$work/err"
    status=$?
    if [ "$want_status" = failure ] && [ "$status" -ge 1 ] && [ "$status" -le 123 ]; then
        return 0
    fi
    if [ "$status" = "$want_status" ]; then
        return 0
    fi
    fail "spool run $* exited $status (want $want_status; 124: timed out, 128+N: signal N)"
    return 1
}

fail() {
    echo "FAIL: $*"
    echo "--- stdout:"
    cat "$work/out"
    echo "--- stderr:"
    cat "$work/err"
    failures=$((failures + 1))
}
pass() { echo "ok: $*"; }

# has FILE TEXT: FILE (out or err) contains TEXT.
has() { grep -qF -- "$2" "$work/$1"; }

tab=$(printf '\t')
mkdir "$work/app" "$work/elsewhere"
cat >"$work/app/hello.lua" <<'EOF'
local spool = require "spool"
print("hello", ...)
return 3
EOF
cat >"$work/app/boom.lua" <<'EOF'
local function inner() error("boom") end
inner()
EOF
cat >"$work/app/main.lua" <<'EOF'
local helper = require "helper"
print(helper.greet("main"))
EOF
cat >"$work/app/helper.lua" <<'EOF'
return { greet = function(who) return "helper greets " .. who end }
EOF
cat >"$work/app/args.lua" <<'EOF'
print("arg0=" .. tostring(arg[0]), "arg1=" .. tostring(arg[1]), "n=" .. select("#", ...))
EOF

# 1. `...`, print, and the returned integer as the exit status; options after the arguments.
cd "$work/app" || exit 1
if spool_run 3 hello.lua a b --threads 2; then
    if [ "$(cat "$work/out")" = "hello${tab}a${tab}b" ]; then
        pass "hello.lua a b --threads 2: prints hello, a, b and exits 3"
    else
        fail "hello.lua a b --threads 2 did not print 'hello<TAB>a<TAB>b'"
    fi
fi
# ... the --flag=value form, and everything after `--` goes to the script, even spool's options.
if spool_run 3 --threads=2 hello.lua -- --threads 8 --help; then
    if [ "$(cat "$work/out")" = "hello${tab}--threads${tab}8${tab}--help" ]; then
        pass "words after -- go to the script"
    else
        fail "--threads=2 hello.lua -- --threads 8 --help did not hand the script its words"
    fi
fi

# 2. A Lua error: non-zero, and the message with a traceback on stderr.
if spool_run failure boom.lua; then
    if has err boom && has err traceback; then
        pass "boom.lua: exits non-zero, stderr has the error and a traceback"
    else
        fail "boom.lua: stderr lacks 'boom' or 'traceback'"
    fi
fi

# 3. --help: exit 0, on stdout, naming every option and what the script sees.
if spool_run 0 --help; then
    missing=
    for word in --threads --cpus --config --admin --help "arg[0]" "..." SPOOL_THREADS SPOOL_CPUS \
        SPOOL_CONFIG SPOOL_ADMIN "Exit status" "Example"; do
        has out "$word" || missing="$missing $word"
    done
    if [ -z "$missing" ]; then
        pass "--help documents every option"
    else
        fail "--help does not mention:$missing"
    fi
fi
if spool_run 0 hello.lua -h; then
    if has out "usage: spool run"; then
        pass "-h after the script is spool's help too"
    else
        fail "hello.lua -h did not print the help"
    fi
fi

# 4. Usage errors: exit 2, one line naming the problem and a pointer to --help.
if spool_run 2; then
    if has err "spool run:" && has err "try: spool run --help"; then
        pass "no script: exit 2 with an error"
    else
        fail "no script: no error message"
    fi
fi
if spool_run 2 x.lua --threads zero; then
    if has err "--threads" && has err "try: spool run --help"; then
        pass "--threads zero: exit 2 naming --threads"
    else
        fail "--threads zero: the error does not name --threads"
    fi
fi
if spool_run 2 hello.lua --threads; then
    if has err "--threads"; then
        pass "--threads without a value: exit 2 naming --threads"
    else
        fail "--threads without a value: the error does not name --threads"
    fi
fi
if spool_run 2 hello.lua a --frobnicate b; then
    if has err "--frobnicate" && [ ! -s "$work/out" ]; then
        pass "an unknown option: exit 2 naming it, nothing run"
    else
        fail "--frobnicate: the error does not name it, or the script ran"
    fi
fi

# 5. A script that does not exist: non-zero, a message naming it.
if spool_run failure "$work/app/nope.lua"; then
    if has err "nope.lua"; then
        pass "a missing script: exits non-zero naming it"
    else
        fail "a missing script: the message does not name nope.lua"
    fi
fi

# 6. require finds a module next to the script, run from another directory, by an absolute and by
# a relative path.
cd "$work/elsewhere" || exit 1
for script in "$work/app/main.lua" ../app/main.lua; do
    if spool_run 0 "$script"; then
        if [ "$(cat "$work/out")" = "helper greets main" ]; then
            pass "$script finds helper.lua next to it"
        else
            fail "$script: did not print 'helper greets main'"
        fi
    fi
done

# 7. The global arg: arg[0] the script as given, arg[1] the first argument.
if spool_run 0 ../app/args.lua first second --threads 1; then
    if [ "$(cat "$work/out")" = "arg0=../app/args.lua${tab}arg1=first${tab}n=2" ]; then
        pass "arg[0] is the script, arg[1] the first argument"
    else
        fail "args.lua: arg[0] / arg[1] / ... are not the script and its arguments"
    fi
fi

if [ "$failures" -ne 0 ]; then
    echo "$failures checks failed"
    exit 1
fi
echo "all checks passed"
