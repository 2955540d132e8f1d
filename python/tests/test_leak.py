"""No leak over 10,000 full cycles: create, metadata as text, parse, begin,
complete on both sides, release. RSS (VmRSS) and the number of open fds are
compared before and after; both are printed."""

import asyncio
import os

from support import nc, run

CYCLES = 10_000
WARMUP = 500


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_no_leak_over_10000_operations():
    async def cycle(p, a, i, inbox, src):
        if i % 2:
            with p.create_writable(nc.Descriptor(inbox)) as passive:
                md = nc.RdmaMetadata.model_validate_json(passive.metadata().model_dump_json())
                with await a.begin_write(nc.Descriptor(src), md) as active:
                    await asyncio.gather(active.wait_for_completion(), passive.wait_for_completion())
        else:
            with p.create_readable(nc.Descriptor(src)) as passive:
                md = nc.RdmaMetadata.model_validate_json(passive.metadata().model_dump_json())
                with await a.begin_read(md, nc.Descriptor(inbox)) as active:
                    await asyncio.gather(active.wait_for_completion(), passive.wait_for_completion())

    async def main():
        with nc.Connector() as p, nc.Connector() as a:
            inbox, src = bytearray(4096), bytes(range(256)) * 16
            for i in range(WARMUP):
                await cycle(p, a, i, inbox, src)
            before = (rss_kib(), fds())
            for i in range(CYCLES):
                await cycle(p, a, i, inbox, src)
            after = (rss_kib(), fds())
            assert inbox == src
            return before, after

    (rss0, fd0), (rss1, fd1) = run(main(), timeout=120)
    print(f"\n{CYCLES} cycles: RSS {rss0} KiB -> {rss1} KiB ({rss1 - rss0:+d} KiB), fds {fd0} -> {fd1}")
    assert rss1 - rss0 < 16 * 1024, "RSS grew by more than 16 MiB"
    assert fd1 <= fd0, "file descriptors leaked"
