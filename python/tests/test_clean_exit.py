"""A peer that finishes and exits at once never makes the Python side fail
(issue 10). Either the peer is active (`nxc put` writes into a Python
writable, `nxc get` reads a Python readable) or passive (`nxc recv` exposes
a writable Python writes into, `nxc serve` a readable Python reads), and it
exits as soon as its op is COMPLETE; the Python op, awaited on the
connector's fd in asyncio, must end COMPLETE with every byte.

Both processes share one core with a busy loop, which makes the race of the
peer's exit (its pidfd) against its last messages likely: before the C fix,
1.5-25 % of such exits failed with NXC_ERR_PEER_FAILED. NXC_PY_CLEAN_EXITS
sets the number of exits per case (default 30)."""

import asyncio
import os
import subprocess
import sys

import pytest

from support import nc, pattern, run

EXITS = int(os.environ.get("NXC_PY_CLEAN_EXITS", "30"))


@pytest.fixture
def one_busy_core():
    """This process (and what it spawns) on core 0, with a busy loop there."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {0})
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        hog.kill()
        hog.wait()
        os.sched_setaffinity(0, before)


@pytest.mark.parametrize("kind, size", [("write", 4096), ("write", 1 << 20),
                                        ("read", 4096), ("read", 1 << 20)])
def test_clean_exit_of_an_active_peer_is_no_failure(nxc_bin, tmp_path, one_busy_core, kind,
                                                    size):
    data = pattern(size, seed=41)
    src, meta, out = tmp_path / "src.bin", tmp_path / "meta.json", tmp_path / "out.bin"
    src.write_bytes(data)
    failures = []

    async def once(conn, i):
        inbox = bytearray(size)
        if kind == "write":
            op = conn.create_writable(nc.Descriptor(inbox))
            args = ["put", "--timeout", "60", str(src), f"@{meta}"]
        else:
            op = conn.create_readable(nc.Descriptor(bytearray(data)))
            args = ["get", "--timeout", "60", f"@{meta}", str(out)]
        with op:
            meta.write_text(op.metadata().model_dump_json() + "\n")
            peer = await asyncio.create_subprocess_exec(
                nxc_bin, *args, stderr=asyncio.subprocess.PIPE)
            try:
                await op.wait_for_completion()
            except nc.NixlConnectError as e:
                failures.append(f"exit {i}: {e.name}: {e.detail}")
            _, err = await peer.communicate()
            assert peer.returncode == 0, f"exit {i}: the peer failed: {err.decode()}"
            if kind == "write":
                assert inbox == data, f"exit {i}: the writable's bytes differ"
            else:
                assert out.read_bytes() == data, f"exit {i}: the reader's copy differs"

    async def main():
        with nc.Connector("py-clean-exit") as conn:
            for i in range(EXITS):
                await once(conn, i)

    run(main(), timeout=600)
    assert not failures, f"{len(failures)} false failures in {EXITS} clean exits: {failures[:3]}"


@pytest.mark.parametrize("kind, size", [("write", 4096), ("read", 4096), ("read", 1 << 20)])
def test_clean_exit_of_a_passive_peer_is_no_failure(nxc_bin, tmp_path, one_busy_core, kind,
                                                    size):
    data = pattern(size, seed=42)
    src, out = tmp_path / "src.bin", tmp_path / "out.bin"
    src.write_bytes(data)
    failures = []

    async def once(conn, i):
        if kind == "write":
            args = ["recv", "--timeout", "60", "--size", str(size), str(out)]
        else:
            args = ["serve", "--timeout", "60", str(src)]
        peer = await asyncio.create_subprocess_exec(
            nxc_bin, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        md = nc.RdmaMetadata.model_validate_json((await peer.stdout.readline()).decode())
        inbox = bytearray(size)
        if kind == "write":
            op = await conn.begin_write(nc.Descriptor(bytearray(data)), md)
        else:
            op = await conn.begin_read(md, nc.Descriptor(inbox))
        with op:
            try:
                await op.wait_for_completion()
            except nc.NixlConnectError as e:
                failures.append(f"exit {i}: {e.name}: {e.detail}")
        _, err = await peer.communicate()
        assert peer.returncode == 0, f"exit {i}: the peer failed: {err.decode()}"
        if kind == "write":
            assert out.read_bytes() == data, f"exit {i}: the written file differs"
        elif not failures:
            assert inbox == data, f"exit {i}: the bytes read differ"

    async def main():
        with nc.Connector("py-clean-exit") as conn:
            for i in range(EXITS):
                await once(conn, i)

    run(main(), timeout=600)
    assert not failures, f"{len(failures)} false failures in {EXITS} clean exits: {failures[:3]}"
