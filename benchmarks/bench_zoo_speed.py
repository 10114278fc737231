"""How long `gfbench complexity` takes to count FLOPs and parameters of every timm model at its
native resolution (meta engine, no fvcore), on this machine, and what it found.

    python benchmarks/bench_zoo_speed.py [--nproc 2] [--out benchmarks/zoo/native]

Runs the real CLI (`--models '*' --res native --metrics flops,params --no-fvcore`), through
torchrun when --nproc > 1 (one single-threaded rank per core), and prints the wall time, the
rows by status and the slowest minute's worth of names. Target: under 20 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

TARGET_S = 20 * 60
RUN_NAME = "complexity-models-meta-b1-fp32-infer"  # the newest run of this name is read


def command(nproc: int, out: Path) -> list[str]:
    """The CLI call (under torchrun for several ranks)."""
    args = ["complexity", "--models", "*", "--res", "native", "--metrics", "flops,params",
            "--no-fvcore", "--quiet", "--out", str(out)]
    if nproc == 1:
        return [sys.executable, "-m", "gfbench", *args]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={nproc}", "-m", "gfbench", *args]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nproc", type=int, default=2, help="ranks (default 2: one per core)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/zoo/native"))
    args = parser.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1" if args.nproc > 1 else
           os.environ.get("OMP_NUM_THREADS", "")}
    env = {k: v for k, v in env.items() if v != ""}
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; "
          f"{' '.join(command(args.nproc, args.out))}")
    start = time.perf_counter()
    done = subprocess.run(command(args.nproc, args.out), env=env)
    elapsed = time.perf_counter() - start
    from gfbench.results import run_files

    rows = json.loads(run_files(args.out, RUN_NAME)[-1].read_text())["rows"]
    statuses = Counter(r["status"] for r in rows)
    print(f"{len(rows)} models counted in {elapsed / 60:.1f} min ({elapsed / len(rows):.2f} s "
          f"each, {args.nproc} rank(s)); exit code {done.returncode}; "
          + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())))
    for row in rows:
        if row["status"] != "ok":
            print(f"  {row['status']}: {row['name']} {row['res_h']}x{row['res_w']}: "
                  f"{row['error'][:160]}")
    verdict = "meets" if elapsed < TARGET_S else "misses"
    print(f"{verdict} the {TARGET_S // 60}-minute target; load average now "
          f"{os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
