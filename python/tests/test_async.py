"""wait_for_completion under asyncio: event driven through the connector's
fd, many waiters woken, timeouts and cancellation that leave the op usable."""

import asyncio
import time

import pytest

from support import digest, nc, pattern, read_line, run, spawn_peer


def waiters(conn) -> int:
    return sum(len(state.waiting) for state in conn._loops.values())


def test_timeout_then_cancel_and_release(pair):
    p, _ = pair

    async def main():
        op = p.create_writable(nc.Descriptor(bytearray(32)))
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(op.wait_for_completion(), 0.2)  # nobody writes
        assert waiters(p) == 0  # the cancelled await took its waiter away
        assert op.status == nc.OperationStatus.INITIALIZED  # the op goes on
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(op.wait_for_completion(), 0.05)  # and may be awaited again
        op.cancel()
        op.cancel()  # no effect the second time
        assert op.status == nc.OperationStatus.CANCELLED
        with pytest.raises(nc.NixlConnectError) as e:
            await op.wait_for_completion()
        assert e.value.name == "NXC_ERR_CANCELLED"
        op.release()
        op.release()
        assert op.status == nc.OperationStatus.CANCELLED

    run(main())


def test_timeout_then_the_transfer_still_completes(pair):
    p, a = pair
    dst = bytearray(100)

    async def main():
        with p.create_writable(nc.Descriptor(dst)) as w:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(w.wait_for_completion(), 0.1)
            with await a.begin_write(nc.Descriptor(pattern(100, 3)), w.metadata()) as op:
                await op.wait_for_completion()
            await w.wait_for_completion()

    run(main())
    assert dst == pattern(100, 3)


def test_task_cancellation_keeps_the_op(pair):
    p, a = pair

    async def main():
        r = p.create_readable(nc.Descriptor(b"0123456789"))
        task = asyncio.ensure_future(r.wait_for_completion())
        await asyncio.sleep(0)
        assert waiters(p) == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert waiters(p) == 0
        out = bytearray(10)
        with await a.begin_read(r.metadata(), nc.Descriptor(out)) as read:
            await read.wait_for_completion()
        await r.wait_for_completion()
        r.release()
        return out

    assert run(main()) == b"0123456789"


def test_cancel_and_release_wake_waiters(pair):
    p, _ = pair

    async def main():
        op1 = p.create_writable(nc.Descriptor(bytearray(8)))
        op2 = p.create_writable(nc.Descriptor(bytearray(8)))
        w1 = [asyncio.ensure_future(op1.wait_for_completion()) for _ in range(3)]
        w2 = asyncio.ensure_future(op2.wait_for_completion())
        await asyncio.sleep(0)
        op1.cancel()  # from another task: all three waiters hear it
        for t in w1:
            with pytest.raises(nc.NixlConnectError, match="cancelled"):
                await t
        op2.release()  # released while awaited: the waiter gets the end
        with pytest.raises(nc.NixlConnectError):
            await w2
        op1.release()
        assert waiters(p) == 0

    run(main())


def test_many_ops_and_waiters_on_one_connector_all_woken():
    """20 writables in this process, several waiters each, written by a
    child process: every waiter wakes."""
    n = 20

    async def main():
        with nc.Connector() as p:
            bufs = [bytearray(256) for _ in range(n)]
            ops = [p.create_writable(nc.Descriptor(b)) for b in bufs]
            tasks = [asyncio.ensure_future(op.wait_for_completion()) for op in ops for _ in range(2)]
            peers = []
            for op in ops:
                peer = await spawn_peer("active", "write", "256", "7")
                peer.stdin.write(op.metadata().model_dump_json().encode() + b"\n")
                await peer.stdin.drain()
                peers.append(peer)
            await asyncio.gather(*tasks)
            for peer in peers:
                assert await read_line(peer) == "done"
                assert await peer.wait() == 0
            assert all(op.status == nc.OperationStatus.COMPLETE for op in ops)
            for op in ops:
                op.release()
            return bufs

    assert all(b == pattern(256, 7) for b in run(main(), timeout=90))


