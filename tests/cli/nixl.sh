#!/bin/bash
# nxc serve --nixl / recv --nixl: the metadata carries NIXL agent metadata
# (what a Dynamo worker loads), and nxc get / put, which speak whatever the
# metadata speaks, move the file over the NIXL wire intact. --nixl is
# refused where it means nothing (get, put).
source "$(dirname "$0")/lib.sh"

random_src $((8 * 1024 * 1024 + 3))
is_nixl_md() { # file: a Dynamo RdmaMetadata whose blob is NIXL's
    python3 -c 'import json,sys,zlib,base64
d=json.load(open(sys.argv[1]))
assert zlib.decompress(base64.b64decode(d["nixl_metadata"][4:])).startswith(b"nixlSerDes|")' "$1"
}

set -o pipefail
# serve --nixl | get
if "$NXC" serve --nixl --timeout 60 "$SRC" 2>"$TMP/serve.err" | tee "$TMP/md1" |
   "$NXC" get --timeout 60 - "$TMP/out1.bin" 2>"$TMP/get.err"; then
    pass; check_copy "serve --nixl | get" "$TMP/out1.bin"
    is_nixl_md "$TMP/md1" && pass || fail "serve --nixl: metadata is not NIXL's"
else
    fail "serve --nixl | get: $(cat "$TMP/serve.err" "$TMP/get.err")"
fi

# recv --nixl | put
if "$NXC" recv --nixl --timeout 60 --size $(stat -c %s "$SRC") "$TMP/out2.bin" 2>"$TMP/recv.err" |
   tee "$TMP/md2" | "$NXC" put --timeout 60 "$SRC" - 2>"$TMP/put.err"; then
    pass
    wait; check_copy "recv --nixl | put" "$TMP/out2.bin"
    is_nixl_md "$TMP/md2" && pass || fail "recv --nixl: metadata is not NIXL's"
else
    fail "recv --nixl | put: $(cat "$TMP/recv.err" "$TMP/put.err")"
fi
set +o pipefail

# A NIXL-format server that died after publishing: get fails at once as a
# dead peer (exit 1), it does not hang.
"$NXC" serve --nixl "$SRC" >"$TMP/md3" 2>/dev/null &
SERVE_PID=$!
for _ in $(seq 1 200); do [ -s "$TMP/md3" ] && break; sleep 0.05; done
kill -9 $SERVE_PID; wait $SERVE_PID 2>/dev/null
run get --timeout 60 "@$TMP/md3" "$TMP/out3.bin"
[ "$RC" -eq 1 ] && grep -q "died or became unreachable" "$TMP/err" && pass ||
    fail "get from a dead NIXL-format server: exit $RC, $(cat "$TMP/err")"

for cmd in get put; do
    run $cmd --nixl x y
    [ "$RC" -eq 2 ] && grep -q -- "--nixl is for serve and recv" "$TMP/err" && pass ||
        fail "$cmd --nixl: exit $RC, $(cat "$TMP/err")"
done
finish
