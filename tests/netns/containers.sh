#!/bin/bash
# Containers on one host with UCX's default settings (issue 14): two workers
# in two network namespaces A and B (joined by a veth, see netns_lib.sh),
# the active one in B also in its own IPC and/or pid namespace where
# 'unshare' can make them, and no UCX_* variable at all. Each combination
# moves SIZE_MIB MiB both ways ('nxc serve' in A / 'nxc get' in B, then
# 'nxc recv' in A / 'nxc put' in B; metadata in files), verified by cmp,
# and the veth counters show that every byte went over TCP on the veth:
#
#   netns            same IPC and pid namespaces
#   netns+pid        same IPC namespace, own pid namespace
#   netns+ipc        own IPC namespace
#   netns+ipc+pid    own IPC and pid namespaces (a container)
#
# Shared memory does not work across network namespaces with UCX 1.13 (its
# wake-up is a datagram to an abstract unix socket, which belongs to one
# network namespace: see src/engine/peer.c, docs/PERFORMANCE.md), so the library
# keeps such peers on TCP; with the defaults UCX would hang.
#
# Then a dead peer across pid namespaces: 'nxc serve' in A in its own pid
# namespace is stopped (SIGSTOP), a 'nxc get' in B starts, and the server
# is killed 1 s later. The get must fail as NXC_ERR_PEER_FAILED through
# UCX's report on the TCP endpoint (here ~1.1 s), neither the 5 s
# first-answer deadline nor a pidfd: the server's pid means nothing in our
# pid namespace, so no pidfd may watch it (src/common/util.c
# nxc_identity_same_host). The elapsed time is printed, not asserted.
#
# usage: containers.sh path/to/nxc [SIZE_MIB]
# Exit 77 (skipped) when namespaces cannot be created (not root).
set -u
NXC=$(readlink -f "${1:?usage: $0 path/to/nxc [SIZE_MIB]}")
SIZE_MIB=${2:-16}
BYTES=$((SIZE_MIB * 1024 * 1024))
NETNS_TMP=$(mktemp -d "${TMPDIR:-/tmp}/nxc-containers.XXXXXX")
source "$(dirname "$0")/netns_lib.sh"
unset "${!UCX_@}" # UCX's defaults, whatever the caller's environment says

netns_test_begin

netns_setup; rc=$?; [ $rc -eq 0 ] || exit $rc
if ! unshare --ipc --pid --fork --mount-proc true 2>"$NETNS_TMP/unshare.err"; then
    echo "SKIP: unshare cannot make IPC and pid namespaces: $(cat "$NETNS_TMP/unshare.err")"
    exit 77
fi

SRC=$NETNS_TMP/src.bin
head -c $BYTES /dev/urandom >"$SRC"

