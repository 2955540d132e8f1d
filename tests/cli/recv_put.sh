#!/bin/bash
# nxc recv / nxc put (the write direction) between two processes, metadata
# on stdout: a 64 MiB file arrives intact (sha256), by pipe and by @file;
# size and kind mismatches, timeouts and missing files exit 1 with a clear
# message, and a failed recv leaves no OUT behind.
source "$(dirname "$0")/lib.sh"

SIZE=$((64 * 1024 * 1024))
random_src $SIZE

# 1. a pipe: recv | put FILE -
set -o pipefail
if "$NXC" recv --timeout 60 --size 64M "$TMP/out1.bin" 2>"$TMP/recv.err" \
   | "$NXC" put --timeout 60 "$SRC" - 2>"$TMP/put.err"; then
    pass; check_copy "recv | put" "$TMP/out1.bin"
    grep -q "^sent $SIZE bytes in .* s (.* GB/s)$" "$TMP/put.err" && pass \
        || fail "put: no rate line: $(cat "$TMP/put.err")"
    grep -q "^received $SIZE bytes" "$TMP/recv.err" && pass \
        || fail "recv: no rate line: $(cat "$TMP/recv.err")"
else
    fail "recv | put: $(cat "$TMP/recv.err" "$TMP/put.err")"
fi
set +o pipefail

# 1b. the same with the same-host direct path (--direct-local): the writer
# copies into recv's memory
set -o pipefail
if "$NXC" recv --direct-local --timeout 60 --size 64M "$TMP/out1b.bin" 2>"$TMP/recv.err" \
   | "$NXC" put --timeout 60 "$SRC" - 2>"$TMP/put.err"; then
    pass; check_copy "recv --direct-local | put" "$TMP/out1b.bin"
else
    fail "recv --direct-local | put: $(cat "$TMP/recv.err" "$TMP/put.err")"
fi
set +o pipefail

# 2. metadata from a file (@PATH); the metadata is WRITE metadata
if start_passive recv --timeout 60 --size 64M "$TMP/out2.bin"; then
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["operation_kind"] == 2 and sum(x["size"] for x in d["descriptors"]) == int(sys.argv[2])' "$TMP/md" "$SIZE" \
        && pass || fail "recv: metadata is not WRITE metadata of $SIZE bytes"
    # get refuses writable metadata, naming the right command
    run get "@$TMP/md" "$TMP/wrong.bin"
    [ "$RC" -eq 1 ] && grep -q "nxc serve" "$TMP/err" && [ ! -e "$TMP/wrong.bin" ] \
        && pass || fail "get with WRITE metadata: exit $RC: $(cat "$TMP/err")"
    run put --timeout 60 "$SRC" "@$TMP/md"
    [ "$RC" -eq 0 ] && pass || fail "put (@file): exit $RC: $(cat "$TMP/err")"
    wait $PASSIVE_PID && pass || fail "recv (2): exit $?: $(cat "$TMP/recv.err")"
    check_copy "put (@file)" "$TMP/out2.bin"
fi

# 3. a file of the wrong size: put refuses before moving a byte
if start_passive recv --timeout 3 --size 1M "$TMP/out3.bin"; then
    run put "$SRC" "@$TMP/md"
    [ "$RC" -eq 1 ] && grep -q "remote buffers hold 1048576" "$TMP/err" \
        && pass || fail "put of the wrong size: exit $RC: $(cat "$TMP/err")"
    # 4. ...so recv times out, exits 1 and removes its OUT
    wait $PASSIVE_PID; rc=$?
    [ $rc -eq 1 ] && grep -q "timed out" "$TMP/recv.err" && [ ! -e "$TMP/out3.bin" ] \
        && pass || fail "recv --timeout: exit $rc, OUT left: $(ls "$TMP")"
fi

# 5. put refuses readable metadata (from serve)
"$NXC" serve --timeout 3 "$SRC" >"$TMP/rmd" 2>/dev/null &
SERVE_PID=$!
for _ in $(seq 1 100); do [ -s "$TMP/rmd" ] && break; sleep 0.05; done
run put "$SRC" "@$TMP/rmd"
[ "$RC" -eq 1 ] && grep -q "nxc recv" "$TMP/err" && pass \
    || fail "put with READ metadata: exit $RC: $(cat "$TMP/err")"
kill $SERVE_PID 2>/dev/null; wait $SERVE_PID 2>/dev/null

# 6. not a regular file; an empty file
run put /dev/null 'x'
[ "$RC" -eq 1 ] && grep -q "not a regular file" "$TMP/err" && pass || fail "put /dev/null: exit $RC"
: >"$TMP/empty"
if start_passive recv --timeout 30 --size 0 "$TMP/out6.bin"; then
    run put --timeout 30 "$TMP/empty" "@$TMP/md"
    wait $PASSIVE_PID; rc=$?
    [ "$RC" -eq 0 ] && [ $rc -eq 0 ] && [ -f "$TMP/out6.bin" ] && [ ! -s "$TMP/out6.bin" ] \
        && pass || fail "empty file: put $RC, recv $rc: $(cat "$TMP/err" "$TMP/recv.err")"
fi

# 7. a missing FILE fails before reading any metadata (stdin untouched)
run put "$TMP/no-such-file" -
[ "$RC" -eq 1 ] && grep -q "cannot open" "$TMP/err" && pass || fail "put missing file: exit $RC"
# 8. garbage metadata
run put "$SRC" 'not json'
[ "$RC" -eq 1 ] && grep -qi metadata "$TMP/err" && pass || fail "put garbage: exit $RC"

finish
