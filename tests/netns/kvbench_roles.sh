#!/bin/bash
# nxc kvbench with its roles on two "hosts": network namespaces A and B
# joined by a veth pair, a nats-server in A, UCX's default settings (no
# UCX_* variable). The prefill role runs in A, decode roles in B; they
# coordinate over NATS only.
#   1. WRITE, pairwise 2 + 2, the decode workers split over two decode
#      processes: the prefill role prints every request, data checked
#      (--check_consistency), and B's veth received at least the bytes moved.
#   2. READ, one-to-many 1 + 2: the same, the bytes going A -> B.
#   3. A missing role: a decode role alone and a prefill role alone each
#      fail saying which role is missing (--join_timeout 3); a second
#      prefill role of the same benchmark group is refused.
#   4. A failing role: a decode worker killed mid-run, then a decode role
#      killed mid-run: both roles exit 1 naming what failed, long before
#      --timeout (300 s); a run that waits for its timeout is killed at 60 s
#      and fails the test.
#
# usage: kvbench_roles.sh path/to/nxc
# Exit 77 (skipped) when namespaces cannot be created (not root, no
# CAP_NET_ADMIN) or nats-server is missing; everything is cleaned up on exit.
set -u
NXC=$(readlink -f "${1:?usage: $0 path/to/nxc}")
NETNS_TMP=$(mktemp -d "${TMPDIR:-/tmp}/nxc-kvroles.XXXXXX")
source "$(dirname "$0")/netns_lib.sh"

netns_test_begin

netns_setup; rc=$?; [ $rc -eq 0 ] || exit $rc
nats_start; rc=$?; [ $rc -eq 0 ] || exit $rc

KV=(--nats "$NATS_URL" --num_layers 4 --num_blocks 8 --block_size 4K --warmup_iter 1
    --check_consistency --timeout 300)
KV_BYTES=$((4 * 8 * 4096))

# role NS OUT ARGS...: one role process in namespace NS, bounded at 60 s
# (a run left waiting for its --timeout is a failure here), UCX defaults.
# It execs: run it in the background or in a subshell; timeout(1) is the
# process started, nxc its child, the workers nxc's children.
role() {
    local ns=$NS_A
    [ "$1" = B ] && ns=$NS_B
    local out=$2; shift 2
    exec timeout -s KILL 60 ip netns exec "$ns" "$NXC" kvbench "$@" \
        >"$NETNS_TMP/$out.out" 2>"$NETNS_TMP/$out.err"
}

# requests_in FILE: the "requests" of the prefill role's JSON, or "bad".
requests_in() {
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["requests"])' \
        "$1" 2>/dev/null || echo bad
}

# 1. WRITE pairwise 2 + 2, decode workers in two processes
rx0=$(veth_bytes B rx)
role B d1 "${KV[@]}" --role decode --num_local 1 --num_prefill 2 --num_decode 2 --num_iter 20 &
D1=$!
role B d2 "${KV[@]}" --role decode --num_local 1 --num_prefill 2 --num_decode 2 --num_iter 20 &
D2=$!
NETNS_PIDS+=($D1 $D2)
role A p "${KV[@]}" --role prefill --num_prefill 2 --num_decode 2 --num_iter 20 --json &
P=$!
wait $P; prc=$?; wait $D1; d1rc=$?; wait $D2; d2rc=$?
rx1=$(veth_bytes B rx)
got=$(requests_in "$NETNS_TMP/p.out")
echo "write 2+2: exits $prc $d1rc $d2rc, $got requests, B rx +$((rx1 - rx0)) bytes"
if [ $prc -ne 0 ] || [ $d1rc -ne 0 ] || [ $d2rc -ne 0 ]; then
    fail "write 2+2: exits $prc $d1rc $d2rc: $(cat "$NETNS_TMP"/{p,d1,d2}.err)"
elif [ "$got" != 40 ]; then
    fail "write 2+2: $got requests reported, expected 40: $(cat "$NETNS_TMP/p.out")"
elif [ $((rx1 - rx0)) -lt $((42 * KV_BYTES)) ]; then
    fail "write 2+2: B's veth received $((rx1 - rx0)) bytes, fewer than moved"
fi

# 2. READ one-to-many 1 + 2, one decode process with both workers
tx0=$(veth_bytes A tx)
role B d1 "${KV[@]}" --role decode --op_type READ --num_decode 2 --num_iter 20 &
D1=$!
NETNS_PIDS+=($D1)
role A p "${KV[@]}" --role prefill --op_type READ --num_decode 2 --num_iter 20 --json &
P=$!
wait $P; prc=$?; wait $D1; d1rc=$?
tx1=$(veth_bytes A tx)
got=$(requests_in "$NETNS_TMP/p.out")
echo "read 1+2: exits $prc $d1rc, $got requests, A tx +$((tx1 - tx0)) bytes"
if [ $prc -ne 0 ] || [ $d1rc -ne 0 ]; then
    fail "read 1+2: exits $prc $d1rc: $(cat "$NETNS_TMP"/{p,d1}.err)"
