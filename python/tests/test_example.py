"""The WriteOperation page's example, as written, between two processes."""

import subprocess
import sys

from support import ROOT


def test_write_to_remote_example_between_two_processes():
    script = ROOT / "python" / "examples" / "write_to_remote.py"
    for size in ("1048576", "8"):
        out = subprocess.run([sys.executable, str(script), "--size", size],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr
        assert out.stdout.strip().endswith(": ok"), out.stdout


def test_reg_cycle_example_runs_every_mode():
    """python/examples/reg_cycle.py (the measurement in docs/PERFORMANCE.md)
    still runs: a row per registration mode, three figures each."""
    script = ROOT / "python" / "examples" / "reg_cycle.py"
    out = subprocess.run([sys.executable, str(script), "--iters", "20"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    rows = {line.split()[0]: line for line in out.stdout.splitlines()[2:]}
    assert set(rows) == {"cache", "prereg"}, out.stdout
    assert all(line.count("(") == 3 for line in rows.values()), out.stdout
