#!/usr/bin/env python3
"""Real NIXL against our C library and nxc, both directions, read and write.

    interop.py NXC_BIN LIBNIXL_CONNECT   (ctest label `nixl`)

Runs only when NXC_NIXL_PREFIX names a NIXL install (its Python package,
libnixl and the UCX it was built with, UCX >= 1.19 with --enable-mt);
otherwise exits 77 (skipped). See docs/INTEROP.md for what it proves and
the results of a run.

This process is the NIXL side (nixl._api.nixl_agent, NIXL's own Python
API); our side is `nxc`, started as a subprocess on the system's UCX:

  ours -> NIXL   NIXL registers a buffer and hands out Dynamo's RdmaMetadata
                 ("b64:" + base64(zlib(get_agent_metadata()))), `nxc get`
                 reads it / `nxc put` writes it; NIXL must then hold a
                 notification whose message is the notification key.
  NIXL -> ours   `nxc serve --nixl` / `nxc recv --nixl` publish NIXL-format
                 metadata; NIXL add_remote_agent()s it, initialize_xfer()s
                 READ / WRITE with notif_msg = the key and waits for DONE;
                 nxc must exit 0 (its op completed on that notification).
  NIXL -> NIXL   the same transfers between two NIXL agents (a second
                 process running this script with --passive).

Every transfer is checked byte for byte, sizes 8 B .. 64 MiB.

Then the same pairs, warm, for speed (one connection, buffers registered
once, NXC_NIXL_WARMUP untimed and NXC_NIXL_REPEAT timed transfers, default
2 and 10, p50 reported): our active side is this script with --ours on
our Python package (nixl_connect, over the C library) in a process of its
own; NIXL's active side posts one prepared handle again and again. Every
timed transfer carries a notification (as Dynamo's do): ours the key,
NIXL's the message "warm" (which our passive op must ignore) and the last
one the key.
"""
import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
import zlib

SKIP = 77
SIZES = [8, 4096, 1 << 20, 64 << 20]
KINDS = ["READ", "WRITE"]  # the active side's view
REPEAT = int(os.environ.get("NXC_NIXL_REPEAT", "10"))
WARMUP = int(os.environ.get("NXC_NIXL_WARMUP", "2"))
WARM_MSG = b"warm"
HERE = os.path.dirname(os.path.abspath(__file__))
TIMEOUT = 120


def nixl_env(prefix):
    """The environment in which NIXL's Python package and its UCX load."""
    env = dict(os.environ)
    libdirs, pydirs, plugin = [], [], None
    for root, dirs, files in os.walk(prefix):
        if any(f.startswith("libnixl") and ".so" in f for f in files) or \
                any(f.startswith("libucp.so") for f in files):
            libdirs.append(root)
        if "libplugin_UCX.so" in files:
            plugin = root
        if os.path.basename(root) == "nixl" and "_api.py" in files:
            pydirs.append(os.path.dirname(root))
    if not pydirs or plugin is None:
        return None
    env["LD_LIBRARY_PATH"] = ":".join(libdirs + [env.get("LD_LIBRARY_PATH", "")])
    env["PYTHONPATH"] = ":".join(pydirs + [env.get("PYTHONPATH", "")])
    env["NIXL_PLUGIN_DIR"] = plugin
    return env


def pattern(n, seed):
    import numpy as np
    x = np.arange(n, dtype=np.uint64)
    return ((x ^ (x >> 8) ^ (x >> 16) ^ seed * 101) & 0xFF).astype(np.uint8)


