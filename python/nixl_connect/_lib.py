"""The C library through ctypes: loading, prototypes, and errors.

Everything here mirrors include/nixl_connect.h; nothing else in the package
calls the C library except through the names defined in this module.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = ["lib", "path", "require", "NixlConnectError", "NixlConnectValueError", "check", "raise_error"]

# ---- locating the shared library ------------------------------------------

_HERE = os.path.dirname(os.path.abspath(__file__))
_SONAME = "libnixl_connect.so"


def _load() -> tuple[ctypes.CDLL, str]:
    """NIXL_CONNECT_LIB (a file, or a folder holding libnixl_connect.so) if
    set; else next to this package; else a source checkout's build/; else the
    system loader."""
    env = os.environ.get("NIXL_CONNECT_LIB")
    if env:
        cand = os.path.join(env, _SONAME) if os.path.isdir(env) else env
        if not os.path.exists(cand):
            raise ImportError(f"NIXL_CONNECT_LIB={env!r}, but there is no {cand}")
        return ctypes.CDLL(cand), cand
    tried = []
    repo = os.path.dirname(os.path.dirname(_HERE))  # python/nixl_connect -> repo
    for cand in (os.path.join(_HERE, _SONAME), os.path.join(repo, "build", _SONAME)):
        if os.path.exists(cand):
            return ctypes.CDLL(cand), cand
        tried.append(cand)
    for soname in filter(None, [ctypes.util.find_library("nixl_connect"), _SONAME + ".0"]):
        try:
            return ctypes.CDLL(soname), soname
        except OSError:
            tried.append(soname)
    raise ImportError(
        "cannot find the nixl_connect C library: build it with "
        "`cmake -S . -B build && cmake --build build`, or set NIXL_CONNECT_LIB "
        "to the path of libnixl_connect.so (looked for: " + ", ".join(tried) + ")"
    )


# The library is loaded at first use, not at import: a program may import
# this package where the library is missing (help texts, type checking,
# tests that skip) and learns what was searched, and how to fix it, only
# when it calls something that needs the library. `lib`, `path` and the nxc_*
# functions below are bound then (module __getattr__).
_load_error: ImportError | None = None

# ---- types ------------------------------------------------------------------


class nxc_device_t(ctypes.Structure):
    _fields_ = [("kind", ctypes.c_int), ("id", ctypes.c_int)]


class nxc_descriptor_t(ctypes.Structure):
    _fields_ = [("ptr", ctypes.c_void_p), ("size", ctypes.c_size_t), ("device", nxc_device_t)]


class nxc_connector_config_t(ctypes.Structure):
    _fields_ = [
        ("field_mask", ctypes.c_uint64),
        ("name", ctypes.c_char_p),
        ("spin_us", ctypes.c_uint),
        ("progress_thread", ctypes.c_int),
        ("reg_cache", ctypes.c_uint),
        ("wire", ctypes.c_int),
        ("direct_local", ctypes.c_int),
    ]


NXC_CONFIG_NAME = 1 << 0
NXC_CONFIG_SPIN_US = 1 << 1
NXC_CONFIG_PROGRESS_THREAD = 1 << 2
NXC_CONFIG_DIRECT_LOCAL = 1 << 5

_p = ctypes.c_void_p
_pp = ctypes.POINTER(ctypes.c_void_p)
_desc_p = ctypes.POINTER(nxc_descriptor_t)
_int, _size = ctypes.c_int, ctypes.c_size_t
_str = ctypes.c_char_p

# name: (restype, argtypes...), as declared in include/nixl_connect.h
_PROTOTYPES = {
    "nxc_version": (_str,),
    "nxc_strerror": (_str, _int),
    "nxc_err_name": (_str, _int),
    "nxc_last_error": (_str,),
    "nxc_device_parse": (_int, _str, ctypes.POINTER(nxc_device_t)),
    "nxc_device_format": (_int, nxc_device_t, _str, _size),
    "nxc_op_status_name": (_str, _int),
    "nxc_connector_create": (_int, ctypes.POINTER(nxc_connector_config_t), _pp),
    "nxc_connector_destroy": (None, _p),
    "nxc_connector_name": (_str, _p),
    "nxc_connector_fd": (_int, _p),
    "nxc_connector_progress": (_int, _p),
    "nxc_connector_timeout_ms": (_int, _p),
    "nxc_mem_register": (_int, _p, _desc_p, _pp),
    "nxc_mem_deregister": (None, _p),
    "nxc_create_readable": (_int, _p, _desc_p, _size, _pp),
    "nxc_create_writable": (_int, _p, _desc_p, _size, _pp),
    "nxc_op_metadata": (_int, _p, ctypes.POINTER(_str), ctypes.POINTER(_size)),
    "nxc_metadata_parse": (_int, _str, _size, _pp),
    "nxc_metadata_free": (None, _p),
    "nxc_metadata_worker_name": (_str, _p),
    "nxc_begin_read": (_int, _p, _p, _desc_p, _size, _pp),
    "nxc_begin_write": (_int, _p, _desc_p, _size, _p, _pp),
    "nxc_op_status": (_int, _p),
    "nxc_op_cancel": (_int, _p),
    "nxc_op_results": (_int, _p, ctypes.POINTER(_desc_p), ctypes.POINTER(_size)),
    "nxc_op_error": (_int, _p, ctypes.POINTER(_str)),
    "nxc_op_release": (None, _p),
}


def require() -> None:
    """Loads the library and binds the nxc_* functions, once. Raises the
    ImportError of the lookup (what was searched, how to fix it) on every
    call while the library cannot be found."""
    global _load_error
    if "lib" in globals():
        return
    if _load_error is not None:
        raise ImportError(str(_load_error)) from _load_error
    try:
        loaded, where = _load()
    except (ImportError, OSError) as e:
        _load_error = e if isinstance(e, ImportError) else ImportError(str(e))
        raise ImportError(str(_load_error)) from _load_error
    for name, (restype, *argtypes) in _PROTOTYPES.items():
        fn = getattr(loaded, name)
        fn.restype = restype
        fn.argtypes = argtypes
        globals()[name] = fn
    globals()["path"] = where
    globals()["lib"] = loaded


def __getattr__(name: str):
    if name in _PROTOTYPES or name in ("lib", "path"):
        require()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---- errors -----------------------------------------------------------------

# The codes this package raises or sorts itself (pinned values of
# include/nixl_connect.h). The name of any code comes from the library
# (nxc_err_name), when an error is made: the library is loaded by then.
NXC_ERR_INVALID_ARG = -1
NXC_ERR_BAD_METADATA = -3
NXC_ERR_WRONG_KIND = -4
NXC_ERR_SIZE_MISMATCH = -5
NXC_ERR_STATE = -6
NXC_ERR_CANCELLED = -8
NXC_ERR_UNSUPPORTED = -12
NXC_ERR_DEVICE = -13

# Where Dynamo raises ValueError (bad arguments, sizes, devices, metadata that
# does not validate), the exception is also a ValueError. A wrong kind is a
# RuntimeError from Dynamo's begin_read/begin_write and a ValueError from its
# ReadOperation/WriteOperation constructors: ours is both.
_VALUE_ERRORS = {NXC_ERR_INVALID_ARG, NXC_ERR_BAD_METADATA, NXC_ERR_WRONG_KIND,
                 NXC_ERR_SIZE_MISMATCH, NXC_ERR_DEVICE}


class NixlConnectError(RuntimeError):
    """A failure reported by the C library.

    ``code`` is the negative ``NXC_ERR_*`` value, ``name`` its symbol and
    ``detail`` the sentence the library gave (``nxc_last_error()`` taken right
    after the failing call, or the op's own error). It is a ``RuntimeError``,
    which is what Dynamo raises for a wrong operation kind, for ``results()``
    before completion and for cancelling an errored operation.
    """

    def __init__(self, code: int, detail: str = "") -> None:
        self.code = code
        self.name = err_name(code)
        self.detail = detail or strerror(code)
        super().__init__(f"{self.detail} [{self.name}]")


class NixlConnectValueError(NixlConnectError, ValueError):
    """A :class:`NixlConnectError` for bad input (invalid argument, bad
    metadata, wrong kind, size mismatch, bad device): also a ``ValueError``,
    as in Dynamo."""


def strerror(code: int) -> str:
    require()
    return nxc_strerror(code).decode("utf-8", "replace")


def err_name(code: int) -> str:
    """The code's name as in the header, e.g. "NXC_ERR_TIMED_OUT" (the
    library's nxc_err_name: "NXC_ERR_UNKNOWN" for a code it does not know)."""
    require()
    return nxc_err_name(code).decode()


def make_error(code: int, detail: str) -> NixlConnectError:
    cls = NixlConnectValueError if code in _VALUE_ERRORS else NixlConnectError
    return cls(code, detail)


def raise_error(code: int) -> None:
    """Raises the error of the C call that just returned ``code`` on this
    thread. Call it immediately after the failing call: the detail is
    thread-local and the next nxc_* call replaces it."""
    require()
    detail = nxc_last_error().decode("utf-8", "replace")
    raise make_error(code, detail)


def check(rc: int) -> int:
    if rc < 0:
        raise_error(rc)
    return rc


def version() -> str:
    require()
    return nxc_version().decode()
