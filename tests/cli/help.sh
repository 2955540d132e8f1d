#!/bin/bash
# Golden tests of every help text: the output must match tests/cli/golden/
# byte for byte. After an intended change, regenerate the goldens with
#   bash tests/cli/update_golden.sh build/tools/nxc
source "$(dirname "$0")/lib.sh"

# check_help GOLDEN_NAME ARGS...
check_help() {
    local name=$1
    shift
    run "$@"
    if [ "$RC" -ne 0 ]; then fail "nxc $*: exit $RC, expected 0"; return; fi
    if [ -s "$TMP/err" ]; then fail "nxc $*: wrote to stderr: $(head -c 200 "$TMP/err")"; return; fi
    if ! diff -u "$GOLDEN/$name" "$TMP/out" >"$TMP/diff"; then
        fail "nxc $*: help text differs from golden/$name (update_golden.sh if intended):"
        cat "$TMP/diff" >&2
        return
    fi
    pass
}

check_help main.txt  --help
check_help main.txt  -h
check_help main.txt  help
check_help bench.txt bench --help
check_help bench.txt bench -h
check_help bench.txt help bench
check_help serve.txt serve --help
check_help serve.txt help serve
check_help get.txt   get --help
check_help get.txt   help get
check_help recv.txt  recv --help
check_help recv.txt  help recv
check_help put.txt   put --help
check_help put.txt   help put
check_help info.txt  info --help
check_help info.txt  help info
check_help kvbench.txt kvbench --help
check_help kvbench.txt kvbench -h
check_help kvbench.txt help kvbench
# --help after other options still shows the help, and what follows it is
# not read (in every command)
check_help bench.txt bench --quick --help
check_help bench.txt bench --help --frob
check_help serve.txt serve --timeout 1 --help --frob
check_help get.txt   get -h a b c
check_help recv.txt  recv --help --size 12Q
check_help put.txt   put --help --nixl
check_help info.txt  info --help extra
check_help kvbench.txt kvbench --help --frob

# --version: one line, "nxc X.Y.Z (libnixl_connect X.Y.Z)"
run --version
if [ "$RC" -eq 0 ] && grep -Eq '^nxc [0-9]+\.[0-9]+\.[0-9]+ \(libnixl_connect [0-9]+\.[0-9]+\.[0-9]+\)$' "$TMP/out" \
   && [ "$(wc -l <"$TMP/out")" -eq 1 ] && [ ! -s "$TMP/err" ]; then
    pass
else
    fail "nxc --version: rc=$RC out='$(cat "$TMP/out")'"
fi
run -V
[ "$RC" -eq 0 ] && pass || fail "nxc -V: exit $RC"

finish
