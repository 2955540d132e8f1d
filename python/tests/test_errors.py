"""Bad input from Python: the exception types Dynamo raises (TypeError,
ValueError, RuntimeError), each carrying the C library's code and sentence."""

import asyncio
import base64
import json

import pytest

from support import nc, run


def writable_and_readable(p):
    return p.create_writable(nc.Descriptor(bytearray(16))), p.create_readable(nc.Descriptor(b"x" * 16))


@pytest.mark.parametrize("text, where", [
    ("not json at all", ""),
    ("", ""),
    ("[]", ""),
    ('{"descriptors": []}', ""),
    ('{"descriptors":[{"device":"cpu","ptr":1,"size":1}],"nixl_metadata":"b64:AAAA",'
     '"notification_key":"k","operation_kind":1}', ""),
])
def test_malformed_metadata_is_a_value_error(text, where):
    with pytest.raises(ValueError) as e:
        nc.RdmaMetadata.model_validate_json(text)
    assert isinstance(e.value, nc.NixlConnectError)
    assert e.value.name == "NXC_ERR_BAD_METADATA" and e.value.code == -3
    assert e.value.detail and e.value.detail in str(e.value)


def test_tampered_metadata_fields(pair):
    p, _ = pair
    w, r = writable_and_readable(p)
    good = json.loads(w.metadata().model_dump_json())
    cases = {
        "unknown field": {**good, "extra": 1},
        "kind 3": {**good, "operation_kind": 3},  # from fields: TypeError (test_dynamo_api)
        "kind as text": {**good, "operation_kind": "2"},
        "null pointer": {**good, "descriptors": [{**good["descriptors"][0], "ptr": 0}]},
        "negative size": {**good, "descriptors": [{**good["descriptors"][0], "size": -1}]},
        "bad device": {**good, "descriptors": [{**good["descriptors"][0], "device": "tpu"}]},
        "corrupt blob": {**good, "nixl_metadata": "b64:" + base64.b64encode(b"garbage" * 9).decode()},
        "truncated blob": {**good, "nixl_metadata": good["nixl_metadata"][:40]},
    }
    for what, obj in cases.items():
        with pytest.raises(ValueError) as e:
            nc.RdmaMetadata.model_validate_json(json.dumps(obj))
        assert e.value.name == "NXC_ERR_BAD_METADATA", what
        # The same, built from fields: refused in Python or by the C parser at begin.
        with pytest.raises(TypeError if what == "kind 3" else ValueError):
            md = nc.RdmaMetadata.model_validate(obj)
            run(pair[1].begin_write(nc.Descriptor(bytearray(16)), md))
    w.release()
    r.release()


def test_wrong_kind(pair):
    p, a = pair
    w, r = writable_and_readable(p)

    async def main():
        with pytest.raises(RuntimeError) as e:  # Dynamo raises RuntimeError here
            await a.begin_read(w.metadata(), nc.Descriptor(bytearray(16)))
        assert e.value.name == "NXC_ERR_WRONG_KIND" and "readable op" in e.value.detail
        with pytest.raises(nc.NixlConnectError) as e:
            await a.begin_write(nc.Descriptor(bytearray(16)), r.metadata())
        assert e.value.code == -4 and "writable op" in e.value.detail

    run(main())
    w.release()
    r.release()


def test_mismatched_sizes_and_counts(pair):
    p, a = pair

    async def main():
        with p.create_writable([nc.Descriptor(bytearray(16)), nc.Descriptor(bytearray(8))]) as w:
            md = w.metadata()
            with pytest.raises(ValueError) as e:
                await a.begin_write([nc.Descriptor(bytearray(16)), nc.Descriptor(bytearray(9))], md)
            assert e.value.name == "NXC_ERR_SIZE_MISMATCH"
            assert "descriptor 1" in e.value.detail and "9" in e.value.detail and "8" in e.value.detail
            with pytest.raises(ValueError) as e:
                await a.begin_write(nc.Descriptor(bytearray(16)), md)
            assert e.value.name == "NXC_ERR_SIZE_MISMATCH" and "1 local" in e.value.detail
            assert w.status == nc.OperationStatus.INITIALIZED  # untouched by the refusals

    run(main())


def test_argument_types(pair):
    p, a = pair
    with pytest.raises(TypeError):
        nc.Connector("")
    with pytest.raises(TypeError):
        nc.Connector(42)
    with pytest.raises(ValueError):
        nc.Connector("x" * 300)  # the C limit: 1-255 bytes
    with pytest.raises(TypeError):
        p.create_readable(bytearray(4))  # a buffer, not a Descriptor
    with pytest.raises(TypeError):
        p.create_writable([nc.Descriptor(bytearray(4)), "nope"])
    with pytest.raises(ValueError) as e:
        p.create_readable([])
    assert e.value.name == "NXC_ERR_INVALID_ARG"
    with pytest.raises(ValueError) as e:
        p.create_readable(nc.Descriptor((0, 0, "cpu")))
    assert "NULL" in e.value.detail
    with pytest.raises(ValueError) as e:
        p.create_readable([nc.Descriptor(bytearray(4)), nc.Descriptor((4096, 4, "cuda:0"))])
    assert "same memory type" in str(e.value)  # Dynamo's check, before the C library

    async def main():
        w = p.create_writable(nc.Descriptor(bytearray(4)))
        with pytest.raises(TypeError):
            await a.begin_write(nc.Descriptor(bytearray(4)), w.metadata().model_dump_json())
        with pytest.raises(TypeError):
            await a.begin_read(w.metadata().model_dump(), nc.Descriptor(bytearray(4)))
        w.release()

    run(main())


