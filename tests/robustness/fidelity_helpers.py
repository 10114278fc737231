"""The reference ImageNet-C corruptions, run on the same random draws as gfbench's, on real
photographs; used by test_fidelity.py and benchmarks/corruption_fidelity.py.

The reference is the `imagecorruptions` module of the `imagecorruptions-imaug` package (a
maintained fork of Hendrycks and Dietterich's functions). Two corruptions are compared with the
original release script (hendrycks/robustness, ImageNet-C/create_c/make_imagenet_c.py), which
made the published JPEGs, because the package changed them: elastic_transform (rewritten, a
fraction of the release's strength) and frost (it enlarges every photograph by 1.1 and also
draws the sixth one). Those two are restated below from the release's formula.

Lining up the draws: the reference draws from numpy's legacy global generator, gfbench from the
Generator it is given. `reference_output` runs a reference function with the module's `np`
swapped for a view of numpy whose `random` is a seeded RandomState, and `gfbench_output` hands
gfbench a LegacyStream over a RandomState with the same seed, so both see the same numbers in
the same order. impulse_noise is the exception: scikit-image draws it from
`np.random.default_rng(seed)`, so gfbench gets that Generator.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from gfbench.robustness.corruptions import PARAMETERS, corrupt

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
# Written out again from the release script, not read from gfbench's tables.
RELEASE_ELASTIC = ((244 * 2, 244 * 0.7, 244 * 0.1), (244 * 2, 244 * 0.08, 244 * 0.2),
                   (244 * 0.05, 244 * 0.01, 244 * 0.02), (244 * 0.07, 244 * 0.01, 244 * 0.02),
                   (244 * 0.12, 244 * 0.01, 244 * 0.02))
RELEASE_FROST = ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75))


@functools.cache
def photo(name: str) -> Image.Image:
    """A scikit-image sample photograph prepared as ImageNet-C's inputs: Resize(256) +
    CenterCrop(224) (torchvision, bilinear with antialiasing, on the PIL image)."""
    from skimage import data
    from torchvision import transforms

    image = Image.fromarray(getattr(data, name)()).convert("RGB")
    return transforms.CenterCrop(224)(transforms.Resize(256)(image))


def as_float(image: Image.Image | np.ndarray) -> np.ndarray:
    """A reference output (PIL image, or array on the 0..255 scale) as float64 in [0, 1]."""
    return np.asarray(image, dtype=np.float64) / 255.0


class LegacyStream:
    """The Generator methods gfbench's corruptions call, answered by a legacy RandomState
    (integers -> randint, random -> random_sample: the same stream, the same numbers)."""

    def __init__(self, seed: int) -> None:
        self.state = np.random.RandomState(seed)

    def normal(self, loc=0.0, scale=1.0, size=None):
        return self.state.normal(loc, scale, size)

    def uniform(self, low=0.0, high=1.0, size=None):
        return self.state.uniform(low, high, size)

    def poisson(self, lam=1.0, size=None):
        return self.state.poisson(lam, size)

    def integers(self, low, high=None, size=None):
        return self.state.randint(low, high, size)

    def random(self, size=None):
        return self.state.random_sample(size)


class _NumpyWithStream:
    """numpy, except that `np.random` is one seeded RandomState (what the reference sees)."""

    def __init__(self, seed: int) -> None:
        self.random = np.random.RandomState(seed)

    def __getattr__(self, name: str):
        return getattr(np, name)


@contextlib.contextmanager
def seeded_package(seed: int) -> Iterator[object]:
    """The reference module with its global draws taken from RandomState(seed); its numba
    glass-blur loop is replaced by the same loop in plain Python (numba has its own generator,
    which nothing outside can line up with)."""
    import imagecorruptions.corruptions as reference

    saved = reference.np, reference._shuffle_pixels_njit_glass_blur
    reference.np = _NumpyWithStream(seed)
    reference._shuffle_pixels_njit_glass_blur = saved[1].py_func
    try:
        yield reference
    finally:
        reference.np, reference._shuffle_pixels_njit_glass_blur = saved


def release_elastic(image: Image.Image, severity: int, seed: int) -> np.ndarray:
    """The release script's elastic_transform (affine jitter of three points warped by OpenCV,
    then a smoothed random displacement field resampled by scipy), draws from RandomState(seed)."""
    import cv2
    from scipy.ndimage import map_coordinates
    from skimage.filters import gaussian

    state = np.random.RandomState(seed)
    alpha, sigma, jitter = RELEASE_ELASTIC[severity - 1]
    x = np.array(image, dtype=np.float32) / 255.0
    size = x.shape[:2]
    centre = np.float32(size) // 2
    third = min(size) // 3
    corners = np.float32([centre + third, [centre[0] + third, centre[1] - third],
                          centre - third])
    moved = corners + state.uniform(-jitter, jitter, size=corners.shape).astype(np.float32)
    x = cv2.warpAffine(x, cv2.getAffineTransform(corners, moved), size[::-1],
                       borderMode=cv2.BORDER_REFLECT_101)
    dx = (gaussian(state.uniform(-1, 1, size=size), sigma, mode="reflect", truncate=3)
          * alpha).astype(np.float32)
    dy = (gaussian(state.uniform(-1, 1, size=size), sigma, mode="reflect", truncate=3)
          * alpha).astype(np.float32)
    cols, rows, chans = np.meshgrid(np.arange(size[1]), np.arange(size[0]),
                                    np.arange(x.shape[2]))
    coords = ((rows + dy[..., None]).reshape(-1, 1), (cols + dx[..., None]).reshape(-1, 1),
              chans.reshape(-1, 1))
    out = map_coordinates(x, coords, order=1, mode="reflect").reshape(x.shape)
    return np.clip(out, 0, 1).astype(np.float64)


def release_frost(image: Image.Image, severity: int, seed: int) -> np.ndarray:
    """The release script's frost: one of the first five photographs (read by OpenCV, as the
    release did), a random crop of it, blended; draws from RandomState(seed)."""
    import cv2
    import imagecorruptions

    state = np.random.RandomState(seed)
    weight_image, weight_frost = RELEASE_FROST[severity - 1]
    name = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg")[
        state.randint(5)]
    frost = cv2.imread(str(Path(imagecorruptions.__file__).parent / "frost" / name))
    x = np.asarray(image)
    top = state.randint(0, frost.shape[0] - x.shape[0])
    left = state.randint(0, frost.shape[1] - x.shape[1])
    crop = frost[top:top + x.shape[0], left:left + x.shape[1]][..., ::-1]
    return np.clip(weight_image * x + weight_frost * crop, 0, 255) / 255.0


def reference_output(corruption: str, image: Image.Image, severity: int,
                     seed: int) -> np.ndarray:
    """The reference's corrupted image (float64 in [0, 1]) for these random draws."""
    if corruption == "elastic_transform":
        return release_elastic(image, severity, seed)
    if corruption == "frost":
        return release_frost(image, severity, seed)
    with seeded_package(seed) as reference:
        function = getattr(reference, corruption)
        if corruption in ("impulse_noise", "glass_blur"):
            return as_float(function(image, severity, seed=seed))
        return as_float(function(image, severity))


def gfbench_output(corruption: str, image: Image.Image, severity: int,
                   seed: int) -> np.ndarray:
    """gfbench's corrupted image (float64 in [0, 1]) on the same draws as reference_output."""
    rng = np.random.default_rng(seed) if corruption == "impulse_noise" else LegacyStream(seed)
    x = np.asarray(image, dtype=np.float32) / 255.0
    return corrupt(x, corruption, severity, rng).astype(np.float64)


def strength(corrupted: np.ndarray, clean: np.ndarray) -> float:
    """Mean absolute change of the pixels (0..1 scale): how strong a corruption is."""
    return float(np.abs(corrupted - clean).mean())


def ssim(corrupted: np.ndarray, clean: np.ndarray) -> float:
    """Structural similarity to the clean image (scikit-image, colour, data range 1)."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(corrupted, clean, channel_axis=-1, data_range=1.0))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of a against b in dB (peak 1); inf when identical."""
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10.0 * float(np.log10(1.0 / mse))


def severities(corruption: str) -> range:
    """1..5, read from gfbench's table so a sixth severity would not go untested."""
    return range(1, len(PARAMETERS[corruption]) + 1)
