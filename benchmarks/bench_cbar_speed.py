"""ImageNet-C-bar in memory: how fast is gfbench's generator, against the authors' when given
their code, and do the two produce the same output distribution?

Single-threaded (numpy/BLAS pinned to 1 thread before numpy loads), on the same 224x224
photographs as the fidelity tests (scikit-image's samples, Resize(256) + CenterCrop(224)),
uint8 in and out on both sides:

- gfbench: ``gfbench.robustness.corruptions.corrupt(image, name, severity, rng)`` with the
  pipeline's per-image Generator (``image_rng``);
- authors (``--reference-dir`` = a checkout of facebookresearch/augmentation-corruption,
  imported from there at run time, never vendored): ``build_transform(name, magnitude,
  'imagenet')`` from imagenet_c_bar/transform_finder.py, called on the image after
  ``np.random.seed(1000 * severity + draw)`` (their parameters come from numpy's global
  generator; gfbench's from ``image_rng``, which also differs per severity).

Interleaving: each (corruption, severity, photograph) calls the two back to back, the order
alternating, corruptions visited in a random order per round. Speed: ms per image, the mean
over 5 severities x the photographs, median over rounds. Distribution: per (corruption,
severity), over the photographs x rounds (each call another draw), the mean and the spread
(standard deviation across images) of the per-image mean |corrupted - clean|, and the share of
the difference's power above a quarter of the sampling frequency (radius > side / 4 in the
shifted 2-D spectrum of the grey difference): the same distribution gives close numbers.
Without ``--reference-dir`` only gfbench is measured.

    python benchmarks/bench_cbar_speed.py [--reference-dir /tmp/augcorr] [--rounds 1] \\
        [--out benchmarks/cbar_speed]
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                  "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
    os.environ[_variable] = "1"  # before numpy and scipy load

import argparse  # noqa: E402
import csv  # noqa: E402
import datetime  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from importlib.metadata import version  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "robustness"))

from bench_corruption_speed import machine  # noqa: E402
from fidelity_helpers import PHOTOS, photo  # noqa: E402

from gfbench.robustness.cbar import MAGNITUDES  # noqa: E402
from gfbench.robustness.corruptions import corrupt, image_rng  # noqa: E402
from gfbench.robustness.protocol import CBAR_CORRUPTIONS  # noqa: E402

# (uint8 image, severity, draw) -> the call to time, its random state already set up
Prepare = Callable[[np.ndarray, int, int], Callable[[], np.ndarray]]
SIDES = ("gfbench", "authors")


def gfbench_runner(name: str) -> Prepare:
    """gfbench's corruption with the pipeline's per-image Generator."""

    def prepare(image: np.ndarray, severity: int, draw: int) -> Callable[[], np.ndarray]:
        rng = image_rng(0, str(draw), name, severity)
        return lambda: corrupt(image, name, severity, rng)

    return prepare


def authors_runner(reference_dir: Path, name: str) -> Prepare:
    """The authors' transform at the severity's magnitude, seeded through numpy's global
    generator as their scripts do."""
    folder = reference_dir / "imagenet_c_bar"
    if not (folder / "transform_finder.py").is_file():
        raise SystemExit(f"{reference_dir}: no imagenet_c_bar/transform_finder.py (give a "
                         "checkout of facebookresearch/augmentation-corruption)")
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    from transform_finder import build_transform  # the authors' module, from their checkout

    transforms = {s: build_transform(name=name, severity=MAGNITUDES[name][s - 1],
                                     dataset_type="imagenet") for s in range(1, 6)}

    def prepare(image: np.ndarray, severity: int, draw: int) -> Callable[[], np.ndarray]:
        np.random.seed(1000 * severity + draw)  # other parameters at every severity
        return lambda: np.asarray(transforms[severity](image))

    return prepare


def timed(prepare: Prepare, image: np.ndarray, severity: int, draw: int
          ) -> tuple[float, np.ndarray]:
    """(milliseconds of one corruption call, its output)."""
    call = prepare(image, severity, draw)
    start = time.perf_counter()
    out = call()
    return 1000.0 * (time.perf_counter() - start), out


def high_share(clean: np.ndarray, out: np.ndarray) -> float:
    """Share of the grey difference's spectral power at radius > side / 4 (DC excluded)."""
    diff = (out.astype(np.float64) - clean).mean(axis=2)
    power = np.abs(np.fft.fftshift(np.fft.fft2(diff - diff.mean()))) ** 2
    h, w = diff.shape
    radius = np.hypot(*np.meshgrid(np.arange(h) - h // 2, np.arange(w) - w // 2, indexing="ij"))
    total = power.sum()
    return float(power[radius > min(h, w) / 4].sum() / total) if total > 0 else 0.0


def fmt(values: list[float], digits: int = 2) -> str:
    """Median of values, or '-' when there are none."""
    return f"{statistics.median(values):.{digits}f}" if values else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference-dir", type=Path,
                        help="a checkout of facebookresearch/augmentation-corruption")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--photos", nargs="+", default=list(PHOTOS), choices=PHOTOS)
    parser.add_argument("--corruptions", nargs="+", default=list(CBAR_CORRUPTIONS),
                        choices=CBAR_CORRUPTIONS)
    parser.add_argument("--seed", type=int, default=0, help="shuffles the visiting order")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/cbar_speed"),
                        help="folder for results.csv and results.md ('-' to print only)")
    args = parser.parse_args()
    images = [np.asarray(photo(name)) for name in args.photos]
    sides = SIDES if args.reference_dir else SIDES[:1]
    runners = {name: {"gfbench": gfbench_runner(name)} for name in args.corruptions}
    if args.reference_dir:
        for name in args.corruptions:
            runners[name]["authors"] = authors_runner(args.reference_dir.resolve(), name)
    for name in args.corruptions:  # warm-up: imports, caches
        for prepare in runners[name].values():
            prepare(images[0], 1, 0)()
    load_before = os.getloadavg()
    started = datetime.datetime.now(datetime.timezone.utc)
    order = np.random.default_rng(args.seed)
    per_round = {(n, side): [] for n in args.corruptions for side in sides}
    stats = {(n, s, side): {"ms": [], "abs": [], "high": []} for n in args.corruptions
             for s in range(1, 6) for side in sides}
    turn = 0
    for round_index in range(args.rounds):
        for position in order.permutation(len(args.corruptions)):
            name = args.corruptions[position]
            spent = {side: [] for side in sides}
            for severity in range(1, 6):
                for photo_index, image in enumerate(images):
                    draw = round_index * len(images) + photo_index
                    turn += 1
                    for side in (sides if turn % 2 else sides[::-1]):
                        ms, out = timed(runners[name][side], image, severity, draw)
                        spent[side].append(ms)
                        cell = stats[(name, severity, side)]
                        cell["ms"].append(ms)
                        cell["abs"].append(float(np.abs(out.astype(np.float64) - image).mean()))
                        cell["high"].append(high_share(image, out))
            for side in sides:
                per_round[(name, side)].append(statistics.fmean(spent[side]))
    finished = datetime.datetime.now(datetime.timezone.utc)
    load_after = os.getloadavg()

    speed_rows = []
    for name in args.corruptions:
        ours = per_round[(name, "gfbench")]
        theirs = per_round.get((name, "authors"), [])
        ratios = [t / o for o, t in zip(ours, theirs, strict=False)]
        speed_rows.append((name, fmt(ours), fmt(theirs, 0), fmt(ratios, 0)))
    dist_rows = []
    for name in args.corruptions:
        for severity in range(1, 6):
            row = [name, str(severity), f"{MAGNITUDES[name][severity - 1]:g}"]
            for side in sides:
                cell = stats[(name, severity, side)]
                spread = statistics.pstdev(cell["abs"]) if len(cell["abs"]) > 1 else 0.0
                row += [f"{statistics.fmean(cell['abs']):.1f}", f"{spread:.1f}",
                        f"{statistics.fmean(cell['high']):.3f}"]
            dist_rows.append(row)

    header = (f"Machine: {machine()}. Date: {started:%Y-%m-%d %H:%M}-{finished:%H:%M} UTC. "
              f"Load average (1/5/15 min) {'/'.join(f'{v:.2f}' for v in load_before)} before, "
              f"{'/'.join(f'{v:.2f}' for v in load_after)} after (a shared machine). One "
              f"thread. {args.rounds} round(s) x 5 severities x {len(images)} photographs "
              f"({', '.join(args.photos)}), 224x224 uint8. Python {platform.python_version()}, "
              f"numpy {version('numpy')}, scipy {version('scipy')}, scikit-image "
              f"{version('scikit-image')}.")
    speed_head = ["corruption", "gfbench ms", "authors ms", "authors / gfbench"]
    dist_head = ["corruption", "severity", "magnitude"] + [
        f"{side} {what}" for side in sides
        for what in ("mean abs diff", "spread", "high-freq share")]
    lines = ["# ImageNet-C-bar in memory: speed and output distribution", "",
             f"`python benchmarks/bench_cbar_speed.py {' '.join(sys.argv[1:])}` (its docstring "
             "gives the method).", "", header, "", "## Speed (ms per image)", "",
             "| " + " | ".join(speed_head) + " |", "|---|" + "---:|" * 3]
    lines += ["| " + " | ".join(r) + " |" for r in speed_rows]
    lines += ["", "## Output distribution (|corrupted - clean| on 0..255)", "",
              "| " + " | ".join(dist_head) + " |", "|---|" + "---:|" * (len(dist_head) - 1)]
    lines += ["| " + " | ".join(r) + " |" for r in dist_rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if str(args.out) != "-":
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.md").write_text(text)
        with open(args.out / "results.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(dist_head + ["gfbench ms median"] + (
                ["authors ms median"] if args.reference_dir else []))
            for row in dist_rows:
                name, severity = row[0], int(row[1])
                writer.writerow(row + [fmt(stats[(name, severity, side)]["ms"])
                                       for side in sides])


if __name__ == "__main__":
    main()
