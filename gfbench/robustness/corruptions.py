"""gfbench's own implementation of the 19 ImageNet-C corruptions, for data sets that have no
released corrupted copy (``gfbench robustness --generate-from``).

Every corruption is a pure function ``(image, severity, rng) -> image``: ``image`` is HxWx3,
uint8 or float in [0, 1], and the result has the same shape and dtype; all randomness comes
from ``rng`` (a numpy Generator), so ``image_rng`` makes the pixels a function of (seed,
image, corruption, severity) alone. Parameters per severity are the reference generator's for
224x224 images (see PARAMETERS).

The math follows the reference functions (Hendrycks and Dietterich's, as maintained in the
``imagecorruptions-imaug`` package) step for step, and each corruption draws its random
numbers in the reference's order and shapes, so on the same numbers the outputs agree (tests/
robustness/test_fidelity.py). The OpenCV, scikit-image and ImageMagick steps are restated with
numpy and scipy (procedural.py). elastic_transform and frost follow the original release
script instead, which the package changed. frost needs the release's photographs from an
installed ``imagecorruptions-imaug`` and otherwise blends a procedural texture (frost_source).
Generated images still differ from the released JPEGs: other random draws, rounding to 8
bits where the release truncated, and no JPEG encoding unless ``--jpeg-quality 85`` asks for
the release's (jpeg_roundtrip, applied by the data pipeline); mCE measured on them is not
comparable to published numbers.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import io
import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, JpegImagePlugin
from scipy import ndimage

from gfbench.errors import GfbenchError, UnknownNameError
from gfbench.robustness import procedural as pc
from gfbench.robustness.protocol import ALL_CORRUPTIONS, CBAR_CORRUPTIONS, group_of

# (float image, one severity's parameter: a number or a tuple, rng) -> float image
FloatFn = Callable[[np.ndarray, Any, np.random.Generator], np.ndarray]
Corruption = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]

# Reference parameters per severity 1..5 (Hendrycks & Dietterich's make_imagenet_c.py, in
# hendrycks/robustness); images are 224x224.
PARAMETERS: dict[str, tuple] = {
    "gaussian_noise": (0.08, 0.12, 0.18, 0.26, 0.38),
    "shot_noise": (60, 25, 12, 5, 3),
    "impulse_noise": (0.03, 0.06, 0.09, 0.17, 0.27),
    "speckle_noise": (0.15, 0.2, 0.35, 0.45, 0.6),
    "gaussian_blur": (1, 2, 3, 4, 6),
    "glass_blur": ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)),
    "defocus_blur": ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)),
    "motion_blur": ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15)),
    "zoom_blur": tuple(tuple(float(z) for z in np.arange(1, stop, step))
                       for stop, step in ((1.11, 0.01), (1.16, 0.01), (1.21, 0.02),
                                          (1.26, 0.02), (1.31, 0.03))),
    "snow": ((0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
             (0.55, 0.3, 4, 0.9, 12, 8, 0.7), (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
             (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55)),
    "frost": ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)),
    "fog": ((1.5, 2), (2, 2), (2.5, 1.7), (2.5, 1.5), (3, 1.4)),
    "spatter": ((0.65, 0.3, 4, 0.69, 0.6, 0), (0.65, 0.3, 3, 0.68, 0.6, 0),
                (0.65, 0.3, 2, 0.68, 0.5, 0), (0.65, 0.3, 1, 0.65, 1.5, 1),
                (0.67, 0.4, 1, 0.65, 1.5, 1)),
    "brightness": (0.1, 0.2, 0.3, 0.4, 0.5),
    "contrast": (0.4, 0.3, 0.2, 0.1, 0.05),
    "saturate": ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)),
    "jpeg_compression": (25, 18, 15, 10, 7),
    "pixelate": (0.6, 0.5, 0.4, 0.3, 0.25),
    "elastic_transform": tuple((244 * a, 244 * s, 244 * f) for a, s, f in
                               ((2, 0.7, 0.1), (2, 0.08, 0.2), (0.05, 0.01, 0.02),
                                (0.07, 0.01, 0.02), (0.12, 0.01, 0.02))),
}

WATER_RGB = np.array([175, 238, 238], dtype=np.float32) / 255  # pale turquoise
MUD_RGB = np.array([63, 42, 20], dtype=np.float32) / 255


@dataclass(frozen=True)
class CorruptionSpec:
    """A registered corruption: its public function, group and reference parameters."""

    name: str
    group: str
    apply: Corruption
    parameters: tuple


CORRUPTIONS: dict[str, CorruptionSpec] = {}


def _to_float(image: np.ndarray) -> np.ndarray:
    """uint8 (0..255) or float (0..1) HxWx3 -> float32 in [0, 1]; ValueError on other shapes."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 image, got shape {image.shape}")
    if image.dtype == np.uint8:
        return np.divide(image, np.float32(255.0), dtype=np.float32)
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"expected uint8 or float pixels, got {image.dtype}")
    return image.astype(np.float32)


