#!/bin/bash
# Two hosts for real: two network namespaces joined by a veth pair, NATS
# carrying the metadata, UCX over TCP on the veth carrying the data.
#   read:  'nxc serve --nats' in A (passive), 'nxc get --nats' in B (active)
#   write: 'nxc recv --nats' in A (passive), 'nxc put --nats' in B (active)
# Each moves SIZE_MIB (default 256) MiB, verified by sha256, and the veth
# byte counters must grow by at least that much in the direction the data
# went (A->B for the read, B->A for the write): proof that the bytes crossed
# the link rather than shared memory. Last, 'nxc bench --netns' runs its
# two workers in the two namespaces (small sizes, results verified), and
# 'nxc kvbench --netns' a prefill and a decode worker, both directions.
#
# usage: two_hosts.sh path/to/nxc [SIZE_MIB]
# Exit 77 (skipped) when namespaces cannot be created (not root, no
# CAP_NET_ADMIN) or nats-server is missing; everything is cleaned up on exit.
set -u
NXC=$(readlink -f "${1:?usage: $0 path/to/nxc [SIZE_MIB]}")
SIZE_MIB=${2:-256}
BYTES=$((SIZE_MIB * 1024 * 1024))
NETNS_TMP=$(mktemp -d "${TMPDIR:-/tmp}/nxc-netns.XXXXXX")
source "$(dirname "$0")/netns_lib.sh"

netns_test_begin

netns_setup; rc=$?; [ $rc -eq 0 ] || exit $rc
nats_start; rc=$?; [ $rc -eq 0 ] || exit $rc

SRC=$NETNS_TMP/src.bin
head -c $BYTES /dev/urandom >"$SRC"
SUM=$(sha256sum <"$SRC" | cut -d' ' -f1)
N=(--nats "$NATS_URL" --timeout 40)

# transfer NAME FROM TO PASSIVE_CMD... -- ACTIVE_CMD...: the data goes from
# namespace FROM to TO; the passive command runs in A, the active one in B.
transfer() {
    local name=$1 from=$2 to=$3; shift 3
    local passive=() active=()
    while [ "$1" != "--" ]; do passive+=("$1"); shift; done
    shift; active=("$@")
    local tx0 rx0 tx1 rx1 prc arc
    tx0=$(veth_bytes "$from" tx); rx0=$(veth_bytes "$to" rx)
    in_ns A "$NXC" "${passive[@]}" 2>"$NETNS_TMP/passive.err" &
    local pid=$!
    NETNS_PIDS+=($pid)
    in_ns B "$NXC" "${active[@]}" 2>"$NETNS_TMP/active.err"; arc=$?
    wait $pid; prc=$?
    tx1=$(veth_bytes "$from" tx); rx1=$(veth_bytes "$to" rx)
    echo "$name: $from tx +$((tx1 - tx0)) bytes, $to rx +$((rx1 - rx0)) bytes;" \
         "active: $(tail -n1 "$NETNS_TMP/active.err")"
    if [ $prc -ne 0 ] || [ $arc -ne 0 ]; then
        fail "$name: exit passive $prc, active $arc:" \
             "$(cat "$NETNS_TMP/passive.err" "$NETNS_TMP/active.err")"
        return
    fi
    [ $((tx1 - tx0)) -ge $BYTES ] ||
        fail "$name: veth $from sent $((tx1 - tx0)) bytes, fewer than the $BYTES moved"
    [ $((rx1 - rx0)) -ge $BYTES ] ||
        fail "$name: veth $to received $((rx1 - rx0)) bytes, fewer than the $BYTES moved"
}

check_copy() { # NAME FILE
    local got
    got=$(sha256sum <"$2" 2>/dev/null | cut -d' ' -f1)
    [ "$got" = "$SUM" ] || fail "$1: $2 differs from the source (sha256)"
}

transfer "read (serve in A, get in B)" A B \
    serve "${N[@]}" --subject two.read "$SRC" -- \
    get "${N[@]}" --subject two.read "$NETNS_TMP/read.bin"
check_copy read "$NETNS_TMP/read.bin"
rm -f "$NETNS_TMP/read.bin"

transfer "write (recv in A, put in B)" B A \
    recv "${N[@]}" --subject two.write --size "${SIZE_MIB}M" "$NETNS_TMP/write.bin" -- \
    put "${N[@]}" --subject two.write "$SRC"
check_copy write "$NETNS_TMP/write.bin"

# nxc bench across the namespaces (--netns): both workers' results verified
"$NXC" bench --netns "$NS_A,$NS_B" --net-devices "$VETH_A,$VETH_B" --tls tcp \
    --sizes 64K,4M --iters 5 --warmup 1 --json >"$NETNS_TMP/bench.json" 2>"$NETNS_TMP/bench.err"
brc=$?
python3 - "$NETNS_TMP/bench.json" <<'PY' && [ $brc -eq 0 ] ||
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 4, rows
assert all(r["verified"] is True and r["gbps"] > 0 and r["tls"] == "tcp" for r in rows), rows
PY
    fail "nxc bench --netns: exit $brc: $(cat "$NETNS_TMP/bench.err" "$NETNS_TMP/bench.json")"

# nxc kvbench across the namespaces (--netns): prefill in A, decode in B,
# both directions, every block's stamp checked by the workers; no UCX_*
# setting (another network namespace is reached over TCP by itself)
for op in WRITE READ; do
    env -u UCX_TLS -u UCX_NET_DEVICES "$NXC" kvbench --netns "$NS_A,$NS_B" --nats "$NATS_URL" \
        --op_type $op --num_layers 4 --num_blocks 16 --num_iter 10 --timeout 60 --json \
        >"$NETNS_TMP/kv.json" 2>"$NETNS_TMP/kv.err"
    krc=$?
    python3 - "$NETNS_TMP/kv.json" <<'PY' && [ $krc -eq 0 ] ||
import json, sys
r = json.load(open(sys.argv[1]))
assert r["requests"] == 10 and r["goodput_gbps"] > 0 and r["netns"].count(",") == 1, r
PY
        fail "nxc kvbench --netns $op: exit $krc: $(cat "$NETNS_TMP/kv.err" "$NETNS_TMP/kv.json")"
done

[ $FAILS -eq 0 ] && echo "two hosts: read and write of $BYTES bytes verified over the veth"
[ $FAILS -eq 0 ]
