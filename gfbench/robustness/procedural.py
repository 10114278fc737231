"""Building blocks of the corruptions: kernels, noise fields, colour space and zoom.

Pure numpy/scipy functions on float32 arrays in [0, 1]; randomness comes only from the
numpy Generator passed in, so a seed fixes every pixel.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import ndimage, signal

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601, as OpenCV's RGB2GRAY


def correlate_channels(image: np.ndarray, kernel: np.ndarray, pad_mode: str) -> np.ndarray:
    """Correlate every channel of an HxWxC image with a 2D kernel (FFT; large kernels are cheap)."""
    ky, kx = kernel.shape
    pad = ((ky // 2, ky - 1 - ky // 2), (kx // 2, kx - 1 - kx // 2), (0, 0))
    padded = np.pad(image, pad, mode=pad_mode)
    flipped = kernel[::-1, ::-1, None].astype(np.float32)
    return signal.fftconvolve(padded, flipped, mode="valid", axes=(0, 1)).astype(np.float32)


@functools.lru_cache(maxsize=32)
def _gaussian_matrix(length: int, sigma: float, truncate: float) -> np.ndarray:
    """The length x length matrix of a 1D Gaussian filter with mirrored ('reflect') edges."""
    return ndimage.gaussian_filter1d(np.eye(length), sigma, axis=0, mode="reflect",
                                     truncate=truncate)


def smooth_field(field: np.ndarray, sigma: float, truncate: float = 3.0) -> np.ndarray:
    """scipy's gaussian_filter(field, sigma, mode='reflect', truncate) of a 2D field, as two
    cached matrix products: the same numbers, fast even when sigma exceeds the image."""
    rows = _gaussian_matrix(field.shape[0], float(sigma), truncate)
    cols = _gaussian_matrix(field.shape[1], float(sigma), truncate)
    return rows @ field @ cols.T


def disk_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """A normalised disk of the given radius, softened by a small Gaussian (defocus blur)."""
    half = max(8, int(math.ceil(radius)))
    coords = np.arange(-half, half + 1, dtype=np.float32)
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    disk = (xx**2 + yy**2 <= radius**2).astype(np.float32)
    disk /= disk.sum()
    support = 1 if radius <= 8 else 2  # a 3x3 Gaussian for small disks, 5x5 for large ones
    soft = ndimage.gaussian_filter(disk, sigma=alias_blur, mode="constant", radius=support)
    return (soft / soft.sum()).astype(np.float32)


def motion_kernel(radius: float, sigma: float, angle_deg: float) -> np.ndarray:
    """One-sided Gaussian-weighted line kernel along an angle (stand-in for ImageMagick's
    motion blur): tap i of 2*radius+1 lies i pixels from the centre, weight exp(-i^2/2sigma^2),
    splatted bilinearly onto the grid."""
    taps = 2 * int(math.ceil(radius)) + 1
    steps = np.arange(taps, dtype=np.float64)
    weights = np.exp(-(steps**2) / (2.0 * sigma**2))
    theta = math.radians(angle_deg)
    size = 2 * taps + 1
    kernel = np.zeros((size, size), dtype=np.float64)
    ys = taps + steps * math.sin(theta)
    xs = taps + steps * math.cos(theta)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    fy, fx = ys - y0, xs - x0
    for dy, dx, share in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx),
                          (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        np.add.at(kernel, (y0 + dy, x0 + dx), weights * share)
    return (kernel / kernel.sum()).astype(np.float32)


def motion_blur(image: np.ndarray, radius: float, sigma: float, angle_deg: float) -> np.ndarray:
    """Blur an HxWxC image along a direction with the motion kernel (edges repeat)."""
    return correlate_channels(image, motion_kernel(radius, sigma, angle_deg), "edge")


def plasma_fractal(size: int, decay: float, rng: np.random.Generator) -> np.ndarray:
    """A size x size cloud-like field in [0, 1] by the diamond-square algorithm on a torus;
    the random amplitude shrinks by decay**2 per octave (larger decay, smoother clouds)."""
    n = max(256, 1 << (max(size, 2) - 1).bit_length())
    field = np.zeros((n, n), dtype=np.float64)
    amplitude = 1.0
    step = n
    while step >= 2:
        half = step // 2
        corners = field[0::step, 0::step]
        centres = (corners + np.roll(corners, -1, 0) + np.roll(corners, -1, 1)
                   + np.roll(corners, (-1, -1), (0, 1))) / 4
        centres += amplitude * rng.uniform(-1.0, 1.0, centres.shape)
        field[half::step, half::step] = centres
        top = (corners + np.roll(corners, -1, 1) + np.roll(centres, 1, 0) + centres) / 4
        left = (corners + np.roll(corners, -1, 0) + np.roll(centres, 1, 1) + centres) / 4
        field[0::step, half::step] = top + amplitude * rng.uniform(-1.0, 1.0, top.shape)
        field[half::step, 0::step] = left + amplitude * rng.uniform(-1.0, 1.0, left.shape)
        step = half
        amplitude /= decay**2
    field -= field.min()
    field /= max(field.max(), 1e-12)
    return field.astype(np.float32)


def _zoom_taps(length: int, factor: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights of a centre zoom along one axis: the centre length/factor
    samples stretched linearly (end points aligned) to length*factor, centre length kept."""
    crop = max(1, int(math.ceil(length / factor)))
    start = (length - crop) // 2
    stretched = max(length, int(round(crop * factor)))
    trim = (stretched - length) // 2
    coords = start + np.arange(trim, trim + length) * (crop - 1) / max(stretched - 1, 1)
    low = np.floor(coords).astype(int)
    high = np.minimum(low + 1, length - 1)
    return low, high, (coords - low).astype(np.float32)


