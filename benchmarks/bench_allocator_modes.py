"""Why one process's CPU timing is a sample: glibc's trim and mmap thresholds, per process.

    python benchmarks/bench_allocator_modes.py [--processes 6] [--side 14]

Times the bare global filter (batch 8, width 384, one thread, 2 s of warm-up) in fresh
interpreters, each printing its median latency and the minor page faults per call, first
with the environment as it is, then with glibc's thresholds raised
(MALLOC_TRIM_THRESHOLD_=1 GiB, MALLOC_MMAP_THRESHOLD_=64 MiB). By default a process either
keeps its freed buffers (no faults) or hands them back to the kernel after every call and
faults them in again (megabytes zeroed per call), depending on the heap layout its imports
left: the same code then runs about twice as slow. gfbench leaves the command's environment
as it is (and records these variables in every run's provenance), so a user decides; this
script shows what the choice does. About a minute.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

PROBE = r"""
import resource, statistics, sys, time
import torch
torch.set_num_threads(1)
from gfbench.layers import build_mixer
side = int(sys.argv[1])
module = build_mixer("global_filter", 384, side, side).eval()
x = torch.randn(8, side, side, 384)
with torch.no_grad():
    start = time.perf_counter()
    while time.perf_counter() - start < 2.0:
        module(x)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    times = []
    for _ in range(20):
        t = time.perf_counter_ns()
        module(x)
        times.append((time.perf_counter_ns() - t) / 1e6)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20
print(f"{statistics.median(times):.2f} {faults:.0f}")
"""
RAISED = {"MALLOC_TRIM_THRESHOLD_": str(2**30), "MALLOC_MMAP_THRESHOLD_": str(64 * 2**20)}


def probe(side: int, env: dict[str, str]) -> tuple[float, float]:
    """Median ms and minor faults per call of one fresh interpreter."""
    done = subprocess.run([sys.executable, "-c", PROBE, str(side)], env=env, check=True,
                          capture_output=True, text=True)
    ms, faults = done.stdout.split()
    return float(ms), float(faults)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=6)
    parser.add_argument("--side", type=int, default=14, help="token-grid side")
    args = parser.parse_args()
    for label, env in (("environment as it is", dict(os.environ)),
                       ("glibc thresholds raised", {**os.environ, **RAISED})):
        results = [probe(args.side, env) for _ in range(args.processes)]
        shown = ", ".join(f"{ms:.1f} ms ({faults:.0f} faults)" for ms, faults in results)
        print(f"{label}: {shown}")


if __name__ == "__main__":
    main()
