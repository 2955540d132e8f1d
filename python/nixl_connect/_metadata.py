"""RdmaMetadata and SerializedDescriptor: Dynamo's pydantic models, as small
frozen classes with the pydantic methods Dynamo users call
(``model_dump``, ``model_dump_json``, ``model_validate``,
``model_validate_json``). The JSON is field for field Dynamo's.

``RdmaMetadata.model_validate_json`` validates text with the C library's
strict parser (fields, types, ranges, devices and the agent blob itself) and
keeps the parsed form for ``begin_read``/``begin_write``; a failure is a
``ValueError`` (:class:`NixlConnectValueError`, NXC_ERR_BAD_METADATA), as a
pydantic ValidationError is one. Objects built from fields are checked in
Python for shape and by the C parser when first used.
"""

from __future__ import annotations

import base64
import ctypes
import json
from typing import Any, Iterable

from . import _lib
from ._types import Descriptor


def _check_extra(cls: str, data: dict, allowed: Iterable[str]) -> None:
    extra = sorted(set(data) - set(allowed))
    if extra:
        raise ValueError(f"{cls}: unknown field(s) {extra} (extra fields are forbidden)")


def _int_field(cls: str, name: str, v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise ValueError(f"{cls}.{name} must be an integer, got {type(v).__name__}")
    return v


def _str_field(cls: str, name: str, v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError(f"{cls}.{name} must be a string, got {type(v).__name__}")
    return v


_UNSET: Any = object()


class _Frozen:
    __slots__ = ()

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def _init(self, **values: Any) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)


class SerializedDescriptor(_Frozen):
    """A descriptor as it travels in metadata: ``device``, ``ptr``, ``size``."""

    __slots__ = ("_device", "_ptr", "_size")
    _FIELDS = ("device", "ptr", "size")

    def __init__(self, device: str = "cpu", ptr: int = 0, size: int = 0) -> None:
        device = self.validate_device(_str_field("SerializedDescriptor", "device", device))
        ptr = self.validate_ptr(_int_field("SerializedDescriptor", "ptr", ptr))
        size = self.validate_size(_int_field("SerializedDescriptor", "size", size))
        self._init(_device=device, _ptr=ptr, _size=size)

    # Dynamo's pydantic field validators, public classmethods there too.

    @classmethod
    def validate_device(cls, v: str) -> str:
        if not isinstance(v, str):
            raise TypeError("Argument `device` must be `str`.")
        v = v.strip().lower()
        if not (v == "cpu" or v.startswith("cuda") or v.startswith("xpu")):
            raise ValueError(
                "SerializedDescriptor.device must be 'cpu', 'cuda:<device_id>' "
                "or 'xpu:<device_id>'."
            )
        return v

    @classmethod
    def validate_ptr(cls, v: int) -> int:
        if v == 0:
            raise ValueError("SerializedDescriptor.ptr cannot be zero (aka `null`).")
        return v

    @classmethod
    def validate_size(cls, v: int) -> int:
        if v < 0:
            raise ValueError("SerializedDescriptor.size must be greater than or equal to zero.")
        return v

    device = property(lambda self: self._device)
    ptr = property(lambda self: self._ptr)
    size = property(lambda self: self._size)

    def to_descriptor(self) -> Descriptor:
        return Descriptor((self._ptr, self._size, self._device, None))

    def __call__(self) -> "SerializedDescriptor":
        """Itself: lets ``Descriptor.metadata()`` (Dynamo's earlier method)
        work now that ``Descriptor.metadata`` is a property (its newer form)."""
        return self

    def model_dump(self) -> dict:
        return {"device": self._device, "ptr": self._ptr, "size": self._size}

    def model_dump_json(self) -> str:
        return json.dumps(self.model_dump(), separators=(",", ":"))

    @classmethod
    def model_validate(cls, obj: Any) -> "SerializedDescriptor":
        if isinstance(obj, cls):
            return obj
        if not isinstance(obj, dict):
            raise ValueError(f"SerializedDescriptor must be an object, got {type(obj).__name__}")
        _check_extra("SerializedDescriptor", obj, cls._FIELDS)
        return cls(**obj)

    @classmethod
    def model_validate_json(cls, text: str | bytes) -> "SerializedDescriptor":
        return cls.model_validate(json.loads(text))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SerializedDescriptor) and self.model_dump() == other.model_dump()

    def __hash__(self) -> int:
        return hash((self._device, self._ptr, self._size))

    def __repr__(self) -> str:
        return f"SerializedDescriptor(device={self._device!r}, ptr={self._ptr}, size={self._size})"


def _validate_rdma(
    descriptors: Any = (),
    nixl_metadata: Any = "",
    notification_key: Any = "",
    operation_kind: Any = _UNSET,
) -> tuple:
    if not isinstance(descriptors, (list, tuple)):
        raise ValueError(f"RdmaMetadata.descriptors must be a list, got {type(descriptors).__name__}")
    descs = tuple(SerializedDescriptor.model_validate(d) for d in descriptors)
    _str_field("RdmaMetadata", "nixl_metadata", nixl_metadata)
    _str_field("RdmaMetadata", "notification_key", notification_key)
    # As with Dynamo's pydantic validator, only a value given is checked.
    if operation_kind is _UNSET:
        operation_kind = 0
    else:
        _int_field("RdmaMetadata", "operation_kind", operation_kind)
        RdmaMetadata.validate_operation_kind(operation_kind)
    return (descs, nixl_metadata, notification_key, operation_kind)


