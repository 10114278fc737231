"""Building blocks of the corruptions: kernels, noise fields, colour space, zoom, the
reference's glass-blur loop, ImageMagick's motion blur and the OpenCV operations the reference
uses (Canny, chamfer distance, histogram equalisation, affine warp), restated in numpy/scipy.

Pure functions; randomness comes only from the numpy Generator (or draws) passed in, so a seed
fixes every pixel.
"""

from __future__ import annotations

import functools
import math
from typing import Literal

import numpy as np
from scipy import ndimage, signal

SMALL_RADIUS = 16  # smooth_field: below this kernel radius a direct filter beats matrix products
PadMode = Literal["constant", "edge", "reflect", "symmetric", "wrap"]  # np.pad modes
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601, as OpenCV's RGB2GRAY


def correlate_channels(image: np.ndarray, kernel: np.ndarray, pad_mode: PadMode) -> np.ndarray:
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
    """scipy's gaussian_filter(field, sigma, mode='reflect', truncate) of a 2D field; for wide
    kernels as two cached matrix products (the same numbers, fast even when sigma exceeds the
    image), for narrow ones (radius under SMALL_RADIUS) by scipy itself, which is faster."""
    if sigma * truncate < SMALL_RADIUS:
        return ndimage.gaussian_filter(field, sigma, mode="reflect", truncate=truncate)
    rows = _gaussian_matrix(field.shape[0], float(sigma), truncate)
    cols = _gaussian_matrix(field.shape[1], float(sigma), truncate)
    return rows @ field @ cols.T


def disk_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """A normalised disk of the given radius, softened by a small Gaussian (defocus blur) with
    mirrored edges and not renormalised, as OpenCV's GaussianBlur leaves the reference's."""
    half = max(8, int(math.ceil(radius)))
    coords = np.arange(-half, half + 1, dtype=np.float32)
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    disk = (xx**2 + yy**2 <= radius**2).astype(np.float32)
    disk /= disk.sum()
    support = 1 if radius <= 8 else 2  # a 3x3 Gaussian for small disks, 5x5 for large ones
    return ndimage.gaussian_filter(disk, sigma=alias_blur, mode="mirror", radius=support)


def motion_taps(radius: float, sigma: float, angle_deg: float) -> list[tuple[int, int, float]]:
    """ImageMagick's motion-blur taps as (row offset, column offset, weight): 2*ceil(radius)+1
    one-sided Gaussian weights, tap i at i pixels along the angle rounded to a whole pixel."""
    width = 2 * int(math.ceil(radius)) + 1
    steps = np.arange(width, dtype=np.float64)
    weights = np.exp(-(steps**2) / (2.0 * sigma**2))
    weights /= weights.sum()
    theta = math.radians(angle_deg)
    point_y, point_x = width * math.sin(theta), width * math.cos(theta)
    length = math.hypot(point_y, point_x)
    return [(math.ceil(i * point_y / length - 0.5), math.ceil(i * point_x / length - 0.5),
             float(weights[i])) for i in range(width)]


def motion_blur(image: np.ndarray, radius: float, sigma: float, angle_deg: float) -> np.ndarray:
    """Blur an HxWxC image along a direction with whole-pixel taps (edges repeat); like the
    reference, taps from the first one that leaves the image onwards are dropped."""
    height, width = image.shape[:2]
    taps = []
    for dy, dx, weight in motion_taps(radius, sigma, angle_deg):
        if abs(dy) >= height or abs(dx) >= width:
            break
        taps.append((dy, dx, weight))
    pad_y = max(abs(dy) for dy, _, _ in taps)
    pad_x = max(abs(dx) for _, dx, _ in taps)
    padded = np.pad(image, ((pad_y, pad_y), (pad_x, pad_x), (0, 0)), mode="edge")
    out = np.zeros(image.shape, dtype=np.float64)
    for dy, dx, weight in taps:
        out += weight * padded[pad_y + dy:pad_y + dy + height, pad_x + dx:pad_x + dx + width]
    return out.astype(np.float32)


def glass_pass(image: np.ndarray, delta: int, offsets: np.ndarray) -> np.ndarray:
    """One pass of the reference glass-blur loop, vectorised and exact. The loop visits rows
    H-delta..delta+1, then columns W-delta..delta+1 (both descending) and sets each visited
    pixel to the current value at (row + dy, column + dx), offsets[i, j] = (dx, dy) for the
    j-th column of the i-th row visited. A source visited earlier in the same pass has
    already been overwritten, so copies chain; they are resolved by pointer jumping."""
    height, width = image.shape[:2]
    rows = np.arange(height - delta, delta, -1)
    cols = np.arange(width - delta, delta, -1)
    src_rows = rows[:, None] + offsets[..., 1]
    src_cols = cols[None, :] + offsets[..., 0]
    # Visit step of the source pixel, if the loop visits it at all.
    visited = ((src_rows > delta) & (src_rows <= height - delta)
               & (src_cols > delta) & (src_cols <= width - delta))
    src_step = (height - delta - src_rows) * len(cols) + (width - delta - src_cols)
    own_step = np.arange(rows.size * cols.size).reshape(rows.size, cols.size)
    chained = visited & (src_step < own_step)
    parent = np.where(chained, src_step, own_step).ravel()
    while True:  # every pixel ends at the first pixel of its chain, which read the original
        grand = parent[parent]
        if np.array_equal(grand, parent):
            break
        parent = grand
    source = (src_rows * width + src_cols).ravel()[parent]
    index = np.arange(height * width).reshape(height, width)
    index[rows[:, None], cols[None, :]] = source.reshape(rows.size, cols.size)
    flat = image.reshape(height * width, *image.shape[2:])
    return flat[index]


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