def test_the_loop_runs_while_waiting_and_an_idle_wait_does_not_spin():
    """A wait leaves the loop free for other tasks, and with nothing
    happening the connector is driven only by its armed fd and the timer the
    C library asks for (nxc_connector_timeout_ms), never in a busy loop:
    counted, not timed."""

    async def main():
        with nc.Connector(spin_us=0) as p:
            calls = 0
            dispatch = p._dispatch

            def counting(loop):
                nonlocal calls
                calls += 1
                dispatch(loop)

            p._dispatch = counting
            ticks = 0

            async def ticker():
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0.01)

            t = asyncio.ensure_future(ticker())
            op = p.create_readable(nc.Descriptor(b"idle"))
            bound_ms = nc._lib.nxc_connector_timeout_ms(p._c)
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(op.wait_for_completion(), 0.3)
            t.cancel()
            op.release()
            return calls, ticks, bound_ms

    calls, ticks, bound_ms = run(main())
    print(f"idle wait of 0.3 s: {calls} dispatches (timer every {bound_ms} ms), "
          f"{ticks} ticks of another task")
    # the other task ran again during the wait (its first tick comes before);
    # not more: a starved machine gives the loop few turns in 0.3 s
    assert ticks >= 2
    assert bound_ms > 0
    assert calls <= 300 / bound_ms + 10  # the timer's passes, no busy loop on the fd


def test_connector_across_event_loops(pair):
    """One connector used by successive asyncio.run() calls."""
    p, a = pair
    for i in range(3):
        out = bytearray(4)

        async def main():
            with p.create_readable(nc.Descriptor(b"loop")) as r:
                with await a.begin_read(r.metadata(), nc.Descriptor(out)) as op:
                    await op.wait_for_completion()
                await r.wait_for_completion()

        run(main())
        assert out == b"loop"


def test_release_of_an_op_in_flight_from_the_loop(pair):
    """Releasing an op that may still drain happens off the loop's thread;
    the buffers stay referenced until it is done, and the connector stays
    usable."""
    p, a = pair
    size = 8 << 20
    dst = bytearray(size)

    async def main():
        w = p.create_writable(nc.Descriptor(dst))
        write = await a.begin_write(nc.Descriptor(bytearray(size)), w.metadata())
        write.release()  # in flight: cancelled, then released in a worker thread
        assert write.status in (nc.OperationStatus.CANCELLED, nc.OperationStatus.COMPLETE)
        w.release()
        with p.create_readable(nc.Descriptor(b"after")) as r:
            out = bytearray(5)
            with await a.begin_read(r.metadata(), nc.Descriptor(out)) as op:
                await op.wait_for_completion()
            return out

    assert run(main()) == b"after"


def test_backstop_completes_a_wait_the_fd_never_announces():
    """The C library can lose a wake-up (see nixl_connect._connector): an
    awaited op must complete anyway. Simulated by taking the passive
    connector's reader away once its op is awaited, so that its fd
    announces nothing; the transfer needs that connector's progress."""
    dst = bytearray(64)

    async def main():
        loop = asyncio.get_running_loop()
        with nc.Connector(spin_us=0) as p, nc.Connector() as a:
            with p.create_writable(nc.Descriptor(dst)) as w:
                waiting = asyncio.ensure_future(w.wait_for_completion())
                await asyncio.sleep(0)  # armed and asleep on the fd
                assert loop.remove_reader(p._fd)  # from now on only the backstop drives p
                with await a.begin_write(nc.Descriptor(pattern(64, 9)), w.metadata()) as op:
                    await asyncio.gather(op.wait_for_completion(), waiting)
                # (not counted in lost_wakeups: the fd did become readable, only
                # nobody listened; the count is for a fd that stays quiet)

    run(main(), timeout=30)
    assert dst == pattern(64, 9)


