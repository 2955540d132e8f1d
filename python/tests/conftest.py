"""Shared helpers for the nixl_connect Python tests.

Run with Debian's interpreter (numpy and pytest from apt):
    /usr/bin/python3 -m pytest -q python/tests
CTest (`ctest -L python`) sets NIXL_CONNECT_LIB and NXC_BIN to the build's
library and `nxc` tool; without them the tests use build/ of this checkout.
"""

import os

import pytest

from support import ROOT, nc

NXC_BIN = os.environ.get("NXC_BIN") or str(ROOT / "build" / "tools" / "nxc")


@pytest.fixture
def nxc_bin() -> str:
    if not os.path.exists(NXC_BIN):
        pytest.fail(f"the nxc tool is not built at {NXC_BIN} (set NXC_BIN)")
    return NXC_BIN


@pytest.fixture
def pair():
    """Two connectors in this process: (passive, active)."""
    with nc.Connector("py-passive") as p, nc.Connector("py-active") as a:
        yield p, a
