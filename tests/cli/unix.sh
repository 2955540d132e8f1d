#!/bin/bash
# nxc as a Unix tool: SIGINT/SIGTERM end a transfer cleanly (exit 130/143,
# a created OUT removed, the peer told), '-' is stdin/stdout for data, and
# --json ends with one result object.
source "$(dirname "$0")/lib.sh"

# wait_line FILE PID: until FILE has a line (metadata) or PID has gone
wait_line() {
    for _ in $(seq 1 400); do
        [ -s "$1" ] && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# gone_within SECONDS PID: waits for PID to end; its exit status in $RC
gone_within() {
    for _ in $(seq 1 $(($1 * 20))); do
        kill -0 "$2" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$2" 2>/dev/null; then
        kill -9 "$2"; wait "$2" 2>/dev/null; RC=-1; return 1
    fi
    wait "$2"; RC=$?
}

# 1. recv waiting for a writer, SIGTERM: 143, OUT removed, one message
"$NXC" recv --size 1M "$TMP/r1.bin" >"$TMP/md1" 2>"$TMP/r1.err" &
P=$!
if wait_line "$TMP/md1" $P; then
    sleep 0.3
    kill -TERM $P; gone_within 10 $P
    [ "$RC" -eq 143 ] && pass || fail "recv + SIGTERM: exit $RC, expected 143"
    [ ! -e "$TMP/r1.bin" ] && pass || fail "recv + SIGTERM: OUT left behind"
    grep -q "^nxc: recv: interrupted by SIGTERM$" "$TMP/r1.err" && pass \
        || fail "recv + SIGTERM: message: $(cat "$TMP/r1.err")"
else
    fail "recv printed no metadata: $(cat "$TMP/r1.err")"
fi

# 2. serve waiting for a reader, SIGINT, --json: 130, FILE kept, a result
head -c 4096 /dev/urandom >"$TMP/s2.bin"
"$NXC" serve --json "$TMP/s2.bin" >"$TMP/md2" 2>"$TMP/s2.err" &
P=$!
if wait_line "$TMP/md2" $P; then
    sleep 0.3
    kill -INT $P; gone_within 10 $P
    [ "$RC" -eq 130 ] && pass || fail "serve + SIGINT: exit $RC, expected 130"
    [ -s "$TMP/s2.bin" ] && pass || fail "serve + SIGINT: removed its input"
    tail -n 1 "$TMP/md2" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["ok"] is False and d["exit"] == 130 and d["error"] == "interrupted", d' \
        && pass || fail "serve --json + SIGINT: result: $(tail -n 1 "$TMP/md2")"
else
    fail "serve printed no metadata: $(cat "$TMP/s2.err")"
fi

# 3. put interrupted mid-transfer (over TCP, slow enough to catch): put ends
# 130; recv is told at once (PEER_ABORTED or PEER_FAILED) and removes OUT.
# "Mid-transfer" is seen in the data: recv's first bytes have landed. If the
# whole file landed before the signal, the attempt is repeated bigger.
caught=0
for mib in 256 512 1024; do
    head -c $((mib * 1024 * 1024)) /dev/urandom >"$TMP/p3.bin"
    rm -f "$TMP/md3" "$TMP/r3.bin"
    UCX_TLS=tcp "$NXC" recv --timeout 60 --size ${mib}M "$TMP/r3.bin" >"$TMP/md3" 2>"$TMP/r3.err" &
    R=$!
    wait_line "$TMP/md3" $R || { fail "recv printed no metadata: $(cat "$TMP/r3.err")"; break; }
    UCX_TLS=tcp "$NXC" put "$TMP/p3.bin" "@$TMP/md3" 2>"$TMP/p3.err" &
    P=$!
    for _ in $(seq 1 2000); do
        cmp -s -n 4096 "$TMP/p3.bin" "$TMP/r3.bin" && break
        kill -0 $P 2>/dev/null || break
        sleep 0.01
    done
    kill -INT $P 2>/dev/null
    gone_within 10 $P; PRC=$RC
    if [ "$PRC" -eq 0 ]; then   # finished first: try a bigger file
        gone_within 10 $R
        continue
    fi
    gone_within 10 $R; RRC=$RC
    if [ "$RRC" -eq 0 ]; then
        # The signal came after put's DONE had left: recv rightly completed
        # (header, "active cancel after DONE left"). Its data must then be
        # whole; try a bigger file to catch the transfer itself.
        cmp -s "$TMP/p3.bin" "$TMP/r3.bin" && pass \
            || fail "recv completed after put's DONE but its data differs"
        continue
    fi
    caught=1
    [ "$PRC" -eq 130 ] && pass || fail "put + SIGINT: exit $PRC, expected 130: $(cat "$TMP/p3.err")"
    [ "$RRC" -eq 1 ] && grep -q "remote worker" "$TMP/r3.err" && pass \
        || fail "recv not told of the interrupted put (exit $RRC): $(cat "$TMP/r3.err")"
    [ ! -e "$TMP/r3.bin" ] && pass || fail "recv: OUT left after a failed write"
    break
done
[ $caught -eq 1 ] || fail "put finished before SIGINT every time (1 GiB over TCP)"
rm -f "$TMP/p3.bin" "$TMP/r3.bin"

# 4. '-': serve reads stdin, get writes stdout
head -c 3000000 /dev/urandom >"$TMP/d4.bin"
set -o pipefail
if "$NXC" serve - <"$TMP/d4.bin" 2>"$TMP/s4.err" | "$NXC" get - >"$TMP/o4.bin" 2>"$TMP/g4.err" \
   && cmp -s "$TMP/d4.bin" "$TMP/o4.bin"; then
    pass
else
    fail "serve - | get -: $(cat "$TMP/s4.err" "$TMP/g4.err")"
fi
set +o pipefail
[ ! -e ./- ] && pass || fail "a file named '-' was created"

# 5. put - (stdin) into recv, --json result
"$NXC" recv --size 3000000 "$TMP/r5.bin" >"$TMP/md5" 2>"$TMP/r5.err" &
R=$!
if wait_line "$TMP/md5" $R; then
    "$NXC" put --json - "@$TMP/md5" <"$TMP/d4.bin" >"$TMP/p5.out" 2>"$TMP/p5.err"
    [ $? -eq 0 ] && pass || fail "put -: $(cat "$TMP/p5.err")"
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["ok"] is True and d["bytes"] == 3000000 and d["command"] == "put", d' "$TMP/p5.out" \
        && pass || fail "put --json: $(cat "$TMP/p5.out")"
    gone_within 10 $R
    cmp -s "$TMP/d4.bin" "$TMP/r5.bin" && pass || fail "put -: data differs"
fi

# 6. --json on a failure: the library's code by name
run get --json 'not json' "$TMP/o6.bin"
[ "$RC" -eq 1 ] && python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["ok"] is False and d["error"] == "NXC_ERR_BAD_METADATA" and "metadata" in d["message"], d' "$TMP/out" \
    && pass || fail "get --json (bad metadata): exit $RC: $(cat "$TMP/out")"

# 7. info: the facts a bug report needs, as text and as JSON
run info --json
[ "$RC" -eq 0 ] && python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
for k in ("nxc", "libnixl_connect", "connector", "huge_pages", "pidfd_open", "cma"):
    assert k in d, k
assert "compatible" in d["libnixl_connect"] and "transports/devices:" in d["connector"], d
' "$TMP/out" && pass || fail "info --json: exit $RC: $(cat "$TMP/out" "$TMP/err")"

# 8. UCX_TLS naming no usable transport: the sentence names UCX_TLS and lists
#    what UCX offers (UCX says so only in a warning of its own)
UCX_TLS=bogus run info
grep -Eq "^connector .*UCX_TLS=bogus.* offers .*\btcp\b" "$TMP/out" && pass \
    || fail "UCX_TLS=bogus info: $(cat "$TMP/out")"
UCX_TLS=bogus run recv --size 1 "$TMP/o8.bin"
[ "$RC" -eq 1 ] && grep -Eq "^nxc: recv: .*UCX_TLS=bogus.* offers .*\btcp\b" "$TMP/err" \
    && [ ! -e "$TMP/o8.bin" ] && pass || fail "UCX_TLS=bogus recv: exit $RC: $(cat "$TMP/err")"

finish
