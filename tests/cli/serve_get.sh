#!/bin/bash
# nxc serve / nxc get between two processes: a 100 MiB file arrives intact
# (sha256 compared), by argument, by @file and by pipe; failures exit 1 with
# a clear message.
source "$(dirname "$0")/lib.sh"

random_src $((100 * 1024 * 1024))

# 1. metadata as an argument
if start_passive serve --timeout 60 "$SRC"; then
    [ "$(wc -l <"$TMP/md")" -eq 1 ] && python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert sum(x["size"] for x in d["descriptors"]) == 100*1024*1024' "$TMP/md" \
        && pass || fail "serve: metadata is not one JSON line with the file size"
    run get --timeout 60 "$(cat "$TMP/md")" "$TMP/out1.bin"
    [ "$RC" -eq 0 ] && pass || { fail "get (argument): exit $RC"; cat "$TMP/err" >&2; }
    grep -q "^received 104857600 bytes in .* s (.* GB/s)$" "$TMP/err" && pass || fail "get: no final rate line: $(cat "$TMP/err")"
    wait $PASSIVE_PID; src=$?
    [ $src -eq 0 ] && pass || fail "serve: exit $src: $(cat "$TMP/serve.err")"
    grep -q "^served 104857600 bytes" "$TMP/serve.err" && pass || fail "serve: no rate line: $(cat "$TMP/serve.err")"
    check_copy "get (argument)" "$TMP/out1.bin"
fi

# 2. metadata from a file (@PATH) with only stdin-free arguments
if start_passive serve --timeout 60 "$SRC"; then
    run get "@$TMP/md" "$TMP/out2.bin"
    [ "$RC" -eq 0 ] && pass || { fail "get (@file): exit $RC"; cat "$TMP/err" >&2; }
    wait $PASSIVE_PID && pass || fail "serve (2): exit $?"
    check_copy "get (@file)" "$TMP/out2.bin"
fi

# 3. a pipe: serve | get - OUT
set -o pipefail
if "$NXC" serve "$SRC" 2>"$TMP/serve.err" | "$NXC" get --timeout 60 - "$TMP/out3.bin" 2>"$TMP/get.err"; then
    pass; check_copy "serve | get -" "$TMP/out3.bin"
else
    fail "serve | get -: $(cat "$TMP/serve.err" "$TMP/get.err")"
fi
set +o pipefail

# 3b. the same with the same-host direct path (--direct-local): the reader
# copies out of serve's memory
set -o pipefail
if "$NXC" serve --direct-local "$SRC" 2>"$TMP/serve.err" \
   | "$NXC" get --timeout 60 - "$TMP/out3b.bin" 2>"$TMP/get.err"; then
    pass; check_copy "serve --direct-local | get -" "$TMP/out3b.bin"
else
    fail "serve --direct-local | get -: $(cat "$TMP/serve.err" "$TMP/get.err")"
fi
set +o pipefail

# 4. an empty file
: >"$TMP/empty"
if "$NXC" serve "$TMP/empty" 2>"$TMP/serve.err" | "$NXC" get --timeout 30 - "$TMP/out4.bin" 2>"$TMP/get.err" \
   && [ -f "$TMP/out4.bin" ] && [ ! -s "$TMP/out4.bin" ]; then
    pass
else
    fail "empty file: $(cat "$TMP/serve.err" "$TMP/get.err")"
fi

# 5. garbage metadata: exit 1, a message about metadata, no OUT left behind
for garbage in 'not json at all' '{"descriptors":[]}' '{}' '-'; do
    if [ "$garbage" = - ]; then
        "$NXC" get - "$TMP/bad.bin" </dev/null >"$TMP/out" 2>"$TMP/err"; RC=$?
    else
        run get "$garbage" "$TMP/bad.bin"
    fi
    if [ "$RC" -eq 1 ] && grep -qi metadata "$TMP/err" && [ ! -e "$TMP/bad.bin" ] \
       && [ "$(wc -l <"$TMP/err")" -eq 1 ]; then
        pass
    else
        fail "get '$garbage': exit $RC, expected 1 with a metadata message: $(cat "$TMP/err")"
    fi
done
# truncated real metadata
if start_passive serve --timeout 20 "$SRC"; then
    md=$(cat "$TMP/md")
    run get "${md:0:$(( ${#md} / 2 ))}" "$TMP/bad.bin"
    [ "$RC" -eq 1 ] && grep -qi metadata "$TMP/err" && pass || fail "get truncated metadata: exit $RC: $(cat "$TMP/err")"
    # 6. the server dies before the read: get fails (exit 1), promptly
    kill -9 $PASSIVE_PID; wait $PASSIVE_PID 2>/dev/null
    start=$(date +%s)
    run get --timeout 20 "$md" "$TMP/dead.bin"
    took=$(( $(date +%s) - start ))
    if [ "$RC" -eq 1 ] && [ ! -e "$TMP/dead.bin" ] && [ -s "$TMP/err" ]; then pass
    else fail "get from a dead server: exit $RC (took $took s): $(cat "$TMP/err")"; fi
    [ "$took" -le 21 ] && pass || fail "get from a dead server took $took s"
fi

# 7. nobody reads: serve --timeout fails with exit 1
run serve --timeout 0.5 "$SRC"
[ "$RC" -eq 1 ] && grep -q "timed out" "$TMP/err" && [ "$(wc -l <"$TMP/out")" -eq 1 ] \
    && pass || fail "serve --timeout: exit $RC: $(cat "$TMP/err")"

# 8. serve of a missing file: exit 1
run serve "$TMP/no-such-file"
[ "$RC" -eq 1 ] && grep -q "cannot open" "$TMP/err" && pass || fail "serve missing file: exit $RC"

finish
