"""Metadata made by a real Dynamo worker (NIXL agent metadata inside) goes
through the Python package unchanged, and the C library underneath speaks
NIXL to it: the captured agent is gone, so a write to it fails as a dead
peer, not as malformed metadata."""

import pytest

from support import ROOT, nc, run

FIXTURE = ROOT / "tests" / "fixtures" / "nixl" / "dynamo-writable-rdma-metadata.json"


def test_dynamo_metadata_passes_through_unchanged():
    text = FIXTURE.read_text()
    md = nc.RdmaMetadata.model_validate_json(text)
    assert md.model_dump_json() == text
    assert md.notification_key == "e62b03db-9091-48a5-850b-890ea72e19b4"


def test_write_to_a_gone_dynamo_worker_is_peer_failed():
    md = nc.RdmaMetadata.model_validate_json(FIXTURE.read_text())

    async def main():
        with nc.Connector() as conn:
            with pytest.raises(nc.NixlConnectError) as info:
                op = await conn.begin_write(nc.Descriptor(bytearray(64)), md)
                await op.wait_for_completion()
            return info.value

    err = run(main())
    assert err.code == -9, str(err)  # NXC_ERR_PEER_FAILED