def test_errored_op_cannot_be_cancelled(pair):
    """A write into an op its owner cancelled fails with the peer's reason;
    cancelling an ERRORED op is an error, as in Dynamo."""
    p, a = pair
    size = 1 << 20  # large (rendezvous); small writes: the test below

    async def main():
        w = p.create_writable(nc.Descriptor(bytearray(size)))
        md = w.metadata()
        w.cancel()
        assert w.status == nc.OperationStatus.CANCELLED
        write = await a.begin_write(nc.Descriptor(bytearray(size)), md)
        with pytest.raises(nc.NixlConnectError) as e:
            await write.wait_for_completion()
        assert write.status == nc.OperationStatus.ERRORED
        assert e.value.name == "NXC_ERR_PEER_ABORTED" and "py-passive" in e.value.detail
        with pytest.raises(RuntimeError) as e2:
            write.cancel()
        assert e2.value.name == "NXC_ERR_STATE"
        write.release()
        with pytest.raises(nc.NixlConnectError) as e3:  # the reason outlives the op
            await write.wait_for_completion()
        assert e3.value.name == "NXC_ERR_PEER_ABORTED"
        w.release()

    run(main())


def test_small_write_into_cancelled_writable_is_refused(pair):
    """An eager (small) write into a cancelled writable is refused with the
    reason, not reported COMPLETE (the passive side acknowledges writes)."""
    p, a = pair

    async def main():
        with p.create_writable(nc.Descriptor(bytearray(64))) as w:
            md = w.metadata()
            w.cancel()
            with await a.begin_write(nc.Descriptor(bytearray(b"z" * 64)), md) as write:
                with pytest.raises(nc.NixlConnectError) as e:
                    await asyncio.wait_for(write.wait_for_completion(), 5)
                assert e.value.name == "NXC_ERR_PEER_ABORTED" and "cancelled" in e.value.detail

    run(main())


def test_second_reader_is_refused(pair):
    """An op has one taker: a second reader of one readable, begun with the
    first or after it completed, is answered at once with
    NXC_ERR_PEER_ABORTED naming why; the winner gets the data."""
    p, a = pair
    data = bytes(range(256)) * 16

    async def main():
        with nc.Connector("py-second") as b:
            with p.create_readable(nc.Descriptor(bytearray(data))) as r:
                md = r.metadata()
                bufs = [bytearray(len(data)), bytearray(len(data))]
                reads = [await a.begin_read(md, nc.Descriptor(bufs[0])),
                         await b.begin_read(md, nc.Descriptor(bufs[1]))]
                outcomes = await asyncio.wait_for(asyncio.gather(
                    *(op.wait_for_completion() for op in reads), return_exceptions=True), 5)
                winners = [i for i, o in enumerate(outcomes) if not isinstance(o, Exception)]
                assert len(winners) == 1, outcomes
                loser = outcomes[1 - winners[0]]
                assert isinstance(loser, nc.NixlConnectError)
                assert loser.name == "NXC_ERR_PEER_ABORTED"
                assert "taken" in loser.detail or "already completed" in loser.detail
                assert bytes(bufs[winners[0]]) == data
                for op in reads:
                    op.release()
                await asyncio.wait_for(r.wait_for_completion(), 5)
                # and after completion
                with await b.begin_read(md, nc.Descriptor(bytearray(len(data)))) as late:
                    with pytest.raises(nc.NixlConnectError) as e:
                        await asyncio.wait_for(late.wait_for_completion(), 5)
                    assert e.value.name == "NXC_ERR_PEER_ABORTED"
                    assert "already completed" in e.value.detail

    run(main())


def test_read_of_cancelled_readable_fails(pair):
    """The passive connector answers a late reader of a closed readable
    with a refusal naming why (it used to wait forever)."""
    p, a = pair

    async def main():
        with p.create_readable(nc.Descriptor(bytearray(64))) as r:
            md = r.metadata()
            r.cancel()
            with await a.begin_read(md, nc.Descriptor(bytearray(64))) as read:
                with pytest.raises(nc.NixlConnectError) as e:
                    await asyncio.wait_for(read.wait_for_completion(), 2)
                assert e.value.name == "NXC_ERR_PEER_ABORTED" and "cancelled" in e.value.detail

    run(main())


def test_closed_connector():
    c = nc.Connector()
    d = nc.Descriptor(bytearray(4))
    op = c.create_readable(d)
    c.close()
    c.close()  # idempotent
    assert op.status == nc.OperationStatus.CANCELLED  # released by close
    with pytest.raises(nc.NixlConnectError, match="closed"):
        c.create_readable(d)


def test_error_names_come_from_the_library():
    """Names are the C library's nxc_err_name(), not a table of our own:
    every pinned code by its header name, an unknown code as the library
    calls it."""
    names = {-1: "NXC_ERR_INVALID_ARG", -7: "NXC_ERR_TIMED_OUT", -11: "NXC_ERR_TRANSPORT",
             -14: "NXC_ERR_SYSTEM", -15: "NXC_ERR_RECURSIVE"}
    for code, name in names.items():
        assert nc.NixlConnectError(code).name == name
    assert nc.NixlConnectError(-99).name == "NXC_ERR_UNKNOWN"