class RdmaMetadata(_Frozen):
    """What a passive operation hands to its peer: ``descriptors``,
    ``nixl_metadata``, ``notification_key``, ``operation_kind``.

    Obtain it from ``ReadableOperation.metadata()`` /
    ``WritableOperation.metadata()``, send ``model_dump_json()`` over any
    channel, rebuild it with ``RdmaMetadata.model_validate_json(text)``.
    It grants access to the operation's memory: treat it as a secret.
    """

    # _fields: the fields, or None until first read (text from the C library
    #          or validated by it is only decoded in Python if asked for);
    # _text:   the exact JSON, passed unchanged to the C parser;
    # _parsed: the C library's parsed form (nxc_metadata_t *), or None.
    __slots__ = ("_fields", "_text", "_parsed")
    _FIELDS = ("descriptors", "nixl_metadata", "notification_key", "operation_kind")

    def __init__(
        self,
        descriptors: list = (),  # type: ignore[assignment]
        nixl_metadata: str = "",
        notification_key: str = "",
        operation_kind: int = _UNSET,  # 0 when not given
    ) -> None:
        fields = _validate_rdma(descriptors, nixl_metadata, notification_key, operation_kind)
        self._init(_fields=fields, _text=None, _parsed=None)

    @classmethod
    def _from_text(cls, text: str, parsed: Any = None) -> "RdmaMetadata":
        self = cls.__new__(cls)
        self._init(_fields=None, _text=text, _parsed=parsed)
        return self

    def _get(self) -> tuple:
        fields = self._fields
        if fields is None:
            fields = _validate_rdma(**json.loads(self._text))
            object.__setattr__(self, "_fields", fields)
        return fields

    def _c_metadata(self) -> int:
        """The C library's parsed form, made once (NixlConnectValueError,
        NXC_ERR_BAD_METADATA, if the library refuses the text)."""
        parsed = self._parsed
        if parsed is None:
            parsed = _parse(self.model_dump_json())
            if self._parsed is None:
                object.__setattr__(self, "_parsed", parsed)
            else:  # another thread was first
                _lib.nxc_metadata_free(parsed)
                parsed = self._parsed
        return parsed

    def __del__(self) -> None:
        parsed = getattr(self, "_parsed", None)
        if parsed is not None:
            try:
                _lib.nxc_metadata_free(parsed)
            except Exception:  # interpreter shutdown
                pass

    descriptors = property(lambda self: list(self._get()[0]))
    nixl_metadata = property(lambda self: self._get()[1])
    notification_key = property(lambda self: self._get()[2])
    operation_kind = property(lambda self: self._get()[3])

    @property
    def worker_name(self) -> str:
        """The name of the worker that exposed the memory (from the blob)."""
        name = _lib.nxc_metadata_worker_name(self._c_metadata())
        return (name or b"").decode("utf-8", "replace")

    def to_descriptors(self) -> Descriptor | list[Descriptor]:
        """Remote descriptors (addresses in the *peer's* memory) as Dynamo
        returns them: one Descriptor, or a list when there are several."""
        descs = self._get()[0]
        if not descs:
            raise ValueError("Request descriptor must contain at least one serialized descriptor.")
        if len(descs) == 1:
            return descs[0].to_descriptor()
        return [d.to_descriptor() for d in descs]

    def model_dump(self) -> dict:
        descs, blob, key, kind = self._get()
        return {
            "descriptors": [d.model_dump() for d in descs],
            "nixl_metadata": blob,
            "notification_key": key,
            "operation_kind": kind,
        }

    def model_dump_json(self) -> str:
        if self._text is None:
            object.__setattr__(self, "_text", json.dumps(self.model_dump(), separators=(",", ":")))
        return self._text

    @classmethod
    def model_validate(cls, obj: Any) -> "RdmaMetadata":
        if isinstance(obj, cls):
            return obj
        if not isinstance(obj, dict):
            raise ValueError(f"RdmaMetadata must be an object, got {type(obj).__name__}")
        _check_extra("RdmaMetadata", obj, cls._FIELDS)
        return cls(**obj)

    @classmethod
    def model_validate_json(cls, text: str | bytes | bytearray) -> "RdmaMetadata":
        """Parses and validates metadata JSON with the C library's strict
        parser. Raises :class:`NixlConnectValueError` (a ``ValueError``,
        NXC_ERR_BAD_METADATA) naming what is wrong and where."""
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("utf-8")
        if not isinstance(text, str):
            raise TypeError(f"model_validate_json needs str or bytes, got {type(text).__name__}")
        return cls._from_text(text, _parse(text))

    @classmethod
    def validate_operation_kind(cls, v: int) -> int:
        """Dynamo's field validator: ``TypeError`` unless 1 (READ) or 2
        (WRITE) (Dynamo's admits 3, which names no kind)."""
        if v not in (1, 2):
            raise TypeError(f"RdmaMetadata.operation_kind must be 1 (READ) or 2 (WRITE), got {v}")
        return v

    def _hex_encoded(self) -> "RdmaMetadata":
        """The same metadata with ``nixl_metadata`` as bare hex (Dynamo's
        ``metadata(hex_encode=True)``, for older peers)."""
        descs, blob, key, kind = self._get()
        if not blob.startswith("b64:"):
            return self
        return RdmaMetadata(list(descs), base64.b64decode(blob[4:]).hex(), key, kind)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RdmaMetadata) and self.model_dump() == other.model_dump()

    def __hash__(self) -> int:
        return hash(self.notification_key)

    def __repr__(self) -> str:
        descs, blob, key, kind = self._get()
        return (
            f"RdmaMetadata(descriptors={list(descs)!r}, nixl_metadata=<{len(blob)} chars>, "
            f"notification_key=<{len(key)} chars>, operation_kind={kind})"
        )


def _parse(text: str) -> int:
    raw = text.encode("utf-8")
    out = ctypes.c_void_p()
    rc = _lib.nxc_metadata_parse(raw, len(raw), ctypes.byref(out))
    if rc < 0:
        _lib.raise_error(rc)
    return out.value
