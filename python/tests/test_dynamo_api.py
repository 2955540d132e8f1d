"""The parts of Dynamo's current API beyond the four operations: public
classes and their hierarchy, Connection and Remote, DeviceKind.nixl_mem_type,
Connector(enable_progress_thread=...), pre-registered descriptors, the
ERRORED message, and importing the package where the C library is missing."""

import os
import shutil
import subprocess
import sys

import pytest

from support import PEER, ROOT, digest, nc, pattern, run

# ---- names and classes -----------------------------------------------------------


def test_every_dynamo_name_is_exported():
    dynamo_names = {
        "AbstractOperation", "ActiveOperation", "Connection", "Connector", "Descriptor",
        "Device", "DeviceKind", "OperationKind", "OperationStatus", "PassiveOperation",
        "RdmaMetadata", "ReadOperation", "ReadableOperation", "Remote",
        "SerializedDescriptor", "WritableOperation", "WriteOperation",
    }
    assert dynamo_names <= set(nc.__all__)
    for name in dynamo_names:
        assert isinstance(getattr(nc, name), type), name


def test_operation_hierarchy():
    assert issubclass(nc.ReadableOperation, nc.PassiveOperation)
    assert issubclass(nc.WritableOperation, nc.PassiveOperation)
    assert issubclass(nc.ReadOperation, nc.ActiveOperation)
    assert issubclass(nc.WriteOperation, nc.ActiveOperation)
    for cls in (nc.PassiveOperation, nc.ActiveOperation):
        assert issubclass(cls, nc.AbstractOperation)
    with pytest.raises(TypeError):  # abstract: wait_for_completion
        nc.AbstractOperation(None, nc.OperationKind.READ, [])
    with pytest.raises(TypeError):  # abstract as in Dynamo
        nc.PassiveOperation(None, nc.OperationKind.READ, [])
    assert {"wait_for_completion", "cancel"} <= nc.ActiveOperation.__abstractmethods__
    for cls in (nc.ReadableOperation, nc.WritableOperation, nc.ReadOperation, nc.WriteOperation):
        assert not cls.__abstractmethods__, cls


def test_user_subclass_of_abstract_operation(pair):
    p, _ = pair

    class Mine(nc.AbstractOperation):
        async def wait_for_completion(self) -> None:
            return None

    op = Mine(p, nc.OperationKind.WRITE, nc.Descriptor(bytearray(8)))
    assert op.connector is p and op.operation_kind == nc.OperationKind.WRITE
    assert op.status == nc.OperationStatus.UNINITIALIZED  # it made no C op
    with pytest.raises(ValueError):
        Mine(p, nc.OperationKind.UNSPECIFIED, nc.Descriptor(bytearray(8)))


def test_device_kind_nixl_mem_type():
    assert nc.DeviceKind.HOST.nixl_mem_type == "DRAM"
    assert nc.DeviceKind.CUDA.nixl_mem_type == "VRAM"
    with pytest.raises(ValueError):
        nc.DeviceKind.UNSPECIFIED.nixl_mem_type
    assert (str(nc.DeviceKind.HOST), str(nc.DeviceKind.CUDA)) == ("cpu", "cuda")


# ---- Connection, Remote, operations built as Dynamo builds them -----------------


