#!/usr/bin/env python3
"""What an op over many blocks costs in Python before any byte moves: making
the Descriptor objects (numpy slices of one buffer, as a KV cache's blocks)
and create_readable, in one process (parsing the metadata is the C
library's: build/bench/nxc_reg_cycle --blocks N prints its rate).

  NIXL_CONNECT_LIB=build PYTHONPATH=python /usr/bin/python3 bench/python_blocks.py \\
      [--blocks 1024] [--block-size 4096] [--iters 200]

Prints the median and 10th percentile of each step in microseconds.
"""
import argparse
import statistics
import time

import numpy as np

import nixl_connect as nc


def timed(fn, iters):
    samples = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e6)
    samples.sort()
    return statistics.median(samples), samples[len(samples) // 10]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--blocks", type=int, default=1024)
    ap.add_argument("--block-size", type=int, default=4096)
    ap.add_argument("--iters", type=int, default=200)
    args = ap.parse_args()
    n, size = args.blocks, args.block_size
    buf = np.zeros(n * size, dtype=np.uint8)
    slices = [buf[i * size:(i + 1) * size] for i in range(n)]
    c = nc.Connector()
    descs = [nc.Descriptor(s) for s in slices]

    def create_release():
        c.create_readable(descs).release()

    steps = {
        f"{n} Descriptor(numpy slice)": lambda: [nc.Descriptor(s) for s in slices],
        "create_readable + release": create_release,
    }
    for name, fn in steps.items():
        med, p10 = timed(fn, args.iters)
        print(f"{name:40s} median {med:9.1f} us   p10 {p10:9.1f} us")


if __name__ == "__main__":
    main()