def test_the_backstop_leaves_a_connector_a_dispatch_just_drove(monkeypatch):
    """The backstop drives an awaited connector only when nothing has for
    the bound of nxc_connector_timeout_ms. A backstop that fired on a loop
    that kept dispatching drove it anyway, and counted a completion whose
    message was in but whose fd signal was a few microseconds behind as a
    lost wake-up (~1 op in 500 over shared memory with spin_us=0, none of
    them a real sleep). Here the backstop is called right after a
    dispatch: it must not drive, and must move itself to the bound from
    that dispatch; once the loop has been quiet for the bound, it drives."""
    from nixl_connect import _lib

    calls = []
    progress = _lib.nxc_connector_progress
    monkeypatch.setattr(_lib, "nxc_connector_progress", lambda c: calls.append(c) or progress(c))

    async def main():
        loop = asyncio.get_running_loop()
        with nc.Connector(spin_us=0) as p:
            op = p.create_readable(nc.Descriptor(b"nobody reads this"))
            waiter = asyncio.ensure_future(op.wait_for_completion())
            await asyncio.sleep(0)  # awaited: armed, the backstop timer set
            state = p._loops[loop]
            bound_ms = _lib.nxc_connector_timeout_ms(p._c)
            assert bound_ms >= 0 and state.backstop is not None
            for _ in range(20):  # a try preempted for half a bound is not this test's case
                p._dispatch(loop)
                t0, before = time.monotonic(), len(calls)
                if state.backstop is not None:
                    state.backstop.cancel()
                p._backstop(loop)
                after_dispatch = len(calls) - before
                moved_to = state.backstop.when() - loop.time() if state.backstop else None
                if time.monotonic() - t0 < bound_ms / 2000:
                    break
            before = len(calls)
            await asyncio.sleep(3 * bound_ms / 1000)  # quiet: no peer, no fd event
            quiet_drives = len(calls) - before
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter
            op.release()
            return bound_ms, after_dispatch, moved_to, quiet_drives

    bound_ms, after_dispatch, moved_to, quiet_drives = run(main())
    print(f"bound {bound_ms} ms: backstop after a dispatch drove {after_dispatch} times, "
          f"re-armed for {moved_to} s; over 3 quiet bounds it drove {quiet_drives} times")
    assert after_dispatch == 0
    assert moved_to is not None and 0 < moved_to <= bound_ms / 1000
    assert quiet_drives >= 1


def test_a_spinning_wait_gives_the_loop_its_turns():
    """While a wait spins (a window of 1 s here: spin_us=1_000_000, nothing
    arriving), the connector is driven in short slices and the loop runs
    other tasks between them: 20 turns of another task happen inside the
    window. Counted, not timed (a wait that spun through its whole window
    in one go would give none)."""

    async def main():
        with nc.Connector(spin_us=1_000_000) as p:
            op = p.create_readable(nc.Descriptor(b"spin"))
            waiter = asyncio.ensure_future(op.wait_for_completion())
            await asyncio.sleep(0)  # the waiter starts: its window is open
            state = p._loops[asyncio.get_running_loop()]
            assert waiters(p) == 1 and time.monotonic_ns() < state.spin_until
            turns = 0
            while turns < 20 and time.monotonic_ns() < state.spin_until:
                turns += 1
                await asyncio.sleep(0)
            in_window = time.monotonic_ns() < state.spin_until
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter
            op.release()
            return turns, in_window

    turns, in_window = run(main())
    print(f"spinning wait: {turns} turns of another task, still in the window: {in_window}")
    assert turns == 20 and in_window


def test_a_connector_spins_only_while_alone_in_its_loop():
    """Whether a loop drives one connector alone (and its waits may spin)
    is kept per loop and follows connectors attaching and closing: two in
    one loop need each other's progress, which only the loop's turns give."""

    async def main():
        loop = asyncio.get_running_loop()
        seen = []
        with nc.Connector() as p:
            a = p.create_readable(nc.Descriptor(b"a"))  # attaches p to this loop
            seen.append(p._loops[loop].solo)
            q = nc.Connector()
            b = q.create_readable(nc.Descriptor(b"b"))  # q joins the loop
            seen.append((p._loops[loop].solo, q._loops[loop].solo))
            b.release()
            q.close()
            seen.append(p._loops[loop].solo)
            a.release()
        return seen

    assert run(main()) == [True, (False, False), True]


