"""Behaviour matched to Dynamo's newest nixl_connect source read for issue
16 (ai-dynamo/dynamo 188f64e2, see the README's "Differences from Dynamo's
nixl_connect"): Descriptor.metadata as a property, DeviceKind.XPU, equal
connectors, one shared Connection per connector, Remote checked when made,
the exception types of wrong kinds, deregistration and bad arguments."""

import gc
import weakref

import pytest

from support import nc, pattern, run

# ---- Descriptor.metadata ------------------------------------------------------------


def test_descriptor_metadata_is_a_property_and_still_callable():
    buf = bytearray(48)
    d = nc.Descriptor(buf)
    md = d.metadata
    assert isinstance(md, nc.SerializedDescriptor)
    assert (md.device, md.size) == ("cpu", 48) and md.ptr == d.ptr
    assert d.metadata is md  # made once
    assert d.metadata() is md  # the earlier method form
    assert nc.Descriptor.from_serialized(md).ptr == d.ptr


# ---- XPU ------------------------------------------------------------------------------


def test_xpu_device_kind_and_device():
    assert int(nc.DeviceKind.XPU) == 3 and str(nc.DeviceKind.XPU) == "xpu"
    assert nc.DeviceKind.XPU.nixl_mem_type == "VRAM"
    for text, dev_id in (("xpu", 0), ("xpu:2", 2), (" XPU:7 ", 7)):
        dev = nc.Device(text)
        assert (dev.kind, dev.id) == (nc.DeviceKind.XPU, dev_id), text
    assert str(nc.Device("xpu:2")) == "xpu:2"
    assert str(nc.Device((nc.DeviceKind.XPU, 1))) == "xpu:1"
    for bad in ("xpu:", "xpu:x", "xpu:-1", "xpu:70000"):
        with pytest.raises(ValueError):
            nc.Device(bad)
    sd = nc.SerializedDescriptor(device="xpu:1", ptr=4096, size=8)
    d = sd.to_descriptor()
    assert d.device.kind == nc.DeviceKind.XPU and d.metadata.model_dump() == sd.model_dump()


def test_operations_over_xpu_memory_are_refused(pair):
    """No XPU in the C library: a clear NXC_ERR_UNSUPPORTED, no op made."""
    p, a = pair
    xpu = nc.Descriptor((4096, 64, "xpu:0"))
    for make in (p.create_readable, p.create_writable):
        with pytest.raises(nc.NixlConnectError) as e:
            make(xpu)
        assert e.value.name == "NXC_ERR_UNSUPPORTED" and "XPU" in e.value.detail
    with pytest.raises(nc.NixlConnectError) as e:
        xpu.register_with_connector(p)
    assert e.value.name == "NXC_ERR_UNSUPPORTED" and not xpu.is_registered

    async def main():
        with p.create_readable(nc.Descriptor(bytes(64))) as r:
            with pytest.raises(nc.NixlConnectError) as e:
                await a.begin_read(r.metadata(), xpu)
            assert e.value.name == "NXC_ERR_UNSUPPORTED"
        assert not p._ops and not a._ops

    run(main())


# ---- Connector and Connection -----------------------------------------------------------


def test_connectors_compare_by_worker_id():
    # Two live connectors of one process may not share a name (peers tell
    # workers apart by name and process), so the first is closed first.
    with nc.Connector("same") as a:
        with pytest.raises(nc.NixlConnectError) as e:
            nc.Connector("same")
        assert e.value.name == "NXC_ERR_INVALID_ARG" and "already live" in str(e.value)
    with nc.Connector("same") as b, nc.Connector("other") as c:
        assert a == b and not a != b and hash(a) == hash(b)
        assert a != c and not a == c
        assert a != "same" and len({a, b, c}) == 2


def test_one_shared_connection_per_connector(pair):
    p, a = pair

    async def main():
        conn = await p._create_connection()
        assert isinstance(conn, nc.Connection)
        assert await p._create_connection() is conn
        assert conn.connector is p and conn.name == f"{p.name}-1"
        out = bytearray(256)
        with p.create_readable(nc.Descriptor(pattern(256, 2))) as r:
            assert r.connection is conn and r.connector is p
            with await a.begin_read(r.metadata(), nc.Descriptor(out)) as read:
                assert read.connection is await a._create_connection()
                assert read.remote.connection is read.connection
                await read.wait_for_completion()
        assert out == pattern(256, 2)

    run(main())


def test_connector_is_freed_without_a_garbage_collection():
    """The shared Connection must not tie the connector into a cycle: once
    the last reference goes, the C connector is destroyed at once."""
    gc.disable()
    try:
        c = nc.Connector()
        with c.create_readable(nc.Descriptor(bytes(16))) as op:
            assert op.connection.connector is c
        conn = op.connection
        del op
        ref = weakref.ref(c)
        del c
        assert ref() is None
        with pytest.raises(nc.NixlConnectError):  # its connector is gone
            nc.ReadableOperation(conn, nc.Descriptor(bytes(16)))
    finally:
        gc.enable()


