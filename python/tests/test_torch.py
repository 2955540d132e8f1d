"""torch CPU tensors as descriptors (Debian's python3-torch). Skipped, and
labelled so, where torch is not installed; GPU tensors need a GPU."""

import pytest

from support import nc, run

torch = pytest.importorskip("torch", reason="python3-torch is not installed")


def test_descriptor_points_at_the_tensor():
    t = torch.arange(1000, dtype=torch.float32)
    d = nc.Descriptor(t)
    assert d.ptr == t.data_ptr() and d.size == 4000
    assert d.device.kind == nc.DeviceKind.HOST and d.data is t


def test_non_contiguous_tensor_is_refused():
    t = torch.zeros(64, 64)[:, ::2]
    with pytest.raises(ValueError, match="contiguous"):
        nc.Descriptor(t)


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.int64, torch.uint8])
def test_read_and_write_between_tensors(pair, dtype):
    p, a = pair
    src = (torch.arange(4096) % 251).to(dtype)
    kv = torch.zeros(4096, dtype=dtype)
    back = torch.zeros(4096, dtype=dtype)

    async def main():
        with p.create_writable(nc.Descriptor(kv)) as w:
            with await a.begin_write(nc.Descriptor(src), w.metadata()) as op:
                await op.wait_for_completion()
            await w.wait_for_completion()
        with p.create_readable(nc.Descriptor(kv)) as r:
            with await a.begin_read(r.metadata(), nc.Descriptor(back)) as op:
                await op.wait_for_completion()
                assert op.results()[0].data is back
            await r.wait_for_completion()

    run(main())
    assert torch.equal(kv, src) and torch.equal(back, src)


def test_registered_tensor_pool(pair):
    """Dynamo's pattern: a pool tensor registered once, slices of it exposed
    one after another."""
    p, a = pair
    pool = torch.zeros(8, 1024, dtype=torch.float32)
    whole = nc.Descriptor(pool)
    whole.register_with_connector(p)

    async def main():
        for i in range(8):
            with p.create_writable(nc.Descriptor(pool[i])) as w:
                src = torch.full((1024,), float(i + 1))
                with await a.begin_write(nc.Descriptor(src), w.metadata()) as op:
                    await op.wait_for_completion()
                await w.wait_for_completion()

    run(main())
    assert whole.is_registered
    whole.deregister_with_connector(p)
    assert torch.equal(pool, torch.arange(1, 9, dtype=torch.float32)[:, None].expand(8, 1024))
