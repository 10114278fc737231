"""Do gfbench's ImageNet-C-bar corruptions compute the authors' pixels when both get the same
parameters? (The speed benchmark, bench_cbar_speed.py, compares distributions on independent
draws; this script lines the draws up.)

For each corruption and severity, the authors' transform (facebookresearch/augmentation-
corruption, imagenet_c_bar/, imported from ``--reference-dir`` at run time) samples its
parameters from numpy's global generator (seeded), then transforms a photograph. gfbench's
function is then run on the same photograph with ``Replay``, a stand-in for its Generator that
answers each draw with the authors' sampled value, and the arrays their transform draws from
its inner ``RandomState(seed)`` (noise phases, cut-out grid, ray lengths, Perlin tables) from a
RandomState of that seed. Reported: the largest |gfbench - authors| over the photographs and
seeds, in 8-bit levels, and the share of pixel values that differ at all.

    python benchmarks/cbar_agreement.py --reference-dir /tmp/augcorr [--seeds 1] \\
        [--out benchmarks/cbar_speed]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "robustness"))

from fidelity_helpers import PHOTOS, photo  # noqa: E402

from gfbench.robustness.cbar import BAR_CORRUPTIONS, MAGNITUDES  # noqa: E402
from gfbench.robustness.protocol import CBAR_CORRUPTIONS  # noqa: E402

SIDE = 224


class Replay:
    """The Generator methods gfbench's C-bar corruptions call, answered with given values in
    order (scalars and parameter arrays, then integers) and, once those run out, with a
    legacy RandomState (the authors' inner generator)."""

    def __init__(self, values: list[Any], integers: list[Any], seed: int | None) -> None:
        self.values, self.integers_left = list(values), list(integers)
        self.state = np.random.RandomState(seed)

    def uniform(self, low: float = 0.0, high: float = 1.0, size: Any = None) -> Any:
        """The next given value, else the RandomState's draw."""
        if self.values:
            return self.values.pop(0)
        return self.state.uniform(low, high, size)

    def integers(self, low: int, high: int, size: Any = None) -> Any:
        """The next given integer(s), else the RandomState's randint."""
        if self.integers_left:
            return self.integers_left.pop(0)
        return self.state.randint(low, high, size=size)

    def standard_normal(self, size: int) -> np.ndarray:
        """The RandomState's randn (the authors' ray lengths)."""
        return self.state.randn(size)

    def permutation(self, n: int) -> np.ndarray:
        """Identity: the given frequencies are already in the authors' order."""
        return np.arange(n)


# authors' sampled parameters -> (values, integers, inner seed) for Replay
REPLAYS: dict[str, Callable[[dict], tuple[list, list, int | None]]] = {
    "single_frequency_greyscale": lambda p: ([p["freq"][0], p["freq"][1], p["phase"]], [], None),
    "cocentric_sine_waves": lambda p: ([np.asarray(p["offset"]), p["freq"], p["amplitude"],
                                        p["ring_width"]], [], None),
    "plasma_noise": lambda p: ([p["time"], p["sharpness"], p["scale"] / SIDE],
                               [p["iterations"]], None),
    "caustic_refraction": lambda p: ([p["time"], p["size"] / SIDE], [], None),
    "checkerboard_cutout": lambda p: ([p["angle"], p["scales"][0] / SIDE], [], p["seed"]),
    "sparkles": lambda p: ([p["centers"]], [p["nrays"]], p["seed"]),
    "inverse_sparkles": lambda p: ([p["center"] / SIDE], [p["rays"]], p["seed"]),
    "perlin_noise": lambda p: ([], [], p["seed"]),
    "blue_noise_sample": lambda p: ([], [], p["seed"]),
    "brownish_noise": lambda p: ([], [], p["seed"]),
}


def compare(build_transform: Callable, name: str, severity: int, image: np.ndarray,
            seed: int) -> np.ndarray:
    """|gfbench - authors| in 8-bit levels for one photograph and seed."""
    transform = build_transform(name=name, severity=MAGNITUDES[name][severity - 1],
                                dataset_type="imagenet")
    np.random.seed(seed)
    params = transform.sample_parameters()
    theirs = np.asarray(transform.transform(image, **params))
    values, integers, inner = REPLAYS[name](params)
    rng = Replay(values, integers, inner)
    ours = BAR_CORRUPTIONS[name].apply(image.astype(np.float64), MAGNITUDES[name][severity - 1],
                                       rng)  # type: ignore[arg-type]
    ours8 = np.clip(ours, 0, 255).astype(np.uint8)
    return np.abs(ours8.astype(int) - theirs.astype(int))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference-dir", type=Path, required=True,
                        help="a checkout of facebookresearch/augmentation-corruption")
    parser.add_argument("--photos", nargs="+", default=list(PHOTOS[:1]), choices=PHOTOS)
    parser.add_argument("--seeds", type=int, default=1, help="parameter draws per case")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/cbar_speed"),
                        help="folder for agreement.md ('-' to print only)")
    args = parser.parse_args()
    sys.path.insert(0, str(args.reference_dir.resolve() / "imagenet_c_bar"))
    from transform_finder import build_transform  # the authors' module, from their checkout

    images = [np.asarray(photo(p)) for p in args.photos]
    lines = ["# ImageNet-C-bar: gfbench against the authors on the same parameters", "",
             f"`python benchmarks/cbar_agreement.py {' '.join(sys.argv[1:])}` (method in its "
             f"docstring). Photographs: {', '.join(args.photos)}; {args.seeds} parameter "
             "draw(s) per case. Cells: largest |gfbench - authors| in 8-bit levels / share of "
             "pixel values that differ.", "",
             "| corruption | " + " | ".join(f"severity {s}" for s in range(1, 6)) + " |",
             "|---|" + "---|" * 5]
    for name in CBAR_CORRUPTIONS:
        cells = []
        for severity in range(1, 6):
            diffs = [compare(build_transform, name, severity, image, 100 * severity + seed)
                     for image in images for seed in range(args.seeds)]
            worst = max(int(d.max()) for d in diffs)
            share = float(np.mean([np.mean(d > 0) for d in diffs]))
            cells.append(f"{worst} / {share:.4f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    if str(args.out) != "-":
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "agreement.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
