#!/usr/bin/env python3
"""The Python package beside the C library, interleaved in one run (issue
11, point 6): await latency of reads and writes and full cycles/s.

  /usr/bin/python3 bench/python_vs_c.py [--rounds 5] [--sizes 8,4096]
      [--iters 2000] [--cycles 1000] [--spins 50,0] [--nxc build/tools/nxc]
      [--bench LABEL=path/to/bench.py ...] [--json]

Each round runs, in an order rotated from round to round, for every size:
`nxc bench --json --sizes SIZE --iters ITERS` (C) and
python/examples/bench.py --json --size SIZE --spin-us S for every S in
--spins (Python, both processes with that spin_us). All of them time the
same thing: begin_* to completion on the active side, against a passive
worker in another process that created the whole batch of ops and sent
their metadata first, both workers pinned to the two first CPUs; then the
full cycle (create, metadata, send, parse, begin, complete both, release),
one op at a time. The C library's own spin stays at its default.

Python's reads and writes are timed in one batch whose ops alternate (read,
write, read, ...; bench.py --alternate), C's in a batch per kind (`nxc
bench` has no such mode); --apart times Python's apart too. Why: on this VM
the cost of moving a cache line between the two vCPUs switches between
~55 ns and ~350 ns for about a second at a time (the hypervisor's
placement; a two-thread ping-pong shows it), which moves every op's p50 by
~3 us; timed one kind after the other, read - write then measures the
machine as much as the library (docs/PERFORMANCE.md, "Reads against
writes").

Prints, per implementation, size and op, the range over the rounds of
p50 and p99 latency and of cycles/s; per round, read p50 minus write p50
(point 6 asks for at most 2 us) and the cycles/s of Python over C's in the
same round; then each round's read - write, and with several --bench
trees each tree's p50 minus the first one's, round by round (paired
differences, which a noisy machine shifts less than it shifts ranges).
--bench LABEL=PATH adds (or, first given, replaces) a Python tree to
compare, e.g. a copy of the package before a change. Only Debian's
python3 and a build of this tree are needed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_json(cmd: list[str], env: dict) -> list[dict]:
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def c_rows(args, size: int, env: dict) -> list[dict]:
    rows = run_json([args.nxc, "bench", "--json", "--sizes", str(size), "--iters", str(args.iters),
                     "--ops", "read,write"], env)
    return [{"impl": "C", "op": r["op"], "size": size, "p50": r["lat_p50_us"],
             "p99": r["lat_p99_us"], "cycles": r["cycle_ops_per_s"]} for r in rows]


def py_rows(args, label: str, script: str, spin: int, size: int, env: dict) -> list[dict]:
    rows = run_json([sys.executable, script, "--json", "--size", str(size), "--iters",
                     str(args.iters), "--cycles", str(args.cycles), "--spin-us", str(spin),
                     "--ops", "read,write"] + ([] if args.apart else ["--alternate"]), env)
    return [{"impl": f"{label} spin_us={spin}", "op": r["op"], "size": size, "p50": r["p50_us"],
             "p99": r["p99_us"], "cycles": r["cycle_ops_s"],
             "lost": r["lost_wakeups"]["active"] + r["lost_wakeups"]["passive"]} for r in rows]


def span(values: list[float], fmt: str) -> str:
    lo, hi = min(values), max(values)
    return format(lo, fmt) if lo == hi else f"{lo:{fmt}}-{hi:{fmt}}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--sizes", default="8,4096", help="bytes per op, comma-separated")
    ap.add_argument("--iters", type=int, default=2000, help="timed ops per latency figure")
    ap.add_argument("--cycles", type=int, default=1000, help="full cycles per Python figure")
    ap.add_argument("--spins", default="50,0", help="Python spin_us values [50 (default),0]")
    ap.add_argument("--nxc", default=os.path.join(ROOT, "build", "tools", "nxc"))
    ap.add_argument("--bench", action="append", default=[], metavar="LABEL=PATH",
                    help="a Python bench.py to run [python=python/examples/bench.py]")
    ap.add_argument("--apart", action="store_true",
                    help="time Python's reads and writes in a batch each (as C's), not alternated")
    ap.add_argument("--json", action="store_true", help="every measured row as a JSON line")
    args = ap.parse_args()
    benches = [b.split("=", 1) for b in args.bench] or [
        ["python", os.path.join(ROOT, "python", "examples", "bench.py")]]
    env = dict(os.environ)
    env.setdefault("NIXL_CONNECT_LIB", os.path.join(ROOT, "build", "libnixl_connect.so"))
    sizes = [int(s) for s in args.sizes.split(",")]
    spins = [int(s) for s in args.spins.split(",")]

    jobs = [("C", None, None)] + [(label, path, spin) for label, path in benches for spin in spins]
    rows: list[dict] = []
    for rnd in range(args.rounds):
        k = rnd % len(jobs)
        for label, path, spin in jobs[k:] + jobs[:k]:
            for size in sizes:
                got = (c_rows(args, size, env) if path is None
                       else py_rows(args, label, path, spin, size, env))
                for r in got:
                    r["round"] = rnd
                    if args.json:
                        print(json.dumps(r), flush=True)
                rows += got
        print(f"# round {rnd + 1}/{args.rounds} done, load average "
              f"{os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)

    impls = list(dict.fromkeys(r["impl"] for r in rows))
    print(f"{args.rounds} rounds; ranges over the rounds; latency begin -> complete on the "
          f"active side, us; Python's reads and writes "
          f"{'in a batch each' if args.apart else 'alternated in one batch'}, C's in a batch each")
    print(f"| implementation | size | op | p50 | p99 | read p50 - write p50 | cycles/s | "
          f"cycles/s vs C |")
    print("|---|---|---|---|---|---|---|---|")
    for impl in impls:
        for size in sizes:
            for op in ("write", "read"):
                mine = [r for r in rows if r["impl"] == impl and r["size"] == size and r["op"] == op]
                c = {r["round"]: r for r in rows
                     if r["impl"] == "C" and r["size"] == size and r["op"] == op}
                diff = ""
                if op == "read":
                    w = {r["round"]: r["p50"] for r in rows
                         if r["impl"] == impl and r["size"] == size and r["op"] == "write"}
                    diff = span([r["p50"] - w[r["round"]] for r in mine], ".1f")
                ratio = "-" if impl == "C" else span(
                    [r["cycles"] / c[r["round"]]["cycles"] for r in mine], ".2f")
                print(f"| {impl} | {size} | {op} | {span([r['p50'] for r in mine], '.1f')} | "
                      f"{span([r['p99'] for r in mine], '.0f')} | {diff} | "
                      f"{span([r['cycles'] for r in mine], '.0f')} | {ratio} |")
    # Per round, in round order: read p50 - write p50 of each implementation
    # (point 6's figure, paired within the round), and, with several
    # --bench trees, each tree's p50 minus the first tree's in the same round.
    rounds = sorted({r["round"] for r in rows})
    p50 = {(r["impl"], r["size"], r["op"], r["round"]): r["p50"] for r in rows}
    print("\nper round, in round order (us):")
    for size in sizes:
        for impl in impls:
            diffs = [p50[(impl, size, "read", k)] - p50[(impl, size, "write", k)] for k in rounds]
            print(f"| {impl} | {size} | read - write | {', '.join(f'{d:.1f}' for d in diffs)} |")
        for label, _ in benches[1:]:
            for spin in spins:
                mine, ref = f"{label} spin_us={spin}", f"{benches[0][0]} spin_us={spin}"
                for op in ("write", "read"):
                    d = [p50[(mine, size, op, k)] - p50[(ref, size, op, k)] for k in rounds]
                    print(f"| {mine} - {benches[0][0]} | {size} | {op} p50 | "
                          f"{', '.join(f'{x:.1f}' for x in d)} |")
    lost = sum(r.get("lost", 0) for r in rows)
    print(f"# completions found by the Python backstop timer, not the fd: {lost}")


if __name__ == "__main__":
    main()
