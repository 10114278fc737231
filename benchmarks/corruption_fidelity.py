"""How close are gfbench's in-memory corruptions to the reference ImageNet-C functions? Prints a
markdown table (for docs/robustness.md): per corruption and severity, over scikit-image's sample
photographs (Resize(256) + CenterCrop(224)) with the random draws lined up (see
tests/robustness/fidelity_helpers.py), the worst case of

- the strength ratio: mean |corrupted - clean| of gfbench / of the reference,
- the SSIM difference: SSIM(gfbench, clean) - SSIM(reference, clean),
- the PSNR of gfbench's output against the reference's, in dB;

then, for the two corruptions gfbench takes from the release script rather than the package,
how strong the package's version is next to the release's (separate draws, mean over photos).

Needs the dev extra (scikit-image, imagecorruptions-imaug):

    python benchmarks/corruption_fidelity.py [--seed 0] [--photos astronaut chelsea] [--draws 5]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "robustness"))

from fidelity_helpers import (  # noqa: E402
    PHOTOS,
    as_float,
    gfbench_output,
    photo,
    psnr,
    reference_output,
    seeded_package,
    severities,
    ssim,
    strength,
)

from gfbench.robustness.corruptions import frost_source  # noqa: E402
from gfbench.robustness.protocol import ALL_CORRUPTIONS  # noqa: E402

SLOW = {"glass_blur": 2}  # its reference loop runs in plain Python: fewer photographs


def cell(corruption: str, severity: int, names: list[str], seed: int) -> str:
    """'ratio / SSIM difference / PSNR' over the photographs, each at its worst."""
    ratios, gaps, dbs = [], [], []
    for offset, name in enumerate(names):
        clean = as_float(photo(name))
        theirs = reference_output(corruption, photo(name), severity, seed + offset)
        ours = gfbench_output(corruption, photo(name), severity, seed + offset)
        ratios.append(strength(ours, clean) / strength(theirs, clean))
        gaps.append(ssim(ours, clean) - ssim(theirs, clean))
        dbs.append(psnr(ours, theirs))
    ratio = max(ratios, key=lambda r: abs(r - 1))
    gap = max(gaps, key=abs)
    db = min(dbs)
    return f"{ratio:.3f} / {gap:+.4f} / {'identical' if db == float('inf') else f'{db:.0f}'}"


def package_strength_ratio(corruption: str, severity: int, names: list[str], seed: int,
                           draws: int) -> float:
    """Mean strength of the package's version over the release's, on the same photographs,
    each with `draws` random draws."""
    package, release = [], []
    for offset, name in enumerate(names):
        clean = as_float(photo(name))
        for draw in range(draws):
            draw_seed = seed + 1000 * draw + offset
            with seeded_package(draw_seed) as module:
                corrupted = getattr(module, corruption)(photo(name), severity)
            package.append(strength(as_float(corrupted), clean))
            release.append(strength(reference_output(corruption, photo(name), severity,
                                                     draw_seed), clean))
    return float(np.mean(package) / np.mean(release))


def main() -> None:
    """Measure and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--photos", nargs="+", default=list(PHOTOS), choices=PHOTOS)
    parser.add_argument("--draws", type=int, default=5,
                        help="random draws per photograph for the package-vs-release table")
    args = parser.parse_args()
    print(f"Photographs: {', '.join(args.photos)} (glass_blur: the first "
          f"{min(SLOW['glass_blur'], len(args.photos))}); frost texture: {frost_source()}. "
          "Cells: strength ratio / SSIM difference / PSNR (dB), worst over the photographs.\n")
    print("| corruption | " + " | ".join(f"severity {s}" for s in range(1, 6)) + " |")
    print("|---" * 6 + "|")
    for corruption in ALL_CORRUPTIONS:
        names = args.photos[:SLOW.get(corruption, len(args.photos))]
        cells = [cell(corruption, s, names, args.seed) for s in severities(corruption)]
        print(f"| {corruption} | " + " | ".join(cells) + " |", flush=True)
    print("\nThe package's own version next to the release script's (strength ratio, separate "
          f"draws, mean over the photographs x {args.draws} draws):\n")
    print("| corruption | " + " | ".join(f"severity {s}" for s in range(1, 6)) + " |")
    print("|---" * 6 + "|")
    for corruption in ("elastic_transform", "frost"):
        ratios = [package_strength_ratio(corruption, s, args.photos, args.seed, args.draws)
                  for s in severities(corruption)]
        print(f"| {corruption} | " + " | ".join(f"{r:.2f}" for r in ratios) + " |")


if __name__ == "__main__":
    main()
