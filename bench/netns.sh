#!/usr/bin/env bash
# bench/netns.sh - throughput between two "hosts": two network namespaces
# joined by a veth pair (tests/netns/netns_lib.sh), UCX restricted to TCP on
# the veth (UCX_TLS=tcp, UCX_NET_DEVICES=<veth end>) in both.
#
# For each round it runs, one after the other:
#   nxc bench --netns A,B   passive worker in A, active in B, endpoint warm:
#                           read and write, sizes --sizes (default 1M,64M)
#   ucx_perftest            server in A, client in B, UCX-allocated memory:
#                           tag_bw, ucp_am_bw, ucp_put_bw, ucp_get
#   nxc serve/get, recv/put --nats   256 MiB file, the two-host recipe of
#                           the README end to end (cold: new processes,
#                           new endpoint; rate from begin to completion)
# then prints the best of the rounds (GB/s = 1e9 B/s) and nxc against the
# best raw UCX pattern of the same size.
#
# usage: bench/netns.sh [--rounds N] [--sizes LIST] [--file-mib N] [--out DIR]
# env:   NXC=path/to/nxc (default build/tools/nxc)
# Needs root (network namespaces). Exit 77 when namespaces cannot be made.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
rounds=2
sizes="1M,64M"
file_mib=256
out=""
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds="$2"; shift ;;
        --sizes) sizes="$2"; shift ;;
        --file-mib) file_mib="$2"; shift ;;
        --out) out="$2"; shift ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "netns.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
    shift
done
NXC="$(readlink -f "${NXC:-$root/build/tools/nxc}")"
[ -x "$NXC" ] || { echo "netns.sh: no nxc at $NXC (build first, or set NXC)" >&2; exit 2; }
command -v ucx_perftest >/dev/null || { echo "netns.sh: no ucx_perftest (apt-get install ucx-utils)" >&2; exit 2; }
[ -n "$out" ] || out="$(mktemp -d /tmp/nxc-netns-bench.XXXXXX)"
mkdir -p "$out"

NETNS_TMP="$out"
source "$root/tests/netns/netns_lib.sh"
trap 'netns_teardown' EXIT
trap 'exit 130' INT TERM
netns_setup; rc=$?; [ $rc -eq 0 ] || exit $rc

# size_bytes 64M -> 67108864
size_bytes() {
    python3 -c 'import sys; s=sys.argv[1].upper().rstrip("B").rstrip("I"); m={"K":1<<10,"M":1<<20,"G":1<<30}
print(int(s[:-1])*m[s[-1]] if s[-1] in m else int(s))' "$1"
}

# perftest TEST SIZE ROUND: server in A, client in B; one JSON line
perftest() {
    local test=$1 size=$2 r=$3 n line
    n=$(( (256 << 20) / size )); [ $n -gt 2000 ] && n=2000; [ $n -lt 8 ] && n=8
    in_ns A timeout 60 ucx_perftest -p 13337 >>"$out/perftest-server.log" 2>&1 &
    local spid=$!
    NETNS_PIDS+=($spid)
    sleep 0.3
    line="$(in_ns B timeout 45 ucx_perftest "$ADDR_A" -p 13337 -t "$test" -s "$size" \
                -n "$n" -w $(( n / 10 + 1 )) -f 2>>"$out/perftest-client.log" |
            awk 'NF == 8 && $1 ~ /^[0-9]+$/ { last = $0 } END { print last }')"
    kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null
    if [ -z "$line" ]; then
        echo "# ucx_perftest $test $size failed (see $out/perftest-*.log)" >&2
        return
    fi
    # fields: iters, p50 avg overall (us), bw avg overall (MB/s = 2^20 B/s), rates
    echo "$line" | awk -v t="$test" -v s="$size" -v r="$r" \
        '{ printf "{\"tool\":\"perftest\",\"pattern\":\"%s\",\"size\":%d,\"round\":%d,\"gbps\":%.4f}\n", t, s, r, $6 * 1048576 / 1e9 }'
}

