#!/usr/bin/env python3
"""pty_run.py LOG CMD...: runs CMD with its standard error on a pseudo-terminal
(stdin /dev/null, stdout inherited) and copies what it writes there to LOG.
Exits with CMD's exit code (128+N for a signal N)."""
import os
import pty
import subprocess
import sys


def main():
    log, cmd = sys.argv[1], sys.argv[2:]
    master, slave = pty.openpty()
    child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    with open(log, "wb") as out:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not data:
                break
            out.write(data)
    rc = child.wait()
    sys.exit(128 - rc if rc < 0 else rc)


if __name__ == "__main__":
    main()
