"""Where the seconds before the first image of `gfbench robustness` go.

A 4-image run (a 0.3M-parameter ViT checkpoint, 2 classes of 2 images, clean or one generated
corruption) is timed in fresh interpreters, interleaved over rounds with the floor every run
pays, `python -c "import torch, timm"`. Each run reports when its phases ended (measured from
the interpreter's start): gfbench's evaluation module imported, the checkpoint loaded and the
model built, the parts planned, the first images scored. The whole command line
(`gfbench robustness ... --quiet`) is timed too. Medians and ranges over the rounds go to
benchmarks/robustness_startup.md.

    python benchmarks/bench_robustness_startup.py --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).with_name("robustness_startup.md")

# Run in a fresh interpreter: phase marks (seconds since the interpreter started) as JSON.
PHASES = r"""
import json, sys, time
from pathlib import Path
start = float(sys.argv[1])  # the parent's clock at launch (CLOCK_MONOTONIC: system-wide)
marks = {}
def mark(name):
    marks.setdefault(name, time.perf_counter() - start)
import gfbench.robustness.evaluate as evaluate
mark("evaluation module imported")
load_bundle = evaluate.load_bundle
def timed_load(*args, **kwargs):
    bundle = load_bundle(*args, **kwargs)
    mark("checkpoint loaded, model built")
    return bundle
evaluate.load_bundle = timed_load
class Marks(evaluate.NoProgress):
    def begin(self, parts):
        mark("parts planned, results file open")
    def advance(self, part, images):
        mark("first images scored")
work = Path(sys.argv[2])
generated = sys.argv[3] == "generated"
config = evaluate.robustness_config(
    work / "vit.pth", model="test_vit", clean=None if generated else work / "val",
    generate_from=work / "val" if generated else None, corruptions="gaussian_noise",
    severities="1", class_map="folders", workers=0, device="cpu", out=work / "runs",
    resume=False)
evaluate.run_robustness(config, progress=Marks())
mark("run finished")
print(json.dumps(marks))
"""


def prepare(work: Path) -> None:
    """A 2-class folder of 2 JPEGs per class and a test_vit checkpoint."""
    import numpy as np
    import torch
    from PIL import Image

    from gfbench.models import create_model

    rng = np.random.default_rng(0)
    for name in ("alpha", "beta"):
        folder = work / "val" / name
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(2):
            pixels = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{index}.JPEG", quality=90)
    torch.save({"model": create_model("test_vit", num_classes=2).state_dict()},
               work / "vit.pth")


def timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Wall seconds of a command and its stdout; stops on failure."""
    began = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"{command[:4]} failed: {done.stderr[-800:]}")
    return seconds, done.stdout


def one_round(work: Path, env: dict[str, str]) -> dict[str, float]:
    """The floor, both phase runs and the command line, in that order."""
    found: dict[str, float] = {}
    found["python -c 'import torch, timm'"], _ = timed(
        [sys.executable, "-c", "import torch, timm"], env)
    for kind in ("clean", "generated"):
        seconds, out = timed([sys.executable, "-c", PHASES, repr(time.perf_counter()), str(work),
                              kind], env)
        marks = json.loads(out.strip().splitlines()[-1])
        for phase, at in marks.items():
            found[f"{kind}: {phase}"] = at
        found[f"{kind}: wall"] = seconds
    found["gfbench robustness --clean (4 images), wall"], _ = timed(
        [sys.executable, "-m", "gfbench", "robustness", "--ckpt", str(work / "vit.pth"),
         "--model", "test_vit", "--clean", str(work / "val"), "--class-map", "folders",
         "--workers", "0", "--device", "cpu", "--out", str(work / "runs"), "--no-resume",
         "--quiet"], env)
    return found


def main() -> None:
    """Prepare once, run the rounds, write the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        prepare(work)
        rounds = [one_round(work, env) for _ in range(args.rounds)]
    load = os.getloadavg()[0]
    lines = ["# Seconds before the first image of `gfbench robustness`", "",
             f"{args.rounds} interleaved rounds in fresh interpreters, {os.cpu_count()} cores, "
             f"1-minute load {load:.2f} at the end, {time.strftime('%Y-%m-%d')}. Phase times "
             "count from the interpreter's launch (Linux's monotonic clock is shared by "
             "processes), walls from outside.", "",
             "| what | median s | min s | max s |", "|---|---:|---:|---:|"]
    for key in rounds[0]:
        values = [r[key] for r in rounds]
        lines.append(f"| {key} | {statistics.median(values):.2f} | {min(values):.2f} | "
                     f"{max(values):.2f} |")
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
