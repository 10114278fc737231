"""ImageNet-C-bar in memory: the ten corruptions Mintun, Kirillov & Xie chose to be dissimilar
from ImageNet-C ("On Interaction Between Augmentations and Corruptions in Natural Corruption
Robustness", NeurIPS 2021, arXiv 2102.11273; code: facebookresearch/augmentation-corruption,
MIT, folder imagenet_c_bar/).

Every corruption is ``(image, severity 1..5, rng) -> image`` like gfbench's ImageNet-C ones
(corruptions.py): uint8 HxWx3 in and out (a float image in [0, 1] is rounded to 8 bits first
and comes back as value / 255). Each restates the authors' transform (imagenet_c_bar/
corrupt.py) as whole-array numpy: the same parameter distributions, scaled by the image side
(224 in the release), and the same per-pixel formula; results are clipped to 0..255 and
truncated to 8 bits as the authors' ``astype(np.uint8)`` does. Differences, by design: every
random number comes from ``rng`` (gfbench seeds one per image with ``image_rng``; the authors
seed numpy's global generator once per run, so their published images cannot be regenerated
one by one), the authors' inner ``RandomState(seed)`` draws come from the same ``rng``, the
two spectral noises are made on an even square covering the image (the release is 224x224),
and a Perlin gradient of length zero (the authors' code would produce NaN) stays zero. The
released set was also saved as JPEG quality 85 (``--jpeg-quality 85`` applies the same
round trip); in-memory results differ from the saved files, as the authors' README warns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gfbench.errors import GfbenchError, UnknownNameError
from gfbench.robustness.protocol import CBAR_CORRUPTIONS

# (image as float64 on 0..255, magnitude, rng) -> float64 image before clipping and truncation
BarFn = Callable[[np.ndarray, float, np.random.Generator], np.ndarray]

# The five magnitudes per corruption (severities 1..5), from imagenet_c_bar/imagenet_c_bar.csv in
# facebookresearch/augmentation-corruption (commit ba4d5a5e, 2022-11-06). A magnitude m scales
# each corruption's strength parameter as m / 10 of its maximum (the authors' float_parameter).
MAGNITUDES: dict[str, tuple[float, ...]] = {
    "blue_noise_sample": (0.8, 1.6, 2.4, 4.0, 5.6),  # csv row: blue_noise_sample
    "brownish_noise": (1.0, 2.0, 3.0, 4.0, 5.0),  # csv row: brownish_noise
    "caustic_refraction": (2.35, 3.2, 4.9, 6.6, 9.15),  # csv row: caustic_refraction
    "checkerboard_cutout": (2.0, 3.0, 4.0, 5.0, 6.0),  # csv row: checkerboard_cutout
    "cocentric_sine_waves": (3.0, 5.0, 8.0, 9.0, 10.0),  # csv row: cocentric_sine_waves
    "inverse_sparkles": (1.0, 2.0, 4.0, 9.0, 10.0),  # csv row: inverse_sparkles
    "perlin_noise": (4.6, 5.2, 5.8, 7.6, 8.8),  # csv row: perlin_noise
    "plasma_noise": (4.75, 7.0, 8.5, 9.25, 10.0),  # csv row: plasma_noise
    "single_frequency_greyscale": (1.0, 1.5, 2.0, 4.5, 5.0),  # csv row: single_frequency_greyscale
    "sparkles": (1.0, 2.0, 3.0, 5.0, 6.0),  # csv row: sparkles
}

GREY = 128.0  # the cut-out colour of checkerboard_cutout
WHITE = 255.0  # the sparkle colour
LUMA_709 = (0.2126, 0.7152, 0.0722)  # the authors' luma weights (caustic_refraction)
TAU = 6.28318530718  # the authors' written-out 2 pi (caustic pattern)
PERLIN_TABLE = 256  # gradient/permutation table size of the authors' Perlin generator
PERLIN_OFFSET = 16 * 256  # added to coordinates before flooring, as the authors do


@dataclass(frozen=True)
class BarSpec:
    """A C-bar corruption: its name, float-space implementation and magnitudes per severity."""

    name: str
    apply: BarFn
    magnitudes: tuple[float, ...]


BAR_CORRUPTIONS: dict[str, BarSpec] = {}


def _register(name: str) -> Callable[[BarFn], BarFn]:
    """Record a float-space implementation under its C-bar name with its magnitudes."""

    def wrap(fn: BarFn) -> BarFn:
        BAR_CORRUPTIONS[name] = BarSpec(name, fn, MAGNITUDES[name])
        return fn

    return wrap


def scaled(magnitude: float, maximum: float) -> float:
    """The authors' float_parameter: magnitude m of 10 scales a parameter to m / 10 of its max."""
    return float(magnitude) * maximum / 10.0


def pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Row (y) and column (x) coordinates of every pixel, float64, as the authors' loops use."""
    rows, cols = np.indices((height, width), dtype=np.float64)
    return rows, cols


def _side(image: np.ndarray) -> int:
    """The size the authors' parameters scale with (their square im_size; the longer side)."""
    return max(image.shape[0], image.shape[1])


# --- noise made in the frequency domain ---


def spectral_noise(height: int, width: int, weight: Callable[[np.ndarray], np.ndarray],
                   rng: np.random.Generator) -> np.ndarray:
    """Unit-variance noise whose Fourier amplitude is weight(distance from the centre of the
    shifted spectrum), random phases: the authors' gen_noise (cropped from an even square)."""
    side = max(height, width) + max(height, width) % 2
    rows, cols = pixel_grid(side, side)
    amplitude = weight(np.hypot(cols - side / 2, rows - side / 2))
    half = rng.uniform(0.0, 2 * np.pi, size=(side, side // 2))
    phases = np.concatenate((half, half[::-1, ::-1]), axis=1)
    spectrum = np.roll(amplitude * np.exp(1j * phases), (side // 2, side // 2), axis=(0, 1))
    noise = np.fft.ifft2(spectrum).real
    return (noise / noise.std())[:height, :width]


def blue_weight(radius: np.ndarray) -> np.ndarray:
    """Blue noise: amplitude proportional to frequency."""
    return radius


def brownish_weight(radius: np.ndarray) -> np.ndarray:
    """Brownish noise: amplitude 1 / (frequency^2 + 1)."""
    return 1.0 / (radius**2 + 1.0)


@_register("blue_noise_sample")
def _blue_noise_sample(x: np.ndarray, magnitude: float, rng: np.random.Generator) -> np.ndarray:
    """Black out the pixels where one blue-noise field is at or below a threshold."""
    threshold = scaled(magnitude, 3.0) - 2.5
    noise = spectral_noise(x.shape[0], x.shape[1], blue_weight, rng)
    return x * (noise > threshold)[..., None]


@_register("brownish_noise")
def _brownish_noise(x: np.ndarray, magnitude: float, rng: np.random.Generator) -> np.ndarray:
    """Add brownish (low-frequency) noise, one field per channel."""
    intensity = scaled(magnitude, 64)
    noise = np.stack([spectral_noise(x.shape[0], x.shape[1], brownish_weight, rng)
                      for _ in range(3)], axis=2)
    return x + intensity * noise


# --- periodic patterns ---


@_register("single_frequency_greyscale")
def _single_frequency_greyscale(x: np.ndarray, magnitude: float,
                                rng: np.random.Generator) -> np.ndarray:
    """Add one grey plane wave sin(fx * col + fy * row + phase) of random frequency."""
    lead = rng.uniform(-np.pi, np.pi)
    other = rng.uniform(-abs(lead), abs(lead))
    freq = np.array([lead, other])[rng.permutation(2)]
    phase = rng.uniform(0.0, 2 * np.pi)
    rows, cols = pixel_grid(x.shape[0], x.shape[1])
    wave = np.sin(cols * freq[0] + rows * freq[1] + phase)
    return x + scaled(magnitude, 196) * wave[..., None]


def ring_field(height: int, width: int, centre: tuple[float, float], freq: float,
               amplitude: float, ring_width: float) -> np.ndarray:
    """Sawtooth rings in [-1/2, 1/2) around centre (col, row), their radius wobbling by
    amplitude * sin(freq * angle): the authors' cocentric_sine_waves pattern."""
    rows, cols = pixel_grid(height, width)
    angle = np.arctan2(cols - centre[0], rows - centre[1]) * freq
    radius = np.hypot(cols - centre[0], rows - centre[1]) + np.sin(angle) * amplitude
    return np.mod(radius, ring_width) / ring_width - 0.5


@_register("cocentric_sine_waves")
def _cocentric_sine_waves(x: np.ndarray, magnitude: float, rng: np.random.Generator) -> np.ndarray:
    """Add grey wobbly concentric rings around a random centre."""
    side = _side(x)
    centre = rng.uniform(0.0, side, size=2)
    freq = rng.uniform(0.0, 10.0)
    amplitude = rng.uniform(0.0, side / 10)
    ring_width = rng.uniform(0.0, side / 10)
    field = ring_field(x.shape[0], x.shape[1], (centre[0], centre[1]), freq, amplitude,
                       ring_width)
    return x + scaled(magnitude, 128) * field[..., None]


@_register("plasma_noise")
def _plasma_noise(x: np.ndarray, magnitude: float, rng: np.random.Generator) -> np.ndarray:
    """Blend in a coloured plasma made by iterated sine/cosine domain warping."""
    time = rng.uniform(0.0, 6 * np.pi)
    iterations = int(rng.integers(4, 7))
    sharpness = rng.uniform(0.5, 1.0)
    scale = rng.uniform(0.075, 0.2) * _side(x)
    intensity = scaled(magnitude, 64)
    rows, cols = pixel_grid(x.shape[0], x.shape[1])
    px, py = cols / scale, rows / scale
    k0, k1, k2, k3 = 1.0, 1.0, 1.0, 0.0
    for _ in range(iterations):
        r0 = np.cos(py * k0 - k3 + time / k1) / k2
        r1 = np.sin(px * k0 - k3 + time / k1) / k2
        r0, r1 = r0 - 0.3 * r1, r1 + 0.3 * r0
        px, py = px + r0, py + r1
        k0, k1, k2, k3 = k0 * 1.93, k1 * 1.15, k2 * (2.25 - sharpness), k3 * time * k1
    plasma = np.stack((np.sin(px - time), np.sin((px + py + np.sin(time)) * 0.5),
                       np.sin(py + time)), axis=2)
    return (1 - intensity / 255) * x + intensity * plasma


# --- occlusion ---


@_register("checkerboard_cutout")
def _checkerboard_cutout(x: np.ndarray, magnitude: float, rng: np.random.Generator) -> np.ndarray:
    """Fill a random fraction of one colour's squares of a rotated checkerboard with grey."""
    angle = rng.uniform(0.0, 2 * np.pi)
    side = _side(x)
    cell = max(rng.uniform(0.1, 0.25) * side, 1.0)
    cells = int(4 * side // cell)
    cut = rng.uniform(size=(cells, cells)) < scaled(magnitude, 1.0)
    rows, cols = pixel_grid(x.shape[0], x.shape[1])
    u = (np.cos(angle) * rows + np.sin(angle) * cols) / cell
    v = (-np.sin(angle) * rows + np.cos(angle) * cols) / cell
    # Truncation toward zero and negative indices wrapping, as the authors' int() and grid[]:
    iu, iv = u.astype(np.int64), v.astype(np.int64)
    keep = (np.mod(u, 2).astype(np.int64) != np.mod(v, 2).astype(np.int64)) | ~cut[iu, iv]
    return np.where(keep[..., None], x, GREY)


# --- sparkles ---


def star_weight(rows: np.ndarray, cols: np.ndarray, centre: np.ndarray, ray_lengths: np.ndarray,
                exponent: float) -> np.ndarray:
    """How much of the sparkle colour each pixel takes (0..1): rays of the given lengths around
    centre (row, col), falling off as (length / distance)^(2 * exponent)."""
    dy, dx = rows - centre[0], cols - centre[1]
    rays = len(ray_lengths)
    position = (np.arctan2(dx, dy) + np.pi) / (2 * np.pi) * rays
    index = position.astype(np.int64)
    frac = position - index
    start, end = ray_lengths[index % rays], ray_lengths[(index + 1) % rays]
    length = start + frac * (end - start)
    falloff = (length**2 / (dy**2 + dx**2 + 1e-4)) ** exponent
    return np.clip((1 - (frac - 0.5) ** 2) * falloff, 0.0, 1.0)


@_register("sparkles")
def _sparkles(x: np.ndarray, magnitude: float, rng: np.random.Generator) -> np.ndarray:
    """Paint five white star bursts of random ray counts at random places."""
    side = _side(x)
    centres = rng.uniform(0.0, side, size=(5, 2))
    radius = scaled(magnitude, 0.1) * side
    ray_counts = rng.integers(50, 200, size=5)
    rows, cols = pixel_grid(x.shape[0], x.shape[1])
    out = x
    for centre, rays in zip(centres, ray_counts, strict=True):
        lengths = np.maximum(1.0, radius + 0.25 * radius * rng.standard_normal(int(rays)))
        weight = star_weight(rows, cols, centre, lengths, exponent=1.0)[..., None]
        out = out + weight * (WHITE - out)
    return out


@_register("inverse_sparkles")
def _inverse_sparkles(x: np.ndarray, magnitude: float, rng: np.random.Generator) -> np.ndarray:
    """Wash the image to white except inside one large star burst near the middle."""
    side = _side(x)
    centre = rng.uniform(0.25, 0.75, size=2) * side
    radius = 0.25 * side
    exponent = scaled(magnitude, 65) / 50.0  # (100 - amount) / 50 with amount = 100 - m * 6.5
    rays = int(rng.integers(50, 200))
    lengths = radius + 0.25 * radius * rng.standard_normal(rays)
    rows, cols = pixel_grid(x.shape[0], x.shape[1])
    weight = star_weight(rows, cols, centre, lengths, exponent)[..., None]
    return WHITE + weight * (x - WHITE)


# --- Perlin noise ---


def perlin_tables(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Gradients and permutation of the authors' Perlin generator (classic Perlin 2002 tables):
    514 unit vectors from integers in -256..255, and 0..255 shuffled by 256 random swaps."""
    size = PERLIN_TABLE
    raw = (rng.integers(0, 2**31, size=(2 * size + 2, 2)) % (2 * size) - size) / size
    norms = np.linalg.norm(raw, axis=1, keepdims=True)
    gradients = np.divide(raw, norms, out=np.zeros_like(raw), where=norms > 0)
    perm = np.arange(2 * size + 2)
    for i, j in zip(range(size - 1, -1, -1), rng.integers(0, 2**31, size=size) % size,
                    strict=True):
        perm[i], perm[j] = perm[j], perm[i]
    for table in (perm, gradients):  # the authors' element-by-element copy: entry size + i
        table[size:2 * size] = table[:size]  # gets entry i, and the last two wrap to 0 and 1
        table[2 * size:] = table[:2]
    return gradients, perm


def perlin(a: np.ndarray, b: np.ndarray, gradients: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """Gradient noise at (a, b), elementwise: the authors' PerlinNoiseGenerator.noise."""
    size = PERLIN_TABLE
    ta, tb = a + PERLIN_OFFSET, b + PERLIN_OFFSET
    a0 = ta.astype(np.int64) % size
    b0 = tb.astype(np.int64) % size
    a1, b1 = (a0 + 1) % size, (b0 + 1) % size
    ra0, rb0 = np.mod(ta, 1.0), np.mod(tb, 1.0)
    ra1, rb1 = ra0 - 1.0, rb0 - 1.0
    i, j = perm[a0], perm[a1]
    g00, g10, g01, g11 = (gradients[perm[i + b0]], gradients[perm[j + b0]],
                          gradients[perm[i + b1]], gradients[perm[j + b1]])
    sa, sb = ra0**2 * (3.0 - 2.0 * ra0), rb0**2 * (3.0 - 2.0 * rb0)
    u, v = ra0 * g00[..., 0] + rb0 * g00[..., 1], ra1 * g10[..., 0] + rb0 * g10[..., 1]
    low = u + sa * (v - u)
    u, v = ra0 * g01[..., 0] + rb1 * g01[..., 1], ra1 * g11[..., 0] + rb1 * g11[..., 1]
    high = u + sa * (v - u)
    return 1.5 * (low + sb * (high - low))


def turbulence(a: np.ndarray, b: np.ndarray, octaves: float, gradients: np.ndarray,
               perm: np.ndarray) -> np.ndarray:
    """Sum of |noise| over doubling frequencies f = 1, 2, 4, .. <= octaves, each weighted 1 / f."""
    total = np.zeros_like(a)
    freq = 1.0
    while freq <= octaves:
        total += np.abs(perlin(freq * a, freq * b, gradients, perm)) / freq
        freq *= 2
    return total


@_register("perlin_noise")
def _perlin_noise(x: np.ndarray, magnitude: float, rng: np.random.Generator) -> np.ndarray:
    """Blend in grey Perlin turbulence (16 octaves, period 32 pixels at 224)."""
    gradients, perm = perlin_tables(rng)
    rows, cols = pixel_grid(x.shape[0], x.shape[1])
    step = 1.0 / (32 * _side(x) / 224)
    field = np.clip(0.5 * turbulence(rows * step, cols * step, 16.0, gradients, perm) + 0.5,
                    0.0, 1.0)
    alpha = scaled(magnitude, 0.5)
    # the authors blend a float32 copy of the image (exact for 8-bit values; the product rounds)
    return (1 - alpha) * x.astype(np.float32) + 255 * alpha * field[..., None]


# --- caustic refraction ---


def caustic_field(height: int, width: int, time: float, size: float) -> np.ndarray:
    """The authors' caustic pattern (a water-light shader, 5 iterations) in 0..1 per pixel."""
    rows, cols = pixel_grid(height, width)
    p0 = np.mod(rows / size, 1.0) * TAU - 250
    p1 = np.mod(cols / size, 1.0) * TAU - 250
    i0, i1 = p0, p1
    glow = np.ones_like(p0)
    inten = 0.005
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for n in range(5):
            t = time * (1.0 - 3.5 / (n + 1))
            i0, i1 = (p0 + np.cos(t - i0) + np.sin(t + i1), p1 + np.sin(t - i1) + np.cos(t + i0))
            length = np.sqrt((p0 / (np.sin(i0 + t) / inten)) ** 2
                             + (p1 / (np.cos(i1 + t) / inten)) ** 2)
            glow += 1.0 / length
    glow = 1.17 - (glow / 5.0) ** 1.4
    return np.clip(np.abs(glow) ** 8.0, 0.0, 1.0)


def bilinear_zero(image: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Sample image (HxWxC) at fractional (rows, cols), bilinearly, with zeros outside."""
    height, width = image.shape[:2]
    r0, c0 = np.floor(rows).astype(np.int64), np.floor(cols).astype(np.int64)
    fr, fc = (rows - r0)[..., None], (cols - c0)[..., None]
    out = np.zeros(rows.shape + image.shape[2:], dtype=np.float64)
    for dr, dc, w in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc),
                      (1, 0, fr * (1 - fc)), (1, 1, fr * fc)):
        r, c = r0 + dr, c0 + dc
        inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
        out += w * np.where(inside[..., None], image[np.clip(r, 0, height - 1),
                                                     np.clip(c, 0, width - 1)], 0.0)
    return out


def refraction_offsets(dx: np.ndarray, dy: np.ndarray, eta: float) -> tuple[np.ndarray, np.ndarray]:
    """First two components of a vertical ray refracted (index ratio eta) through a surface of
    normal (dx, dy, 1) / |.|, as the authors' refract: zero where the normal is near vertical."""
    norm = np.sqrt(dx**2 + dy**2 + 1.0)
    nx, ny, nz = dx / norm, dy / norm, 1.0 / norm
    tilt = np.sqrt(nx**2 + ny**2)  # |z x n|
    out_angle = np.arcsin(np.sin(np.arccos(nz)) / eta)
    # cos(out) * n + sin(out) * (n x s), with s = (z x n) / |z x n|
    with np.errstate(divide="ignore", invalid="ignore"):
        along = np.where(tilt > 0, -np.sin(out_angle) * nz / tilt, 0.0)
    ox = np.cos(out_angle) * nx + along * nx
    oy = np.cos(out_angle) * ny + along * ny
    vertical = np.abs(nz) >= 1.0 - 1e-3
    return np.where(vertical, 0.0, ox), np.where(vertical, 0.0, oy)


@_register("caustic_refraction")
def _caustic_refraction(x: np.ndarray, magnitude: float, rng: np.random.Generator) -> np.ndarray:
    """Look at the image through a rippled water surface: refract by the caustic pattern's
    slope and light by its gradient."""
    from scipy.ndimage import gaussian_filter

    side = _side(x)
    time = rng.uniform(0.5, 2.0)
    size = rng.uniform(0.75, 1.25) * side
    lens_scale = scaled(magnitude, 0.5 * side)
    lighting = scaled(magnitude, 2.0)
    height, width = x.shape[:2]
    luma = gaussian_filter(caustic_field(height, width, time, size), sigma=1) * sum(LUMA_709)
    padded = np.pad(luma, 1)  # zeros beyond the border, as the authors' luma_at_offset
    north, south = padded[1:-1, :-2], padded[1:-1, 2:]  # (row, col -+ 1)
    west, east = padded[:-2, 1:-1], padded[2:, 1:-1]  # (row -+ 1, col)
    off_row, off_col = refraction_offsets(east - west, south - north, 4.0)
    rows, cols = pixel_grid(height, width)
    sampled = bilinear_zero(x / 255.0, rows + np.round(off_row * lens_scale, 3),
                            cols + np.round(off_col * lens_scale, 3))
    shade = ((north - south) + (east - west)) * lighting
    return np.clip(sampled + shade[..., None], 0.0, 1.0) * 255.0


# --- public entry ---


def as_uint8(image: np.ndarray) -> np.ndarray:
    """The 8-bit pixels a C-bar corruption works on: uint8 as is, float [0, 1] rounded."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 image, got shape {image.shape}")
    if image.dtype == np.uint8:
        return image
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"expected uint8 or float pixels, got {image.dtype}")
    return np.rint(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)


def corrupt_bar(image: np.ndarray, corruption: str, severity: int,
                rng: np.random.Generator) -> np.ndarray:
    """Apply a C-bar corruption at a severity (1..5); same shape and dtype back."""
    spec = BAR_CORRUPTIONS.get(corruption)
    if spec is None:
        raise UnknownNameError(
            f"unknown C-bar corruption {corruption!r}; known: {', '.join(CBAR_CORRUPTIONS)}")
    if severity not in range(1, 6):
        raise GfbenchError(f"severity {severity} is not 1..5")
    pixels = as_uint8(image)
    out = spec.apply(pixels.astype(np.float64), spec.magnitudes[severity - 1], rng)
    out8 = np.clip(out, 0, 255).astype(np.uint8)  # truncation, as the authors' astype(uint8)
    if image.dtype == np.uint8:
        return out8
    return (out8.astype(np.float32) / 255.0).astype(image.dtype)

