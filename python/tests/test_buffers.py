"""What Descriptor accepts: real pointers of buffer-protocol objects,
read-only buffers only where nothing is written into them, no implicit
copies of non-contiguous data, zero-size buffers, mmap, tuples, CUDA (refused
honestly by this build), torch when installed."""

import asyncio
import ctypes
import mmap

import pytest

from support import nc, pattern, run

np = pytest.importorskip("numpy")


def address_of(buf) -> int:
    return ctypes.addressof(ctypes.c_char.from_buffer(buf))


def test_pointer_is_the_buffer_itself():
    ba = bytearray(b"abcdefgh")
    assert nc.Descriptor(ba).ptr == address_of(ba)
    assert nc.Descriptor(memoryview(ba)[3:]).ptr == address_of(ba) + 3
    b = bytes(b"immutable bytes object")
    d = nc.Descriptor(b)
    assert d.ptr == ctypes.cast(ctypes.c_char_p(b), ctypes.c_void_p).value != id(b)
    assert d.size == len(b) and d.readonly
    arr = np.arange(10, dtype=np.float64)
    assert nc.Descriptor(arr).ptr == arr.ctypes.data and nc.Descriptor(arr).size == 80
    assert nc.Descriptor((arr, "cpu")).ptr == arr.ctypes.data  # Dynamo's (ndarray, device)
    grid = np.zeros((4, 5), dtype=np.float32)[1:]  # 2-D, C-contiguous, offset
    assert nc.Descriptor(grid).ptr == grid.ctypes.data and nc.Descriptor(grid).size == 60
    ro = np.arange(6, dtype=np.int32)
    ro.flags.writeable = False
    assert nc.Descriptor(ro).ptr == ro.ctypes.data and nc.Descriptor(ro).readonly


def test_descriptor_pins_the_buffer():
    ba = bytearray(16)
    d = nc.Descriptor(ba)
    with pytest.raises(BufferError):
        ba.extend(b"x")  # would move the memory
    del d
    ba.extend(b"x")


def test_read_only_buffer_is_a_source_not_a_destination(pair):
    p, a = pair
    data = pattern(5000, seed=41)
    ro = nc.Descriptor(data)  # bytes: read-only
    frozen = np.frombuffer(data, dtype=np.uint8)  # a read-only array
    assert not frozen.flags.writeable and nc.Descriptor(frozen).readonly

    with pytest.raises(TypeError, match="read-only"):
        p.create_writable(ro)
    with pytest.raises(TypeError, match="read-only"):
        p.create_writable([nc.Descriptor(bytearray(5000)), nc.Descriptor(frozen)])

    async def main():
        out1, out2 = bytearray(5000), bytearray(5000)
        # readable over bytes, read into a bytearray
        with p.create_readable(ro) as readable:
            with pytest.raises(TypeError, match="read-only"):
                await a.begin_read(readable.metadata(), nc.Descriptor(bytes(5000)))
            with await a.begin_read(readable.metadata(), nc.Descriptor(out1)) as read:
                await read.wait_for_completion()
        # write from a read-only numpy array into a writable
        with p.create_writable(nc.Descriptor(out2)) as writable:
            with await a.begin_write(nc.Descriptor(frozen), writable.metadata()) as write:
                await write.wait_for_completion()
            await writable.wait_for_completion()
        return out1, out2

    out1, out2 = run(main())
    assert out1 == data and out2 == data


def test_non_contiguous_is_refused_not_copied():
    a = np.arange(100, dtype=np.int32)
    with pytest.raises(ValueError, match="contiguous"):
        nc.Descriptor(a[::2])
    m = np.zeros((8, 8), dtype=np.uint8)
    with pytest.raises(ValueError, match="contiguous"):
        nc.Descriptor(m[:, 2:5])
    with pytest.raises(ValueError, match="contiguous"):
        nc.Descriptor(memoryview(bytearray(10))[::3])
    # Fortran order is one contiguous block: accepted as it is.
    f = np.asfortranarray(np.arange(12, dtype=np.uint8).reshape(3, 4))
    assert nc.Descriptor(f).ptr == f.ctypes.data and nc.Descriptor(f).size == 12


def test_zero_size_buffers(pair):
    p, a = pair
    for empty in (bytearray(), b"", np.zeros(0), memoryview(bytearray(4))[2:2]):
        d = nc.Descriptor(empty)
        assert d.size == 0 and d.ptr != 0  # the C API refuses NULL even for 0 bytes

    async def main():
        dst = [bytearray(0), bytearray(3), bytearray()]
        src = [b"", b"xyz", bytearray()]
        with p.create_writable([nc.Descriptor(b) for b in dst]) as w:
            with await a.begin_write([nc.Descriptor(b) for b in src], w.metadata()) as op:
                await op.wait_for_completion()
            await w.wait_for_completion()
        only = bytearray()
        with p.create_readable(nc.Descriptor(b"")) as r:
            with await a.begin_read(r.metadata(), nc.Descriptor(only)) as op:
                await op.wait_for_completion()
        return dst

    assert run(main()) == [b"", b"xyz", b""]


