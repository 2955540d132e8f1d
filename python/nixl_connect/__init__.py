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
package, in a source checkout's ``build/``, or by the system loader.
"""

from ._lib import NixlConnectError, NixlConnectValueError, version
from ._lib import path as library_path
from ._metadata import RdmaMetadata, SerializedDescriptor
from ._types import Descriptor, Device, DeviceKind, OperationKind, OperationStatus
from ._connector import (
    Connector,
    ReadableOperation,
    ReadOperation,
    WritableOperation,
    WriteOperation,
)

__all__ = [
    "Connector",
    "Descriptor",
    "Device",
    "DeviceKind",
    "NixlConnectError",
    "NixlConnectValueError",
    "OperationKind",
    "OperationStatus",
    "RdmaMetadata",
    "ReadOperation",
    "ReadableOperation",
    "SerializedDescriptor",
    "WritableOperation",
    "WriteOperation",
    "library_path",
    "version",
]
