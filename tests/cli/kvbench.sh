#!/bin/bash
# nxc kvbench end to end, tiny KV caches (4 layers x 8 blocks x 4 KiB):
# both directions and the three schemes complete every request with every
# byte checked (--check_consistency), and --json counts them per worker and
# per pair; bad arguments exit 2, an unreachable --nats exits 1 saying so;
# a worker killed mid-run ends the run at once, naming it.
# Without nats-server the runs are skipped (exit 77) after the argument checks;
# without the NATS module, after them too (kvbench must then say so).
source "$(dirname "$0")/lib.sh"

run kvbench --help
if diff -u "$GOLDEN/kvbench.txt" "$TMP/out" >&2 && [ "$RC" -eq 0 ]; then pass
else fail "kvbench --help: exit $RC or text differs from golden/kvbench.txt"; fi

run kvbench --block_size 12
if [ "$RC" -eq 2 ] && grep -q "multiple of 8" "$TMP/err"; then
    pass
else
    fail "--block_size 12: rc=$RC $(cat "$TMP/err")"
fi
expect_usage() { # WHAT ARGS...
    local what=$1; shift
    run kvbench "$@"
    if [ "$RC" -eq 2 ] && grep -q "$what" "$TMP/err"; then pass
    else fail "kvbench $*: rc=$RC, expected 2 and '$what': $(cat "$TMP/err")"; fi
}
expect_usage "neither READ nor WRITE"  --op_type COPY
expect_usage "is not pairwise"         --scheme ring
expect_usage "does not fit"            --scheme pairwise --num_prefill 2
expect_usage "fit no scheme"           --num_prefill 2 --num_decode 3
expect_usage "unexpected argument"     extra
expect_usage "needs --nats URL"        --role decode
expect_usage "neither prefill nor decode" --role both --nats nats://127.0.0.1:1
expect_usage "goes with --role decode" --num_local 1
expect_usage "more than the 1 decode"  --role decode --nats nats://127.0.0.1:1 --num_local 2
expect_usage "is not 1-48 letters"     --benchmark_group a.b

# a build without the NATS module checks the command line as any build does,
# then refuses to run it
run kvbench --nats nats://127.0.0.1:1 --num_layers 1 --num_blocks 1 --block_size 16 --timeout 10
if [ "$RC" -eq 2 ] && grep -q "built without the NATS module" "$TMP/err"; then
    echo "nxc has no NATS module: checked that kvbench says so"; pass; finish
fi
if [ "$RC" -eq 1 ] && grep -q "cannot connect to NATS" "$TMP/err"; then pass
else fail "unreachable --nats: rc=$RC $(cat "$TMP/err")"; fi

if ! PATH=$PATH:/usr/sbin command -v nats-server >/dev/null; then
    echo "SKIP: nats-server not found"; exit 77
fi

# kv OP SCHEME PREFILL DECODE: one tiny run, its JSON checked
kv() {
    local op=$1 scheme=$2 np=$3 nd=$4
    run kvbench --op_type "$op" --scheme "$scheme" --num_prefill "$np" --num_decode "$nd" \
        --num_layers 4 --num_blocks 8 --block_size 4K --num_iter 25 --warmup_iter 1 \
        --inflight 3 --check_consistency --json --timeout 60
    if [ "$RC" -ne 0 ]; then fail "kvbench $op $scheme: exit $RC: $(cat "$TMP/err")"; return; fi
    if python3 - "$TMP/out" "$op" "$scheme" "$np" "$nd" <<'PY'; then pass; else fail "kvbench $op $scheme: JSON"; fi
import json, sys
path, op, scheme, np_, nd = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
r = json.loads(open(path).read())
pairs = max(np_, nd)
errors = []
if (r["op_type"], r["scheme"]) != (op, scheme):
    errors.append(f"op/scheme {r['op_type']}/{r['scheme']}")
if r["requests"] != pairs * 25 or r["bytes"] != pairs * 25 * 4 * 8 * 4096:
    errors.append(f"requests {r['requests']} bytes {r['bytes']}")
if len(r["pairs"]) != pairs or any(p["p50_ms"] <= 0 or p["p99_ms"] < p["p50_ms"] for p in r["pairs"]):
    errors.append(f"pairs {r['pairs']}")
if len(r["workers"]) != np_ + nd:
    errors.append(f"{len(r['workers'])} workers")
active = "prefill" if op == "WRITE" else "decode"
for w in r["workers"]:
    peers = pairs if (w["name"].startswith("prefill") and np_ == 1) or \
                     (w["name"].startswith("decode") and nd == 1) else 1
    if w["requests"] != peers * 25:
        errors.append(f"{w['name']}: {w['requests']} requests, expected {peers * 25}")
    if w["role"] != ("active" if w["name"].startswith(active) else "passive"):
        errors.append(f"{w['name']}: role {w['role']}")
    if not w["cpu_s"] > 0:
        errors.append(f"{w['name']}: cpu_s {w['cpu_s']}")
for k in ("goodput_gbps", "requests_per_s", "wall_s"):
    if not r[k] > 0:
        errors.append(f"{k} {r[k]}")
if not 0 < r["latency_ms"]["p50"] <= r["latency_ms"]["p99"] <= r["latency_ms"]["max"]:
    errors.append(f"latency {r['latency_ms']}")
for e in errors:
    print(e, file=sys.stderr)
sys.exit(1 if errors else 0)
PY
}
kv WRITE pairwise  2 2
kv READ  pairwise  1 1
kv WRITE manytoone 3 1
kv READ  manytoone 3 1
kv WRITE onetomany 1 3
kv READ  onetomany 1 3

# one worker killed mid-run: the run ends at once (not after --timeout),
# saying which worker and how, and no worker is left behind
"$NXC" kvbench --num_prefill 2 --num_decode 2 --num_layers 2 --num_blocks 4 --block_size 4K \
    --num_iter 1000000 --timeout 300 >"$TMP/out" 2>"$TMP/err" </dev/null &
KV=$!
for _ in $(seq 1 300); do    # 2 prefill + 2 decode workers and nats-server
    [ "$(pgrep -P $KV | wc -l)" -ge 5 ] && break
    sleep 0.1
done
sleep 2
WORKERS=$(pgrep -P $KV -x nxc)
VICTIM=$(echo "$WORKERS" | sed -n 3p)     # decode0: workers fork in order
kill -9 "$VICTIM"
for _ in $(seq 1 600); do kill -0 $KV 2>/dev/null || break; sleep 0.1; done
if kill -0 $KV 2>/dev/null; then
    kill -9 $KV; fail "a killed decode worker: kvbench still running 60 s later"
else
    wait $KV; RC=$?
    left=$(for p in $WORKERS; do kill -0 "$p" 2>/dev/null && echo "$p"; done)
    if [ "$RC" -eq 1 ] && grep -q "decode0 (pid $VICTIM) was killed by signal 9" "$TMP/err" \
       && [ -z "$left" ]; then pass
    else fail "a killed decode worker: rc=$RC, workers left: '$left': $(cat "$TMP/err")"; fi
fi

# the table names every worker and the goodput
run kvbench --num_layers 2 --num_blocks 2 --block_size 1K --num_iter 5 --timeout 60
if [ "$RC" -eq 0 ] && grep -q "^goodput" "$TMP/out" && grep -q "^prefill0 *active" "$TMP/out" \
   && grep -q "^decode0 *passive" "$TMP/out"; then pass
else fail "table: rc=$RC $(cat "$TMP/out" "$TMP/err")"; fi
finish