def test_a_waiter_past_its_spin_window_is_woken_by_the_fd():
    """A waiter spins without re-arming the fd; once its spin window has
    passed, the loop sleeps on the fd, and the peer's message must wake it.
    Each op here is read by a new peer process long after the window: were
    the fd left unarmed, only the backstop timer would find the completions
    (counted in lost_wakeups)."""
    n = 4

    async def main():
        with nc.Connector() as p:  # the default spin_us, alone in its loop
            for i in range(n):
                with p.create_readable(nc.Descriptor(pattern(64, i))) as r:
                    waiting = asyncio.ensure_future(r.wait_for_completion())
                    await asyncio.sleep(0.05)  # the spin window passes: asleep on the fd
                    peer = await spawn_peer("active", "read", "64")
                    peer.stdin.write(r.metadata().model_dump_json().encode() + b"\n")
                    await peer.stdin.drain()
                    await waiting
                    assert await read_line(peer) == digest(pattern(64, i))
                    assert await peer.wait() == 0
            return p.lost_wakeups

    lost = run(main(), timeout=90)
    print(f"{n} ops, each after the spin window: {lost} found by the backstop")
    assert lost <= n // 2


def _machine_allows_direct() -> bool:
    """Whether a process may read another's memory (process_vm_readv) and
    take its fds (pidfd_getfd), as the direct path needs: a kernel before
    5.6 or a container's seccomp profile refuses them."""
    import ctypes
    import os
    import subprocess
    libc = ctypes.CDLL(None, use_errno=True)
    child = subprocess.Popen(["sleep", "30"])
    try:
        with open(f"/proc/{child.pid}/maps") as f:
            start = int(f.readline().split("-")[0], 16)

        class iovec(ctypes.Structure):
            _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]

        buf = ctypes.create_string_buffer(1)
        local, remote = iovec(ctypes.addressof(buf), 1), iovec(start, 1)
        libc.process_vm_readv.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_ulong,
                                          ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
        if libc.process_vm_readv(child.pid, ctypes.byref(local), 1,
                                 ctypes.byref(remote), 1, 0) != 1:
            return False
        pidfd = os.pidfd_open(child.pid)
        try:
            fd = libc.syscall(438, pidfd, 0, 0)  # pidfd_getfd (x86_64 and the generic table)
            if fd < 0:
                return False
            os.close(fd)
            return True
        finally:
            os.close(pidfd)
    except OSError:
        return False
    finally:
        child.kill()
        child.wait()


@pytest.mark.skipif(not _machine_allows_direct(),
                    reason="this machine refuses process_vm_readv or pidfd_getfd")
def test_direct_local_completes_without_the_passive_connector_running():
    """A readable and a writable of a connector made with direct_local=True:
    another connector's read and write are COMPLETE as soon as begin_read /
    begin_write return (the copy ran inside them), before anyone drives the
    passive connector; the passive ops are COMPLETE when next looked at, and
    the bytes are there. Without direct_local the same ops would still be
    in progress: nothing has driven the passive connector."""

    async def main():
        with nc.Connector("py-direct-passive", direct_local=True) as p, \
                nc.Connector("py-direct-active") as a:
            src, dst = bytearray(pattern(4096, 3)), bytearray(4096)
            readable = p.create_readable(nc.Descriptor(src))
            read = await a.begin_read(readable.metadata(), nc.Descriptor(dst))
            assert read.status == nc.OperationStatus.COMPLETE
            assert dst == src
            assert readable.status == nc.OperationStatus.COMPLETE
            into = bytearray(4096)
            writable = p.create_writable(nc.Descriptor(into))
            write = await a.begin_write(nc.Descriptor(bytes(pattern(4096, 5))),
                                        writable.metadata())
            assert write.status == nc.OperationStatus.COMPLETE
            await writable.wait_for_completion()
            assert into == pattern(4096, 5)
            for op in (read, readable, write, writable):
                op.release()

    run(main(), timeout=30)
    with pytest.raises(TypeError):
        nc.Connector(direct_local=1)
