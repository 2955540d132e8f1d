#!/bin/bash
# nxc serve/get and recv/put with --nats against a real nats-server on
# loopback (started here on a port it picks): 32 MiB files arrive intact in
# both directions, whichever side starts first; no server, nobody serving,
# nobody sending and nobody reading each exit 1 with a clear message; a
# server with JWT auth is reached with --nats-creds and refuses clients
# without it or with a user it does not trust.
# In an nxc built without the NATS module, --nats must say so (exit 2).
# Exit 77 (skipped) when nats-server is not installed.
source "$(dirname "$0")/lib.sh"

run get --nats nats://127.0.0.1:1 --subject s "$TMP/x"
if [ "$RC" -eq 2 ] && grep -q "built without the NATS module" "$TMP/err"; then
    echo "nxc has no NATS module: checked that --nats says so"
    pass
    finish
fi

NATS_SERVER=${NXC_NATS_SERVER:-$(PATH=$PATH:/usr/sbin:/usr/bin command -v nats-server)}
if [ -z "$NATS_SERVER" ]; then
    echo "SKIP: nats-server not found (apt-get install nats-server)"
    exit 77
fi

"$NATS_SERVER" -a 127.0.0.1 -p -1 -l "$TMP/nats.log" &
NATS_PID=$!
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$TMP"' EXIT
PORT=
for _ in $(seq 1 200); do
    PORT=$(sed -n 's/.*Listening for client connections on 127.0.0.1:\([0-9]*\).*/\1/p' "$TMP/nats.log" 2>/dev/null)
    [ -n "$PORT" ] && break
    sleep 0.05
done
[ -n "$PORT" ] || { echo "nats-server did not start: $(cat "$TMP/nats.log")"; exit 1; }
URL=nats://127.0.0.1:$PORT

SIZE=$((32 * 1024 * 1024))
random_src $SIZE

