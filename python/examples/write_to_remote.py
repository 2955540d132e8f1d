#!/usr/bin/env python3
"""The example of Dynamo's WriteOperation page, run between two processes.

  /usr/bin/python3 python/examples/write_to_remote.py [--size BYTES]

A receiving worker (a child process) exposes a buffer with
create_writable() and sends the metadata over a pipe; this process writes a
tensor into it with the page's `write_to_remote`, unchanged apart from the
import. The tensor is a torch tensor when torch is installed, else a numpy
array, else a bytearray: Descriptor takes any of them.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import types

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import nixl_connect  # noqa: E402

# The page says `dynamo.nixl_connect`; here the module is `nixl_connect`.
dynamo = types.SimpleNamespace(nixl_connect=nixl_connect)

try:
    import torch
except ImportError:
    torch = None
try:
    import numpy
except ImportError:
    numpy = None


class Worker:
    def __init__(self, connector: nixl_connect.Connector) -> None:
        self.connector = connector

    # ---- from the page, as written ----
    async def write_to_remote(
      self,
      remote_metadata: dynamo.nixl_connect.RdmaMetadata,
      local_tensor: torch.Tensor
    ) -> None:
      descriptor = dynamo.nixl_connect.Descriptor(local_tensor)

      with await self.connector.begin_write(descriptor, remote_metadata) as write_op:
        # Wait for the operation to complete writing local_tensor to the remote worker.
        await write_op.wait_for_completion()
    # ---- end of the page's code ----


def pattern(size: int) -> bytes:
    return bytes((i * 7 + 3) % 251 for i in range(size))


def make_tensor(size: int):
    data = pattern(size)
    if torch is not None:
        return torch.frombuffer(bytearray(data), dtype=torch.uint8)
    if numpy is not None:
        return numpy.frombuffer(data, dtype=numpy.uint8).copy()
    return bytearray(data)


def receiver(conn, size: int) -> None:
    """The remote worker: exposes `inbox` to be written, waits, checks."""

    async def main() -> None:
        inbox = bytearray(size)
        with nixl_connect.Connector() as connector:
            with connector.create_writable(nixl_connect.Descriptor(inbox)) as writable:
                conn.send(writable.metadata().model_dump_json())
                await asyncio.wait_for(writable.wait_for_completion(), 60)
        conn.send("ok" if bytes(inbox) == pattern(size) else "data differs")

    asyncio.run(main())


async def sender(conn, size: int) -> None:
    loop = asyncio.get_running_loop()
    text = await loop.run_in_executor(None, conn.recv)  # metadata over the pipe
    remote_metadata = nixl_connect.RdmaMetadata.model_validate_json(text)
    local_tensor = make_tensor(size)
    with nixl_connect.Connector() as connector:
        await asyncio.wait_for(Worker(connector).write_to_remote(remote_metadata, local_tensor), 60)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1 << 20, help="bytes to write [1 MiB]")
    args = ap.parse_args()
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    child = ctx.Process(target=receiver, args=(theirs, args.size))
    child.start()
    try:
        asyncio.run(sender(ours, args.size))
        verdict = ours.recv() if ours.poll(60) else "no answer from the receiver"
    finally:
        child.join(60)
    kind = type(make_tensor(1)).__module__.split(".")[0]
    print(f"wrote {args.size} bytes from a {kind} tensor into another process: {verdict}")
    return 0 if verdict == "ok" and child.exitcode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
