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
