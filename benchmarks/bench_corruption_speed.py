"""Is each of gfbench's 19 in-memory corruptions at least as fast as the reference function?

Single-threaded (numpy/BLAS, OpenCV, numba and torch pinned to 1 thread), on the same 224x224
photographs (scikit-image's samples, Resize(256) + CenterCrop(224), as the fidelity test
prepares them), uint8 image in, uint8 image out on both sides:

- gfbench: ``gfbench.robustness.corruptions.corrupt(image, name, severity, rng)``, as the
  ``--generate-from`` pipeline calls it;
- reference: the ``imagecorruptions-imaug`` package's ``corrupt(image, severity,
  corruption_name=name)`` (it wraps the image in PIL and casts its result to uint8), except
  elastic_transform and frost, where gfbench follows the original release script
  (make_imagenet_c.py) instead: there the reference is that script's function as
  tests/robustness/fidelity_helpers.py restates it (OpenCV, scikit-image, scipy; its float
  result cast to uint8 the same way), and the package's own versions are timed as extra rows;
- optionally (``--before GITREF``) gfbench's corruptions as they were at another commit, read
  with ``git show`` and imported beside the current ones, for before/after numbers.

Only the corruption call is timed: gfbench's Generator is made and numpy's global seed set
before the clock starts. Interleaving: every round visits the rows in a fresh random order and,
for each (severity, photograph), calls the contestants back to back, the order rotating, so
drifts of a shared machine's load hit all alike. A round's figure per contestant is the mean
over 5 severities x the photographs, in ms per image; the table gives the median over rounds,
and each ratio the median of the per-round ratios (under 1: gfbench is faster).

    python benchmarks/bench_corruption_speed.py [--rounds 15] [--before main] \\
        [--out benchmarks/corruption_speed]
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                  "NUMEXPR_NUM_THREADS", "NUMBA_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
    os.environ[_variable] = "1"  # before numpy, scipy, OpenCV and numba load

import argparse  # noqa: E402
import csv  # noqa: E402
import datetime  # noqa: E402
import importlib  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from importlib.metadata import version  # noqa: E402
from pathlib import Path  # noqa: E402
from types import ModuleType  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "robustness"))

from fidelity_helpers import PHOTOS, photo, release_elastic, release_frost  # noqa: E402

from gfbench.robustness import corruptions  # noqa: E402
from gfbench.robustness.protocol import ALL_CORRUPTIONS  # noqa: E402

# (uint8 image, severity, draw) -> the call to time, its random state already set up
Prepare = Callable[[np.ndarray, int, int], Callable[[], object]]
RELEASE = {"elastic_transform": release_elastic, "frost": release_frost}


def pin_threads() -> None:
    """One thread everywhere (the environment variables above cover numpy's BLAS and numba)."""
    import cv2
    import torch

    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def gfbench_runner(module: ModuleType, name: str) -> Prepare:
    """A gfbench corruptions module's corruption, with the pipeline's per-image Generator."""

    def prepare(image: np.ndarray, severity: int, draw: int) -> Callable[[], object]:
        rng = module.image_rng(0, str(draw), name, severity)
        return lambda: module.corrupt(image, name, severity, rng)

    return prepare


def reference_runner(name: str, release: bool = True) -> Prepare:
    """The reference function for `name` (the release script's for elastic_transform and frost
    unless release is False), uint8 in and out."""
    import imagecorruptions
    from PIL import Image

    if release and name in RELEASE:
        restated = RELEASE[name]

        def prepare_release(image: np.ndarray, severity: int,
                            draw: int) -> Callable[[], object]:
            return lambda: np.uint8(restated(Image.fromarray(image), severity, draw) * 255)

        return prepare_release

    extra = {"seed": 0} if name == "glass_blur" else {}  # its numba loop takes a seed

    def prepare(image: np.ndarray, severity: int, draw: int) -> Callable[[], object]:
        np.random.seed(draw)
        return lambda: imagecorruptions.corrupt(image, severity, corruption_name=name, **extra)

    return prepare


def module_at(ref: str) -> ModuleType:
    """gfbench.robustness.corruptions as it was at git ref `ref` (with its procedural.py),
    imported under other names beside the current one."""
    folder = Path(tempfile.mkdtemp(prefix="gfbench-before-"))
    for name in ("procedural", "corruptions"):
        text = subprocess.run(["git", "show", f"{ref}:gfbench/robustness/{name}.py"], cwd=ROOT,
                              check=True, capture_output=True, text=True).stdout
        text = text.replace("from gfbench.robustness import procedural as pc",
                            "import before_procedural as pc")
        (folder / f"before_{name}.py").write_text(text)
    sys.path.insert(0, str(folder))
    return importlib.import_module("before_corruptions")


def timed(prepare: Prepare, image: np.ndarray, severity: int, draw: int) -> float:
    """Milliseconds of one corruption call."""
    call = prepare(image, severity, draw)
    start = time.perf_counter()
    call()
    return 1000.0 * (time.perf_counter() - start)


def machine() -> str:
    """CPU model and core count, as /proc/cpuinfo names them."""
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} logical cores, {platform.system()} {platform.machine()}"