# run_in NS WRAP CMD...: CMD in network namespace NS, inside WRAP's
# namespaces ("ipc", "pid", "ipc+pid" or "").
run_in() {
    local ns=$1 wrap=$2; shift 2
    local u=()
    case $wrap in *ipc*) u+=(--ipc) ;; esac
    case $wrap in *pid*) u+=(--pid --fork --kill-child --mount-proc) ;; esac
    if [ ${#u[@]} -eq 0 ]; then
        ip netns exec "$ns" "$@"
    else
        ip netns exec "$ns" unshare "${u[@]}" "$@"
    fi
}

wait_for_file() { for _ in $(seq 1 200); do [ -s "$1" ] && return 0; sleep 0.05; done; return 1; }

# move NAME WRAP: both directions with B in WRAP's namespaces.
move() {
    local name=$1 wrap=$2 dir
    for dir in read write; do
        rm -f "$NETNS_TMP/md.json" "$NETNS_TMP/out.bin"
        local tx0 tx1 prc arc spid
        tx0=$(( $(veth_bytes A tx) + $(veth_bytes B tx) ))
        if [ $dir = read ]; then
            run_in "$NS_A" "" "$NXC" serve --timeout 30 "$SRC" \
                >"$NETNS_TMP/md.json" 2>"$NETNS_TMP/passive.err" &
        else
            run_in "$NS_A" "" "$NXC" recv --timeout 30 --size "$BYTES" "$NETNS_TMP/out.bin" \
                >"$NETNS_TMP/md.json" 2>"$NETNS_TMP/passive.err" &
        fi
        spid=$!
        NETNS_PIDS+=($spid)
        wait_for_file "$NETNS_TMP/md.json" || { fail "$name $dir: no metadata"; continue; }
        if [ $dir = read ]; then
            run_in "$NS_B" "$wrap" "$NXC" get --timeout 30 "@$NETNS_TMP/md.json" \
                "$NETNS_TMP/out.bin" 2>"$NETNS_TMP/active.err"; arc=$?
        else
            run_in "$NS_B" "$wrap" "$NXC" put --timeout 30 "$SRC" \
                "@$NETNS_TMP/md.json" 2>"$NETNS_TMP/active.err"; arc=$?
        fi
        wait $spid; prc=$?
        tx1=$(( $(veth_bytes A tx) + $(veth_bytes B tx) ))
        local over=$((tx1 - tx0))
        echo "$name $dir: exit passive $prc, active $arc; $over bytes over the veth;" \
             "$(tail -n1 "$NETNS_TMP/active.err")"
        if [ $prc -ne 0 ] || [ $arc -ne 0 ]; then
            fail "$name $dir: $(cat "$NETNS_TMP/passive.err" "$NETNS_TMP/active.err")"
            continue
        fi
        cmp -s "$SRC" "$NETNS_TMP/out.bin" || fail "$name $dir: the copy differs from the source"
        [ $over -ge $BYTES ] ||
            fail "$name $dir: only $over bytes crossed the veth, fewer than moved"
    done
}

move "netns" ""
move "netns+pid" pid
move "netns+ipc" ipc
move "netns+ipc+pid" ipc+pid

# A dead peer in another pid namespace.
rm -f "$NETNS_TMP/md.json"
run_in "$NS_A" pid "$NXC" serve --timeout 60 "$SRC" >"$NETNS_TMP/md.json" \
    2>"$NETNS_TMP/passive.err" &
NETNS_PIDS+=($!)
wait_for_file "$NETNS_TMP/md.json" || fail "dead peer: no metadata"
server=
for p in $(ip netns pids "$NS_A"); do
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = nxc ] && server=$p
done
[ -n "$server" ] || fail "dead peer: the server in its own pid namespace was not found"
[ -n "$server" ] && kill -STOP "$server"
t0=$(date +%s%N)
run_in "$NS_B" "" "$NXC" get --timeout 60 "@$NETNS_TMP/md.json" "$NETNS_TMP/out.bin" \
    2>"$NETNS_TMP/active.err" &
gpid=$!
NETNS_PIDS+=($gpid)
sleep 1
[ -n "$server" ] && kill -9 "$server"
wait $gpid; grc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "dead peer: get exit $grc after $ms ms: $(tail -n1 "$NETNS_TMP/active.err")"
if [ $grc -eq 0 ]; then
    fail "dead peer: the get succeeded from a killed server"
else
    grep -q "became unreachable" "$NETNS_TMP/active.err" ||
        fail "dead peer: not NXC_ERR_PEER_FAILED: $(cat "$NETNS_TMP/active.err")"
    # A pidfd says "(pid N) exited", the first-answer deadline "did not
    # answer": UCX's report on the endpoint says neither.
    grep -Eq "exited|did not answer" "$NETNS_TMP/active.err" &&
        fail "dead peer: not reported by UCX's endpoint: $(cat "$NETNS_TMP/active.err")"
fi

[ $FAILS -eq 0 ] && echo "containers: data moved and verified in every namespace combination"
[ $FAILS -eq 0 ]
