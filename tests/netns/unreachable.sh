#!/bin/bash
# Unreachable is an error (issue 10, point 5): two workers in two network
# namespaces (A, B joined by a veth, see netns_lib.sh) that UCX cannot
# connect. 'nxc serve' (passive) runs in A, 'nxc get' (active) in B with a
# 30 s timeout; the get must fail with "became unreachable" and a sentence
# naming UCX_NET_DEVICES, not time out. The elapsed time is printed, not
# asserted (the library's bound is 5 s; docs/RELIABILITY.md).
#
#   no route   A's UCX is restricted to a device on a network B has no
#              route to (a second veth pair inside A): connect() fails
#              at once.
#   blackhole  the same, but B routes that network through a gateway that
#              does not answer ARP: connect() fails after the kernel's ARP
#              timeout (~3 s).
#   firewall   both on the shared veth, but A drops every packet it would
#              send to B (a blackhole route; B knows A's MAC), so B's SYNs
#              arrive and no SYN-ACK comes back, as behind a firewall that
#              drops them. UCX 1.13's blocking connect() held begin for the
#              kernel's whole SYN retry series (~130 s, past the get's own
#              30 s timeout); the library now asks UCX for a non-blocking
#              connect, and the 5 s first-answer deadline reports it.
# (Two namespaces with UCX's default settings are reachable: containers.sh.)
#
# The passive side: no message of the reader ever reached it, so its op
# stays INITIALIZED and 'nxc serve --timeout 12' times out (exit 1): that
# is what a passive worker sees of an unreachable reader.
#
# usage: unreachable.sh path/to/nxc
# Exit 77 (skipped) when namespaces cannot be created (not root).
set -u
NXC=$(readlink -f "${1:?usage: $0 path/to/nxc}")
NETNS_TMP=$(mktemp -d "${TMPDIR:-/tmp}/nxc-unreach.XXXXXX")
source "$(dirname "$0")/netns_lib.sh"
UNREACH_A=${NXC_NETNS_PREFIX:-nx}ua$$   # the device A's UCX is told to use
UNREACH_PEER=${NXC_NETNS_PREFIX:-nx}ub$$
UNREACH_ADDR=10.78.0.1

netns_test_begin

netns_setup; rc=$?; [ $rc -eq 0 ] || exit $rc
# A network only A can see: both ends of a second veth pair live in A.
ip link add "$UNREACH_A" type veth peer name "$UNREACH_PEER" &&
ip link set "$UNREACH_A" netns "$NS_A" && ip link set "$UNREACH_PEER" netns "$NS_A" &&
ip -n "$NS_A" addr add "$UNREACH_ADDR/24" dev "$UNREACH_A" &&
ip -n "$NS_A" link set "$UNREACH_A" up && ip -n "$NS_A" link set "$UNREACH_PEER" up ||
    { echo "could not build A's private network" >&2; exit 1; }

SRC=$NETNS_TMP/src.bin
head -c 1048576 /dev/urandom >"$SRC"

# attempt NAME ENV_A ENV_B: serve in A with ENV_A, get in B with
# ENV_B (each "VAR=value ..." or empty): the get must fail.
attempt() {
    local name=$1 env_a=$2 env_b=$3
    rm -f "$NETNS_TMP/meta.json" "$NETNS_TMP/out.bin"
    # shellcheck disable=SC2086
    ip netns exec "$NS_A" env $env_a "$NXC" serve --timeout 12 "$SRC" \
        >"$NETNS_TMP/meta.json" 2>"$NETNS_TMP/serve.err" &
    local spid=$!
    NETNS_PIDS+=($spid)
    for _ in $(seq 1 100); do [ -s "$NETNS_TMP/meta.json" ] && break; sleep 0.05; done
    local t0 t1 grc src
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086
    timeout 60 ip netns exec "$NS_B" env $env_b "$NXC" get --timeout 30 \
        "@$NETNS_TMP/meta.json" "$NETNS_TMP/out.bin" 2>"$NETNS_TMP/get.err"; grc=$?
    t1=$(date +%s.%N)
    wait $spid; src=$?
    local secs
    secs=$(echo "$t1 - $t0" | bc 2>/dev/null || echo "?")
    echo "$name: get exit $grc after $secs s: $(tail -n1 "$NETNS_TMP/get.err")"
    echo "$name: serve exit $src: $(tail -n1 "$NETNS_TMP/serve.err")"
    if [ $grc -eq 124 ]; then
        fail "$name: the get hung past its own 30 s timeout (killed after 60 s)"
        return
    fi
    if [ $grc -eq 0 ]; then
        fail "$name: the get succeeded across unreachable namespaces"
        return
    fi
    grep -q "timed out" "$NETNS_TMP/get.err" &&
        fail "$name: the get ran to its timeout instead of reporting the peer unreachable"
    grep -q "became unreachable" "$NETNS_TMP/get.err" ||
        fail "$name: the get did not fail as NXC_ERR_PEER_FAILED: $(cat "$NETNS_TMP/get.err")"
    grep -q "UCX_NET_DEVICES" "$NETNS_TMP/get.err" ||
        fail "$name: the failure does not name the UCX setting to check"
    [ $src -ne 0 ] || fail "$name: serve succeeded although nobody could read"
}

attempt "no route" \
    "UCX_TLS=tcp UCX_NET_DEVICES=$UNREACH_A" "UCX_TLS=tcp UCX_NET_DEVICES=$VETH_B"
ip -n "$NS_B" route add 10.78.0.0/24 via 10.77.0.9 dev "$VETH_B" ||
    { echo "could not add B's blackhole route" >&2; exit 1; }
attempt "blackhole" \
    "UCX_TLS=tcp UCX_NET_DEVICES=$UNREACH_A" "UCX_TLS=tcp UCX_NET_DEVICES=$VETH_B"

MAC_A=$(ip -n "$NS_A" -o link show "$VETH_A" | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
ip -n "$NS_B" neigh replace "$ADDR_A" lladdr "$MAC_A" dev "$VETH_B" nud permanent &&
ip -n "$NS_A" route add blackhole "$ADDR_B/32" ||
    { echo "could not build the firewall (A's blackhole route to B)" >&2; exit 1; }
attempt "firewall" \
    "UCX_TLS=tcp UCX_NET_DEVICES=$VETH_A" "UCX_TLS=tcp UCX_NET_DEVICES=$VETH_B"

[ $FAILS -eq 0 ] && echo "unreachable peers: reported as failed, naming the UCX setting"
[ $FAILS -eq 0 ]
