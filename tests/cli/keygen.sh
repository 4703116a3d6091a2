#!/bin/sh
# tests/cli/keygen.sh - `spool keygen DIR [--name NAME] [--force]` in a temporary directory: the
# two files and their modes (also under umask 000 and 077, and a new DIR made 0700), what it
# prints, a second run refused without touching the key, --force replacing it, the host name as
# the default name, --help, and usage errors (exit 2) and failures (exit 1).
#
#   keygen.sh PATH/TO/spool
set -u
if [ $# -ne 1 ] || [ ! -x "$1" ]; then
    echo "FAIL: usage: keygen.sh PATH/TO/spool (got '${1-}', which is not an executable)"
    exit 1
fi
spool=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

fail() {
    echo "FAIL: $*"
    echo "--- stdout:"
    cat "$work/out"
    echo "--- stderr:"
    cat "$work/err"
    failures=$((failures + 1))
}
pass() { echo "ok: $*"; }

# keygen STATUS ARGS...: runs `spool keygen ARGS...`, stdout into $work/out, stderr into
# $work/err; fails the check unless it exits with STATUS. Returns 0 when it is right.
keygen() {
    want_status=$1
    shift
    timeout 10 "$spool" keygen "$@" >"$work/out" 2>"$work/err"
    status=$?
    if [ "$status" != "$want_status" ]; then
        fail "spool keygen $* exited $status (want $want_status)"
        return 1
    fi
    return 0
}

# has FILE TEXT: FILE (out or err) contains TEXT.
has() { grep -qF -- "$2" "$work/$1"; }

# mode_is PATH MODE: PATH has exactly the permission bits MODE (octal, as stat prints them).
mode_is() {
    mode=$(stat -c %a "$1")
    if [ "$mode" = "$2" ]; then
        return 0
    fi
    fail "$1 has mode $mode, not $2"
    return 1
}

# is_key PATH: PATH holds 40 Z85 characters and a newline.
is_key() {
    if [ "$(wc -c <"$1")" -eq 41 ] && [ "$(wc -l <"$1")" -eq 1 ] &&
        grep -qE '^[]0-9a-zA-Z.:+=^!/*?&<>()[{}@%$#-]{40}$' "$1"; then
        return 0
    fi
    fail "$1 is not one line of 40 Z85 characters"
    return 1
}

keys=$work/keys

# --- a new pair -------------------------------------------------------------------------------
if keygen 0 "$keys" --name alpha; then
    if mode_is "$keys/alpha.key" 600 && mode_is "$keys/alpha.pub" 644 && mode_is "$keys" 700 &&
        is_key "$keys/alpha.key" && is_key "$keys/alpha.pub"; then
        pass "keygen writes alpha.key (0600) and alpha.pub (0644) into a new directory (0700)"
    fi
    if has out "$keys/alpha.key" && has out "$keys/alpha.pub" &&
        [ "$(tail -n 1 "$work/out")" = "$(cat "$keys/alpha.pub")" ]; then
        pass "keygen prints both paths and the public key on its last line"
    else
        fail "keygen's output names both files and ends with the public key"
    fi
    if ! grep -qF -- "$(cat "$keys/alpha.key")" "$work/out" "$work/err"; then
        pass "keygen does not print the secret key"
    else
        fail "keygen printed the secret key"
    fi
    if [ "$(ls -A "$keys" | wc -l)" -eq 2 ]; then
        pass "keygen leaves no temporary file behind"
    else
        fail "keygen left more than two files: $(ls -A "$keys")"
    fi
fi

# --- a second run is refused, --force replaces --------------------------------------------------
cp "$keys/alpha.key" "$work/alpha.key.before"
cp "$keys/alpha.pub" "$work/alpha.pub.before"
if keygen 1 "$keys" --name alpha; then
    if has err "alpha.key already exists" && has err "--force" &&
        cmp -s "$keys/alpha.key" "$work/alpha.key.before" &&
        cmp -s "$keys/alpha.pub" "$work/alpha.pub.before"; then
        pass "a second keygen for alpha is refused and changes nothing"
    else
        fail "a refused keygen says why and leaves the key as it was"
    fi
fi
rm "$keys/alpha.key"
if keygen 1 "$keys" --name alpha; then
    if has err "alpha.pub already exists" && [ ! -e "$keys/alpha.key" ]; then
        pass "keygen refuses when only alpha.pub is there"
    else
        fail "keygen with only alpha.pub there says so and writes nothing"
    fi
fi
cp "$work/alpha.key.before" "$keys/alpha.key"
chmod 600 "$keys/alpha.key"
if keygen 0 "$keys" --name=alpha --force; then
    if ! cmp -s "$keys/alpha.key" "$work/alpha.key.before" &&
        ! cmp -s "$keys/alpha.pub" "$work/alpha.pub.before" &&
        mode_is "$keys/alpha.key" 600 && mode_is "$keys/alpha.pub" 644 &&
        is_key "$keys/alpha.key" && [ "$(tail -n 1 "$work/out")" = "$(cat "$keys/alpha.pub")" ]; then
        pass "--force replaces the pair with a new one, same modes"
    else
        fail "--force writes a new pair"
    fi
fi

# --- the modes do not depend on the umask ---------------------------------------------------------
old_umask=$(umask)
umask 000
keygen 0 "$keys" --name open
open_status=$?
umask 077
keygen 0 "$keys" --name closed
closed_status=$?
umask "$old_umask"
if [ "$open_status" -eq 0 ] && [ "$closed_status" -eq 0 ]; then
    if mode_is "$keys/open.key" 600 && mode_is "$keys/open.pub" 644 &&
        mode_is "$keys/closed.key" 600 && mode_is "$keys/closed.pub" 644; then
        pass "modes are 0600 and 0644 under umask 000 and 077"
    fi
fi

# --- the host name is the default name ------------------------------------------------------------
host=$(uname -n)
if printf '%s' "$host" | grep -qE '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$'; then
    if keygen 0 "$work/host/"; then
        if [ -f "$work/host/$host.key" ] && [ -f "$work/host/$host.pub" ] &&
            has out "$work/host/$host.key"; then
            pass "without --name the key is named for the host ($host)"
        else
            fail "without --name keygen writes $host.key and $host.pub"
        fi
    fi
else
    if keygen 2 "$work/host" && has err "give --name NAME"; then
        pass "a host name ($host) that is no node name asks for --name"
    fi
fi

# --- help, usage errors, failures -----------------------------------------------------------------
if keygen 0 --help && has out "usage: spool keygen DIR [--name NAME] [--force]" &&
    has out "--force" && has out "0600"; then
    pass "keygen --help"
fi
if keygen 0 -h && has out "usage: spool keygen"; then
    pass "keygen -h"
fi
if keygen 2 && has err "spool keygen: which directory?" && has err "usage: spool keygen"; then
    pass "keygen without a directory is a usage error"
fi
if keygen 2 "$keys" --bogus && has err "unknown option '--bogus'"; then
    pass "an unknown option is a usage error"
fi
if keygen 2 "$keys" "$work/other" && has err "one directory only"; then
    pass "two directories are a usage error"
fi
if keygen 2 "$keys" --name && has err "--name wants a value"; then
    pass "--name without a value is a usage error"
fi
for bad in "bad name" ".hidden" "-x" "a/b" "$(printf 'n%.0s' $(seq 64))"; do
    if keygen 2 "$keys" --name="$bad" && has err "node name"; then
        pass "--name '$bad' is refused"
    fi
done
if [ ! -e "$keys/a" ] && [ ! -e "$keys/bad name.key" ]; then
    pass "refused names write nothing"
else
    fail "a refused name wrote something"
fi
: >"$work/plain"
if keygen 1 "$work/plain" --name alpha && has err "is not a directory"; then
    pass "a DIR that is a file fails with exit 1"
fi
if keygen 1 "$work/missing/deeper" --name alpha && has err "cannot create the key directory"; then
    pass "a DIR whose parent is missing fails with exit 1"
fi
if "$spool" --help | grep -qF "keygen DIR [--name NAME] [--force]"; then
    pass "spool --help lists keygen"
else
    failures=$((failures + 1))
    echo "FAIL: spool --help does not list keygen"
fi

if [ "$failures" -ne 0 ]; then
    echo "$failures checks failed"
    exit 1
fi
echo "all checks passed"
