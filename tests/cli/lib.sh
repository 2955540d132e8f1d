# Helpers shared by the CLI test scripts (sourced).
set -u
NXC=${1:?usage: $0 path/to/nxc golden-dir}
GOLDEN=${2:-$(dirname "$0")/golden}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/nxc-cli.XXXXXX")
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$TMP"' EXIT
FAILS=0
PASSES=0

pass() { PASSES=$((PASSES + 1)); }
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }

# run ARGS...: runs nxc, leaving $RC, $TMP/out, $TMP/err
run() {
    "$NXC" "$@" >"$TMP/out" 2>"$TMP/err" </dev/null
    RC=$?
}

# random_src BYTES: $SRC, a file of BYTES random bytes, and $SUM, its sha256
random_src() {
    SRC=$TMP/src.bin
    head -c "$1" /dev/urandom >"$SRC"
    SUM=$(sha256sum <"$SRC" | cut -d' ' -f1)
}

# check_copy WHAT OUT: passes if OUT holds the bytes of $SRC
check_copy() {
    local got
    got=$(sha256sum <"$2" 2>/dev/null | cut -d' ' -f1)
    [ "$got" = "$SUM" ] && pass || fail "$1: sha256 differs"
}

# start_passive serve|recv ARGS...: that command in the background
# ($PASSIVE_PID, stderr in $TMP/serve.err or $TMP/recv.err) until it has
# printed its metadata line into $TMP/md; fails and returns 1 if it never does.
start_passive() {
    local cmd=$1
    : >"$TMP/md"
    "$NXC" "$@" >"$TMP/md" 2>"$TMP/$cmd.err" &
    PASSIVE_PID=$!
    for _ in $(seq 1 200); do
        [ "$(wc -l <"$TMP/md")" -ge 1 ] && return 0
        kill -0 $PASSIVE_PID 2>/dev/null || break
        sleep 0.05
    done
    fail "$cmd printed no metadata: $(cat "$TMP/$cmd.err")"
    return 1
}

finish() {
    echo "$PASSES passed, $FAILS failed"
    [ "$FAILS" -eq 0 ]
    exit $?
}
