# Two "hosts" on one machine: network namespaces A and B joined by a veth
# pair (10.77.0.1/24 in A, 10.77.0.2/24 in B), loopback up in each, and a
# nats-server in A listening on A's veth address. Sourced by the scripts in
# tests/netns/ and by bench/netns.sh.
#
# Names carry the shell's pid, so concurrent runs never collide, and start
# with $NXC_NETNS_PREFIX when set (at most 4 characters: interface names
# have 15); the addresses may repeat because every namespace has its own
# stack.
#
# UCX in each namespace is restricted to TCP over that namespace's veth
# (UCX_TLS=tcp, UCX_NET_DEVICES=<veth>): the two processes share a kernel
# and could otherwise reach each other through shared memory or CMA, which
# would prove nothing about two hosts. The veth byte counters show the
# bytes really crossed the link.

NS_A=${NXC_NETNS_PREFIX:-nxc}A$$
NS_B=${NXC_NETNS_PREFIX:-nxc}B$$
VETH_A=${NXC_NETNS_PREFIX:-nx}va$$          # at most 15 characters (IFNAMSIZ)
VETH_B=${NXC_NETNS_PREFIX:-nx}vb$$
ADDR_A=10.77.0.1
ADDR_B=10.77.0.2
NATS_URL=nats://$ADDR_A:4222
NETNS_PIDS=()

# netns_test_begin: the start every test script shares: the namespaces and
# $NETNS_TMP go on exit (also on INT/TERM), FAILS counts fail()s.
netns_test_begin() {
    trap 'netns_teardown; rm -rf "$NETNS_TMP"' EXIT
    trap 'exit 130' INT TERM
    FAILS=0
}
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }

# netns_setup: 0, or 77 when namespaces cannot be created here (not root,
# no CAP_NET_ADMIN), or 1 on any other failure (message on stderr).
netns_setup() {
    if ! command -v ip >/dev/null; then
        echo "SKIP: no 'ip' command (apt-get install iproute2)"; return 77
    fi
    if ! ip netns add "$NS_A" 2>"$NETNS_TMP/ns.err"; then
        echo "SKIP: cannot create network namespaces here (needs root or" \
             "CAP_NET_ADMIN): $(cat "$NETNS_TMP/ns.err")"
        return 77
    fi
    ip netns add "$NS_B" &&
    ip link add "$VETH_A" type veth peer name "$VETH_B" &&
    ip link set "$VETH_A" netns "$NS_A" &&
    ip link set "$VETH_B" netns "$NS_B" &&
    ip -n "$NS_A" addr add "$ADDR_A/24" dev "$VETH_A" &&
    ip -n "$NS_B" addr add "$ADDR_B/24" dev "$VETH_B" &&
    ip -n "$NS_A" link set lo up && ip -n "$NS_B" link set lo up &&
    ip -n "$NS_A" link set "$VETH_A" up && ip -n "$NS_B" link set "$VETH_B" up ||
        { echo "netns_setup: could not build the veth link" >&2; return 1; }
}

# netns_teardown: kills what was started in the namespaces, deletes them
# (which deletes the veth pair too). Safe to call twice.
netns_teardown() {
    local p
    for p in "${NETNS_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    for p in "${NETNS_PIDS[@]}"; do wait "$p" 2>/dev/null; done
    NETNS_PIDS=()
    ip netns pids "$NS_A" 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns pids "$NS_B" 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns del "$NS_A" 2>/dev/null
    ip netns del "$NS_B" 2>/dev/null
}

# in_ns A|B CMD...: runs CMD in the namespace with UCX restricted to TCP
# over its veth.
in_ns() {
    local ns=$NS_A dev=$VETH_A
    [ "$1" = B ] && { ns=$NS_B; dev=$VETH_B; }
    shift
    ip netns exec "$ns" env UCX_TLS=tcp UCX_NET_DEVICES="$dev" "$@"
}

# veth_bytes A|B rx|tx: the byte counter of the namespace's veth end.
veth_bytes() {
    local ns=$NS_A dev=$VETH_A
    [ "$1" = B ] && { ns=$NS_B; dev=$VETH_B; }
    ip netns exec "$ns" cat "/sys/class/net/$dev/statistics/$2_bytes"
}

# nats_start: nats-server in A on $ADDR_A:4222; 0 once it accepts
# connections, 77 if there is no nats-server, 1 if it does not come up.
nats_start() {
    local bin=${NXC_NATS_SERVER:-$(PATH=$PATH:/usr/sbin:/usr/bin command -v nats-server)}
    if [ -z "$bin" ]; then
        echo "SKIP: nats-server not found (apt-get install nats-server)"; return 77
    fi
    ip netns exec "$NS_A" "$bin" -a "$ADDR_A" -p 4222 -l "$NETNS_TMP/nats.log" &
    NETNS_PIDS+=($!)
    for _ in $(seq 1 200); do
        grep -q "Server is ready" "$NETNS_TMP/nats.log" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nats-server did not start in $NS_A: $(cat "$NETNS_TMP/nats.log" 2>/dev/null)" >&2
    return 1
}