def test_connection_and_remote(pair):
    p, a = pair

    async def main():
        conn = await a._create_connection()
        assert isinstance(conn, nc.Connection) and conn.connector is a
        assert conn.name == f"{a.name}-1" and str(conn) == conn.name
        with pytest.raises(TypeError):
            nc.Connection("not a connector", 1)
        with pytest.raises(TypeError):
            nc.Connection(a, "1")
        with pytest.raises(ValueError):
            nc.Connection(a, 0)

        src = pattern(4096, 5)
        readable = nc.ReadableOperation(await p._create_connection(), nc.Descriptor(src))
        md = readable.metadata()
        remote = nc.Remote(conn, md.nixl_metadata)
        assert remote.name == p.name and remote.connection is conn
        with pytest.raises(TypeError):
            nc.Remote(conn, 42)
        with pytest.raises(ValueError):
            nc.Remote(conn, "")
        with pytest.raises(ValueError):  # checked by the C parser when first read
            nc.Remote(conn, "b64:bm90IGEgYmxvYg==").name

        out = bytearray(4096)
        with readable, nc.ReadOperation(conn, md, nc.Descriptor(out)) as read:
            assert isinstance(read, nc.ActiveOperation)
            assert read.remote.name == p.name and read.connection is conn
            await read.wait_for_completion()
            await readable.wait_for_completion()
        assert out == src

        # Dynamo's general ActiveOperation constructor (a Remote and the
        # parts), through a subclass: ActiveOperation is abstract, as in Dynamo.
        class Push(nc.ActiveOperation):
            async def wait_for_completion(self) -> None:
                await self._wait_for_completion_()

            def cancel(self) -> None:
                nc.AbstractOperation.cancel(self)

        inbox = bytearray(4096)
        with nc.WritableOperation(p, nc.Descriptor(inbox)) as writable:
            wmd = writable.metadata()
            parts = (nc.Remote(conn, wmd.nixl_metadata), nc.OperationKind.WRITE,
                     nc.Descriptor(bytes(src)), wmd.to_descriptors(), wmd.notification_key)
            with pytest.raises(TypeError):  # abstract: wait_for_completion, cancel
                nc.ActiveOperation(*parts)
            op = Push(*parts)
            with op:
                await op.wait_for_completion()
            await writable.wait_for_completion()
        assert inbox == src

    run(main())


def test_errored_wait_says_errored(pair):
    p, a = pair

    async def main():
        w = p.create_writable(nc.Descriptor(bytearray(1 << 20)))
        md = w.metadata()
        w.cancel()
        with await a.begin_write(nc.Descriptor(bytearray(1 << 20)), md) as write:
            with pytest.raises(RuntimeError, match="errored") as e:
                await write.wait_for_completion()
            assert write.status == nc.OperationStatus.ERRORED
            assert e.value.name == "NXC_ERR_PEER_ABORTED"
        w.release()

    run(main())


# ---- enable_progress_thread ----------------------------------------------------------


@pytest.mark.parametrize("bad", [0, 1, "yes", None, 1.0])
def test_progress_thread_option_must_be_bool(bad):
    with pytest.raises(TypeError, match="enable_progress_thread"):
        nc.Connector("x", enable_progress_thread=bad)


