#!/usr/bin/env python3
"""What a full cycle costs from Python, in one process: the Python
counterpart of build/bench/nxc_reg_cycle (bench/reg_cycle.c).

  /usr/bin/python3 python/examples/reg_cycle.py [--size 4096] [--iters 5000]

Two connectors in one asyncio loop (no socket, no second process): a passive
one exposing a buffer and an active one. For each way of registering the
passive memory it times
  expose   create_readable + metadata() + release, no transfer: the passive
           side's own cost per op;
  cycle    create the passive op, serialize its metadata (model_dump_json),
           parse it (model_validate_json), begin the write (or read), await
           both ops, release both.
Registration modes:
  cache    a new Descriptor over the same buffer per op; the C library's
           registration cache (the default) finds the registration again
  prereg   one Descriptor registered once with register_with_connector, as a
           pool slot
Each figure is ops/s by the wall clock and, in brackets, by this process's
CPU time (one thread does the work, so on a loaded machine the CPU figure is
the one that still compares modes, and compares with nxc_reg_cycle, fairly).
Public API only; spin_us=0, so waiting costs no CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import nixl_connect as nc  # noqa: E402


async def expose(passive: nc.Connector, slot) -> None:
    with passive.create_readable(slot()) as op:
        op.metadata()


async def cycle(passive: nc.Connector, active: nc.Connector, slot, local, kind: str) -> None:
    create = passive.create_writable if kind == "write" else passive.create_readable
    with create(slot()) as op:
        md = nc.RdmaMetadata.model_validate_json(op.metadata().model_dump_json())
        if kind == "write":
            transfer = await active.begin_write(local, md)
        else:
            transfer = await active.begin_read(md, local)
        with transfer:
            await transfer.wait_for_completion()
        await op.wait_for_completion()


async def timed(n: int, step) -> tuple[float, float]:
    for _ in range(min(n, 100)):  # warm up: endpoints, caches
        await step()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        await step()
    return n / (time.perf_counter() - wall), n / (time.process_time() - cpu)


async def main(size: int, iters: int) -> None:
    with nc.Connector("reg-passive", spin_us=0) as passive, \
            nc.Connector("reg-active", spin_us=0) as active:
        buf = bytearray(size)
        local = nc.Descriptor(bytearray(size))
        pool_slot = nc.Descriptor(buf)
        pool_slot.register_with_connector(passive)
        modes = {"cache": lambda: nc.Descriptor(buf), "prereg": lambda: pool_slot}
        print(f"# {size} bytes, {iters} iterations; ops/s by wall clock (by CPU time)")
        print(f"{'mode':8} {'expose':>18} {'cycle write':>18} {'cycle read':>18}")
        for mode, slot in modes.items():
            figures = [await timed(iters, lambda: expose(passive, slot))]
            for kind in ("write", "read"):
                step = lambda: cycle(passive, active, slot, local, kind)  # noqa: E731
                figures.append(await timed(iters, step))
            print(f"{mode:8} " + " ".join(f"{w:8.0f} ({c:7.0f})" for w, c in figures))
        pool_slot.deregister_with_connector(passive)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--size", type=int, default=4096, help="bytes per op [4096]")
    ap.add_argument("--iters", type=int, default=5000, help="timed ops per figure [5000]")
    args = ap.parse_args()
    asyncio.run(main(args.size, args.iters))