def clipped_zoom(image: np.ndarray, factor: float) -> np.ndarray:
    """Zoom into the centre of an HxWxC array by factor (>= 1), keeping its shape (bilinear)."""
    if factor <= 1.0:
        return image.copy()
    low, high, weight = _zoom_taps(image.shape[0], factor)
    rows = image[low] * (1 - weight)[:, None, None] + image[high] * weight[:, None, None]
    low, high, weight = _zoom_taps(image.shape[1], factor)
    return rows[:, low] * (1 - weight)[None, :, None] + rows[:, high] * weight[None, :, None]


def frost_texture(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A procedural frost texture (HxWx3 in [0, 1]): a cloudy plasma base with dendritic ice
    needles (random straight strokes with side branches at +-60 degrees), tinted pale blue.
    gfbench cannot redistribute the frost photographs of the reference, so it draws these."""
    base = plasma_fractal(max(height, width), 1.5, rng)[:height, :width]
    count = max(8, height * width // 70)
    length_scale = 0.08 * min(height, width)
    starts = rng.uniform((0, 0), (height, width), size=(count, 2))
    angles = rng.uniform(0, math.pi, size=count)
    lengths = rng.exponential(length_scale, size=count) + 2.0
    # Side branches leave from a random point of each needle, shorter and turned by +-60 deg.
    along = rng.uniform(0.2, 0.8, size=count)[:, None] * lengths[:, None]
    branch_starts = starts + along * np.stack([np.sin(angles), np.cos(angles)], axis=1)
    branch_angles = angles + rng.choice([-1.0, 1.0], size=count) * math.pi / 3
    all_starts = np.concatenate([starts, branch_starts])
    all_angles = np.concatenate([angles, branch_angles])
    all_lengths = np.concatenate([lengths, 0.45 * lengths])
    samples = 32
    t = np.linspace(0.0, 1.0, samples)[None, :] * all_lengths[:, None]
    ys = np.round(all_starts[:, :1] + t * np.sin(all_angles)[:, None]).astype(int) % height
    xs = np.round(all_starts[:, 1:] + t * np.cos(all_angles)[:, None]).astype(int) % width
    strength = rng.uniform(0.3, 1.0, size=(all_starts.shape[0], 1)) * np.ones_like(t)
    needles = np.zeros((height, width), dtype=np.float64)
    np.add.at(needles, (ys.ravel(), xs.ravel()), strength.ravel())
    needles = 1.0 - np.exp(-needles)
    needles = ndimage.gaussian_filter(needles, sigma=0.6, mode="wrap")
    grey = np.clip(0.2 + 0.45 * base + 0.8 * needles, 0.0, 1.0)
    tint = np.array([0.86, 0.93, 1.0], dtype=np.float32)
    return (grey[..., None] * tint).astype(np.float32)


def rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 RGB in [0, 1] to HSV in [0, 1] (hue as a fraction of a turn)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    high = rgb.max(axis=-1)
    low = rgb.min(axis=-1)
    span = high - low
    safe = np.where(span > 0, span, 1.0)
    hue = np.where(high == r, (g - b) / safe,
                   np.where(high == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe))
    hue = np.where(span > 0, (hue / 6.0) % 1.0, 0.0)
    saturation = np.where(high > 0, span / np.where(high > 0, high, 1.0), 0.0)
    return np.stack([hue, saturation, high], axis=-1).astype(np.float32)


def hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    """HxWx3 HSV in [0, 1] back to RGB in [0, 1]."""
    h, s, v = hsv[..., 0] * 6.0, hsv[..., 1], hsv[..., 2]
    sector = np.floor(h).astype(int) % 6
    frac = h - np.floor(h)
    p, q, t = v * (1 - s), v * (1 - s * frac), v * (1 - s * (1 - frac))
    table = np.stack([np.stack(c, axis=-1) for c in
                      ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))])
    return np.take_along_axis(table, sector[None, ..., None], axis=0)[0].astype(np.float32)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """HxWx1 luma of an RGB image."""
    return (rgb @ LUMA)[..., None]
