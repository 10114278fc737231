"""Re-make the committed reference results in results/ (and their figures) with today's code.

    python benchmarks/reference_results.py [--only counted]

results/ holds the reference runs that the README and docs/ quote; nothing else writes there (the
commands' default output folder is runs/, which git ignores). This script is the one way to
change them: it removes the complexity and breakdown runs in results/ (the robustness demo's
file is made by benchmarks/robustness_demo.py and left alone), runs the commands below, each a
plain `gfbench` command line recorded in its run's provenance, then draws the figures with
`gfbench plot results/`. Run it on an idle machine: timed rows warn when the load average
was above the cores. On the idle 2-core CPU it took 382 s on 2026-12-06 (mostly the timed sweeps;
`--only counted` re-makes the counted runs and the breakdown in a few minutes).
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"
MIXERS = "global_filter,attention,attention_explicit,spatial_mlp"
COUNTED = (
    "complexity --models gfnet,deit,resmlp --res 224,320,384,448,512,640,768,1024,1536,2048 "
    "--metrics flops,params",
    "complexity --mixers global_filter,attention,attention_explicit,spatial_mlp,dwconv,pooling,"
    "fourier,identity --tokens 7,14,28,56,112,224 --metrics flops,params",
    "breakdown --models gfnet,deit,resmlp --res 224,384,512,768,1024",
    # a training step at batch 64: forward + backward FLOPs and bytes, the predicted peak
    # memory and the largest batch that fits an H100's nominal 80 GiB
    "complexity --models gfnet,deit,resmlp --res 224,384,512,768,1024,1536,2048 "
    "--metrics flops,params --mode train --batch-size 64 --predict --fit-memory h100-sxm",
)
TIMED = (
    "complexity",  # exactly the main job (`make demo`): the README shows its output
    f"complexity --mixers {MIXERS} --tokens 14,28,42,56 --dim 384 --batch-size 8 --repeat 20",
    # each module's own latency and roofline (hook-timed, batch 8)
    "breakdown --models gfnet,deit,resmlp --res 224 --time --batch-size 8",
)


def run(arguments: str) -> float:
    """One gfbench command into results/; its wall time in seconds (fails loudly)."""
    command = [sys.executable, "-m", "gfbench", *shlex.split(arguments), "--out", str(RESULTS)]
    start = time.perf_counter()
    print("$ gfbench", arguments, "--out results", flush=True)
    subprocess.run(command, check=True, cwd=ROOT)
    return time.perf_counter() - start


def clear(kinds: tuple[str, ...]) -> None:
    """Remove the reference runs of the given kinds (file name prefixes) from results/."""
    for path in RESULTS.glob("*"):
        stem = path.name.split("-", 1)[-1] if path.name[:4].isdigit() else path.name
        if path.is_file() and stem.startswith(kinds) and path.suffix in (".json", ".csv"):
            path.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("counted", "timed"), default=None,
                        help="re-make only the counted runs (and breakdown) or the timed ones")
    args = parser.parse_args()
    commands = {"counted": COUNTED, "timed": TIMED}
    chosen = [commands[args.only]] if args.only else [COUNTED, TIMED]
    if args.only != "timed":
        clear(("complexity-models-meta", "complexity-mixers-meta", "breakdown-d1-torch."))
    if args.only != "counted":
        clear(("complexity-models-cpu", "complexity-mixers-cpu", "breakdown-d1-torch-cpu"))
    took = [(line, run(line)) for group in chosen for line in group]
    shutil.rmtree(RESULTS / "plots", ignore_errors=True)  # figures of removed runs go too
    plot = subprocess.run([sys.executable, "-m", "gfbench", "plot", "results"], cwd=ROOT,
                          check=False)
    for line, seconds in took:
        print(f"{seconds:7.1f} s  gfbench {line}")
    print(f"{sum(s for _, s in took):7.1f} s  in all; plot exit code {plot.returncode}")


if __name__ == "__main__":
    main()
