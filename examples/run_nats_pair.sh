#!/bin/bash
# Runs examples/nats_pair against a nats-server of its own on loopback.
# usage: run_nats_pair.sh path/to/nats_pair   (exit 77: no nats-server)
set -u
NATS_SERVER=$(PATH=$PATH:/usr/sbin command -v nats-server) || {
    echo "SKIP: nats-server not found (apt-get install nats-server)"; exit 77; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/nxc-example.XXXXXX")
"$NATS_SERVER" -a 127.0.0.1 -p -1 -l "$TMP/nats.log" &
NATS_PID=$!
trap 'kill $NATS_PID 2>/dev/null; rm -rf "$TMP"' EXIT
PORT=
for _ in $(seq 1 200); do
    PORT=$(sed -n 's/.*Listening for client connections on 127.0.0.1:\([0-9]*\).*/\1/p' "$TMP/nats.log")
    [ -n "$PORT" ] && break
    sleep 0.05
done
[ -n "$PORT" ] || { echo "nats-server did not start"; exit 1; }
"$1" "nats://127.0.0.1:$PORT"
