"""Python and the C tool on either side: `nxc get` reads a Python readable;
Python reads what `nxc serve` exposes."""

import asyncio
import os

import pytest

from support import nc, pattern, run


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
