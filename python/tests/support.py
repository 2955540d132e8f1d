"""Helpers shared by the tests and by peer.py (no pytest here)."""

import asyncio
import hashlib
import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
# NXC_TEST_INSTALLED=1: test the nixl_connect that is installed, not this tree's.
if os.environ.get("NXC_TEST_INSTALLED") != "1" and str(ROOT / "python") not in sys.path:
    sys.path.insert(0, str(ROOT / "python"))

import nixl_connect as nc  # noqa: E402,F401


def pattern(size: int, seed: int = 1) -> bytes:
    """Deterministic bytes that differ per seed and per position."""
    block = hashlib.sha256(seed.to_bytes(8, "little")).digest() * 8  # 256 bytes
    return (block * (size // len(block) + 1))[:size]


def digest(data) -> str:
    return hashlib.sha256(bytes(data)).hexdigest()


PEER = str(pathlib.Path(__file__).with_name("peer.py"))


def run(coro, timeout: float = 60):
    """Runs a coroutine in a fresh loop, bounded so a hang fails instead of
    stalling the suite."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def spawn_peer(*args: str):
    """peer.py in a child process, its stdin/stdout as JSON lines."""
    return await asyncio.create_subprocess_exec(
        sys.executable, PEER, *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 24,
    )


async def read_line(proc) -> str:
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    assert line, f"peer exited early (rc {await proc.wait()})"
    return line.decode().strip()