def _zoom_taps(length: int, factor: float,
               trim: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights of a centre zoom along one axis: the centre length/factor
    samples stretched linearly (end points aligned) to round(crop * factor), of which the
    centre `length` are kept (all of them when not trim)."""
    crop = max(1, int(math.ceil(length / factor)))
    start = (length - crop) // 2
    stretched = max(length, int(round(crop * factor)))
    first, count = ((stretched - length) // 2, length) if trim else (0, stretched)
    coords = start + np.arange(first, first + count) * (crop - 1) / max(stretched - 1, 1)
    low = np.floor(coords).astype(int)
    high = np.minimum(low + 1, length - 1)
    return low, high, (coords - low).astype(np.float32)


def clipped_zoom(image: np.ndarray, factor: float, trim: bool = True) -> np.ndarray:
    """Zoom into the centre of an HxWxC array by factor (>= 1), keeping its shape (bilinear);
    with trim=False the zoomed crop keeps its overhang (up to one more row and column)."""
    if factor <= 1.0:
        return image.copy()
    low, high, weight = _zoom_taps(image.shape[0], factor, trim)
    rows = image[low] * (1 - weight)[:, None, None] + image[high] * weight[:, None, None]
    low, high, weight = _zoom_taps(image.shape[1], factor, trim)
    return rows[:, low] * (1 - weight)[None, :, None] + rows[:, high] * weight[None, :, None]


def _mirror_index(index: np.ndarray, size: int) -> np.ndarray:
    """Reflect-101 border (OpenCV's default, scipy's 'mirror'): -1 -> 1, size -> size - 2."""
    period = max(2 * size - 2, 1)
    index = np.abs(index) % period
    return np.where(index >= size, period - index, index)


def affine_from_points(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2x3 affine map [A | b] that sends three (x, y) source points to three targets."""
    return np.linalg.solve(np.c_[source.astype(np.float64), np.ones(3)],
                           target.astype(np.float64)).T


def warp_affine(image: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """OpenCV's warpAffine(image, forward) with bilinear sampling and mirrored (reflect-101)
    edges: every output pixel samples the input at the inverse map of its position, as OpenCV
    5.1 does (the older OpenCV that made the release rounded positions to 1/32 pixel; on the
    elastic_transform test photographs that changes the output by about 65 dB PSNR)."""
    height, width = image.shape[:2]
    a, b, c, d = forward[0, 0], forward[0, 1], forward[1, 0], forward[1, 1]
    det = a * d - b * c
    det = 1.0 / det if det != 0 else 0.0
    i00, i11, i01, i10 = d * det, a * det, -b * det, -c * det
    i02 = -i00 * forward[0, 2] - i01 * forward[1, 2]
    i12 = -i10 * forward[0, 2] - i11 * forward[1, 2]
    ys, xs = np.meshgrid(np.arange(height, dtype=np.float64), np.arange(width, dtype=np.float64),
                         indexing="ij")
    src_x, src_y = i00 * xs + i01 * ys + i02, i10 * xs + i11 * ys + i12
    x0, y0 = np.floor(src_x), np.floor(src_y)
    wx, wy = (src_x - x0)[..., None], (src_y - y0)[..., None]
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
    left, right = _mirror_index(x0, width), _mirror_index(x0 + 1, width)
    top, bottom = _mirror_index(y0, height), _mirror_index(y0 + 1, height)
    out = ((image[top, left] * (1 - wx) + image[top, right] * wx) * (1 - wy)
           + (image[bottom, left] * (1 - wx) + image[bottom, right] * wx) * wy)
    return out.astype(np.float32)


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


# --- OpenCV's image operations as the reference's spatter uses them, on uint8 images ---

CHAMFER_STEPS = (1.0, 1.4, 2.1969)  # OpenCV's 5x5 mask for DIST_L2: straight, diagonal, knight
TAN_22_5 = 13573  # tan(22.5 degrees) in 1/32768, Canny's direction test


def box3_sum(image: np.ndarray) -> np.ndarray:
    """Sum over each 3x3 neighbourhood with mirrored (reflect-101) edges, in float64 or int64."""
    padded = np.pad(image, 1, mode="reflect")
    rows = padded[:-2] + padded[1:-1] + padded[2:]
    return rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:]


def canny(gray: np.ndarray, low: int, high: int) -> np.ndarray:
    """OpenCV's Canny edges of a uint8 image (3x3 Sobel with repeated edges, L1 gradient
    magnitude, non-maximum suppression with its fixed-point direction tests, hysteresis over
    8-connected pixels above `low` that reach one above `high`)."""
    p = np.pad(gray.astype(np.int64), 1, mode="edge")
    dx = (p[:-2, 2:] + 2 * p[1:-1, 2:] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[1:-1, :-2] + p[2:, :-2])
    dy = (p[2:, :-2] + 2 * p[2:, 1:-1] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[:-2, 1:-1] + p[:-2, 2:])
    mag = np.abs(dx) + np.abs(dy)
    m = np.pad(mag, 1)  # magnitudes outside the image count as 0
    centre = m[1:-1, 1:-1]
    ax, ay = np.abs(dx), np.abs(dy) << 15
    tg22 = ax * TAN_22_5
    horizontal = ay < tg22
    vertical = ~horizontal & (ay > tg22 + (ax << 16))
    same_sign = (dx ^ dy) >= 0  # diagonal: down-right when the signs agree, else down-left
    up_left, up_right = m[:-2, :-2], m[:-2, 2:]
    down_left, down_right = m[2:, :-2], m[2:, 2:]
    diagonal = np.where(same_sign, (centre > up_left) & (centre > down_right),
                        (centre > up_right) & (centre > down_left))
    peak = np.where(horizontal, (centre > m[1:-1, :-2]) & (centre >= m[1:-1, 2:]),
                    np.where(vertical, (centre > m[:-2, 1:-1]) & (centre >= m[2:, 1:-1]),
                             diagonal))
    candidate = peak & (mag > low)
    labels, count = ndimage.label(candidate, structure=np.ones((3, 3), dtype=bool))
    strong = np.zeros(count + 1, dtype=bool)
    strong[labels[candidate & (mag > high)]] = True
    strong[0] = False
    return strong[labels]


def chamfer_distance(edges: np.ndarray) -> np.ndarray:
    """OpenCV's distanceTransform(DIST_L2, mask 5) of the non-edge pixels: the 5x5 chamfer
    distance (steps 1, 1.4, 2.1969 in float32) to the nearest edge pixel, by its two raster
    passes. Steps from other rows are added in float32 as OpenCV does; each row's left/right
    sweep is a running minimum that adds a run of unit steps at once, where OpenCV adds them
    one by one (the two can differ in the last float32 bit)."""
    a, b, c = (np.float32(step) for step in CHAMFER_STEPS)
    height, width = edges.shape
    far = np.finfo(np.float32).max
    t = np.full((height + 4, width + 4), far, dtype=np.float32)  # 2-pixel border
    along = np.arange(width, dtype=np.float64)
    inner = slice(2, width + 2)

    def sweep(cand: np.ndarray, edge_row: np.ndarray) -> np.ndarray:
        """t[j] = min over k <= j of cand[k] + (j - k) unit steps; edge pixels stay 0."""
        cand = np.where(edge_row, 0.0, cand.astype(np.float64))
        return (np.minimum.accumulate(cand - along) + along).astype(np.float32)

    for i in range(2, height + 2):  # forward: the two rows above, then left to right
        cand = np.minimum.reduce([t[i - 2, 1:width + 1] + c, t[i - 2, 3:width + 3] + c,
                                  t[i - 1, 0:width] + c, t[i - 1, 1:width + 1] + b,
                                  t[i - 1, inner] + a, t[i - 1, 3:width + 3] + b,
                                  t[i - 1, 4:width + 4] + c])
        t[i, inner] = sweep(cand, edges[i - 2])
    for i in range(height + 1, 1, -1):  # backward: the two rows below, then right to left
        cand = np.minimum.reduce([t[i, inner], t[i + 2, 1:width + 1] + c,
                                  t[i + 2, 3:width + 3] + c, t[i + 1, 0:width] + c,
                                  t[i + 1, 1:width + 1] + b, t[i + 1, inner] + a,
                                  t[i + 1, 3:width + 3] + b, t[i + 1, 4:width + 4] + c])
        t[i, inner] = sweep(cand[::-1], edges[i - 2, ::-1])[::-1]
    return t[2:-2, 2:-2].copy()


def equalize_hist(gray: np.ndarray) -> np.ndarray:
    """OpenCV's equalizeHist of a uint8 image (lowest level to 0, float32 scale, rounded)."""
    hist = np.bincount(gray.ravel(), minlength=256)
    first = int(np.flatnonzero(hist)[0])
    if hist[first] == gray.size:
        return np.full_like(gray, first)
    scale = np.float32(255.0) / np.float32(gray.size - hist[first])
    lut = np.zeros(256, dtype=np.float32)
    lut[first + 1:] = np.cumsum(hist[first + 1:]).astype(np.float32) * scale
    return np.clip(np.rint(lut), 0, 255).astype(np.uint8)[gray]


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