# file_pair ROUND: the README recipe, 256 MiB each way; one JSON line each
file_pair() {
    local r=$1 src="$out/src.bin" bytes=$((file_mib << 20))
    [ -f "$src" ] || head -c "$bytes" /dev/urandom >"$src"
    local pid
    in_ns A "$NXC" serve --nats "$NATS_URL" --subject b.read --timeout 60 "$src" 2>>"$out/file.log" &
    pid=$!; NETNS_PIDS+=($pid)
    in_ns B "$NXC" get --nats "$NATS_URL" --subject b.read --timeout 60 "$out/read.bin" 2>"$out/get.err"
    wait $pid; rm -f "$out/read.bin"
    in_ns A "$NXC" recv --nats "$NATS_URL" --subject b.write --size "${file_mib}M" --timeout 60 "$out/write.bin" 2>>"$out/file.log" &
    pid=$!; NETNS_PIDS+=($pid)
    in_ns B "$NXC" put --nats "$NATS_URL" --subject b.write --timeout 60 "$src" 2>"$out/put.err"
    wait $pid; rm -f "$out/write.bin"
    local g p
    g=$(sed -n 's/^received [0-9]* bytes in .* s (\(.*\) GB\/s)$/\1/p' "$out/get.err")
    p=$(sed -n 's/^sent [0-9]* bytes in .* s (\(.*\) GB\/s)$/\1/p' "$out/put.err")
    [ -n "$g" ] && echo "{\"tool\":\"file\",\"op\":\"read\",\"size\":$bytes,\"round\":$r,\"gbps\":$g}"
    [ -n "$p" ] && echo "{\"tool\":\"file\",\"op\":\"write\",\"size\":$bytes,\"round\":$r,\"gbps\":$p}"
}

have_nats=0
if nats_start >/dev/null 2>&1; then have_nats=1; fi
results="$out/results.jsonl"
: >"$results"
echo "# bench/netns.sh: $NS_A <-veth-> $NS_B, UCX_TLS=tcp, rounds=$rounds, sizes=$sizes, out=$out" >&2
for r in $(seq 1 "$rounds"); do
    echo "# round $r: nxc bench" >&2
    "$NXC" bench --netns "$NS_A,$NS_B" --net-devices "$VETH_A,$VETH_B" \
        --tls tcp --sizes "$sizes" --json --duration 1 2>>"$out/bench.err" |
        python3 -c 'import json,sys
for l in sys.stdin:
    d=json.loads(l); print(json.dumps({"tool":"nxc","op":d["op"],"size":d["size"],"round":'"$r"',"gbps":d["gbps"]}))' >>"$results"
    echo "# round $r: ucx_perftest" >&2
    for s in ${sizes//,/ }; do
        b=$(size_bytes "$s")
        for t in tag_bw ucp_am_bw ucp_put_bw ucp_get; do perftest "$t" "$b" "$r" >>"$results"; done
    done
    if [ $have_nats = 1 ]; then
        echo "# round $r: nxc serve/get, recv/put over NATS, ${file_mib} MiB" >&2
        file_pair "$r" >>"$results"
    fi
done

python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
best = {}
for r in rows:
    key = (r["tool"], r.get("op") or r.get("pattern"), r["size"])
    best[key] = max(best.get(key, 0), r["gbps"])
def h(n):
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB"
sizes = sorted({k[2] for k in best if k[0] in ("nxc", "perftest")})
print("GB/s (1e9 B/s), best of rounds; two network namespaces, UCX over TCP on a veth")
print(f"{'size':>8} {'nxc read':>9} {'nxc write':>9} {'tag_bw':>8} {'am_bw':>8} {'put_bw':>8} {'get':>8}  read/best  write/best")
for s in sizes:
    g = lambda t, p: best.get((t, p, s))
    raw = {p: g("perftest", p) for p in ("tag_bw", "ucp_am_bw", "ucp_put_bw", "ucp_get")}
    rd, wr = g("nxc", "read"), g("nxc", "write")
    # the best raw pattern able to do the same job: get for a read, put for
    # a write, and the two message patterns for both
    br = max([v for p, v in raw.items() if v and p != "ucp_put_bw"] or [0])
    bw = max([v for p, v in raw.items() if v and p != "ucp_get"] or [0])
    f = lambda v: f"{v:.3f}" if v else "-"
    rr = f"{rd / br:.2f}x" if rd and br else "-"
    wr_ = f"{wr / bw:.2f}x" if wr and bw else "-"
    print(f"{h(s):>8} {f(rd):>9} {f(wr):>9} {f(raw['tag_bw']):>8} {f(raw['ucp_am_bw']):>8} "
          f"{f(raw['ucp_put_bw']):>8} {f(raw['ucp_get']):>8}  {rr:>9}  {wr_:>10}")
for op in ("read", "write"):
    for (t, o, s), v in sorted(best.items()):
        if t == "file" and o == op:
            print(f"nxc {'serve/get' if op == 'read' else 'recv/put'} --nats, {h(s)} file, cold "
                  f"(new processes and endpoint): {v:.3f} GB/s")
PY
