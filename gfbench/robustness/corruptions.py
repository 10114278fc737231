"""gfbench's own implementation of the 19 ImageNet-C corruptions, for data sets that have no
released corrupted copy (``gfbench robustness --generate-from``).

Every corruption is a pure function ``(image, severity, rng) -> image``: ``image`` is HxWx3,
uint8 or float in [0, 1], and the result has the same shape and dtype; all randomness comes
from ``rng`` (a numpy Generator), so ``image_rng`` makes the pixels a function of (seed,
image, corruption, severity) alone. Parameters per severity are the reference generator's for
224x224 images (see PARAMETERS). Where the reference needs ImageMagick, OpenCV or photographs
gfbench approximates, and says so in the docstring: motion_blur and snow use a Gaussian line
kernel, glass_blur displaces pixels in a vectorised pass instead of a sequential swap loop,
frost blends a procedural texture, spatter builds its water edges with scipy. Outputs are
therefore not bit-identical to the released JPEGs, and mCE measured on them is not
comparable to published numbers.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from gfbench.errors import GfbenchError, UnknownNameError
from gfbench.robustness import procedural as pc
from gfbench.robustness.protocol import ALL_CORRUPTIONS, group_of

FloatFn = Callable[[np.ndarray, tuple, np.random.Generator], np.ndarray]
Corruption = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]

# Reference parameters per severity 1..5 (imagenet_c.md); images are 224x224.
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
        return image.astype(np.float32) / 255.0
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"expected uint8 or float pixels, got {image.dtype}")
    return image.astype(np.float32)


def _like(result: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Clip to [0, 1] and return in the input's dtype (uint8 rounded to nearest)."""
    result = np.clip(result, 0.0, 1.0)
    if image.dtype == np.uint8:
        return np.rint(result * 255.0).astype(np.uint8)
    return result.astype(image.dtype)


