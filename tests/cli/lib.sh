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

finish() {
    echo "$PASSES passed, $FAILS failed"
    [ "$FAILS" -eq 0 ]
    exit $?
}