class Nixl:
    """One NIXL agent with the UCX backend and a progress thread (NIXL's
    default, as in Dynamo)."""

    def __init__(self, name):
        from nixl._api import nixl_agent, nixl_agent_config
        self.agent = nixl_agent(name, nixl_agent_config(backends=["UCX"]))
        self.name = name

    def expose(self, arr, kind):
        """Registers arr and returns (Dynamo RdmaMetadata JSON, key, reg)."""
        ptr, size = arr.ctypes.data, arr.nbytes
        reg = self.agent.register_memory([(ptr, size, 0, "")], "DRAM")
        key = str(uuid.uuid4())
        blob = zlib.compress(self.agent.get_agent_metadata())
        md = {"descriptors": [{"device": "cpu", "ptr": ptr, "size": size}],
              "nixl_metadata": "b64:" + base64.b64encode(blob).decode(),
              "notification_key": key,
              "operation_kind": 1 if kind == "READ" else 2}
        return json.dumps(md, separators=(",", ":")), key, reg

    def wait_notif(self, key, deadline, count=1):
        """Polls until count notifications with message == key arrived."""
        seen = 0
        while time.monotonic() < deadline:
            for msgs in self.agent.get_new_notifs().values():
                seen += msgs.count(key.encode())
            if seen >= count:
                return True
            time.sleep(0.0005)
        return False

    def post(self, h, msg):
        """Posts the prepared transfer h with notification msg, waits for
        DONE; returns seconds from post to DONE."""
        t0 = time.perf_counter()
        state = self.agent.transfer(h, msg)
        deadline = time.monotonic() + TIMEOUT
        while state == "PROC" and time.monotonic() < deadline:
            state = self.agent.check_xfer_state(h)
        if state != "DONE":
            raise RuntimeError(f"NIXL transfer ended {state}")
        return time.perf_counter() - t0

    def transfer(self, md_text, arr, kind, warm=0, peer_waits=None):
        """Runs kind (READ: remote -> arr) against Dynamo metadata: warm
        times with the message "warm", then once with the key; returns
        the seconds from post to DONE of each. peer_waits(), if given,
        must hold before the key is sent (the passive op is still open)."""
        md = json.loads(md_text)
        blob = zlib.decompress(base64.b64decode(md["nixl_metadata"][4:]))
        remote = self.agent.add_remote_agent(blob)
        reg = self.agent.register_memory([(arr.ctypes.data, arr.nbytes, 0, "")], "DRAM")
        try:
            local = self.agent.get_xfer_descs([(arr.ctypes.data, arr.nbytes, 0)], "DRAM")
            rdescs = [(d["ptr"], d["size"], 0) for d in md["descriptors"]]
            remote_descs = self.agent.get_xfer_descs(rdescs, "DRAM")
            h = self.agent.initialize_xfer(kind, local, remote_descs, remote)
            try:
                times = [self.post(h, WARM_MSG) for _ in range(warm)]
                if peer_waits is not None and not peer_waits():
                    raise RuntimeError("the passive peer ended before the notification "
                                       "with its key")
                return times + [self.post(h, md["notification_key"].encode())]
            finally:
                self.agent.release_xfer_handle(h)
        finally:
            self.agent.deregister_memory(reg)
            self.agent.remove_remote_agent(remote)


def fail(msg):
    print("FAIL:", msg, flush=True)
    sys.exit(1)


def nxc_seconds(stderr):
    m = re.search(r"(?:received|sent) (\d+) bytes in ([0-9.]+) s", stderr)
    return float(m.group(2)) if m else None


def ours_active(nixl, nxc, env, size, kind, seed, tmp):
    """nxc get/put against a NIXL agent's buffer."""
    import numpy as np
    src = pattern(size, seed)
    arr = src.copy() if kind == "READ" else np.zeros(size, np.uint8)
    md, key, reg = nixl.expose(arr, kind)
    path = os.path.join(tmp, "data.bin")
    if kind == "WRITE":
        src.tofile(path)
        cmd = [nxc, "put", "--timeout", str(TIMEOUT), path, "-"]
    else:
        cmd = [nxc, "get", "--timeout", str(TIMEOUT), "-", path]
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    p.stdin.write(md + "\n")
    p.stdin.close()
    notified = nixl.wait_notif(key, time.monotonic() + TIMEOUT)
    err = p.stderr.read()
    rc = p.wait()
    nixl.agent.deregister_memory(reg)
    if rc != 0:
        fail(f"nxc {kind.lower()} {size} B: exit {rc}: {err}")
    if not notified:
        fail(f"nxc {kind.lower()} {size} B: NIXL got no notification with the key")
    got = arr if kind == "WRITE" else np.fromfile(path, np.uint8)
    if not np.array_equal(got, src):
        fail(f"nxc {kind.lower()} {size} B: data differs")
    return nxc_seconds(err)


