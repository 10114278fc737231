"""ImageNet-C protocol facts (names, groups, AlexNet errors) and the parsers of the options
that select corruptions and severities.

Sources: Hendrycks & Dietterich, ICLR 2019 (arXiv 1903.12261); the AlexNet constants are the
per-corruption mean top-1 errors over the five severities published with the benchmark.
"""

from __future__ import annotations

import re

from gfbench.errors import GfbenchError, UnknownNameError

# The 15 benchmark corruptions, in the paper's order (the AlexNet table below follows it).
BENCHMARK_CORRUPTIONS: tuple[str, ...] = (
    "gaussian_noise", "shot_noise", "impulse_noise",
    "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness",
    "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)
# The four held-out corruptions released with the benchmark (not part of mCE).
EXTRA_CORRUPTIONS: tuple[str, ...] = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
ALL_CORRUPTIONS: tuple[str, ...] = BENCHMARK_CORRUPTIONS + EXTRA_CORRUPTIONS
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
# ImageNet-C-bar's ten corruptions (Mintun, Kirillov & Xie, NeurIPS 2021, arXiv 2102.11273),
# spelled as in facebookresearch/augmentation-corruption (imagenet_c_bar/imagenet_c_bar.csv).
CBAR_CORRUPTIONS: tuple[str, ...] = (
    "blue_noise_sample", "brownish_noise", "caustic_refraction", "checkerboard_cutout",
    "cocentric_sine_waves", "inverse_sparkles", "perlin_noise", "plasma_noise",
    "single_frequency_greyscale", "sparkles",
)

GROUPS: dict[str, tuple[str, ...]] = {
    "noise": BENCHMARK_CORRUPTIONS[0:3],
    "blur": BENCHMARK_CORRUPTIONS[3:7],
    "weather": BENCHMARK_CORRUPTIONS[7:11],
    "digital": BENCHMARK_CORRUPTIONS[11:15],
}
EXTRA_GROUP = "extra"
CBAR_GROUP = "c-bar"

# AlexNet top-1 error (fraction), mean over severities 1..5, per benchmark corruption.
ALEXNET_ERROR: dict[str, float] = {
    "gaussian_noise": 0.886428, "shot_noise": 0.894468, "impulse_noise": 0.922640,
    "defocus_blur": 0.819880, "glass_blur": 0.826268, "motion_blur": 0.785948,
    "zoom_blur": 0.798360, "snow": 0.866816, "frost": 0.826572, "fog": 0.819324,
    "brightness": 0.564592, "contrast": 0.853204, "elastic_transform": 0.646056,
    "pixelate": 0.717840, "jpeg_compression": 0.606500,
}
ALEXNET_CLEAN_ERROR = 0.4345  # secondary source; used only for relative mCE

# The other standard test sets: row source -> (name as written, images in the release).
# Image counts from the authors' releases (ImageNet-A, -R: Hendrycks et al.; ImageNet-Sketch:
# Wang et al. 2019; ImageNetV2: Recht et al. 2019, each of its three variants).
EVAL_SET_INFO: dict[str, tuple[str, int]] = {
    "imagenet-a": ("ImageNet-A", 7500),
    "imagenet-r": ("ImageNet-R", 30000),
    "imagenet-sketch": ("ImageNet-Sketch", 50889),
    "imagenet-v2": ("ImageNetV2", 10000),
}

# Published reference points (percent) to put a result beside.
REFERENCE_MCE = {"ResNet-50": 76.7, "GFNet-S": 53.8}


def group_of(corruption: str) -> str:
    """The group a corruption is averaged in: noise, blur, weather, digital, extra or c-bar."""
    for group, members in GROUPS.items():
        if corruption in members:
            return group
    return CBAR_GROUP if corruption in CBAR_CORRUPTIONS else EXTRA_GROUP


def parse_corruptions(text: str) -> tuple[str, ...]:
    """A comma list of 'default' (the 15), 'all' (the 19), 'c-bar' (ImageNet-C-bar's 10) and
    corruption names -> the names, ImageNet-C's in paper order, then C-bar's."""
    known = ALL_CORRUPTIONS + CBAR_CORRUPTIONS
    words = {"": BENCHMARK_CORRUPTIONS, "default": BENCHMARK_CORRUPTIONS,
             "benchmark": BENCHMARK_CORRUPTIONS, "all": ALL_CORRUPTIONS, "c-bar": CBAR_CORRUPTIONS}
    pieces = [n.strip() for n in text.lower().split(",") if n.strip()] or [""]
    unknown = [n for n in pieces if n not in words and n not in known]
    if unknown:
        raise UnknownNameError(
            f"unknown corruption {', '.join(unknown)}; known: default (the 15), all (the 19), "
            f"c-bar (ImageNet-C-bar's 10), or a comma list of {', '.join(known)}"
        )
    names = {c for n in pieces for c in words.get(n, (n,))}
    return tuple(c for c in known if c in names)


def parse_severities(text: str) -> tuple[int, ...]:
    """'1-5', '1,3,5' or '2' -> sorted unique severities, each within 1..5."""
    chosen: set[int] = set()
    for piece in text.replace(" ", "").split(","):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", piece)
        if not match:
            raise GfbenchError(
                f"bad severity list {text!r}; use numbers 1..5 as a range or comma list "
                "(e.g. 1-5, 1,3,5)"
            )
        low = int(match.group(1))
        high = int(match.group(2) or low)
        if not 1 <= low <= high <= 5:
            raise GfbenchError(
                f"bad severity list {text!r}; severities are 1..5 (e.g. 1-5, 1,3,5)"
            )
        chosen.update(range(low, high + 1))
    return tuple(sorted(chosen))
