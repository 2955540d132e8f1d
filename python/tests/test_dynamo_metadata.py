"""Metadata made by a real Dynamo worker (NIXL agent metadata inside) goes
through the Python package unchanged, and the C library underneath speaks
NIXL to it: the captured agent is gone, so a write to it fails as a dead
peer, not as malformed metadata."""

import socket

import pytest

from support import ROOT, nc, run

FIXTURE = ROOT / "tests" / "fixtures" / "nixl" / "dynamo-writable-rdma-metadata.json"
# Where the captured agent listened (192.0.2.2, this machine image's own
# address). A UCX worker that happens to listen on this port would take
# the write's probe, a get of the fixture's buffer address, and crash
# reading it (tests/e2e/e2e_nixl_wire.c, hold_fixture_port).
FIXTURE_AGENT_PORT = 51293


def test_dynamo_metadata_passes_through_unchanged():
    text = FIXTURE.read_text()
    md = nc.RdmaMetadata.model_validate_json(text)
    assert md.model_dump_json() == text
    assert md.notification_key == "e62b03db-9091-48a5-850b-890ea72e19b4"


def test_write_to_a_gone_dynamo_worker_is_peer_failed():
    md = nc.RdmaMetadata.model_validate_json(FIXTURE.read_text())
    # Bound and never listened on, the port is no worker's while the test
    # runs, and the connection is refused at once.
    held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        held.bind(("0.0.0.0", FIXTURE_AGENT_PORT))
    except OSError:
        held.close()
        pytest.skip(f"port {FIXTURE_AGENT_PORT}, where the captured agent listened, is held "
                    "by another process, which the write's probe could reach")

    async def main():
        with nc.Connector() as conn:
            with pytest.raises(nc.NixlConnectError) as info:
                op = await conn.begin_write(nc.Descriptor(bytearray(64)), md)
                await op.wait_for_completion()
            return info.value

    try:
        err = run(main())
    finally:
        held.close()
    assert err.code == -9, str(err)  # NXC_ERR_PEER_FAILED