def _register(name: str) -> Callable[[FloatFn], Corruption]:
    """Wrap a float-space implementation as a public (image, severity, rng) corruption."""

    def wrap(fn: FloatFn) -> Corruption:
        parameters = PARAMETERS[name]

        def corruption(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
            if severity not in range(1, len(parameters) + 1):
                raise ValueError(f"severity must be 1..5, got {severity}")
            return _like(fn(_to_float(image), parameters[severity - 1], rng), image)

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
    return rng.poisson(x * lam).astype(np.float32) / lam


@_register("impulse_noise")
def _impulse_noise(x: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """Salt-and-pepper: a fraction `amount` of the values (per channel) become 0 or 1, half each."""
    draw = rng.random(x.shape)
    out = x.copy()
    out[draw < amount / 2] = 0.0
    out[(draw >= amount / 2) & (draw < amount)] = 1.0
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
    """Frosted glass: blur, move every pixel by a random offset in [-delta, delta) per
    iteration, blur again. gfbench moves all pixels at once (a gather) where the reference
    swaps them one by one, which is equivalent in distribution but not pixel for pixel."""
    sigma, delta, iterations = params
    height, width = x.shape[:2]
    out = ndimage.gaussian_filter(x, sigma=(sigma, sigma, 0), mode="nearest")
    rows = np.arange(height)[:, None]
    cols = np.arange(width)[None, :]
    for _ in range(iterations):
        dy, dx = rng.integers(-delta, delta, size=(2, height, width))
        out = out[np.clip(rows + dy, 0, height - 1), np.clip(cols + dx, 0, width - 1)]
    return ndimage.gaussian_filter(out, sigma=(sigma, sigma, 0), mode="nearest")


@_register("defocus_blur")
def _defocus_blur(x: np.ndarray, params: tuple, rng: np.random.Generator) -> np.ndarray:
    """Out-of-focus lens: correlation with a softened disk of the given radius."""
    radius, alias_blur = params
    return pc.correlate_channels(x, pc.disk_kernel(radius, alias_blur), "reflect")


@_register("motion_blur")
def _motion_blur(x: np.ndarray, params: tuple, rng: np.random.Generator) -> np.ndarray:
    """Camera shake at a random angle in [-45, 45] degrees. gfbench's Gaussian line kernel
    approximates ImageMagick's motion blur, which the reference uses."""
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
    angle in [-135, -45] degrees, added twice (as is and rotated 180 degrees) over a greyed,
    brightened image. The streaks use gfbench's kernel, not ImageMagick's."""
    mean, scale, zoom, threshold, radius, sigma, keep = params
    height, width = x.shape[:2]
    flakes = rng.normal(mean, scale, (height, width, 1)).astype(np.float32)
    flakes = pc.clipped_zoom(flakes, zoom)
    flakes[flakes < threshold] = 0.0
    flakes = np.clip(flakes, 0.0, 1.0)
    flakes = pc.motion_blur(flakes, radius, sigma, rng.uniform(-135.0, -45.0))
    greyed = keep * x + (1 - keep) * np.maximum(x, pc.luminance(x) * 1.5 + 0.5)
    return greyed + flakes + np.rot90(flakes, k=2)


@_register("frost")
def _frost(x: np.ndarray, params: tuple, rng: np.random.Generator) -> np.ndarray:
    """Ice on the lens: image_weight * image + frost_weight * texture. The texture is
    procedural (procedural.frost_texture), not the reference's frost photographs."""
    image_weight, frost_weight = params
    texture = pc.frost_texture(x.shape[0], x.shape[1], rng)
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
    """Elastic warp: a random affine jitter of three points by up to `affine` pixels composed
    with a Gaussian-smoothed (sigma) random displacement field scaled by alpha; one bilinear
    resampling with mirrored borders (the reference resamples twice)."""
    alpha, sigma, affine = params
    height, width = x.shape[:2]
    centre = np.array([width / 2, height / 2])
    half = min(height, width) // 3
    source = np.array([centre + (half, half), centre + (half, -half), centre + (-half, -half)])
    target = source + rng.uniform(-affine, affine, size=source.shape)
    # The affine map sends source points to target points; the output samples its inverse.
    forward = np.linalg.solve(np.c_[source, np.ones(3)], target).T  # 2x3: [A | b]
    inverse_a = np.linalg.inv(forward[:, :2])
    dx = pc.smooth_field(rng.uniform(-1, 1, (height, width)), sigma) * alpha
    dy = pc.smooth_field(rng.uniform(-1, 1, (height, width)), sigma) * alpha
    ys, xs = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    px = xs + dx - forward[0, 2]
    py = ys + dy - forward[1, 2]
    src_x = inverse_a[0, 0] * px + inverse_a[0, 1] * py
    src_y = inverse_a[1, 0] * px + inverse_a[1, 1] * py
    channels = [ndimage.map_coordinates(x[..., c], (src_y, src_x), order=1, mode="mirror")
                for c in range(x.shape[2])]
    return np.stack(channels, axis=-1)


@_register("pixelate")
def _pixelate(x: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Low resolution: box-downsample by `scale`, box-upsample back."""
    height, width = x.shape[:2]
    small = (max(1, int(width * scale)), max(1, int(height * scale)))
    return _uint8_roundtrip(
        x, lambda im: im.resize(small, Image.BOX).resize((width, height), Image.BOX))


@_register("jpeg_compression")
def _jpeg_compression(x: np.ndarray, quality: int, rng: np.random.Generator) -> np.ndarray:
    """JPEG artefacts: encode at the given quality and decode."""

    def encode(im: Image.Image) -> Image.Image:
        buffer = io.BytesIO()
        im.save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)
        return Image.open(buffer).convert("RGB")

    return _uint8_roundtrip(x, encode)


# --- extra ---


@_register("spatter")
def _spatter(x: np.ndarray, params: tuple, rng: np.random.Generator) -> np.ndarray:
    """Water drops (mode 0) or mud (mode 1) from a thresholded smoothed Gaussian field. The
    water shading (edge distance, equalised, embossed) is gfbench's scipy rendition of the
    reference's OpenCV steps."""
    mean, scale, smooth, threshold, strength, mode = params
    height, width = x.shape[:2]
    liquid = ndimage.gaussian_filter(rng.normal(mean, scale, (height, width)), smooth)
    liquid[liquid < threshold] = 0.0
    if mode == 0:
        wet = liquid > 0
        edges = wet ^ ndimage.binary_erosion(wet)
        distance = np.minimum(ndimage.distance_transform_edt(~edges), 20.0)
        distance = ndimage.uniform_filter(distance, 3)
        ranks = np.argsort(np.argsort(distance, axis=None), axis=None).reshape(distance.shape)
        equalised = ranks / max(ranks.max(), 1)
        emboss = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], dtype=np.float64)
        shade = np.clip(ndimage.correlate(equalised, emboss, mode="mirror"), 0, 1)
        shade = ndimage.uniform_filter(shade, 3)
        layer = liquid * shade
        layer = layer / max(layer.max(), 1e-12) * strength
        return x + layer[..., None] * WATER_RGB
    mud = ndimage.gaussian_filter((liquid > threshold).astype(np.float64), strength)
    mud[mud < 0.8] = 0.0
    mud = mud[..., None].astype(np.float32)
    return x * (1 - mud) + MUD_RGB * mud


@_register("saturate")
def _saturate(x: np.ndarray, params: tuple, rng: np.random.Generator) -> np.ndarray:
    """Colour saturation: HSV saturation * factor + shift."""
    factor, shift = params
    hsv = pc.rgb_to_hsv(x)
    hsv[..., 1] = np.clip(hsv[..., 1] * factor + shift, 0.0, 1.0)
    return pc.hsv_to_rgb(hsv)


def corruption_id(name: str) -> int:
    """A stable small integer per corruption (its position in the 19), for seeding."""
    return ALL_CORRUPTIONS.index(name)


def image_seed(key: str) -> int:
    """A stable 32-bit number for an image, from its path relative to the data root."""
    return zlib.crc32(key.encode("utf-8"))


def image_rng(seed: int, image_key: str, corruption: str, severity: int) -> np.random.Generator:
    """The generator for one (image, corruption, severity): worker count cannot change pixels."""
    return np.random.default_rng([seed, image_seed(image_key), corruption_id(corruption),
                                  severity])


def corrupt(image: np.ndarray, corruption: str, severity: int,
            rng: np.random.Generator) -> np.ndarray:
    """Apply a named corruption at a severity (1..5); same shape and dtype back."""
    spec = CORRUPTIONS.get(corruption)
    if spec is None:
        raise UnknownNameError(
            f"unknown corruption {corruption!r}; known: {', '.join(ALL_CORRUPTIONS)}")
    if severity not in range(1, 6):
        raise GfbenchError(f"severity {severity} is not 1..5")
    return spec.apply(image, severity, rng)