# pair NAME FIRST_CMD... -- SECOND_CMD...: runs FIRST in the background,
# then SECOND; both must exit 0.
pair() {
    local name=$1; shift
    local first=() second=()
    while [ "$1" != "--" ]; do first+=("$1"); shift; done
    shift; second=("$@")
    "$NXC" "${first[@]}" >"$TMP/1.out" 2>"$TMP/1.err" &
    local pid=$!
    sleep 0.3
    "$NXC" "${second[@]}" >"$TMP/2.out" 2>"$TMP/2.err"; local rc2=$?
    wait $pid; local rc1=$?
    if [ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && [ ! -s "$TMP/1.out" ] && [ ! -s "$TMP/2.out" ]; then
        pass
    else
        fail "$name: exits $rc1/$rc2: $(cat "$TMP/1.err" "$TMP/2.err" "$TMP/1.out" "$TMP/2.out")"
    fi
}

N=(--nats "$URL" --timeout 60)
# 1. read: serve first, and get first (it retries until serve answers)
pair "serve, then get" serve "${N[@]}" --subject files.a "$SRC" -- get "${N[@]}" --subject files.a "$TMP/r1"
check_copy "serve/get" "$TMP/r1"
pair "get, then serve" get "${N[@]}" --subject files.b "$TMP/r2" -- serve "${N[@]}" --subject files.b "$SRC"
check_copy "get/serve" "$TMP/r2"
# 2. write: put first (listens), and recv first (it resends until put listens)
pair "put, then recv" put "${N[@]}" --subject worker.a "$SRC" -- recv "${N[@]}" --subject worker.a --size 32M "$TMP/w1"
check_copy "put/recv" "$TMP/w1"
pair "recv, then put" recv "${N[@]}" --subject worker.b --size 32M "$TMP/w2" -- put "${N[@]}" --subject worker.b "$SRC"
check_copy "recv/put" "$TMP/w2"
grep -q "^sent $SIZE bytes" "$TMP/2.err" && pass || fail "put: no rate line: $(cat "$TMP/2.err")"

# expect_fail WORDS ARGS...: exit 1, one line on stderr mentioning WORDS
expect_fail() {
    local words=$1; shift
    run "$@"
    if [ "$RC" -eq 1 ] && grep -qF -- "$words" "$TMP/err" && [ "$(wc -l <"$TMP/err")" -eq 1 ]; then
        pass
    else
        fail "nxc $*: exit $RC, expected 1 mentioning '$words': $(cat "$TMP/err")"
    fi
}

# 3. no server at the URL
FREE=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
expect_fail "no NATS server could be reached" get --nats "nats://127.0.0.1:$FREE" --subject s "$TMP/x"
[ ! -e "$TMP/x" ] && pass || fail "get left OUT behind after a NATS failure"
# --json names the module's code and says what stderr said
expect_fail "no NATS server could be reached" get --json --nats "nats://127.0.0.1:$FREE" --subject s "$TMP/x"
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
err = open(sys.argv[2]).read().strip()
assert d["ok"] is False and d["error"] == "NXC_NATS_ERR_NO_SERVER", d
assert "nxc: " + d["message"] == err, (d["message"], err)
' "$TMP/out" "$TMP/err" && pass || fail "get --json (no NATS server): $(cat "$TMP/out")"
# 4. nobody serves / sends / takes within the timeout (3 s: under a busy
# loop setting up took over 1 s, and the deadline ran out before NATS was
# asked); a timeout that runs out during set-up is named as such
expect_fail "nobody is listening" get --nats "$URL" --subject nobody --timeout 3 "$TMP/x"
expect_fail "no answer over NATS in time" put --nats "$URL" --subject nobody --timeout 3 "$SRC"
expect_fail "nobody is listening" recv --nats "$URL" --subject nobody --timeout 3 --size 1K "$TMP/x"
expect_fail "ran out before the NATS server at $URL was asked" \
    get --nats "$URL" --subject nobody --timeout 0.000001 "$TMP/x"
[ ! -e "$TMP/x" ] && pass || fail "recv left OUT behind after a NATS failure"
# 5. served but never read: serve --timeout
expect_fail "timed out" serve --nats "$URL" --subject unread --timeout 1 "$SRC"
# 6. a subject NATS cannot carry
expect_fail "wildcard" get --nats "$URL" --subject 'files.*' --timeout 1 "$TMP/x"

# 7. a server with operator/account JWT auth: --nats-creds (keys and JWTs
#    made offline by tests/nats/make_creds.py; needs python3-cryptography)
run get --nats-creds "$TMP/none.creds" --subject s "$TMP/x"
[ "$RC" -eq 2 ] && grep -q "needs --nats" "$TMP/err" && pass ||
    fail "--nats-creds without --nats: exit $RC: $(cat "$TMP/err")"
if python3 -c 'import cryptography' 2>/dev/null; then
    mkdir "$TMP/jwt" && python3 "$(dirname "$0")/../nats/make_creds.py" "$TMP/jwt" ||
        fail "make_creds.py failed"
    "$NATS_SERVER" -c "$TMP/jwt/server.conf" -a 127.0.0.1 -p -1 -l "$TMP/jwt/nats.log" -D &
    JPORT=
    for _ in $(seq 1 200); do
        JPORT=$(sed -n 's/.*Listening for client connections on 127.0.0.1:\([0-9]*\).*/\1/p' "$TMP/jwt/nats.log" 2>/dev/null)
        [ -n "$JPORT" ] && break
        sleep 0.05
    done
    J=(--nats "nats://127.0.0.1:$JPORT" --timeout 60)
    pair "serve, then get, with --nats-creds" serve "${J[@]}" --nats-creds "$TMP/jwt/user.creds" \
        --subject jwt.a "$SRC" -- get "${J[@]}" --nats-creds "$TMP/jwt/user.creds" \
        --subject jwt.a "$TMP/j1"
    check_copy "serve/get with --nats-creds" "$TMP/j1"
    expect_fail "refused this client" get "${J[@]}" --subject jwt.a --timeout 2 "$TMP/x"
    expect_fail "refused this client" get "${J[@]}" --nats-creds "$TMP/jwt/stranger.creds" \
        --subject jwt.a --timeout 2 "$TMP/x"
    run kvbench --nats "nats://127.0.0.1:$JPORT" --nats-creds "$TMP/jwt/user.creds" \
        --num_layers 2 --num_blocks 4 --num_iter 3 --timeout 60 --json
    [ "$RC" -eq 0 ] && grep -q '"requests":3,' "$TMP/out" && pass ||
        fail "kvbench --nats-creds: exit $RC: $(cat "$TMP/err" "$TMP/out")
server's reasons: $(grep -E 'ERR|Signature|Account' "$TMP/jwt/nats.log" | tail -5)"
    expect_fail "cannot read credentials file" get "${J[@]}" --nats-creds "$TMP/jwt/no.creds" \
        --subject jwt.a --timeout 2 "$TMP/x"
else
    echo "note: no python3-cryptography: --nats-creds against a JWT server not checked"
fi

kill $NATS_PID
finish