# ---- Remote -------------------------------------------------------------------------------


def test_remote_checks_its_metadata_when_made(pair):
    p, _ = pair
    with p.create_readable(nc.Descriptor(bytes(8))) as r:
        remote = nc.Remote(p, r.metadata().nixl_metadata)
        assert remote.name == p.name
    with pytest.raises(ValueError):  # not at the first use: at once
        nc.Remote(p, "b64:bm90IGEgYmxvYg==")
    with pytest.raises(ValueError):
        nc.Remote(p, b"not an agent blob")


# ---- exception types ----------------------------------------------------------------------


def test_wrong_kind_from_the_constructors_is_a_value_error(pair):
    """Dynamo: begin_read of a writable's metadata is a RuntimeError, a
    ReadOperation made from it a ValueError; ours is both."""
    p, a = pair

    async def main():
        conn = await a._create_connection()
        with p.create_writable(nc.Descriptor(bytearray(16))) as w, \
                p.create_readable(nc.Descriptor(bytes(16))) as r:
            with pytest.raises(ValueError) as e:
                nc.ReadOperation(conn, w.metadata(), nc.Descriptor(bytearray(16)))
            assert e.value.name == "NXC_ERR_WRONG_KIND"
            with pytest.raises(ValueError):
                nc.WriteOperation(conn, nc.Descriptor(bytes(16)), r.metadata())
            with pytest.raises(RuntimeError):
                await a.begin_write(nc.Descriptor(bytes(16)), r.metadata())
            class Push(nc.ActiveOperation):
                wait_for_completion = nc.WriteOperation.wait_for_completion
                cancel = nc.WriteOperation.cancel

            remote = nc.Remote(conn, w.metadata().nixl_metadata)
            with pytest.raises(ValueError):  # checked before the metadata is rebuilt
                Push(remote, nc.OperationKind.UNSPECIFIED, nc.Descriptor(bytes(16)),
                     w.metadata().to_descriptors(), w.metadata().notification_key)
        assert not a._ops

    run(main())


def test_deregistering_what_is_not_registered_is_a_runtime_error(pair):
    p, _ = pair
    d = nc.Descriptor(bytearray(64))
    with pytest.raises(RuntimeError):
        d.deregister_with_connector(p)
    with pytest.raises(TypeError):
        d.deregister_with_connector("p")


def test_operation_arguments(pair):
    p, _ = pair

    class Op(nc.AbstractOperation):
        async def wait_for_completion(self) -> None:
            return None

    d = nc.Descriptor(bytearray(8))
    with pytest.raises(TypeError):
        Op(p, nc.OperationKind.READ, d, None, 42)
    with pytest.raises(ValueError):
        Op(p, nc.OperationKind.READ, d, None, "")
    assert Op(p, nc.OperationKind.READ, d, None, "key").operation_kind == nc.OperationKind.READ
    with pytest.raises(ValueError, match="empty list"):
        Op(p, nc.OperationKind.READ, [])
    mixed = [d, nc.Descriptor((4096, 8, "cuda:0"))]
    with pytest.raises(ValueError, match="same memory type"):
        Op(p, nc.OperationKind.READ, mixed)
    with pytest.raises(ValueError, match="same memory type"):
        p.create_writable(mixed)
    assert not p._ops


def test_metadata_operation_kind_out_of_range_is_a_type_error():
    desc = {"device": "cpu", "ptr": 4096, "size": 8}
    for kind in (0, 3, -1, 9):
        with pytest.raises(TypeError):
            nc.RdmaMetadata(descriptors=[desc], operation_kind=kind)
        with pytest.raises(TypeError):
            nc.RdmaMetadata.model_validate({"descriptors": [desc], "operation_kind": kind})
    assert nc.RdmaMetadata(descriptors=[desc]).operation_kind == 0  # a default is not checked
    assert nc.RdmaMetadata(descriptors=[desc], operation_kind=2).operation_kind == 2


def test_pydantic_validators_are_public_classmethods():
    assert nc.SerializedDescriptor.validate_device(" CUDA:1 ") == "cuda:1"
    assert nc.SerializedDescriptor.validate_device("xpu:0") == "xpu:0"
    with pytest.raises(TypeError):
        nc.SerializedDescriptor.validate_device(1)
    with pytest.raises(ValueError):
        nc.SerializedDescriptor.validate_device("tpu")
    assert nc.SerializedDescriptor.validate_ptr(4096) == 4096
    with pytest.raises(ValueError):
        nc.SerializedDescriptor.validate_ptr(0)
    assert nc.SerializedDescriptor.validate_size(0) == 0
    with pytest.raises(ValueError):
        nc.SerializedDescriptor.validate_size(-1)
    assert nc.RdmaMetadata.validate_operation_kind(1) == 1
    with pytest.raises(TypeError):
        nc.RdmaMetadata.validate_operation_kind(4)