def nixl_active(nixl, peer_cmd, env, size, kind, seed, tmp, ours, warm=0):
    """NIXL READ/WRITE against a passive peer: nxc serve/recv --nixl (ours)
    or another NIXL agent (this script with --passive); warm transfers
    before the one with the key. Returns each transfer's seconds."""
    import numpy as np
    src = pattern(size, seed)
    path = os.path.join(tmp, "data.bin")
    if ours:
        if kind == "READ":
            src.tofile(path)
            cmd = [peer_cmd, "serve", "--nixl", "--timeout", str(TIMEOUT), path]
        else:
            cmd = [peer_cmd, "recv", "--nixl", "--timeout", str(TIMEOUT), "--size", str(size), path]
    else:
        cmd = [sys.executable, os.path.abspath(__file__), "--passive", kind, str(size), str(seed)]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    md = p.stdout.readline()
    if not md:
        fail(f"{cmd[:3]}: no metadata: {p.stderr.read()}")
    arr = np.zeros(size, np.uint8) if kind == "READ" else src.copy()
    # nxc exits when its op completes: still running after the "warm"
    # notifications means they completed nothing.
    times = nixl.transfer(md, arr, kind, warm, lambda: p.poll() is None)
    out, err = p.communicate(timeout=TIMEOUT)
    if p.returncode != 0:
        fail(f"NIXL {kind} {size} B against {'nxc' if ours else 'NIXL'}: peer exit "
             f"{p.returncode}: {err}")
    if kind == "READ" and not np.array_equal(arr, src):
        fail(f"NIXL READ {size} B from {'nxc' if ours else 'NIXL'}: data differs")
    if kind == "WRITE" and ours and not np.array_equal(np.fromfile(path, np.uint8), src):
        fail(f"NIXL WRITE {size} B into nxc: data differs")
    return times


def ours_warm(nixl, env, size, kind, seed):
    """Our active side warm: this script with --ours (our Python package)
    against a NIXL agent's buffer; NIXL must hold one notification with the
    key per transfer. Returns the timed transfers' seconds."""
    import numpy as np
    src = pattern(size, seed)
    arr = src.copy() if kind == "READ" else np.zeros(size, np.uint8)
    md, key, reg = nixl.expose(arr, kind)
    cmd = [sys.executable, os.path.abspath(__file__), "--ours", kind, str(size), str(seed)]
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, text=True)
    out, err = p.communicate(md + "\n", timeout=TIMEOUT)
    notified = nixl.wait_notif(key, time.monotonic() + TIMEOUT, WARMUP + REPEAT)
    nixl.agent.deregister_memory(reg)
    if p.returncode != 0:
        fail(f"ours {kind} {size} B warm: exit {p.returncode}: {err}")
    if not notified:
        fail(f"ours {kind} {size} B warm: NIXL got fewer than {WARMUP + REPEAT} "
             "notifications with the key")
    if kind == "WRITE" and not np.array_equal(arr, src):
        fail(f"ours WRITE {size} B warm: data differs")
    return json.loads(out)[WARMUP:]


def ours_main(kind, size, seed):
    """Our active peer of the warm comparison: WARMUP + REPEAT reads or
    writes on one connector, the local buffer registered once; prints the
    seconds from begin to completion of each."""
    import asyncio
    import numpy as np
    import nixl_connect as nc

    out = own_stdout()

    async def run():
        md = nc.RdmaMetadata.model_validate_json(sys.stdin.readline())
        src = pattern(size, seed)
        arr = np.zeros(size, np.uint8) if kind == "READ" else src
        times = []
        with nc.Connector() as conn:
            local = nc.Descriptor(arr)
            local.register_with_connector(conn)
            for _ in range(WARMUP + REPEAT):
                if kind == "READ":
                    arr[:] = 0
                t0 = time.perf_counter()
                op = await (conn.begin_read(md, local) if kind == "READ"
                            else conn.begin_write(local, md))
                with op:
                    await op.wait_for_completion()
                times.append(time.perf_counter() - t0)
                if kind == "READ" and not np.array_equal(arr, src):
                    raise SystemExit("data differs")
            local.deregister_with_connector(conn)
        print(json.dumps(times), file=out, flush=True)

    asyncio.run(run())
    return 0


def own_stdout():
    """Our stdout carries one line the driver reads; NIXL's Python logger
    and UCX's log (UCX_PROTO_INFO, warnings) write to standard output, so
    everything else goes to stderr. Returns the stream for our line."""
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return out


def passive_main(kind, size, seed):
    """The NIXL passive peer of the NIXL -> NIXL baseline."""
    import numpy as np
    md_out = own_stdout()
    nixl = Nixl(f"nixl-passive-{os.getpid()}")
    src = pattern(size, seed)
    arr = src.copy() if kind == "READ" else np.zeros(size, np.uint8)
    md, key, reg = nixl.expose(arr, kind)
    print(md, file=md_out, flush=True)
    if not nixl.wait_notif(key, time.monotonic() + TIMEOUT):
        print("no notification", file=sys.stderr)
        return 1
    if kind == "WRITE" and not np.array_equal(arr, src):
        print("data differs", file=sys.stderr)
        return 1
    nixl.agent.deregister_memory(reg)
    return 0


