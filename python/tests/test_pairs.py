"""Every operation pair from Python: readable/read and writable/write, one
and many descriptors, in one process and across two processes."""

import asyncio

import pytest

from support import digest, nc, pattern, read_line, run, spawn_peer

LAYOUTS = {
    "one": [4096],
    "three": [1, 4096, (1 << 20) + 3],
    "many": [512] * 63 + [0],
}


def buffers(sizes, data=b""):
    out, off = [], 0
    for n in sizes:
        out.append(bytearray(data[off:off + n]) if data else bytearray(n))
        off += n
    return out


@pytest.mark.parametrize("layout", LAYOUTS)
def test_readable_read_in_process(pair, layout):
    p, a = pair
    sizes = LAYOUTS[layout]
    data = pattern(sum(sizes), seed=11)
    src, dst = buffers(sizes, data), buffers(sizes)

    async def main():
        readable = p.create_readable([nc.Descriptor(b) for b in src])
        assert readable.status == nc.OperationStatus.INITIALIZED
        assert readable.operation_kind == nc.OperationKind.READ
        md = nc.RdmaMetadata.model_validate_json(readable.metadata().model_dump_json())
        assert md.operation_kind == nc.OperationKind.READ
        assert [d.size for d in md.descriptors] == sizes
        local = [nc.Descriptor(b) for b in dst]
        with readable, await a.begin_read(md, local) as read:
            assert read.operation_kind == nc.OperationKind.READ
            await asyncio.gather(read.wait_for_completion(), readable.wait_for_completion())
            assert read.status == nc.OperationStatus.COMPLETE
            assert readable.status == nc.OperationStatus.COMPLETE
            assert read.results() == local
        assert readable.status == nc.OperationStatus.COMPLETE  # kept after release

    run(main())
    assert b"".join(dst) == data


@pytest.mark.parametrize("layout", LAYOUTS)
def test_writable_write_in_process(pair, layout):
    p, a = pair
    sizes = LAYOUTS[layout]
    data = pattern(sum(sizes), seed=12)
    src, dst = buffers(sizes, data), buffers(sizes)

    async def main():
        writable = await p.create_writable([nc.Descriptor(b) for b in dst])  # awaitable too
        assert writable.operation_kind == nc.OperationKind.WRITE
        md = nc.RdmaMetadata.model_validate_json(writable.metadata().model_dump_json())
        assert md.operation_kind == nc.OperationKind.WRITE
        with writable, await a.begin_write([nc.Descriptor(b) for b in src], md) as write:
            await write.wait_for_completion()
            await writable.wait_for_completion()
            assert write.status == nc.OperationStatus.COMPLETE
            assert str(writable.status) == "DONE"

    run(main())
    assert b"".join(dst) == data


def test_single_descriptor_not_in_a_list(pair):
    p, a = pair
    src, dst = bytearray(b"hello, world"), bytearray(12)

    async def main():
        await p.initialize()  # Dynamo's (now a no-op)
        with p.create_readable(nc.Descriptor(src)) as readable:
            with await a.begin_read(readable.metadata(), nc.Descriptor(dst)) as read:
                await read.wait_for_completion()
            await readable.wait_for_completion()

    run(main())
    assert dst == src


def test_hex_encoded_metadata_for_older_peers(pair):
    p, a = pair
    src, dst = bytearray(pattern(100, 5)), bytearray(100)

    async def main():
        with p.create_readable(nc.Descriptor(src)) as readable:
            md = readable.metadata(hex_encode=True)
            assert not md.nixl_metadata.startswith("b64:")
            int(md.nixl_metadata, 16)
            md = nc.RdmaMetadata.model_validate_json(md.model_dump_json())
            with await a.begin_read(md, nc.Descriptor(dst)) as read:
                await read.wait_for_completion()

    run(main())
    assert dst == src


@pytest.mark.parametrize("sizes", ["4096", "1,65536,3"])
def test_python_passive_writable_python_active_write_across_processes(sizes):
    """A writable in a child process, written from this one."""
    layout = [int(s) for s in sizes.split(",")]
    data = pattern(sum(layout), seed=21)

    async def main():
        peer = await spawn_peer("passive", "writable", sizes)
        md = nc.RdmaMetadata.model_validate_json(await read_line(peer))
        with nc.Connector() as a:
            with await a.begin_write([nc.Descriptor(b) for b in buffers(layout, data)], md) as w:
                await w.wait_for_completion()
        assert await read_line(peer) == digest(data)
        assert await peer.wait() == 0

    run(main())


@pytest.mark.parametrize("sizes", ["4096", "1,65536,3"])
def test_python_passive_readable_python_active_read_across_processes(sizes):
    """A readable here, read by a child process."""
    layout = [int(s) for s in sizes.split(",")]
    data = pattern(sum(layout), seed=22)

    async def main():
        with nc.Connector() as p:
            src = buffers(layout, data)
            with p.create_readable([nc.Descriptor(b) for b in src]) as readable:
                peer = await spawn_peer("active", "read", sizes)
                peer.stdin.write(readable.metadata().model_dump_json().encode() + b"\n")
                await peer.stdin.drain()
                await readable.wait_for_completion()
                assert await read_line(peer) == digest(data)
        assert await peer.wait() == 0

    run(main())


def test_read_results_only_once_complete():
    # By messages: a same-host direct read is COMPLETE when begin_read returns.
    src, dst = bytearray(64), bytearray(64)

    async def main():
        with nc.Connector(direct_local=False) as p, nc.Connector() as a, \
                p.create_readable(nc.Descriptor(src)) as readable:
            read = await a.begin_read(readable.metadata(), nc.Descriptor(dst))
            read.cancel()
            with pytest.raises(nc.NixlConnectError) as e:
                read.results()
            assert isinstance(e.value, RuntimeError)  # as in Dynamo
            assert e.value.name == "NXC_ERR_STATE"
            read.release()
            with pytest.raises(RuntimeError):
                read.results()
            assert read.status == nc.OperationStatus.CANCELLED

    run(main())


def test_connector_names_and_metadata_model(pair):
    p, a = pair
    assert p.name == "py-passive" and str(p) == "py-passive"
    with nc.Connector() as c:
        assert len(c.name) == 32 and int(c.name, 16) >= 0  # 32 random hex digits
    buf = bytearray(16)

    async def main():
        with p.create_writable([nc.Descriptor(buf), nc.Descriptor(bytearray(0))]) as w:
            md = w.metadata()
            assert md.worker_name == "py-passive"
            assert md.model_dump()["descriptors"][0] == {"device": "cpu", "ptr": nc.Descriptor(buf).ptr, "size": 16}
            again = nc.RdmaMetadata.model_validate(md.model_dump())
            assert again == md and again.model_dump_json() == md.model_dump_json()
            assert len(md.notification_key) >= 32
            assert isinstance(md.to_descriptors(), list)
            with pytest.raises(AttributeError):
                md.operation_kind = 1  # frozen, as the pydantic model

    run(main())
