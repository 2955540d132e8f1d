#!/usr/bin/env python3
"""A second Python worker for the tests, driven over stdin/stdout.

  peer.py passive readable|writable SIZE[,SIZE...] [SEED]
      exposes buffers (a readable one holds pattern(SEED)), prints the
      metadata as one JSON line, waits for the peer; then prints the
      sha256 of its buffers (writable) or "done" (readable).
  peer.py active read|write SIZE[,SIZE...] [SEED]
      reads one metadata line from stdin, reads or writes (a write sends
      pattern(SEED)); prints the sha256 of what it read, or "done".
"""

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from support import digest, nc, pattern  # noqa: E402


def buffers(sizes, data=b""):
    bufs, off = [], 0
    for n in sizes:
        bufs.append(bytearray(data[off:off + n]) if data else bytearray(n))
        off += n
    return bufs


async def main(role: str, kind: str, sizes, seed: int) -> None:
    total = sum(sizes)
    with nc.Connector() as conn:
        if role == "passive":
            bufs = buffers(sizes, pattern(total, seed) if kind == "readable" else b"")
            descs = [nc.Descriptor(b) for b in bufs]
            create = conn.create_readable if kind == "readable" else conn.create_writable
            with create(descs) as op:
                print(op.metadata().model_dump_json(), flush=True)
                await asyncio.wait_for(op.wait_for_completion(), 60)
            print(digest(b"".join(bufs)) if kind == "writable" else "done", flush=True)
        else:
            loop = asyncio.get_running_loop()
            text = await loop.run_in_executor(None, sys.stdin.readline)
            md = nc.RdmaMetadata.model_validate_json(text)
            bufs = buffers(sizes, pattern(total, seed) if kind == "write" else b"")
            descs = [nc.Descriptor(b) for b in bufs]
            if kind == "read":
                op = await conn.begin_read(md, descs)
            else:
                op = await conn.begin_write(descs, md)
            with op:
                await asyncio.wait_for(op.wait_for_completion(), 60)
            print(digest(b"".join(bufs)) if kind == "read" else "done", flush=True)


if __name__ == "__main__":
    role, kind, sizes = sys.argv[1], sys.argv[2], [int(s) for s in sys.argv[3].split(",")]
    asyncio.run(main(role, kind, sizes, int(sys.argv[4]) if len(sys.argv) > 4 else 1))
