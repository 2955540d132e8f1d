#!/usr/bin/env python3
"""Latency and full-cycle rate of nixl_connect from Python, between two
processes on this host (the Python counterpart of `nxc bench`).

  /usr/bin/python3 python/examples/bench.py [--iters 1000] [--size 8] [--cycles 2000] [--prereg]

Measures, with a passive worker in a child process (this script with
--passive) joined by its stdin/stdout, metadata as JSON lines:
  lat      begin_write/begin_read to wait_for_completion returning on the
           active side, 8 B by default, metadata parsed beforehand, endpoint
           warm (the passive worker creates all ops and sends their metadata
           first): p50, p90, p99 in microseconds; a batch per kind, or with
           --alternate one batch alternating the kinds op by op;
  cycle    the application's whole loop, one op at a time: create the
           passive op, serialize its metadata, send it, parse, begin,
           complete on both sides, release (ops/s); with --prereg the
           passive buffer is one Descriptor registered once;
  cpu us   the CPU time of both processes per full cycle (process_time),
           which stays meaningful on a loaded machine where ops/s does not
           (with the default spin_us it includes the spinning; compare
           with --spin-us 0 for the work alone);
  sleeps   per timed op, how often each side's event loop had nothing to
           run and waited in its selector (a wake-up it then needed): 0
           while it spins through the op.
Like `nxc bench`, the passive worker runs on the first CPU this process
may use and the active one on the second (--no-pin: where the scheduler
likes). bench/python_vs_c.py runs this beside `nxc bench`, interleaved.
Ends with how many completions the C library failed to announce on the
connector fd (lost wake-ups, found by the timer the C library's
nxc_connector_timeout_ms asks for).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import nixl_connect as nc  # noqa: E402


async def stdio_streams():
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, sys.stdout
    )
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    return reader, writer


def two_cpus() -> list[int]:
    """As `nxc bench` pins its workers: passive on the first CPU this
    process may use, active on the second ([] with fewer than two)."""
    cpus = sorted(os.sched_getaffinity(0))
    return cpus[:2] if len(cpus) >= 2 else []


class SleepCounter:
    """Counts the running loop's waits in its selector with a timeout other
    than 0 (asyncio's private selector: a benchmark's look inside)."""

    def __init__(self) -> None:
        self.n = 0
        sel = asyncio.get_running_loop()._selector
        inner = sel.select

        def select(timeout=None):
            if timeout is None or timeout > 0:
                self.n += 1
            return inner(timeout)

        sel.select = select


async def passive(spin_us: int) -> None:
    sleeps = SleepCounter()
    reader, writer = await stdio_streams()
    with nc.Connector(spin_us=spin_us) as conn:
        while True:
            line = await reader.readline()
            if not line:
                return
            cmd = json.loads(line)
            kinds, size, n = cmd["kind"].split(","), cmd["size"], cmd["n"]
            cpu0, slept = time.process_time(), 0
            creates = [conn.create_writable if k == "write" else conn.create_readable for k in kinds]
            create = creates[0]
            if cmd["mode"] == "lat":  # op i of kind i % len(kinds) (--alternate)
                buf = bytearray(size * n)
                view = memoryview(buf)
                ops = [creates[i % len(creates)](nc.Descriptor(view[i * size:(i + 1) * size]))
                       for i in range(n)]
                writer.write(
                    (json.dumps([op.metadata().model_dump_json() for op in ops]) + "\n").encode()
                )
                await writer.drain()
                before = sleeps.n
                for op in ops:  # in order, as `nxc bench` does: one waiter at a time
                    await op.wait_for_completion()
                slept = sleeps.n - before
                for op in ops:
                    op.release()
                del view
            elif cmd.get("prereg"):  # cycle over one descriptor registered once (a pool slot)
                slot = nc.Descriptor(bytearray(size))
                slot.register_with_connector(conn)
                for _ in range(n):
                    with create(slot) as op:
                        writer.write(op.metadata().model_dump_json().encode() + b"\n")
                        await op.wait_for_completion()
                slot.deregister_with_connector(conn)
            else:  # cycle: one op at a time
                buf = bytearray(size)
                for _ in range(n):
                    with create(nc.Descriptor(buf)) as op:
                        writer.write(op.metadata().model_dump_json().encode() + b"\n")
                        await op.wait_for_completion()
            writer.write(json.dumps({"lost_wakeups": conn.lost_wakeups, "sleeps": slept,
                                     "cpu_s": time.process_time() - cpu0}).encode() + b"\n")
            await writer.drain()


def pct(sorted_us: list[float], p: float) -> float:
    return sorted_us[min(len(sorted_us) - 1, int(p / 100 * len(sorted_us)))]


async def active(args) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable, os.path.abspath(__file__), "--passive", "--spin-us", str(args.spin_us),
        *(["--cpu", str(args.cpus[0])] if args.cpus else []),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 26,
    )
    if args.cpus:  # only now: the child would inherit the mask
        os.sched_setaffinity(0, {args.cpus[1]})
    results = []
    sleeps = SleepCounter()
    size = args.size
    desc = nc.Descriptor(bytearray(b"x" * size))
    with nc.Connector(spin_us=args.spin_us) as conn:

        async def start(kind, md):
            if kind == "write":
                return await conn.begin_write(desc, md)
            return await conn.begin_read(md, desc)

        async def latency(kinds):
            """Times op after op, op i of kinds[i % len(kinds)]; returns
            each kind's sorted latencies and both sides' sleeps per op."""
            n = (args.iters + args.warmup) * len(kinds)
            child.stdin.write(json.dumps({"mode": "lat", "kind": ",".join(kinds), "size": size,
                                          "n": n}).encode() + b"\n")
            mds = [nc.RdmaMetadata.model_validate_json(t) for t in json.loads(await child.stdout.readline())]
            lat = {k: [] for k in kinds}
            before = sleeps.n
            for i, md in enumerate(mds):
                kind = kinds[i % len(kinds)]
                t0 = time.perf_counter_ns()
                op = await start(kind, md)
                await op.wait_for_completion()
                t1 = time.perf_counter_ns()
                op.release()
                if i >= args.warmup * len(kinds):
                    lat[kind].append((t1 - t0) / 1000)
            end = json.loads(await child.stdout.readline())
            for v in lat.values():
                v.sort()
            return lat, (sleeps.n - before) / n, end["sleeps"] / n

        kinds = args.ops.split(",")
        if args.alternate:
            alternated = await latency(kinds)
        for kind in kinds:
            lat, slept, passive_slept = alternated if args.alternate else await latency([kind])
            lat = lat[kind]
            # full cycles
            m = args.cycles
            child.stdin.write(json.dumps({"mode": "cycle", "kind": kind, "size": size, "n": m,
                                          "prereg": args.prereg}).encode() + b"\n")
            t0, cpu0 = time.perf_counter(), time.process_time()
            for _ in range(m):
                md = nc.RdmaMetadata.model_validate_json(await child.stdout.readline())
                with await start(kind, md) as op:
                    await op.wait_for_completion()
            rate = m / (time.perf_counter() - t0)
            active_cpu = time.process_time() - cpu0
            end = json.loads(await child.stdout.readline())
            passive_lost = end["lost_wakeups"]
            cpu_us = (active_cpu + end["cpu_s"]) / m * 1e6
            results.append((kind, size, pct(lat, 50), pct(lat, 90), pct(lat, 99), rate, cpu_us,
                            slept, passive_slept))
        lost = (conn.lost_wakeups, passive_lost)
    child.stdin.close()
    await child.wait()
    if args.json:
        for kind, size, p50, p90, p99, rate, cpu_us, slept, pslept in results:
            print(json.dumps({"op": kind, "size": size, "p50_us": round(p50, 1), "p90_us": round(p90, 1),
                              "p99_us": round(p99, 1), "cycle_ops_s": round(rate),
                              "cycle_cpu_us": round(cpu_us, 1),
                              "sleeps_per_op": {"active": round(slept, 3), "passive": round(pslept, 3)},
                              "lost_wakeups": {"active": lost[0], "passive": lost[1]}}))
        return
    print(f"{'op':6} {'size':>6} {'p50 us':>8} {'p90 us':>8} {'p99 us':>8} {'cycle ops/s':>12}"
          f" {'cpu us':>7} {'sleeps/op act,pas':>18}")
    for kind, size, p50, p90, p99, rate, cpu_us, slept, pslept in results:
        print(f"{kind:6} {size:>6} {p50:8.1f} {p90:8.1f} {p99:8.1f} {rate:12.0f} {cpu_us:7.1f}"
              f" {slept:9.2f},{pslept:.2f}")
    print(f"# spin_us {args.spin_us}; wake-ups lost by the C library and rescued by the "
          f"nxc_connector_timeout_ms timer: active {lost[0]}, passive {lost[1]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--passive", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--ops", default="write,read", help="write, read or write,read")
    ap.add_argument("--size", type=int, default=8, help="bytes per op [8]")
    ap.add_argument("--iters", type=int, default=1000, help="timed ops for latency [1000]")
    ap.add_argument("--warmup", type=int, default=50, help="untimed ops first [50]")
    ap.add_argument("--cycles", type=int, default=2000, help="full cycles [2000]")
    ap.add_argument("--spin-us", type=int, default=50,
                    help="Connector(spin_us=...) on both sides: keep driving an awaited op "
                         "through the loop this long after the last event [50, the default]")
    ap.add_argument("--prereg", action="store_true",
                    help="cycle: the passive buffer is one Descriptor registered once "
                         "(register_with_connector), as a pool slot")
    ap.add_argument("--alternate", action="store_true",
                    help="latency: one batch whose ops alternate between the --ops kinds "
                         "(read, write, read, ...) instead of a batch per kind, so that both "
                         "kinds are timed under the same conditions (see bench/python_vs_c.py)")
    ap.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    ap.add_argument("--no-pin", action="store_true",
                    help="leave both processes where the scheduler puts them")
    ap.add_argument("--cpu", type=int, default=-1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.cpus = [] if args.no_pin or args.passive else two_cpus()
    if args.cpu >= 0:
        os.sched_setaffinity(0, {args.cpu})
    asyncio.run(passive(args.spin_us) if args.passive else active(args))


if __name__ == "__main__":
    main()