def test_progress_thread_serves_a_blocked_process():
    """A readable op of a connector with the thread is read by another
    process while this one blocks in a plain read of a pipe, never driving
    the connector: only the C progress thread can move the data."""
    size = 1 << 20
    with nc.Connector("pt", enable_progress_thread=True) as conn:
        src = pattern(size, 8)
        op = conn.create_readable(nc.Descriptor(src))
        peer = subprocess.Popen([sys.executable, PEER, "active", "read", str(size)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            peer.stdin.write(op.metadata().model_dump_json() + "\n")
            peer.stdin.flush()
            assert peer.stdout.readline().strip() == digest(src)  # blocks here
        finally:
            peer.kill()
            peer.wait()
        assert op.status == nc.OperationStatus.COMPLETE
        op.release()


def test_progress_thread_connector_with_asyncio(pair):
    _, a = pair

    async def main():
        with nc.Connector("pt-loop", enable_progress_thread=True) as p:
            inbox = bytearray(4096)
            with p.create_writable(nc.Descriptor(inbox)) as w:
                with await a.begin_write(nc.Descriptor(pattern(4096, 9)), w.metadata()) as op:
                    await op.wait_for_completion()
                await w.wait_for_completion()
            assert inbox == pattern(4096, 9)

    run(main())


# ---- pre-registered descriptors --------------------------------------------------------


def test_registered_descriptor_is_reused_and_kept(pair, monkeypatch):
    p, a = pair
    calls = []
    real = nc._lib.nxc_mem_register
    monkeypatch.setattr(nc._lib, "nxc_mem_register", lambda *args: calls.append(1) or real(*args))
    pool = bytearray(pattern(1 << 16, 3))
    slot = nc.Descriptor(pool)
    assert not slot.is_registered
    slot.register_with_connector(p)
    slot.register_with_connector(p)  # again: nothing happens
    assert slot.is_registered and len(calls) == 1

    async def main():
        for seed in range(5):
            pool[:] = pattern(len(pool), seed)
            out = bytearray(len(pool))
            with p.create_readable(slot) as readable:
                with await a.begin_read(readable.metadata(), nc.Descriptor(out)) as read:
                    await read.wait_for_completion()
                await readable.wait_for_completion()
            assert out == pool
            assert slot.is_registered  # the operation did not end the registration

    run(main())
    assert len(calls) == 1
    slot.deregister_with_connector(p)
    assert not slot.is_registered
    with pytest.raises(RuntimeError):  # not registered any more: Dynamo raises too
        slot.deregister_with_connector(p)


def test_registration_through_a_connection(pair):
    p, _ = pair

    async def main():
        conn = await p._create_connection()
        d = nc.Descriptor(bytearray(64))
        d.register_with_connector(conn)
        assert d.is_registered
        d.deregister_with_connector(p)  # the same connector
        assert not d.is_registered

    run(main())


def test_registration_errors(pair):
    p, a = pair
    d = nc.Descriptor(bytearray(64))
    with pytest.raises(TypeError):
        d.register_with_connector("connector")
    d.register_with_connector(p)
    with pytest.raises(RuntimeError):
        d.register_with_connector(a)
    with pytest.raises(RuntimeError):
        d.deregister_with_connector(a)
    assert d.is_registered
    with pytest.raises(ValueError):
        nc.Descriptor(bytearray(0)).register_with_connector(p)
    with pytest.raises(ValueError):
        nc.Descriptor((0, 64, "cpu")).register_with_connector(p)
    with pytest.raises(nc.NixlConnectError) as e:
        nc.Descriptor((4096, 64, "cuda:0")).register_with_connector(p)
    assert e.value.name == "NXC_ERR_UNSUPPORTED"
    d.deregister_with_connector(p)


def test_deregister_while_an_operation_is_open(pair):
    p, a = pair
    inbox = bytearray(1 << 20)
    d = nc.Descriptor(inbox)
    d.register_with_connector(p)

    async def main():
        with p.create_writable(d) as w:
            d.deregister_with_connector(p)
            assert not d.is_registered
            with await a.begin_write(nc.Descriptor(pattern(len(inbox), 4)), w.metadata()) as op:
                await op.wait_for_completion()
            await w.wait_for_completion()
        assert inbox == pattern(len(inbox), 4)

    run(main())


def test_close_ends_registrations():
    c = nc.Connector()
    d = nc.Descriptor(bytearray(64))
    d.register_with_connector(c)
    c.close()
    assert not d.is_registered
    with pytest.raises(RuntimeError):  # after close it is not registered: no crash
        d.deregister_with_connector(c)


# ---- import without the C library ------------------------------------------------------


def test_import_without_the_library(tmp_path):
    """A copy of the package with no library next to it or in a build/:
    import works, enums work, the first use says what was searched."""
    shutil.copytree(ROOT / "python" / "nixl_connect", tmp_path / "nixl_connect")
    code = (
        "import nixl_connect as nc\n"
        "assert nc.DeviceKind.HOST.nixl_mem_type == 'DRAM'\n"
        "assert str(nc.OperationStatus.ERRORED) == 'ERR'\n"
        "for use in (lambda: nc.Connector(), lambda: nc.library_path, lambda: nc.version()):\n"
        "    try:\n"
        "        use()\n"
        "    except ImportError as e:\n"
        "        print(e)\n"
        "    else:\n"
        "        raise SystemExit('no ImportError')\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("NIXL_CONNECT_LIB", "LD_LIBRARY_PATH")}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 3
    for line in lines:
        assert "libnixl_connect.so" in line and "NIXL_CONNECT_LIB" in line
        assert str(tmp_path / "nixl_connect") in line  # where it looked


def test_import_with_a_wrong_library_path(tmp_path):
    env = dict(os.environ, NIXL_CONNECT_LIB=str(tmp_path / "nowhere.so"))
    code = "import nixl_connect as nc\ntry:\n    nc.Connector()\nexcept ImportError as e:\n    print(e)\n"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT / "python", env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "nowhere.so" in out.stdout and "NIXL_CONNECT_LIB" in out.stdout