def _like(result: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Clip to [0, 1] and return in the input's dtype (uint8 rounded to nearest)."""
    result = np.clip(result, 0.0, 1.0)
    if image.dtype == np.uint8:
        result *= 255.0  # in place: the clipped copy is ours
        return np.rint(result, out=result).astype(np.uint8)
    return result.astype(image.dtype, copy=False)


def _register(name: str, uint8: bool = False) -> Callable[[FloatFn], Corruption]:
    """Wrap a float-space implementation as a public (image, severity, rng) corruption. With
    uint8, the implementation works on 8-bit images instead (PIL's resampling and JPEG codec):
    a uint8 image goes straight through, a float one is rounded to 8 bits first (as a saved
    file would be) and comes back as value / 255 in its own dtype."""

    def wrap(fn: FloatFn) -> Corruption:
        parameters = PARAMETERS[name]

        def corruption(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
            if severity not in range(1, len(parameters) + 1):
                raise ValueError(f"severity must be 1..5, got {severity}")
            parameter = parameters[severity - 1]
            if not uint8:
                return _like(fn(_to_float(image), parameter, rng), image)
            if image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
                return fn(image, parameter, rng)
            pixels = np.rint(np.clip(_to_float(image), 0, 1) * 255).astype(np.uint8)
            return _like(fn(pixels, parameter, rng).astype(np.float32) / 255.0, image)

        corruption.__name__ = name
        corruption.__doc__ = fn.__doc__
        CORRUPTIONS[name] = CorruptionSpec(name, group_of(name), corruption, parameters)
        return corruption

    return wrap


def _uint8_roundtrip(x: np.ndarray, op: Callable[[Image.Image], Image.Image]) -> np.ndarray:
    """Apply a PIL operation to a float image (through uint8, as a saved file would be)."""
    pil = Image.fromarray(np.rint(np.clip(x, 0, 1) * 255).astype(np.uint8))
    return np.asarray(op(pil), dtype=np.float32) / 255.0


# --- noise ---


@_register("gaussian_noise")
def _gaussian_noise(x: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Additive Gaussian noise of standard deviation sigma (pixels in [0, 1])."""
    return x + rng.normal(0.0, sigma, x.shape).astype(np.float32)


@_register("shot_noise")
def _shot_noise(x: np.ndarray, lam: float, rng: np.random.Generator) -> np.ndarray:
    """Poisson photon noise: each value becomes Poisson(x * lambda) / lambda."""
    return rng.poisson(x.astype(np.float64) * lam).astype(np.float32) / lam


@_register("impulse_noise")
def _impulse_noise(x: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """Salt-and-pepper: a fraction `amount` of the values (per channel) become 0 or 1, half each;
    drawn as scikit-image's random_noise draws them (flip mask, then salt mask)."""
    flipped = rng.random(x.shape) <= amount
    salted = rng.random(x.shape) <= 0.5
    out = x.copy()
    out[flipped & salted] = 1.0
    out[flipped & ~salted] = 0.0
    return out


@_register("speckle_noise")
def _speckle_noise(x: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Multiplicative noise: x + x * N(0, scale)."""
    return x + x * rng.normal(0.0, scale, x.shape).astype(np.float32)


# --- blur ---


@_register("gaussian_blur")
def _gaussian_blur(x: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian blur of standard deviation sigma pixels (edges repeat)."""
    return ndimage.gaussian_filter(x, sigma=(sigma, sigma, 0), mode="nearest")


@_register("glass_blur")
def _glass_blur(x: np.ndarray, params: tuple, rng: np.random.Generator) -> np.ndarray:
    """Frosted glass, exactly as the reference: blur, truncate to 8 bits, then `iterations`
    passes of its pixel loop (each visited pixel, scanning from the bottom right, copies the
    current value at a random offset in [-delta, delta); copies chain, see
    procedural.glass_pass), blur again. Same draws in the same order, same pixels."""
    sigma, delta, iterations = params
    height, width = x.shape[:2]
    blurred = ndimage.gaussian_filter(x.astype(np.float64), sigma=(sigma, sigma, 0),
                                      mode="nearest")
    out = np.floor(blurred * 255.0)  # the reference's np.uint8(blur * 255)
    visited = (len(range(height - delta, delta, -1)), len(range(width - delta, delta, -1)))
    for _ in range(iterations):
        out = pc.glass_pass(out, delta, rng.integers(-delta, delta, size=(*visited, 2)))
    return ndimage.gaussian_filter(out / 255.0, sigma=(sigma, sigma, 0), mode="nearest")


@_register("defocus_blur")
def _defocus_blur(x: np.ndarray, params: tuple, rng: np.random.Generator) -> np.ndarray:
    """Out-of-focus lens: correlation with a softened disk of the given radius."""
    radius, alias_blur = params
    return pc.correlate_disk(x, radius, alias_blur)


@_register("motion_blur")
def _motion_blur(x: np.ndarray, params: tuple, rng: np.random.Generator) -> np.ndarray:
    """Camera shake at a random angle in [-45, 45] degrees: ImageMagick's motion blur (as the
    release used it and the reference package re-implements it), whole-pixel taps."""
    radius, sigma = params
    return pc.motion_blur(x, radius, sigma, rng.uniform(-45.0, 45.0))


@_register("zoom_blur")
def _zoom_blur(x: np.ndarray, zooms: tuple, rng: np.random.Generator) -> np.ndarray:
    """Average of the image and centre zooms of it by each factor (a zooming camera)."""
    total = x.copy()
    for factor in zooms:
        total += pc.clipped_zoom(x, factor)
    return total / (len(zooms) + 1)


# --- weather ---


@_register("snow")
def _snow(x: np.ndarray, params: tuple, rng: np.random.Generator) -> np.ndarray:
    """Snowflakes: a thresholded, zoomed Gaussian field streaked by a motion kernel at a random
    angle in [-135, -45] degrees (ImageMagick's motion blur, whole-pixel taps) and stored in 8
    bits, added twice (as is and rotated 180 degrees) over a greyed, brightened image."""
    mean, scale, zoom, threshold, radius, sigma, keep = params
    height, width = x.shape[:2]
    flakes = rng.normal(mean, scale, (height, width, 1)).astype(np.float32)
    flakes = pc.clipped_zoom(flakes, zoom, trim=False)  # blurred with its overhang, then cut
    flakes[flakes < threshold] = 0.0
    flakes = np.clip(flakes, 0.0, 1.0)
    flakes = pc.motion_blur(flakes, radius, sigma, rng.uniform(-135.0, -45.0))[:height, :width]
    flakes = np.rint(flakes * 255.0) / 255.0  # the release saves the layer as an 8-bit PNG
    greyed = keep * x + (1 - keep) * np.maximum(x, pc.luminance(x) * 1.5 + 0.5)
    return greyed + flakes + np.rot90(flakes, k=2)


# The frost photographs ship in the `imagecorruptions` module of either PyPI distribution.
FROST_DISTRIBUTIONS = ("imagecorruptions-imaug", "imagecorruptions")
FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg")


@functools.lru_cache(maxsize=1)
def _frost_photographs() -> tuple[tuple[np.ndarray, ...], str] | None:
    """The release's five frost photographs (RGB float32 in [0, 1]) and the distribution they
    came from, or None when no `imagecorruptions` package is installed. The package is located,
    not imported (its import pulls in OpenCV and numba)."""
    spec = importlib.util.find_spec("imagecorruptions")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "frost"
    if not all((folder / name).is_file() for name in FROST_FILES):
        return None
    photos = []
    for name in FROST_FILES:
        with Image.open(folder / name) as photo:
            photos.append(np.asarray(photo.convert("RGB"), dtype=np.float32) / 255.0)
    for distribution in FROST_DISTRIBUTIONS:
        try:
            return tuple(photos), f"{distribution} {importlib.metadata.version(distribution)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return tuple(photos), "imagecorruptions (version unknown)"


def frost_source() -> str:
    """Which frost texture `frost` blends, for provenance: the photographs (and the package
    that supplied them) or gfbench's procedural fallback."""
    found = _frost_photographs()
    return "procedural" if found is None else f"photographs ({found[1]})"


def _frost_crop(photo: np.ndarray, height: int, width: int,
                rng: np.random.Generator) -> np.ndarray:
    """A random height x width crop of a frost photograph. A photograph not larger than the
    image is first enlarged (bicubic) by the reference package's factor, 1.1 x the larger of
    the two ratios; at 224 x 224 no photograph needs it, as in the release."""
    if photo.shape[0] <= height or photo.shape[1] <= width:
        factor = 1.1 * max(height / photo.shape[0], width / photo.shape[1])
        size = (math.ceil(photo.shape[1] * factor), math.ceil(photo.shape[0] * factor))
        photo = _uint8_roundtrip(photo, lambda im: im.resize(size, Image.Resampling.BICUBIC))
    top = int(rng.integers(0, photo.shape[0] - height))
    left = int(rng.integers(0, photo.shape[1] - width))
    return photo[top:top + height, left:left + width]


@_register("frost")
def _frost(x: np.ndarray, params: tuple, rng: np.random.Generator) -> np.ndarray:
    """Ice on the lens: image_weight * image + frost_weight * texture. As the release script
    (make_imagenet_c.py), the texture is a random crop of one of the first five frost
    photographs (the reference package also draws the sixth and enlarges every photograph by
    1.1); they come from an installed `imagecorruptions-imaug` (`gfbench[imagenet-c]`). Without
    it gfbench blends its procedural texture instead (procedural.frost_texture), which looks
    different; frost_source() says which one ran."""
    image_weight, frost_weight = params
    found = _frost_photographs()
    if found is None:
        texture = pc.frost_texture(x.shape[0], x.shape[1], rng)
    else:
        photo = found[0][int(rng.integers(len(FROST_FILES)))]
        texture = _frost_crop(photo, x.shape[0], x.shape[1], rng)
    return image_weight * x + frost_weight * texture


@_register("fog")
def _fog(x: np.ndarray, params: tuple, rng: np.random.Generator) -> np.ndarray:
    """Fog: a plasma-fractal cloud of strength `scale` added, then the range renormalised."""
    scale, decay = params
    height, width = x.shape[:2]
    peak = x.max()
    cloud = pc.plasma_fractal(max(height, width), decay, rng)[:height, :width, None]
    return (x + scale * cloud) * peak / (peak + scale)


@_register("brightness")
def _brightness(x: np.ndarray, shift: float, rng: np.random.Generator) -> np.ndarray:
    """Brighter light: add `shift` to the HSV value channel."""
    hsv = pc.rgb_to_hsv(x)
    hsv[..., 2] = np.clip(hsv[..., 2] + shift, 0.0, 1.0)
    return pc.hsv_to_rgb(hsv)


# --- digital ---


@_register("contrast")
def _contrast(x: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    """Lower contrast: pull every pixel towards its channel mean by `factor`."""
    means = x.mean(axis=(0, 1), keepdims=True)
    return (x - means) * factor + means


@_register("elastic_transform")
def _elastic_transform(x: np.ndarray, params: tuple, rng: np.random.Generator) -> np.ndarray:
    """Elastic warp as the original ImageNet-C release script (make_imagenet_c.py) made the
    published JPEGs: an affine map that jitters three points by up to `affine` pixels (warped as
    OpenCV's warpAffine does, mirrored edges), then a Gaussian-smoothed (sigma) random
    displacement field scaled by alpha (bilinear, reflected edges). The `imagecorruptions`
    package rewrote this corruption (0.22-0.83 of the release's strength, measured by
    benchmarks/corruption_fidelity.py); gfbench does not follow it."""
    alpha, sigma, affine = params
    height, width = x.shape[:2]
    centre = np.array([height // 2, width // 2], np.float32)  # used as (x, y), as the release does
    third = min(height, width) // 3
    source = np.array([centre + third, [centre[0] + third, centre[1] - third],
                       centre - third], np.float32)
    target = source + rng.uniform(-affine, affine, size=source.shape).astype(np.float32)
    warped = pc.warp_affine_channels(x, pc.affine_from_points(source, target))
    dx = (pc.smooth_field(rng.uniform(-1, 1, (height, width)), sigma) * alpha).astype(np.float32)
    dy = (pc.smooth_field(rng.uniform(-1, 1, (height, width)), sigma) * alpha).astype(np.float32)
    coordinates = np.empty((2, height, width))
    np.add(np.arange(height)[:, None], dy, out=coordinates[0])
    np.add(np.arange(width)[None, :], dx, out=coordinates[1])
    out = np.empty_like(x)
    for c, channel in enumerate(warped):
        out[..., c] = ndimage.map_coordinates(channel, coordinates, order=1, mode="reflect")
    return out


@functools.lru_cache(maxsize=64)
def _box_enlargement(small: tuple[int, int],
                     size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray] | None:
    """Enlarging, PIL's box filter averages nothing: each output pixel is a copy of the input
    pixel its centre falls in. Which ones, as (rows, columns) of the small (w, h) image for each
    row and column of size (w, h), read off PIL itself (indices coded in the red and green
    bytes of a one-row and a one-column image); None when PIL's NEAREST resize picks the same
    pixels (it does at 224 x 224 for the five pixelate scales) and can stand in, faster."""
    picks = []
    for axis in (1, 0):  # rows (along the height), then columns
        count = small[axis]
        codes = np.arange(count)
        line = np.stack([codes & 255, codes >> 8, np.zeros_like(codes)], axis=-1).astype(np.uint8)
        line = line[:, None] if axis == 1 else line[None, :]
        shape = (1, size[1]) if axis == 1 else (size[0], 1)
        image = Image.fromarray(line)
        box = np.asarray(image.resize(shape, Image.Resampling.BOX)).reshape(-1, 3)
        nearest = np.asarray(image.resize(shape, Image.Resampling.NEAREST)).reshape(-1, 3)
        picks.append((box[:, 0] + 256 * box[:, 1].astype(np.intp),
                      np.array_equal(box, nearest)))
    (rows, rows_nearest), (columns, columns_nearest) = picks
    return None if rows_nearest and columns_nearest else (rows, columns)


@_register("pixelate", uint8=True)
def _pixelate(image: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Low resolution: box-downsample by `scale`, box-upsample back (8-bit, PIL)."""
    height, width = image.shape[:2]
    small = (max(1, int(width * scale)), max(1, int(height * scale)))
    reduced = Image.fromarray(image).resize(small, Image.Resampling.BOX)
    picks = _box_enlargement(small, (width, height))
    if picks is None:
        return np.array(reduced.resize((width, height), Image.Resampling.NEAREST))
    rows, columns = picks
    return np.asarray(reduced)[rows][:, columns]


@_register("jpeg_compression", uint8=True)
def _jpeg_compression(image: np.ndarray, quality: int, rng: np.random.Generator) -> np.ndarray:
    """JPEG artefacts: encode at the given quality and decode (8-bit, PIL)."""
    return jpeg_roundtrip(image, quality)


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """An HxWx3 uint8 image saved as a JPEG of the given quality with PIL (its default 4:2:0
    chroma subsampling) and read back, as a writable uint8 array."""
    pixels = np.ascontiguousarray(image)
    height, width = pixels.shape[:2]
    buffer = io.BytesIO()
    Image.frombuffer("RGB", (width, height), pixels, "raw", "RGB", 0, 1).save(
        buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    return np.array(JpegImagePlugin.JpegImageFile(buffer))  # the decoder, no format probing


# --- extra ---


@_register("spatter")
def _spatter(x: np.ndarray, params: tuple, rng: np.random.Generator) -> np.ndarray:
    """Water drops (mode 0) or mud (mode 1) from a thresholded smoothed Gaussian field, as the
    reference: the water's shading is its OpenCV chain (Canny edges of the 8-bit field, 5x5
    chamfer distance to them capped at 20, 3x3 box blur, histogram equalisation, emboss, box
    blur), restated in numpy in OpenCV's integer and rounding conventions."""
    mean, scale, smooth, threshold, strength, mode = params
    height, width = x.shape[:2]
    liquid = ndimage.gaussian_filter(rng.normal(mean, scale, (height, width)), smooth,
                                     mode="nearest")
    liquid[liquid < threshold] = 0.0
    if mode == 0:
        liquid *= 255
        level = liquid.astype(np.uint8)
        distance = pc.chamfer_distance(pc.canny(level, 50, 150), cap=20)
        shade = pc.box3_sum(distance.astype(np.float64))
        shade *= 1.0 / 9
        shade = pc.emboss(pc.equalize_hist(shade.astype(np.float32).astype(np.uint8)))
        # An integer sum / 9 is never within 1/18 of a half: float32 rounds it as float64 does.
        shade = np.rint(np.divide(pc.box3_sum(shade), np.float32(9), dtype=np.float32))
        layer = level * shade
        layer /= max(float(layer.max()), 1e-12)
        layer *= np.float32(strength)
        water = layer[..., None] * WATER_RGB
        water += x
        return water
    mud = ndimage.gaussian_filter((liquid > threshold).astype(np.float32), strength,
                                  mode="nearest")
    mud[mud < 0.8] = 0.0
    return x * (1 - mud[..., None]) + MUD_RGB.astype(np.float64) * mud[..., None]


@_register("saturate")
def _saturate(x: np.ndarray, params: tuple, rng: np.random.Generator) -> np.ndarray:
    """Colour saturation: HSV saturation * factor + shift."""
    factor, shift = params
    hsv = pc.rgb_to_hsv(x)
    hsv[..., 1] = np.clip(hsv[..., 1] * factor + shift, 0.0, 1.0)
    return pc.hsv_to_rgb(hsv)


def corruption_id(name: str) -> int:
    """A stable small integer per corruption (its position in the 19, then the 10 of C-bar),
    for seeding."""
    return (ALL_CORRUPTIONS + CBAR_CORRUPTIONS).index(name)


def image_seed(key: str) -> int:
    """A stable 32-bit number for an image, from its path relative to the data root."""
    return zlib.crc32(key.encode("utf-8"))


def image_rng(seed: int, image_key: str, corruption: str, severity: int) -> np.random.Generator:
    """The generator for one (image, corruption, severity): worker count cannot change pixels."""
    return np.random.default_rng([seed, image_seed(image_key), corruption_id(corruption),
                                  severity])


def corrupt(image: np.ndarray, corruption: str, severity: int,
            rng: np.random.Generator) -> np.ndarray:
    """Apply a named ImageNet-C or ImageNet-C-bar corruption at a severity (1..5); same shape
    and dtype back."""
    if corruption in CBAR_CORRUPTIONS:
        from gfbench.robustness.cbar import corrupt_bar

        return corrupt_bar(image, corruption, severity, rng)
    spec = CORRUPTIONS.get(corruption)
    if spec is None:
        raise UnknownNameError(
            f"unknown corruption {corruption!r}; known: "
            f"{', '.join(ALL_CORRUPTIONS + CBAR_CORRUPTIONS)}")
    if severity not in range(1, 6):
        raise GfbenchError(f"severity {severity} is not 1..5")
    return spec.apply(image, severity, rng)