def p50(xs):
    xs = sorted(x for x in xs if x is not None)
    return xs[len(xs) // 2] if xs else float("nan")


def gbps(size, s):
    return size / s / 1e9 if s and s > 0 else float("nan")


def row(size, kind, times):
    print(f"{size:>10} {kind:<5} " + "  ".join(
        f"{k} {p50(v) * 1e6:9.1f} us {gbps(size, p50(v)):5.2f} GB/s"
        for k, v in times.items()), flush=True)


def driver_main(nxc, lib):
    # Our side runs on the system's UCX: without NIXL's library path.
    ours_env = {k: v for k, v in os.environ.items()
                if k not in ("LD_LIBRARY_PATH", "PYTHONPATH", "NIXL_PLUGIN_DIR")}
    ours_env["PYTHONPATH"] = os.path.join(HERE, "..", "..", "python")
    ours_env["NIXL_CONNECT_LIB"] = lib
    nixl = Nixl(f"nixl-driver-{os.getpid()}")
    # Our side reaches NIXL agents over TCP only (UCX 1.13 has no shared
    # memory transport with peer error handling; NIXL's UCX uses CMA between
    # its own agents): NIXL -> NIXL again with UCX_TLS=tcp on both agents.
    tcp_env = dict(os.environ, UCX_TLS="tcp")
    os.environ["UCX_TLS"] = "tcp"
    nixl_tcp = Nixl(f"nixl-driver-tcp-{os.getpid()}")
    del os.environ["UCX_TLS"]
    seed, checked = 1, 0
    print("cold: one transfer per process pair, connection set-up included "
          "(nxc's own timer for ours->NIXL, 1 ms resolution)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for size in SIZES:
            for kind in KINDS:
                seed += 1
                row(size, kind, {
                    "ours->NIXL": [ours_active(nixl, nxc, ours_env, size, kind, seed, tmp)],
                    "NIXL->ours": nixl_active(nixl, nxc, ours_env, size, kind, seed, tmp, True),
                    "NIXL->NIXL": nixl_active(nixl, None, os.environ, size, kind, seed, tmp,
                                              False)})
                checked += 3
        print(f"warm: {WARMUP} untimed + {REPEAT} timed transfers on one connection, "
              "p50", flush=True)
        for size in SIZES:
            for kind in KINDS:
                seed += 1
                row(size, kind, {
                    "ours->NIXL": ours_warm(nixl, ours_env, size, kind, seed),
                    "NIXL->ours": nixl_active(nixl, nxc, ours_env, size, kind, seed, tmp, True,
                                              WARMUP + REPEAT)[WARMUP:-1],
                    "NIXL->NIXL": nixl_active(nixl, None, os.environ, size, kind, seed, tmp,
                                              False, WARMUP + REPEAT)[WARMUP:-1],
                    "NIXL->NIXL tcp": nixl_active(nixl_tcp, None, tcp_env, size, kind, seed,
                                                  tmp, False, WARMUP + REPEAT)[WARMUP:-1]})
                checked += 4
    print(f"PASS: {checked} transfer runs verified, every one matched by its notification")
    return 0


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--passive":
        return passive_main(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    if len(sys.argv) == 5 and sys.argv[1] == "--ours":
        return ours_main(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    if len(sys.argv) == 4 and sys.argv[1] == "--driver":
        return driver_main(sys.argv[2], sys.argv[3])
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    prefix = os.environ.get("NXC_NIXL_PREFIX")
    if not prefix:
        print("SKIP: NXC_NIXL_PREFIX is not set (no NIXL install to test against)")
        return SKIP
    env = nixl_env(prefix)
    if env is None:
        print(f"FAIL: no NIXL Python package and UCX plugin under {prefix}")
        return 1
    # Between UCX versions, one network device on both sides (docs/INTEROP.md).
    env.setdefault("UCX_NET_DEVICES", "eth0")
    return subprocess.call([sys.executable, os.path.abspath(__file__), "--driver",
                            os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])], env=env)


if __name__ == "__main__":
    sys.exit(main())