elif [ "$got" != 40 ]; then
    fail "read 1+2: $got requests reported, expected 40: $(cat "$NETNS_TMP/p.out")"
elif [ $((tx1 - tx0)) -lt $((42 * KV_BYTES)) ]; then
    fail "read 1+2: A's veth sent $((tx1 - tx0)) bytes, fewer than moved"
fi

# 3. a missing role
(role B d1 "${KV[@]}" --role decode --join_timeout 3 --num_iter 5); rc=$?
grep -q "no prefill role of benchmark group 'default'" "$NETNS_TMP/d1.err" && [ $rc -eq 1 ] ||
    fail "decode role alone: exit $rc, $(cat "$NETNS_TMP/d1.err")"
(role A p "${KV[@]}" --role prefill --join_timeout 3 --num_iter 5); rc=$?
grep -q "decode workers 0-0 did not join within 3 s" "$NETNS_TMP/p.err" && [ $rc -eq 1 ] ||
    fail "prefill role alone: exit $rc, $(cat "$NETNS_TMP/p.err")"
# ... and a second prefill role in the same benchmark group is refused
role A p "${KV[@]}" --role prefill --join_timeout 20 --num_iter 5 &
P=$!
NETNS_PIDS+=($P)
sleep 2
(role B p2 "${KV[@]}" --role prefill --join_timeout 3 --num_iter 5); rc=$?
grep -q "another prefill role already runs benchmark group 'default'" "$NETNS_TMP/p2.err" &&
    [ $rc -eq 1 ] || fail "a second prefill role: exit $rc, $(cat "$NETNS_TMP/p2.err")"
kill -9 $(pgrep -P $P) $P 2>/dev/null; wait $P 2>/dev/null   # nxc, then timeout(1)

# 4. a failing role: KILL one decode worker (a child of the decode role),
# or the decode role itself, once requests flow
# run_and_kill WHAT: starts 1 + 2 (pairwise would do; one-to-many keeps
# prefill0 busy with both), kills WHAT ("worker" or "role") after 2 s.
run_and_kill() {
    local what=$1
    role B d1 "${KV[@]}" --role decode --num_decode 2 --num_iter 1000000 &
    D1=$!
    NETNS_PIDS+=($D1)
    role A p "${KV[@]}" --role prefill --num_decode 2 --num_iter 1000000 &
    P=$!
    NETNS_PIDS+=($P)
    local kids=""
    for _ in $(seq 1 200); do   # the decode role's two workers
        kids=$(pgrep -P "$(pgrep -P $D1 | head -1)" 2>/dev/null | wc -l)
        [ "$kids" -ge 2 ] && break
        sleep 0.1
    done
    sleep 2
    # $D1 is timeout(1); its child is ip netns exec's nxc (exec'd), whose
    # children are the workers
    local nxc_pid
    nxc_pid=$(pgrep -P $D1 | head -1)
    if [ "$what" = worker ]; then
        kill -9 "$(pgrep -P "$nxc_pid" | head -1)"
    else
        kill -9 "$nxc_pid"
    fi
    wait $P; prc=$?; wait $D1 2>/dev/null; d1rc=$?
    echo "kill a decode $what: prefill role exit $prc: $(tail -n1 "$NETNS_TMP/p.err")"
    grep -q "workload\|another prefill" "$NETNS_TMP/p.err" "$NETNS_TMP/d1.err" &&
        fail "decode $what killed: the run did not start: $(cat "$NETNS_TMP"/{p,d1}.err)"
    [ $prc -eq 1 ] || fail "decode $what killed: the prefill role exited $prc (137: hung" \
        "until killed at 60 s): $(cat "$NETNS_TMP/p.err")"
    grep -q "decode" "$NETNS_TMP/p.err" ||
        fail "decode $what killed: the prefill role does not say what failed:" \
             "$(cat "$NETNS_TMP/p.err")"
}
run_and_kill worker
[ $d1rc -eq 1 ] && grep -q "decode[01] (pid [0-9]*) was killed by signal 9" "$NETNS_TMP/d1.err" ||
    fail "decode worker killed: the decode role exited $d1rc: $(cat "$NETNS_TMP/d1.err")"
run_and_kill role

echo "kvbench_roles: $FAILS failure(s)"
[ $FAILS -eq 0 ]
