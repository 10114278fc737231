"""Time the paper's FLOP sweep: 13 models x 5 resolutions, counted on the meta device.

    python benchmarks/bench_flop_sweep.py [--threads 2] [--cross-check]

Target: under 60 s on 2 CPU cores (counting only; --cross-check adds fvcore's traced count
wherever a model has at most 20 GFLOPs, as `gfbench complexity` does). Prints each model's
GFLOPs at 224 against the expected table below, then the time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from gfbench.measure.plan import ComplexityRequest, plan_complexity
from gfbench.measure.sweep import run_sweep

MODELS = ("gfnet-ti", "gfnet-xs", "gfnet-s", "gfnet-b", "gfnet-h-ti", "gfnet-h-s", "gfnet-h-b",
          "deit-ti", "deit-s", "deit-b", "resmlp-12", "resmlp-24", "resmlp-36")
RESOLUTIONS = ("224", "384", "512", "768", "1024")
# Expected GFLOPs at 224 under gfbench's convention: plain fvcore on the released / timm
# definitions plus the FFT, filter-product and SDPA rules added by hand (the GFNet, DeiT and
# ResMLP papers publish 1.3/2.9/4.5/7.9, 2.0/4.5/8.6, 1.3/4.6/17.5 and 3.0/6.0/9.0).
EXPECTED_224 = (1.288, 2.857, 4.490, 7.939, 2.085, 4.649, 8.614, 1.259, 4.609, 17.582, 3.010,
                5.961, 8.913)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--cross-check", action="store_true",
                        help="also trace with fvcore up to 20 GFLOPs (as the CLI does)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        plan = plan_complexity(ComplexityRequest(models=MODELS, resolutions=RESOLUTIONS,
                                                 metrics=("flops", "params"), isolate=False,
                                                 fvcore=args.cross_check), Path(folder))
        rows = run_sweep(plan).rows
        elapsed = time.perf_counter() - start
    at_224 = {r.name: r for r in rows if r.res_h == 224}
    print(f"{'model':<11} {'GFLOPs@224':>10} {'expected':>9} {'diff':>7}   "
          f"{'GFLOPs@1024':>11}  engine@224")
    at_1024 = {r.name: r for r in rows if r.res_h == 1024}
    for name, expected in zip(MODELS, EXPECTED_224, strict=True):
        row = at_224[name]
        print(f"{name:<11} {row.flops / 1e9:>10.3f} {expected:>9.3f} "
              f"{100 * (row.flops / 1e9 / expected - 1):>+6.2f}%   "
              f"{at_1024[name].flops / 1e9:>11.1f}  {row.flops_engine}")
    failed = [r for r in rows if r.status != "ok"]
    print(f"{len(rows)} settings ({len(failed)} failed) counted in {elapsed:.1f} s with "
          f"{torch.get_num_threads()} threads; target < 60 s on 2 cores")


if __name__ == "__main__":
    main()
