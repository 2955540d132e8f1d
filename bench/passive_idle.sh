#!/usr/bin/env bash
# bench/passive_idle.sh - is a sleeping passive worker woken by the message?
# (issue 11, point 0)
#
# For each passive configuration (default spin_us, spin_us = 0, progress
# thread) and each idle interval, runs `nxc bench --passive-idle MS
# --active-busy`: the active side busy-waits MS ms before each begin, so the
# passive worker is asleep in nxc_op_wait when the op arrives while the
# active one stays awake. Next to it, the baseline: the same ops after the
# same gap with a passive that never sleeps (spin_us 1 s), and one VM
# wake-up after the same idle (nxc_wake_probe: pipe ping-pong between two
# sleeping processes). The first op after a gap is slower even when nobody
# sleeps (cold caches: docs/PERFORMANCE.md), so the baseline has the gap
# too; the back-to-back figure is printed for reference. Prints p50/p90 of
# begin -> completion on the active side, the target 2 x (baseline p50 +
# one wake-up p50), how many of the passive's sleeps its safety bound
# ended and then found work (a wake-up UCX missed), and what the waker
# itself pays inside the write() that wakes a sleeper (nxc_wake_probe).
#
# usage: bench/passive_idle.sh [--idle "1 5 20 100"] [--iters N] [--sizes 8,1M]
#                              [--active-asleep] [--tls STRING] [--out DIR]
#        --active-asleep: the active side sleeps through the gaps instead
#        (the whole machine idles; the baseline then sleeps too)
#        --tls: UCX_TLS for both workers (nxc bench --tls), e.g. tcp: the
#        path between hosts
# env:   NXC=path/to/nxc  BENCH_BIN=dir with nxc_wake_probe
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
idles="1 5 20 100"
iters=40
sizes="8,1M"
out=""
active="--active-busy"
tls=()
while [ $# -gt 0 ]; do
    case "$1" in
        --idle) idles="$2"; shift ;;
        --iters) iters="$2"; shift ;;
        --sizes) sizes="$2"; shift ;;
        --out) out="$2"; shift ;;
        --active-asleep) active="" ;;
        --tls) tls=(--tls "$2"); shift ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        *) echo "passive_idle.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
    shift
done
nxc="${NXC:-$root/build/tools/nxc}"
probe="${BENCH_BIN:-$root/build/bench}/nxc_wake_probe"
[ -x "$nxc" ] || { echo "passive_idle.sh: no nxc at $nxc (set NXC=)" >&2; exit 2; }
[ -x "$probe" ] || { echo "passive_idle.sh: no nxc_wake_probe at $probe (set BENCH_BIN=)" >&2; exit 2; }
[ -n "$out" ] || out="$(mktemp -d /tmp/nxc-idle.XXXXXX)"
mkdir -p "$out"

echo "# passive idle: $(date -Is)  load $(cut -d' ' -f1-3 /proc/loadavg)  $(uname -r)  out=$out"
echo "# active side during the gaps: ${active:+busy}${active:-asleep}; transports: ${tls[1]:-the UCX default}"
declare -A cfgs=([spinning]="--passive-spin-us 1000000" [default]=""
                 [spin0]="--passive-spin-us 0" [thread]="--passive-thread")
: >"$out/wake.jsonl"
: >"$out/nxc.jsonl"
for name in spinning default spin0 thread; do
    # shellcheck disable=SC2086
    "$nxc" bench --json --sizes "$sizes" --iters "$iters" --warmup 3 "${tls[@]}" ${cfgs[$name]} |
        sed "s/^{/{\"cfg\":\"$name\",/" >>"$out/nxc.jsonl"
    for ms in $idles; do
        # shellcheck disable=SC2086
        "$nxc" bench --json --sizes "$sizes" --iters "$iters" --warmup 3 "${tls[@]}" \
            --passive-idle "$ms" $active ${cfgs[$name]} |
            sed "s/^{/{\"cfg\":\"$name\",/" >>"$out/nxc.jsonl"
    done
done
for ms in $idles; do
    "$probe" --json --iters $((iters * 2)) --idle-ms "$ms" >>"$out/wake.jsonl"
done
echo "# end $(date -Is)  load $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
rows = [json.loads(l) for l in open(os.path.join(out, "nxc.jsonl")) if l.startswith("{")]
wake = {w["idle_ms"]: w for w in (json.loads(l) for l in open(os.path.join(out, "wake.jsonl")))}
hot = {(r["cfg"], r["op"], r["size"]): r for r in rows if r["passive_idle_ms"] < 0}
base = {(r["op"], r["size"], r["passive_idle_ms"]): r for r in rows
        if r["cfg"] == "spinning" and r["passive_idle_ms"] >= 0}
def hs(n):
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n} B"
print("\nbegin -> complete on the active side, us; base = a passive that never sleeps, same gap;"
      " b2b = back to back, no gap;\ntarget = 2 x (base p50 + wake-up p50);"
      " backstop = passive sleeps ended by the safety bound that then found work / all it ended")
print(f"{'passive':<9}{'op':<6}{'size':>7}{'idle ms':>8} |{'p50':>8}{'p90':>9} |{'b2b p50':>8}"
      f"{'base p50':>9}{'wake p50':>9}{'target':>8}{'met':>5} |{'backstop':>9}")
for r in rows:
    if r["passive_idle_ms"] < 0:
        continue
    s = base.get((r["op"], r["size"], r["passive_idle_ms"]))
    h = hot.get((r["cfg"], r["op"], r["size"]))
    w = wake.get(r["passive_idle_ms"])
    target = 2 * (s["lat_p50_us"] + w["wake_p50_us"]) if s and w else None
    met = "-" if target is None or r["cfg"] == "spinning" else (
        "yes" if r["lat_p50_us"] <= target else "NO")
    print(f"{r['cfg']:<9}{r['op']:<6}{hs(r['size']):>7}{r['passive_idle_ms']:>8} |"
          f"{r['lat_p50_us']:>8.1f}{r['lat_p90_us']:>9.1f} |"
          f"{h['lat_p50_us'] if h else float('nan'):>8.1f}"
          f"{s['lat_p50_us'] if s else float('nan'):>9.1f}"
          f"{w['wake_p50_us'] if w else float('nan'):>9.1f}"
          f"{target if target else float('nan'):>8.0f}{met:>5} |"
          f"{r['passive_backstop_served']:>4}/{r['passive_backstop_fired']:<4}")
print("\none wake-up (nxc_wake_probe, pipe round trip / 2):",
      ", ".join(f"idle {ms} ms p50 {w['wake_p50_us']:.0f} us p90 {w['wake_p90_us']:.0f} us"
                for ms, w in sorted(wake.items())))
print("what the waker pays inside its write() (a peer whose copy wakes a sleeping passive):",
      ", ".join(f"idle {ms} ms p50 {w['waker_p50_us']:.1f} us p90 {w['waker_p90_us']:.1f} us"
                for ms, w in sorted(wake.items())))
PY
