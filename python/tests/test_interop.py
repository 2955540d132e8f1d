"""Python and the C tool on either side: `nxc get` reads a Python readable;
Python reads what `nxc serve` exposes."""

import asyncio
import os
import socket

import pytest

from support import ROOT, nc, pattern, run

TEST_PEER = os.environ.get("NXC_TEST_PEER") or str(ROOT / "build" / "tests" / "e2e" / "nxc_test_peer")


@pytest.mark.parametrize("sizes", [[300_000], [1, 4096, 70_000, 0, 5]])
def test_python_readable_read_by_nxc_get(nxc_bin, tmp_path, sizes):
    data = pattern(sum(sizes), seed=31)
    out = tmp_path / "copy.bin"

    async def main():
        with nc.Connector() as conn:
            bufs, off = [], 0
            for n in sizes:
                bufs.append(bytearray(data[off:off + n]))
                off += n
            with conn.create_readable([nc.Descriptor(b) for b in bufs]) as readable:
                text = readable.metadata().model_dump_json()
                get = await asyncio.create_subprocess_exec(
                    nxc_bin, "get", "--timeout", "60", "-", str(out),
                    stdin=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
                get.stdin.write(text.encode() + b"\n")
                await get.stdin.drain()
                get.stdin.close()
                await readable.wait_for_completion()  # drives this side meanwhile
                _, err = await get.communicate()
                assert get.returncode == 0, err.decode()

    run(main())
    assert out.read_bytes() == data


@pytest.mark.parametrize("size", [200_000, 0])
def test_nxc_serve_read_by_python(nxc_bin, tmp_path, size):
    data = pattern(size, seed=32)
    src = tmp_path / "served.bin"
    src.write_bytes(data)

    async def main():
        serve = await asyncio.create_subprocess_exec(
            nxc_bin, "serve", "--timeout", "60", str(src),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, limit=1 << 24)
        line = await asyncio.wait_for(serve.stdout.readline(), 60)
        md = nc.RdmaMetadata.model_validate_json(line)
        assert md.operation_kind == nc.OperationKind.READ
        dst = [bytearray(d.size) for d in md.descriptors]
        with nc.Connector() as conn:
            with await conn.begin_read(md, [nc.Descriptor(b) for b in dst]) as read:
                await read.wait_for_completion()
        _, err = await serve.communicate()
        assert serve.returncode == 0, err.decode()
        return b"".join(dst)

    assert run(main()) == data


def test_nxc_get_refuses_python_writable_metadata(nxc_bin, tmp_path):
    """The kind travels in the metadata: the C tool sees a writable's."""
    async def main():
        with nc.Connector() as conn:
            with conn.create_writable(nc.Descriptor(bytearray(64))) as writable:
                get = await asyncio.create_subprocess_exec(
                    nxc_bin, "get", writable.metadata().model_dump_json(),
                    str(tmp_path / "x"), stderr=asyncio.subprocess.PIPE)
                _, err = await get.communicate()
                return get.returncode, err.decode()

    rc, err = run(main())
    assert rc != 0 and "WRITE" in err, err
    assert not os.path.exists(tmp_path / "x")


def test_c_active_writes_python_writable_and_reads_it_back():
    """nxc_test_peer (tests/e2e, C) writes its pattern into a Python
    writable of three buffers, then reads the same buffers back from a
    Python readable and checks them against that pattern itself."""
    if not os.path.exists(TEST_PEER):
        pytest.fail(f"nxc_test_peer is not built at {TEST_PEER} (set NXC_TEST_PEER)")
    sizes = [3, 65536, 1000]
    spec = f"77 {len(sizes)} " + " ".join(map(str, sizes))

    async def main():
        ours, theirs = socket.socketpair()
        peer = await asyncio.create_subprocess_exec(TEST_PEER, "serve", str(theirs.fileno()),
                                                    pass_fds=[theirs.fileno()])
        theirs.close()
        reader, writer = await asyncio.open_unix_connection(sock=ours, limit=1 << 24)

        async def ask(*lines):
            writer.write("".join(line + "\n" for line in lines).encode())
            await writer.drain()
            return (await asyncio.wait_for(reader.readline(), 60)).decode().split()

        bufs = [bytearray(n) for n in sizes]
        with nc.Connector() as conn:
            with conn.create_writable([nc.Descriptor(b) for b in bufs]) as w:
                ok, wid = await ask(f"ACTIVE W {spec}", w.metadata().model_dump_json())
                assert ok == "OK", wid
                await w.wait_for_completion()
                res = await ask(f"WAIT {wid} 30000")
                assert res[:2] == ["RES", "0"], res  # the C side completed its write
            assert any(any(b) for b in bufs)
            with conn.create_readable([nc.Descriptor(b) for b in bufs]) as r:
                ok, rid = await ask(f"ACTIVE R {spec}", r.metadata().model_dump_json())
                assert ok == "OK", rid
                await r.wait_for_completion()
                res = await ask(f"WAIT {rid} 30000")
                # RES <rc> <status> <verify>: 0 = the bytes are the C pattern
                assert res[:4] == ["RES", "0", "3", "0"], res
        assert await ask("QUIT") == ["BYE"]
        writer.close()
        assert await peer.wait() == 0

    run(main())
