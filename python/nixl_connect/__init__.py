"""nixl_connect: Dynamo's ``dynamo.nixl_connect`` API over the C library.

Move buffers between worker processes with one-sided reads and writes:

    connector = Connector()
    readable = connector.create_readable(Descriptor(buf))   # passive side
    text = readable.metadata().model_dump_json()            # -> any channel
    ...
    md = RdmaMetadata.model_validate_json(text)             # active side
    with await connector.begin_read(md, Descriptor(out)) as op:
        await op.wait_for_completion()

Pure Python over ``ctypes``; numpy and torch are used when present, never
required. The C library is found through ``NIXL_CONNECT_LIB``, next to this
package, in a source checkout's ``build/``, or by the system loader, when
it is first needed: importing works without it, and the first call that
needs it raises ``ImportError`` saying where it looked and how to fix it.
"""

from . import _lib
from ._lib import NixlConnectError, NixlConnectValueError, version
from ._metadata import RdmaMetadata, SerializedDescriptor
from ._types import Descriptor, Device, DeviceKind, OperationKind, OperationStatus
from ._connector import (
    AbstractOperation,
    ActiveOperation,
    Connection,
    Connector,
    PassiveOperation,
    ReadableOperation,
    ReadOperation,
    Remote,
    WritableOperation,
    WriteOperation,
)


def __getattr__(name: str):
    if name == "library_path":  # the library's path: loads it (ImportError if missing)
        return _lib.path
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AbstractOperation",
    "ActiveOperation",
    "Connection",
    "Connector",
    "Descriptor",
    "Device",
    "DeviceKind",
    "NixlConnectError",
    "NixlConnectValueError",
    "OperationKind",
    "OperationStatus",
    "PassiveOperation",
    "RdmaMetadata",
    "ReadOperation",
    "ReadableOperation",
    "Remote",
    "SerializedDescriptor",
    "WritableOperation",
    "WriteOperation",
    "library_path",
    "version",
]
