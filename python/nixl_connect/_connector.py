"""Connector and the four operation classes, over the C library.

Waiting is event driven: each connector's fd (``nxc_connector_fd``) is
registered once with the running asyncio loop (``loop.add_reader``). When it
becomes readable, one callback drives the connector
(``nxc_connector_progress``, which re-arms the fd) and wakes every future
waiting on an operation of that connector that has reached a final state.
Completions are announced by the fd, not found by polling on a timer (but see
the backstop below), and no blocking C call runs on the loop's thread:
releasing an operation that may still have transfers to drain is handed to a
worker thread.

One rule keeps wake-ups from being lost: between arming (progress) and the
loop going to sleep, nothing may drive the transport again. So after
arming, states are read without progress (``_peek``), and any call of ours
that drives the transport schedules one more dispatch before the loop sleeps
(``_touch``).

While an op is awaited and events came within the last ``spin_us``, the
connector is driven in a tight loop instead of once per turn of the event
loop, and without re-arming its fd: the loop does not sleep before the next
pass, and arming costs syscalls and makes each message the peer sends signal
the fd. A read needs four hops between the two processes (BEGIN, data,
DONE, ACK), two of them through the awaiting process, where a small write
needs two; driven once per turn with an arming pass each time, a read cost
48 syscalls per op against a write's 33 (both processes; now 20 and 12:
docs/PERFORMANCE.md, "From Python").
The tight loop asks the first awaited op's state (``nxc_op_status``: one
progress pass, about 1 us) until that op is final or a slice of at most
``_SPIN_SLICE_NS`` ends; then every waiter is looked at and the loop gets its
turn. A wait starts with one such slice on its own op, before it makes a
future: a small op is often done by then, and returns without the future,
the dispatch and the wake-up of a task. When the window closes, the last
pass arms the fd. All this only while this connector is the only one its
loop drives: two connectors in one loop (a pair in a test) need each other's
progress, which only the loop's turns give.

The C library also says how long a sleeper may trust the fd alone
(``nxc_connector_timeout_ms``: unbounded when idle, a few ms while any op is
pending), because UCX's wake-up can miss shared-memory progress. While an
op is awaited the connector is driven again after that long; a timer pass
that finds a completion the fd did not announce is counted in
``Connector.lost_wakeups``. Completions normally arrive through the fd
within microseconds.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import ctypes
import select
import socket
import threading
import time
import weakref
import zlib
from abc import ABC, abstractmethod
from typing import Any, Optional

from . import _lib
from ._lib import NixlConnectError
from ._metadata import RdmaMetadata
from ._types import (
    STATUS,
    Descriptor,
    OperationKind,
    OperationStatus,
    as_descriptor_list,
    c_descriptors,
)

_COMPLETE, _CANCELLED, _ERRORED = 3, 4, 5
# The longest the tight spin keeps the event loop from other callbacks.
_SPIN_SLICE_NS = 20_000
_running_loop = asyncio._get_running_loop  # None outside a running loop (no exception)
_monotonic_ns = time.monotonic_ns
_results_descs = ctypes.POINTER(_lib.nxc_descriptor_t)()
_results_n = ctypes.c_size_t()


def _peek(op: "AbstractOperation") -> int:
    """The op's final state, or 0 while it is not final, *without* driving
    the transport (nxc_op_status would): safe between arming and sleeping.
    Only a local cancel (ours) makes an op CANCELLED."""
    h = op._h
    if _lib.nxc_op_results(h, ctypes.byref(_results_descs), ctypes.byref(_results_n)) == 0:
        return _COMPLETE
    if _lib.nxc_op_error(h, None) < 0:
        return _ERRORED
    return _CANCELLED if op._cancelled else 0


# The connectors each running loop drives (see the tight spin, module doc).
_drivers: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, weakref.WeakSet[Connector]]" = (
    weakref.WeakKeyDictionary()
)


class _LoopState:
    """A connector's presence in one event loop: its waiters, and whether a
    dispatch is already due before the loop next sleeps."""

    __slots__ = ("waiting", "scheduled", "spin_until", "backstop", "driven_ns", "solo")

    def __init__(self) -> None:
        self.waiting: dict = {}  # operation -> [futures]
        self.scheduled = False
        self.spin_until = 0
        self.backstop: Optional[asyncio.TimerHandle] = None
        self.driven_ns = 0  # when a dispatch last drove the connector
        # Whether this loop drives this connector alone (may spin, module
        # doc): set when connectors attach or close; a connector that went
        # away without close() leaves it False until a dispatch that arms.
        self.solo = False


def _refuse_readonly(descs: list[Descriptor], what: str) -> None:
    for i, d in enumerate(descs):
        if d._readonly:
            raise TypeError(
                f"{what}: local descriptor {i} is read-only memory "
                f"({type(d._ref).__name__}), and this operation writes into it; "
                "use writable memory (bytearray, a writable numpy array or mmap)"
            )


class Connector:
    """One worker's endpoint (Dynamo's ``Connector``): creates readable and
    writable operations, begins reads and writes.

    ``worker_id`` names the worker (default: 32 random hex digits).
    ``enable_progress_thread`` (Dynamo's option; a bool, default False here)
    starts the C connector's own progress thread (the C option
    ``progress_thread``), which moves transfers while the process runs no
    event loop at all (a passive worker that exposes memory and then blocks
    elsewhere). An awaiting event loop drives the connector itself; with the
    thread on, an awaited completion that the thread handled first is seen
    after at most ``nxc_connector_timeout_ms`` (10 ms).
    ``spin_us`` (keyword only, not in Dynamo): how long an awaited operation
    keeps being driven after the last event before the connector relies on
    its fd alone (default 50; 0 never spins). While it spins, the loop runs
    other callbacks at least every 20 us (module doc). ``direct_local``
    (keyword only, not in Dynamo; default None, the C library's default:
    on, unless the environment says ``NXC_DIRECT_LOCAL=0``): this
    connector's readables and writables let a peer on the same host copy
    straight into or out of their memory (``process_vm_readv``/``writev``)
    without this process running; the C option ``direct_local``, whose
    documentation in nixl_connect.h says what it grants and when it
    applies. Call
    :meth:`close` (or use ``with Connector() as c:``) when done: the
    connector then releases what is left and frees the C connector; until
    then an event loop it was used in keeps it alive.
    """

    def __init__(
        self,
        worker_id: Optional[str] = None,
        enable_progress_thread: bool = False,
        *,
        spin_us: int = 50,
        direct_local: Optional[bool] = None,
    ) -> None:
        if worker_id is not None and (not isinstance(worker_id, str) or len(worker_id) == 0):
            raise TypeError("Argument `worker_id` must be a non-empty `str` or `None`.")
        if not isinstance(enable_progress_thread, bool):
            raise TypeError(
                "Argument `enable_progress_thread` must be `bool`, got "
                f"{type(enable_progress_thread).__name__}."
            )
        if not isinstance(spin_us, int) or not 0 <= spin_us <= 1_000_000:
            raise ValueError("Argument `spin_us` must be an int from 0 to 1000000.")
        if direct_local is not None and not isinstance(direct_local, bool):
            raise TypeError(
                "Argument `direct_local` must be `bool` or `None`, got "
                f"{type(direct_local).__name__}."
            )
        self._spin_ns = spin_us * 1000
        cfg = _lib.nxc_connector_config_t()
        if worker_id is not None:
            cfg.field_mask = _lib.NXC_CONFIG_NAME
            cfg.name = worker_id.encode("utf-8")
        if enable_progress_thread:
            cfg.field_mask |= _lib.NXC_CONFIG_PROGRESS_THREAD
            cfg.progress_thread = 1
        if direct_local is not None:
            cfg.field_mask |= _lib.NXC_CONFIG_DIRECT_LOCAL
            cfg.direct_local = int(direct_local)
        out = ctypes.c_void_p()
        rc = _lib.nxc_connector_create(ctypes.byref(cfg), ctypes.byref(out))
        if rc < 0:
            _lib.raise_error(rc)
        self._c: Optional[int] = out.value
        self._fd: int = _lib.nxc_connector_fd(self._c)
        self._name: str = _lib.nxc_connector_name(self._c).decode("utf-8", "replace")
        self._hostname = socket.gethostname()
        # A loop is a key once this connector's reader is registered with it.
        self._loops: dict[asyncio.AbstractEventLoop, _LoopState] = {}
        self._ops: "weakref.WeakSet[AbstractOperation]" = weakref.WeakSet()
        self._registered: "weakref.WeakSet[Descriptor]" = weakref.WeakSet()
        self._shared: Optional[Connection] = None
        self._releaser: Optional[concurrent.futures.ThreadPoolExecutor] = None
        self._lock = threading.Lock()
        self._lost_wakeups = 0

    # -- Dynamo's surface

    @property
    def name(self) -> str:
        """The worker name (``worker_id``)."""
        return self._name

    @property
    def hostname(self) -> str:
        return self._hostname

    @property
    def lost_wakeups(self) -> int:
        """How many times the backstop found a completion that the
        connector's fd had not announced (a C library bug; see the module
        doc). Diagnostic: 0 means every completion came through the fd."""
        return self._lost_wakeups

    @property
    def is_cuda_available(self) -> bool:
        """False: the C library moves host memory only for now (CUDA
        descriptors are refused with NXC_ERR_UNSUPPORTED)."""
        return False

    async def initialize(self) -> None:
        """Kept for Dynamo compatibility; the connector is ready once made."""
        self._handle()

    def create_readable(self, local_descriptors: Descriptor | list[Descriptor]) -> "ReadableOperation":
        """Exposes ``local_descriptors`` to be read by one peer.

        Returns the operation at once; it is also awaitable (``await
        connector.create_readable(d)`` returns the same object), so code
        written for either Dynamo version works.
        """
        return ReadableOperation(self._connection(), local_descriptors)

    def create_writable(self, local_descriptors: Descriptor | list[Descriptor]) -> "WritableOperation":
        """Exposes ``local_descriptors`` to be written by one peer (see
        :meth:`create_readable`). Read-only buffers are refused (TypeError)."""
        return WritableOperation(self._connection(), local_descriptors)

    async def begin_read(
        self,
        remote_metadata: RdmaMetadata,
        local_descriptors: Descriptor | list[Descriptor],
    ) -> "ReadOperation":
        """Starts reading the memory ``remote_metadata`` exposes (a
        ReadableOperation's) into ``local_descriptors``; the transfer is
        posted before this returns."""
        return ReadOperation(self._connection(), remote_metadata, local_descriptors)

    async def begin_write(
        self,
        local_descriptors: Descriptor | list[Descriptor],
        remote_metadata: RdmaMetadata,
    ) -> "WriteOperation":
        """Starts writing ``local_descriptors`` into the memory
        ``remote_metadata`` exposes (a WritableOperation's)."""
        return WriteOperation(self._connection(), local_descriptors, remote_metadata)

    async def _create_connection(self) -> "Connection":
        """The connector's one shared :class:`Connection` (as in Dynamo,
        which makes it on first use and hands it to every operation)."""
        conn = self._connection()
        await conn.initialize()
        return conn

    def _connection(self) -> "Connection":
        conn = self._shared
        if conn is None:
            conn = self._shared = _SharedConnection(self)
        return conn

    # -- lifetime

    def close(self) -> None:
        """Releases every operation still open (cancelling those in flight,
        waiting for their transfers to drain) and destroys the C connector.
        Idempotent. Call it from the thread of the event loop it was used
        in, or once that loop has stopped."""
        c = self._c
        if c is None:
            return
        here = _running_loop()
        for loop in self._loops:
            if loop is not here and loop.is_running():
                raise RuntimeError(
                    "Connector.close() must run on the thread of its event loop "
                    "(or after that loop has stopped)"
                )
        for op in list(self._ops):
            op._release(inline=True)
        for desc in list(self._registered):
            desc.deregister_with_connector(self)
        if self._releaser is not None:
            self._releaser.shutdown(wait=True)
            self._releaser = None
        self._c = None
        for state in self._loops.values():
            if state.backstop is not None:
                state.backstop.cancel()
        _teardown(c, self._fd, list(self._loops))
        for loop in self._loops:
            rest = _drivers.get(loop)
            if rest is not None:
                rest.discard(self)
                _note_solo(loop, rest)
        self._loops.clear()

    def __enter__(self) -> "Connector":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        c = getattr(self, "_c", None)
        if c is None:
            return
        try:
            # No operation is left (each holds its connector); only the
            # readers remain. A loop running on another thread must remove
            # its own reader before the fd goes away.
            here = _running_loop()
            foreign = [l for l in self._loops if l is not here and l.is_running()]
            self._c = None
            if foreign:
                foreign[0].call_soon_threadsafe(_teardown, c, self._fd, list(self._loops))
            else:
                _teardown(c, self._fd, list(self._loops))
        except Exception:  # interpreter shutdown: leave it to the OS
            pass

    def __repr__(self) -> str:
        return f"Connector(worker_id='{self._name}', hostname={self._hostname})"

    def __str__(self) -> str:
        return self._name

    def __eq__(self, other: object) -> bool:
        """Connectors of the same ``worker_id`` are equal (as in Dynamo)."""
        return isinstance(other, Connector) and self._name == other._name

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(self._name)

    # -- internals

    def _handle(self) -> int:
        c = self._c
        if c is None:
            raise NixlConnectError(_lib.NXC_ERR_INVALID_ARG, "the connector is closed")
        return c

    def _create(self, fn, descs: list[Descriptor]) -> int:
        arr = c_descriptors(descs)
        out = ctypes.c_void_p()
        rc = fn(self._handle(), arr, len(descs), ctypes.byref(out))
        if rc < 0:
            _lib.raise_error(rc)
        return out.value

    def _begin(self, kind: OperationKind, md: RdmaMetadata, descs: list[Descriptor]) -> int:
        c = self._handle()
        parsed = md._c_metadata()
        arr = c_descriptors(descs)
        out = ctypes.c_void_p()
        if kind == OperationKind.READ:
            rc = _lib.nxc_begin_read(c, parsed, arr, len(descs), ctypes.byref(out))
        else:
            rc = _lib.nxc_begin_write(c, arr, len(descs), parsed, ctypes.byref(out))
        if rc < 0:
            _lib.raise_error(rc)
        return out.value

    def _adopt(self, op: "AbstractOperation") -> None:
        """A new op: remember it, and let the running loop (if any) drive the
        connector from now on, so that transfers move while the application
        awaits something else."""
        self._ops.add(op)
        loop = _running_loop()
        if loop is not None and loop not in self._loops:
            self._attach(loop)

    def _attach(self, loop: asyncio.AbstractEventLoop) -> _LoopState:
        state = self._loops.get(loop)
        if state is None:
            for old in [l for l in self._loops if l.is_closed()]:
                del self._loops[old]
            loop.add_reader(self._fd, _on_readable, weakref.ref(self), loop, self._fd)
            state = self._loops[loop] = _LoopState()
            drivers = _drivers.setdefault(loop, weakref.WeakSet())
            drivers.add(self)
            _note_solo(loop, drivers)
        return state

    def _may_spin(self, loop: asyncio.AbstractEventLoop, state: _LoopState) -> bool:
        return self._spin_ns > 0 and state.solo and _monotonic_ns() < state.spin_until

    def _spin(self, h: int, state: _LoopState) -> tuple[int, int]:
        """The tight spin (module doc): drives the connector without arming
        until op ``h`` is final, the spin window closes or a slice has
        passed. Returns h's state before and after."""
        end = min(state.spin_until, _monotonic_ns() + _SPIN_SLICE_NS)
        first = st = _lib.nxc_op_status(h)
        while st < _COMPLETE and _monotonic_ns() < end:
            st = _lib.nxc_op_status(h)
        return first, st

    def _wake(self, state: _LoopState) -> int:
        """Wakes the waiters of every awaited op that is final (looked at
        without progress); returns how many ops that was."""
        woken = 0
        waiting = state.waiting
        for op, futs in list(waiting.items()):
            if op._h is None:
                continue
            st = _peek(op)
            if st:
                del waiting[op]
                woken += 1
                for fut in futs:
                    if not fut.done():
                        fut.set_result(st)
        return woken

    def _dispatch(self, loop: asyncio.AbstractEventLoop) -> int:
        """The reader: drive the connector, then wake the waiters of every
        op that reached a final state, and drive again soon while the spin
        window is open. A pass that schedules another may spin without
        arming (the loop does not sleep in between); any other pass ends
        with nxc_connector_progress, which re-arms the fd. Returns how many
        ops it found final."""
        state = self._loops.get(loop)
        c = self._c
        if state is None or c is None:
            return 0
        state.scheduled = False
        h = next(iter(state.waiting))._h if state.waiting else None
        if h is not None and self._may_spin(loop, state):
            first, st = self._spin(h, state)
            state.driven_ns = _monotonic_ns()
            if st != first:
                state.spin_until = state.driven_ns + self._spin_ns
            # The next pass spins again, or arms if nothing is awaited by
            # then. Scheduled after the woken tasks: one of them often waits
            # for its next op at once, and arming in between would cost both
            # sides syscalls for nothing.
            woken = self._wake(state)
            state.scheduled = True
            loop.call_soon(self._dispatch, loop)
            return woken
        if not state.solo:  # stale after a connector went away without close()
            state.solo = len(_drivers.get(loop, ())) == 1
        n = _lib.nxc_connector_progress(c)
        now = state.driven_ns = _monotonic_ns()
        woken = self._wake(state)
        waiting = state.waiting
        if waiting and state.backstop is None:
            self._arm_timer(loop, state)
        if waiting and self._spin_ns:
            if n > 0:
                state.spin_until = now + self._spin_ns
            if now < state.spin_until:
                state.scheduled = True
                loop.call_soon(self._dispatch, loop)
        return woken

    def _arm_timer(self, loop: asyncio.AbstractEventLoop, state: "_LoopState") -> None:
        """Drive the connector again after the longest sleep the C library
        allows the fd alone (nxc_connector_timeout_ms; none when idle)."""
        ms = _lib.nxc_connector_timeout_ms(self._c)
        if ms >= 0:
            state.backstop = loop.call_later(ms / 1000.0, self._backstop, loop)

    def _backstop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Drives the connector while ops are awaited once no dispatch has
        driven it for the bound of nxc_connector_timeout_ms (after a
        dispatch, the timer moves to the bound from it); counts the
        completions it then finds that the fd had not announced. The bound
        runs from the last dispatch, as the C library's runs from the last
        sleep: a timer that fired on a loop that kept dispatching counted
        completions whose message was in but whose fd signal was still on
        its way as lost."""
        state = self._loops.get(loop)
        if state is None or self._c is None:
            return
        state.backstop = None
        if not state.waiting:
            return
        ms = _lib.nxc_connector_timeout_ms(self._c)
        left_ns = state.driven_ns + ms * 1_000_000 - _monotonic_ns()
        if ms >= 0 and left_ns > 0:
            state.backstop = loop.call_later(left_ns / 1e9, self._backstop, loop)
            return
        announced = bool(select.select([self._fd], [], [], 0)[0])
        if self._dispatch(loop) and not announced:
            self._lost_wakeups += 1
        if state.waiting and state.backstop is None:
            self._arm_timer(loop, state)

    def _touch(self) -> None:
        """We just drove the transport outside a dispatch: dispatch once more
        before the running loop sleeps, so that arming comes last. (Asking
        asyncio for the running loop costs a getpid() syscall on Python
        3.11: not when every loop has a dispatch due anyway.)"""
        if all(state.scheduled for state in self._loops.values()):
            return
        loop = _running_loop()
        if loop is None:
            return
        state = self._loops.get(loop)
        if state is not None and not state.scheduled:
            state.scheduled = True
            loop.call_soon(self._dispatch, loop)

    def _kick(self, op: "AbstractOperation") -> None:
        """Something other than the transport changed ``op`` (cancel): let
        its waiters look."""
        here = _running_loop()
        for loop, state in list(self._loops.items()):
            if op not in state.waiting:
                continue
            if loop is here:
                self._dispatch(loop)
            elif not loop.is_closed():
                loop.call_soon_threadsafe(self._dispatch, loop)

    def _drop_waiters(self, op: "AbstractOperation", status: int) -> None:
        """``op`` is being released: its waiters get its last state."""
        dropped = [(loop, state.waiting.pop(op, [])) for loop, state in list(self._loops.items())
                   if op in state.waiting]
        if not dropped:
            return
        here = _running_loop()
        for loop, futs in dropped:
            for fut in futs:
                if fut.done() or loop.is_closed():
                    continue
                if loop is here:
                    fut.set_result(status)
                else:
                    loop.call_soon_threadsafe(_set_result, fut, status)

    def _release_later(self, h: int, descs: list[Descriptor]) -> None:
        """nxc_op_release() may wait for transfers to drain: off the loop's
        thread, with the buffers kept alive until it returns."""
        with self._lock:
            if self._releaser is None:
                self._releaser = concurrent.futures.ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix="nxc-release"
                )
            # The job holds the connector too: it must outlive the release.
            self._releaser.submit(_release_job, self, h, descs)


def _release_job(conn: Connector, h: int, descs: list[Descriptor]) -> None:
    _lib.nxc_op_release(h)
    # The release drove the transport from this thread: let each loop re-arm.
    for loop in list(conn._loops):
        if not loop.is_closed():
            try:
                loop.call_soon_threadsafe(conn._dispatch, loop)
            except RuntimeError:  # closed meanwhile
                pass
    del descs, conn  # only now may the buffers (and the connector) go


def _note_solo(loop: asyncio.AbstractEventLoop, drivers: "weakref.WeakSet[Connector]") -> None:
    """Tells the connectors a loop drives whether they are alone in it."""
    members = list(drivers)
    for conn in members:
        state = conn._loops.get(loop)
        if state is not None:
            state.solo = len(members) == 1


def _set_result(fut: asyncio.Future, value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


def _on_readable(ref: "weakref.ref[Connector]", loop: asyncio.AbstractEventLoop, fd: int) -> None:
    conn = ref()
    if conn is None or conn._c is None:
        loop.remove_reader(fd)
        return
    conn._dispatch(loop)


def _teardown(c: int, fd: int, loops: list) -> None:
    for loop in loops:
        if not loop.is_closed():
            loop.remove_reader(fd)
    _lib.nxc_connector_destroy(c)


# ---- connections and remotes ----------------------------------------------------


def _connector_of(connection: Any) -> Connector:
    if isinstance(connection, Connection):
        conn = connection._connector
        if conn is None:
            raise NixlConnectError(
                _lib.NXC_ERR_STATE, f"the connector of connection {connection.name} is gone"
            )
        return conn
    if isinstance(connection, Connector):
        return connection
    raise TypeError("Argument `connection` must be `nixl_connect.Connection` (or `Connector`).")


class Connection:
    """Dynamo's ``Connection``: one of a connector's views on the transport.

    Dynamo makes a NIXL agent per connection, and a connection per
    operation. Here every connection of a connector shares its one C
    connector (one UCX worker, its endpoint cache and its registrations), so
    a connection is only a name and a way back to its connector.
    """

    def __init__(self, connector: Connector, number: int) -> None:
        if not isinstance(connector, Connector):
            raise TypeError("Argument `connector` must be `nixl_connect.Connector`.")
        if not isinstance(number, int) or isinstance(number, bool):
            raise TypeError("Argument `number` must be of type `int`.")
        if number <= 0:
            raise ValueError("Argument `number` must be greater than 0.")
        self._connector = connector
        self._name = f"{connector.name}-{number}"
        self._is_initialized = False

    @property
    def connector(self) -> Connector:
        return self._connector

    @property
    def name(self) -> str:
        return self._name

    async def initialize(self) -> None:
        """Kept for Dynamo compatibility: nothing to do."""
        self._connector._handle()
        self._is_initialized = True

    def __repr__(self) -> str:
        return f"Connection(is_initialized={self._is_initialized}, name='{self._name}')"

    def __str__(self) -> str:
        return self._name


class _SharedConnection(Connection):
    """The connection a connector hands to its own operations (number 1).
    It refers to its connector weakly: the connector holds it, and a cycle
    would delay the connector's teardown to a garbage collection. Its
    operations keep the connector alive themselves."""

    def __init__(self, connector: Connector) -> None:
        super().__init__(connector, 1)

    @property
    def _connector(self) -> Optional[Connector]:  # type: ignore[override]
        return self._ref()

    @_connector.setter
    def _connector(self, connector: Connector) -> None:
        self._ref = weakref.ref(connector)


class Remote:
    """Dynamo's ``Remote``: the worker on the other side of an operation,
    named by the agent blob of its metadata (``nixl_metadata``: the
    ``b64:`` or hex text of ``RdmaMetadata``, or the raw blob as bytes).

    The blob is checked by the C library's strict parser when the Remote is
    made (a ``ValueError`` if it does not parse, as in Dynamo). Endpoints to
    the worker are kept by the C connector, shared and reference-counted, so
    making and dropping a Remote costs nothing.
    """

    def __init__(self, connection: Connection | Connector, nixl_metadata: bytes | str) -> None:
        _connector_of(connection)
        if not isinstance(nixl_metadata, (bytes, str)):
            raise TypeError("Argument `nixl_metadata` must be `bytes` or `str`.")
        if len(nixl_metadata) == 0:
            raise ValueError("Argument `nixl_metadata` cannot be empty.")
        if isinstance(nixl_metadata, bytes):
            nixl_metadata = "b64:" + base64.b64encode(zlib.compress(nixl_metadata)).decode()
        self._connection = connection
        self._nixl_metadata = nixl_metadata
        # The blob travels only inside metadata: wrap it in the smallest one
        # and parse it now, so a bad blob fails here, as in Dynamo.
        self._md = RdmaMetadata(
            descriptors=[{"device": "cpu", "ptr": 1, "size": 0}],
            nixl_metadata=nixl_metadata,
            notification_key="0" * 32,
            operation_kind=int(OperationKind.READ),
        )
        self._md._c_metadata()

    @classmethod
    def _of(cls, connection: Any, md: RdmaMetadata) -> "Remote":
        self = cls.__new__(cls)
        self._connection, self._nixl_metadata, self._md = connection, None, md
        return self

    @property
    def connection(self) -> Connection | Connector:
        return self._connection

    @property
    def name(self) -> str:
        """The remote worker's name (its ``worker_id``)."""
        return self._md.worker_name

    @property
    def nixl_metadata(self) -> str:
        return self._md.nixl_metadata if self._nixl_metadata is None else self._nixl_metadata

    def _release(self) -> None:
        """Nothing to release: the C connector owns the endpoint."""

    def __enter__(self) -> "Remote":
        return self

    def __exit__(self, *exc: Any) -> None:
        self._release()

    def __repr__(self) -> str:
        return f"Remote(name={self.name}, connection={self._connection.name})"

    def __str__(self) -> str:
        return self.name


# ---- operations ---------------------------------------------------------------


class AbstractOperation(ABC):
    """What all operations share (Dynamo's ``AbstractOperation``): status,
    cancel, wait, release, ``with`` blocks."""

    def __init__(
        self,
        connection: Connection | Connector,
        operation_kind: OperationKind,
        local_descriptors: Descriptor | list[Descriptor],
        remote_descriptors: Optional[Descriptor | list[Descriptor]] = None,
        notification_key: Optional[str] = None,
    ) -> None:
        conn = _connector_of(connection)
        if operation_kind is not OperationKind.READ and operation_kind is not OperationKind.WRITE:
            raise ValueError("Argument `operation_kind` must be either `READ` or `WRITE`.")
        if notification_key is not None:
            if not isinstance(notification_key, str):
                raise TypeError("Argument `notification_key` must be `str` or `None`.")
            if len(notification_key) == 0:
                raise ValueError("Argument `notification_key` must not be an empty string.")
        descs = as_descriptor_list(local_descriptors)
        if not descs:
            raise _lib.make_error(
                _lib.NXC_ERR_INVALID_ARG, "Argument `local_descriptors` must not be an empty list."
            )
        if len(descs) > 1:
            kind = descs[0]._device._kind
            if any(d._device._kind is not kind for d in descs):
                raise ValueError("All local descriptors must have the same memory type.")
        self._connection = connection
        self._connector = conn
        self._kind = operation_kind
        self._h: Optional[int] = None
        self._descs = descs  # keeps the buffers alive until release
        self._final: OperationStatus = OperationStatus.UNINITIALIZED
        self._error: Optional[NixlConnectError] = None
        self._cancelled = False

    def _start(self, handle: int) -> None:
        self._h = handle
        self._connector._adopt(self)

    # -- Dynamo's surface

    @property
    def connection(self) -> Connection | Connector:
        """What the operation was made with (its connector, or a Connection of it)."""
        return self._connection

    @property
    def connector(self) -> Connector:
        return self._connector

    @property
    def operation_kind(self) -> OperationKind:
        return self._kind

    @property
    def status(self) -> OperationStatus:
        """The current state (drives the transport once if not final)."""
        h = self._h
        if h is None:
            return self._final
        st = _lib.nxc_op_status(h)
        if st < _COMPLETE:
            self._connector._touch()
        return STATUS[st]

    def cancel(self) -> None:
        """Requests cancellation: no effect once COMPLETE or CANCELLED,
        :class:`NixlConnectError` (NXC_ERR_STATE, a RuntimeError) if ERRORED.
        An op in flight becomes CANCELLED at once and is never COMPLETE."""
        h = self._h
        if h is None:
            return
        self._cancelled = True
        rc = _lib.nxc_op_cancel(h)
        if rc < 0:
            _lib.raise_error(rc)
        self._connector._kick(self)

    @abstractmethod
    async def wait_for_completion(self) -> None:
        """Waits until the operation is final (see the subclasses)."""

    async def _wait_for_completion_(self) -> None:
        """Waits until the op is final: returns when COMPLETE, raises
        :class:`NixlConnectError` when it was cancelled (NXC_ERR_CANCELLED) or
        failed (a RuntimeError saying the operation errored, with the op's
        own code and sentence, e.g. NXC_ERR_PEER_FAILED).

        Event driven (the connector's fd in the running loop). Cancelling
        the await, e.g. ``asyncio.wait_for`` timing out, leaves the op as it
        was: it may be awaited again, cancelled or released.
        """
        h = self._h
        if h is None:
            return self._outcome(self._final)
        status = _lib.nxc_op_status
        st = status(h)
        if st < _COMPLETE:
            conn = self._connector
            loop = asyncio.get_running_loop()
            state = conn._loops.get(loop)
            if state is None:
                conn._handle()
                state = conn._attach(loop)
            spin_ns = conn._spin_ns
            now = _monotonic_ns()
            state.spin_until = now + spin_ns
            spun = spin_ns > 0 and state.solo
            if spun:
                # A small op is often done within microseconds: spin on it
                # at once (the connector's own _spin, inlined: a read's
                # last message, the ACK, is often here a pass later), before
                # making a future; a dispatch arms the fd later, before the
                # loop sleeps.
                end = now + (spin_ns if spin_ns < _SPIN_SLICE_NS else _SPIN_SLICE_NS)
                st = status(h)
                while st < _COMPLETE and _monotonic_ns() < end:
                    st = status(h)
                if not state.scheduled:
                    state.scheduled = True
                    loop.call_soon(conn._dispatch, loop)
                if st >= _COMPLETE:
                    return self._outcome(st)
            fut = loop.create_future()
            futs = state.waiting.setdefault(self, [])
            futs.append(fut)
            try:
                if not spun:
                    # A dispatch now: progress re-arms the fd, then the op is
                    # looked at without progress; from here no event is missed.
                    conn._dispatch(loop)
                st = fut.result() if fut.done() else await fut
            finally:
                futs = state.waiting.get(self)
                if futs is not None and fut in futs:
                    futs.remove(fut)
                    if not futs:
                        del state.waiting[self]
        return self._outcome(st)

    def release(self) -> None:
        """Releases the op (cancelling it if still in flight) and, for a
        passive op, stops exposing its memory. Idempotent; ``with op:`` and
        garbage collection call it too. Descriptors registered with
        ``register_with_connector`` stay registered."""
        self._release(inline=False)

    def __enter__(self):
        return self

    def __exit__(self, *exc: Any) -> None:
        self._release(inline=False)

    def __del__(self) -> None:
        if getattr(self, "_h", None) is not None:
            try:
                self._release(inline=False)
            except Exception:
                pass

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(operation_kind={self._kind}, "
            f"local_descriptors={self._descs}, status='{self.status}')"
        )

    # -- internals

    def _outcome(self, st: int) -> None:
        if st == _COMPLETE:
            return None
        if self._h is not None and st == _ERRORED:
            self._note_error()
        if st == _ERRORED and self._error is not None:
            raise self._error
        if st == _CANCELLED or st == _ERRORED:
            raise NixlConnectError(_lib.NXC_ERR_CANCELLED, "the operation was cancelled")
        raise NixlConnectError(_lib.NXC_ERR_STATE, f"the operation is {STATUS[st].name}")

    def _note_error(self) -> None:
        detail = ctypes.c_char_p()
        code = _lib.nxc_op_error(self._h, ctypes.byref(detail))
        if code < 0:
            why = (detail.value or b"").decode("utf-8", "replace")
            self._error = _lib.make_error(
                code, f"the {self._kind} operation errored (ERRORED): {why}"
            )

    def _release(self, inline: bool) -> None:
        h = self._h
        if h is None:
            return
        st = _lib.nxc_op_status(h)
        if st == _ERRORED:
            self._note_error()
        self._final = STATUS[st] if st >= _COMPLETE else OperationStatus.CANCELLED
        self._h = None
        conn = self._connector
        conn._ops.discard(self)
        conn._drop_waiters(self, int(self._final))
        if inline or st == _COMPLETE or _running_loop() is None:
            _lib.nxc_op_release(h)
        else:
            conn._release_later(h, self._descs)
        conn._touch()
        if not (isinstance(self, ReadOperation) and st == _COMPLETE):
            # The buffers are free again (an mmap may be closed, a bytearray
            # resized); a completed read keeps them for results(), as in Dynamo.
            self._descs = []


class PassiveOperation(AbstractOperation):
    """Memory exposed to one peer (Dynamo's ``PassiveOperation``): the base
    of :class:`ReadableOperation` and :class:`WritableOperation`. Abstract,
    as in Dynamo: a subclass defines ``wait_for_completion`` (usually as
    ``await self._wait_for_completion_()``)."""

    _md: Optional[RdmaMetadata] = None

    def __init__(
        self,
        connection: Connection | Connector,
        operation_kind: OperationKind,
        local_descriptors: Descriptor | list[Descriptor],
    ) -> None:
        super().__init__(connection, operation_kind, local_descriptors)
        if operation_kind is OperationKind.WRITE:
            _refuse_readonly(self._descs, "create_writable")
            fn = _lib.nxc_create_writable
        else:
            fn = _lib.nxc_create_readable
        self._start(self._connector._create(fn, self._descs))

    def metadata(self, hex_encode: bool = False) -> RdmaMetadata:
        """The :class:`RdmaMetadata` to hand to the peer. ``hex_encode=True``
        gives ``nixl_metadata`` as bare hex (for older Dynamo peers)."""
        if self._md is None:
            h = self._h
            if h is None:
                raise NixlConnectError(_lib.NXC_ERR_STATE, "the operation was released")
            text = ctypes.c_char_p()
            n = ctypes.c_size_t()
            rc = _lib.nxc_op_metadata(h, ctypes.byref(text), ctypes.byref(n))
            if rc < 0:
                _lib.raise_error(rc)
            self._md = RdmaMetadata._from_text(ctypes.string_at(text, n.value).decode("utf-8"))
        return self._md._hex_encoded() if hex_encode else self._md

    def __await__(self):
        # `await connector.create_readable(...)` (newer Dynamo) and plain
        # `connector.create_readable(...)` (older Dynamo) both work.
        return self
        yield  # noqa: unreachable; makes this a generator


class ReadableOperation(PassiveOperation):
    """Memory exposed to be read by one peer (``Connector.create_readable``)."""

    def __init__(
        self, connection: Connection | Connector, local_descriptors: Descriptor | list[Descriptor]
    ) -> None:
        super().__init__(connection, OperationKind.READ, local_descriptors)

    wait_for_completion = AbstractOperation._wait_for_completion_


class WritableOperation(PassiveOperation):
    """Memory exposed to be written by one peer (``Connector.create_writable``)."""

    def __init__(
        self, connection: Connection | Connector, local_descriptors: Descriptor | list[Descriptor]
    ) -> None:
        super().__init__(connection, OperationKind.WRITE, local_descriptors)

    wait_for_completion = AbstractOperation._wait_for_completion_


class ActiveOperation(AbstractOperation):
    """A transfer this worker drives (Dynamo's ``ActiveOperation``): the base
    of :class:`ReadOperation` and :class:`WriteOperation`.

    Dynamo's constructor (a :class:`Remote`, the kind, local and remote
    descriptors, the notification key) is accepted: the metadata is rebuilt
    from those parts and checked by the C parser. The transfer is posted
    before the constructor returns. Abstract, as in Dynamo: a subclass
    defines ``wait_for_completion`` and ``cancel`` (usually through
    ``_wait_for_completion_()`` and ``AbstractOperation.cancel``).
    """

    def __init__(
        self,
        remote: Remote,
        operation_kind: OperationKind,
        local_descriptors: Descriptor | list[Descriptor],
        remote_descriptors: Descriptor | list[Descriptor],
        notification_key: str,
    ) -> None:
        if not isinstance(remote, Remote):
            raise TypeError("Argument `remote` must be valid `nixl_connect.Remote`.")
        if not isinstance(operation_kind, OperationKind):
            raise TypeError("Argument `operation_kind` must `nixl_connect.OperationKind`.")
        if operation_kind is not OperationKind.READ and operation_kind is not OperationKind.WRITE:
            raise ValueError("Argument `operation_kind` must be either `READ` or `WRITE`.")
        if not isinstance(notification_key, str):
            raise TypeError("Argument `notification_key` must be `str`.")
        if len(notification_key) == 0:
            raise ValueError("Argument `notification_key` must not be an empty string.")
        remote_list = as_descriptor_list(remote_descriptors, "remote_descriptors")
        md = RdmaMetadata(
            descriptors=[d.metadata for d in remote_list],
            nixl_metadata=remote.nixl_metadata,
            notification_key=notification_key,
            operation_kind=int(operation_kind),
        )
        self._remote = remote
        self._begin_active(remote.connection, operation_kind, local_descriptors, md)

    _remote: Optional[Remote] = None

    def _begin_active(self, connection: Any, kind: OperationKind, local: Any,
                      md: RdmaMetadata) -> None:
        AbstractOperation.__init__(self, connection, kind, local)
        if kind is OperationKind.READ:
            _refuse_readonly(self._descs, "begin_read")
        self._remote_md = md
        self._start(self._connector._begin(kind, md, self._descs))

    @abstractmethod
    def cancel(self) -> None:
        """Abstract here as in Dynamo; the subclasses use
        :meth:`AbstractOperation.cancel`."""

    @property
    def remote(self) -> Remote:
        """The worker whose memory this operation reads or writes (made on
        first use: most operations are never asked)."""
        remote = self._remote
        if remote is None:
            remote = self._remote = Remote._of(self._connection, self._remote_md)
        return remote


class ReadOperation(ActiveOperation):
    """A read of a peer's ReadableOperation into local buffers (``Connector.begin_read``)."""

    def __init__(
        self,
        connection: Connection | Connector,
        remote_metadata: RdmaMetadata,
        local_descriptors: Descriptor | list[Descriptor],
    ) -> None:
        if not isinstance(remote_metadata, RdmaMetadata):
            raise TypeError("Argument `remote_metadata` must be `RdmaMetadata`.")
        self._begin_active(connection, OperationKind.READ, local_descriptors, remote_metadata)

    wait_for_completion = AbstractOperation._wait_for_completion_
    cancel = AbstractOperation.cancel

    def results(self) -> list[Descriptor]:
        """The local descriptors, once COMPLETE; :class:`NixlConnectError`
        (NXC_ERR_STATE, a RuntimeError) before."""
        h = self._h
        if h is None:
            if self._final != OperationStatus.COMPLETE:
                raise NixlConnectError(
                    _lib.NXC_ERR_STATE,
                    f"results are available once the op is COMPLETE; it is {self._final}",
                )
            return list(self._descs)
        descs = ctypes.POINTER(_lib.nxc_descriptor_t)()
        n = ctypes.c_size_t()
        rc = _lib.nxc_op_results(h, ctypes.byref(descs), ctypes.byref(n))
        if rc < 0:
            _lib.raise_error(rc)
        return list(self._descs)


class WriteOperation(ActiveOperation):
    """A write of local buffers into a peer's WritableOperation (``Connector.begin_write``)."""

    def __init__(
        self,
        connection: Connection | Connector,
        local_descriptors: Descriptor | list[Descriptor],
        remote_metadata: RdmaMetadata,
    ) -> None:
        if not isinstance(remote_metadata, RdmaMetadata):
            raise TypeError("Argument `remote_metadata` must be `RdmaMetadata`.")
        self._begin_active(connection, OperationKind.WRITE, local_descriptors, remote_metadata)

    wait_for_completion = AbstractOperation._wait_for_completion_
    cancel = AbstractOperation.cancel