def git_commit() -> str:
    """The working tree's commit (with '+changes' when it has uncommitted ones)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "gfbench"], cwd=ROOT,
                               check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--photos", nargs="+", default=list(PHOTOS), choices=PHOTOS)
    parser.add_argument("--corruptions", nargs="+", default=list(ALL_CORRUPTIONS),
                        choices=ALL_CORRUPTIONS)
    parser.add_argument("--before", metavar="GITREF",
                        help="also time gfbench's corruptions as they were at this commit")
    parser.add_argument("--seed", type=int, default=0, help="shuffles the visiting order")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/corruption_speed"),
                        help="folder for results.csv and results.md ('-' to print only)")
    args = parser.parse_args()
    pin_threads()
    images = [np.asarray(photo(name)) for name in args.photos]
    before = module_at(args.before) if args.before else None
    sides = ["gfbench", "reference"] + (["before"] if before else [])
    rows: list[tuple[str, dict[str, Prepare]]] = []
    for name in args.corruptions:
        runners = {"gfbench": gfbench_runner(corruptions, name),
                   "reference": reference_runner(name)}
        if before:
            runners["before"] = gfbench_runner(before, name)
        rows.append((name, runners))
    for name in RELEASE:
        if name in args.corruptions:
            runners = {"gfbench": gfbench_runner(corruptions, name),
                       "reference": reference_runner(name, release=False)}
            if before:
                runners["before"] = gfbench_runner(before, name)
            rows.append((f"{name} (package)", runners))
    for _, runners in rows:  # warm-up: numba's compilation, caches, frost photographs
        for severity in range(1, 6):
            for prepare in runners.values():
                prepare(images[0], severity, 0)()
    load_before = os.getloadavg()
    started = datetime.datetime.now(datetime.timezone.utc)
    order_rng = np.random.default_rng(args.seed)
    # per row and side: per-round means, and per-severity call times
    per_round = {name: {side: [] for side in sides} for name, _ in rows}
    per_severity = {(name, s): {side: [] for side in sides} for name, _ in rows
                    for s in range(1, 6)}
    turn = 0
    for round_index in range(args.rounds):
        for position in order_rng.permutation(len(rows)):
            name, runners = rows[position]
            calls: dict[str, list[float]] = {side: [] for side in sides}
            for severity in range(1, 6):
                for k, image in enumerate(images):
                    draw = round_index * len(images) + k
                    turn += 1
                    for j in range(len(sides)):
                        side = sides[(turn + j) % len(sides)]
                        ms = timed(runners[side], image, severity, draw)
                        calls[side].append(ms)
                        per_severity[(name, severity)][side].append(ms)
            for side in sides:
                per_round[name][side].append(statistics.mean(calls[side]))
        print(f"round {round_index + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    load_after = os.getloadavg()
    finished = datetime.datetime.now(datetime.timezone.utc)

    def loads(values: tuple[float, float, float]) -> str:
        return "/".join(f"{v:.2f}" for v in values)

    header = (f"Machine: {machine()}. Date: {started:%Y-%m-%d %H:%M}-{finished:%H:%M} UTC. "
              f"Load average (1/5/15 min) {loads(load_before)} before, {loads(load_after)} "
              f"after (a shared machine: other jobs ran). One thread. {args.rounds} rounds x "
              f"5 severities x {len(images)} photographs ({', '.join(args.photos)}), 224x224 "
              f"uint8. gfbench {git_commit()}"
              + (f", before = {args.before}" if args.before else "")
              + f". Python {platform.python_version()}, numpy {np.__version__}, scipy "
              f"{version('scipy')}, Pillow {version('pillow')}, OpenCV "
              f"{version('opencv-python')}, imagecorruptions-imaug "
              f"{version('imagecorruptions-imaug')}.")
    columns = ["gfbench ms", "reference ms", "gfbench / reference"]
    if before:
        columns += [f"before ({args.before}) ms", "before / reference"]
    lines = [header, "", "| corruption | " + " | ".join(columns) + " |",
             "|---|" + "---:|" * len(columns)]
    records = []

    def ratio(name: str, side: str) -> float:
        pairs = zip(per_round[name][side], per_round[name]["reference"], strict=True)
        return statistics.median(a / b for a, b in pairs)

    for name, _ in rows:
        median = {side: statistics.median(per_round[name][side]) for side in sides}
        cells = [f"{median['gfbench']:.2f}", f"{median['reference']:.2f}",
                 f"{ratio(name, 'gfbench'):.2f}"]
        if before:
            cells += [f"{median['before']:.2f}", f"{ratio(name, 'before'):.2f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
        for severity in [*range(1, 6), "all"]:
            record: dict[str, object] = {"corruption": name, "severity": severity}
            for side in sides:
                if severity == "all":
                    record[f"{side}_ms"] = f"{median[side]:.3f}"
                    if side != "reference":
                        record[f"{side}_ratio"] = f"{ratio(name, side):.3f}"
                else:
                    times = per_severity[(name, severity)][side]
                    record[f"{side}_ms"] = f"{statistics.median(times):.3f}"
            records.append(record)
    text = "\n".join(lines) + "\n"
    print(text)
    if str(args.out) == "-":
        return
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text(
        "# In-memory corruption speed: gfbench against the reference\n\n"
        "`python benchmarks/bench_corruption_speed.py"
        + (f" --before {args.before}" if args.before else "") + f" --rounds {args.rounds}` "
        "(its docstring gives the method). Per corruption: ms per 224x224 image, the mean over "
        "5 severities x the photographs, median over rounds; ratios are medians of the "
        "per-round ratios (under 1: faster than the reference). results.csv has the "
        "per-severity medians (over rounds x photographs).\n\n" + text)
    fields = ["corruption", "severity"] + [f"{side}_ms" for side in sides] + [
        f"{side}_ratio" for side in sides if side != "reference"]
    with open(args.out / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(records)
    print(f"wrote {args.out}/results.md and {args.out}/results.csv")


if __name__ == "__main__":
    main()