def test_mmap_buffers(pair, tmp_path):
    p, a = pair
    data = pattern(3 * 4096 + 17, seed=42)
    path = tmp_path / "f.bin"
    path.write_bytes(data)

    async def main():
        with open(path, "rb") as f:
            ro = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        target = mmap.mmap(-1, len(data))  # anonymous, writable
        src, dst = nc.Descriptor(ro), nc.Descriptor(target)
        assert src.readonly and src.size == len(data) and not dst.readonly
        with pytest.raises(TypeError, match="read-only"):
            p.create_writable(src)
        with p.create_writable(dst) as w:
            with await a.begin_write(src, w.metadata()) as op:
                await op.wait_for_completion()
            await w.wait_for_completion()
            with pytest.raises(BufferError):
                target.close()  # exported while exposed
        del src, dst  # released ops hold no buffer
        got = bytes(target)
        target.close()
        ro.close()
        return got

    assert run(main()) == data


def test_raw_pointer_tuple(pair):
    p, a = pair
    keep = ctypes.create_string_buffer(b"raw pointer data", 16)
    d = nc.Descriptor((ctypes.addressof(keep), 16, "cpu", keep))
    assert d.data is keep and d.device == nc.Device("cpu") and not d.readonly
    out = bytearray(16)

    async def main():
        with p.create_readable(d) as r:
            with await a.begin_read(r.metadata(), nc.Descriptor(out)) as op:
                await op.wait_for_completion()

    run(main())
    assert bytes(out) == b"raw pointer data"
    with pytest.raises(TypeError):
        nc.Descriptor((1, 2, 3))
    with pytest.raises(ValueError):
        nc.Descriptor((1, -2))
    # beyond 64 bits: refused, not truncated (a size of 2**64 became 0)
    with pytest.raises(ValueError, match="64 bits"):
        nc.Descriptor((4096, 1 << 64))
    with pytest.raises(ValueError, match="64 bits"):
        nc.Descriptor((1 << 64, 8))
    with pytest.raises(TypeError):
        nc.Descriptor(12345)
    with pytest.raises(ValueError):
        nc.Descriptor(None)
    with pytest.raises(ValueError, match="host memory"):
        nc.Descriptor((bytearray(4), "cuda:0"))


class FakeCudaArray:
    """Stands for a CuPy array: device memory the host must not touch."""

    def __init__(self, ptr, shape, strides=None):
        self.__cuda_array_interface__ = {
            "data": (ptr, False), "shape": shape, "typestr": "<f4", "strides": strides, "version": 3}


def test_cuda_memory_gets_the_library_s_honest_error(pair):
    p, a = pair
    d = nc.Descriptor(FakeCudaArray(0x7F0000001000, (4, 4)))
    assert d.device == nc.Device("cuda:0") and d.size == 64
    assert nc.Descriptor((FakeCudaArray(0x7F0000001000, (2,)), "cuda:3")).device.id == 3
    with pytest.raises(ValueError, match="contiguous"):
        nc.Descriptor(FakeCudaArray(0x7F0000001000, (4, 4), strides=(32, 4)))
    with pytest.raises(nc.NixlConnectError) as e:
        p.create_readable(d)
    assert e.value.name == "NXC_ERR_UNSUPPORTED" and "CUDA" in e.value.detail
    assert not p.is_cuda_available


def test_devices():
    assert nc.Device("cpu").kind == nc.DeviceKind.HOST and str(nc.Device("host")) == "cpu"
    assert nc.Device("cuda:1") == nc.Device((nc.DeviceKind.CUDA, 1))
    assert str(nc.Device("GPU:2")) == "cuda:2" and nc.Device("cuda").id == 0
    with pytest.raises(ValueError):
        nc.Device("tpu:0")
    with pytest.raises(TypeError):
        nc.Device(3)
    assert (int(nc.DeviceKind.CUDA), int(nc.OperationKind.WRITE)) == (2, 2)
    assert [int(s) for s in nc.OperationStatus] == [0, 1, 2, 3, 4, 5]
    assert [str(s) for s in nc.OperationStatus][1:] == ["INIT", "PROC", "DONE", "STOP", "ERR"]


def test_torch_tensors_when_installed(pair):
    torch = pytest.importorskip("torch")
    p, a = pair
    t = torch.arange(64, dtype=torch.float32)
    d = nc.Descriptor(t)
    assert d.ptr == t.data_ptr() and d.size == 256 and d.data is t
    with pytest.raises(ValueError, match="contiguous"):
        nc.Descriptor(t.view(8, 8).t())
    out = torch.zeros(64, dtype=torch.float32)

    async def main():
        with p.create_readable(d) as r:
            with await a.begin_read(r.metadata(), nc.Descriptor(out)) as op:
                await op.wait_for_completion()

    run(main())
    assert torch.equal(out, t)
    if torch.cuda.is_available():
        with pytest.raises(nc.NixlConnectError) as e:
            p.create_readable(nc.Descriptor(torch.zeros(4, device="cuda")))
        assert e.value.name == "NXC_ERR_UNSUPPORTED"
