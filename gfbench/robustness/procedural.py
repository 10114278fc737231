"""Building blocks of the corruptions: kernels, noise fields, colour space, zoom, the
reference's glass-blur loop, ImageMagick's motion blur and the OpenCV operations the reference
uses (Canny, chamfer distance, histogram equalisation, affine warp), restated in numpy/scipy.

Pure functions; randomness comes only from the numpy Generator (or draws) passed in, so a seed
fixes every pixel.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import fft, ndimage

SMALL_RADIUS = 16  # smooth_field: below this kernel radius a direct filter beats matrix products
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601, as OpenCV's RGB2GRAY


@functools.lru_cache(maxsize=32)
def _disk_response(radius: float, alias_blur: float, shape: tuple[int, int]) -> np.ndarray:
    """The conjugated real FFT of disk_kernel(radius, alias_blur), zero-padded to shape
    (complex64): multiplying an image's FFT by it correlates the image with the kernel."""
    kernel = disk_kernel(radius, alias_blur)
    return np.conj(fft.rfft2(kernel, s=shape)).astype(np.complex64)


def correlate_disk(image: np.ndarray, radius: float, alias_blur: float) -> np.ndarray:
    """Correlate every channel of an HxWxC float32 image with disk_kernel(radius, alias_blur),
    mirrored (reflect-101) edges, as OpenCV's filter2D does: by FFT in float32, at the smallest
    fast size that holds the padded image (the circular wrap-around lands only in the rows and
    columns that are cut off), with the kernel's transform cached per size."""
    height, width = image.shape[:2]
    ky = kx = 2 * max(8, int(math.ceil(radius))) + 1  # disk_kernel's size
    pad = ((ky // 2, ky - 1 - ky // 2), (kx // 2, kx - 1 - kx // 2), (0, 0))
    padded = np.pad(image.astype(np.float32, copy=False), pad, mode="reflect")
    shape = (fft.next_fast_len(padded.shape[0], real=True),
             fft.next_fast_len(padded.shape[1], real=True))
    spectrum = fft.rfft2(padded, s=shape, axes=(0, 1))
    spectrum *= _disk_response(float(radius), float(alias_blur), shape)[..., None]
    return fft.irfft2(spectrum, s=shape, axes=(0, 1))[:height, :width]


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


def affine_from_points(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2x3 affine map [A | b] that sends three (x, y) source points to three targets."""
    return np.linalg.solve(np.c_[source.astype(np.float64), np.ones(3)],
                           target.astype(np.float64)).T


def warp_affine(image: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """OpenCV's warpAffine(image, forward) with bilinear sampling and mirrored (reflect-101)
    edges: every output pixel samples the input at the inverse map of its position, as OpenCV
    5.1 does (the older OpenCV that made the release rounded positions to 1/32 pixel; on the
    elastic_transform test photographs that changes the output by about 65 dB PSNR). Each
    channel is resampled by scipy's affine_transform (order 1, mode 'mirror', which reflects
    each neighbour as reflect-101 does), in float64, returned as HxWxC float32."""
    return np.stack(warp_affine_channels(image, forward), axis=-1)


def warp_affine_channels(image: np.ndarray, forward: np.ndarray) -> list[np.ndarray]:
    """warp_affine, one HxW float32 array per channel."""
    a, b, c, d = forward[0, 0], forward[0, 1], forward[1, 0], forward[1, 1]
    det = a * d - b * c
    det = 1.0 / det if det != 0 else 0.0
    i00, i11, i01, i10 = d * det, a * det, -b * det, -c * det
    i02 = -i00 * forward[0, 2] - i01 * forward[1, 2]
    i12 = -i10 * forward[0, 2] - i11 * forward[1, 2]
    # The inverse map in (row, column) order: source = matrix @ (row, column) + offset.
    matrix = np.array([[i11, i10], [i01, i00]])
    offset = np.array([i12, i02])
    return [ndimage.affine_transform(image[..., k], matrix, offset, order=1, mode="mirror",
                                     output=np.float32) for k in range(image.shape[2])]


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
CHAMFER_STRIP = 32  # rows per strip of a capped chamfer_distance (timed best at 224 x 224)


def box3_sum(image: np.ndarray) -> np.ndarray:
    """Sum over each 3x3 neighbourhood with mirrored (reflect-101) edges, in float64 or int64."""
    padded = np.pad(image, 1, mode="reflect")
    rows = padded[:-2] + padded[1:-1]
    rows += padded[2:]
    out = rows[:, :-2] + rows[:, 1:-1]
    out += rows[:, 2:]
    return out


def canny(gray: np.ndarray, low: int, high: int) -> np.ndarray:
    """OpenCV's Canny edges of a uint8 image (3x3 Sobel with repeated edges, L1 gradient
    magnitude, non-maximum suppression with its fixed-point direction tests, hysteresis over
    8-connected pixels above `low` that reach one above `high`). The suppression is computed
    only where the magnitude exceeds `low` (nothing else can be an edge): Sobel in int16, the
    direction tests in int32."""
    height, width = gray.shape
    p = np.pad(gray.astype(np.int16), 1, mode="edge")  # Sobel sums and |dx| + |dy| fit
    smooth_rows = p[:-2] + 2 * p[1:-1] + p[2:]  # [1, 2, 1] down the columns
    dx = smooth_rows[:, 2:] - smooth_rows[:, :-2]
    diff_rows = p[2:] - p[:-2]
    dy = diff_rows[:, :-2] + 2 * diff_rows[:, 1:-1] + diff_rows[:, 2:]
    mag = np.abs(dx) + np.abs(dy)
    index = np.flatnonzero(mag > low)
    edges = np.zeros((height, width), dtype=bool)
    if index.size == 0:
        return edges
    m = np.pad(mag, 1).ravel()  # magnitudes outside the image count as 0
    step = width + 2
    at = index + 2 * (index // width) + step + 1  # the same pixels in the padded layout
    centre = m[at]
    gx, gy = dx.ravel()[index].astype(np.int32), dy.ravel()[index].astype(np.int32)
    ax, ay = np.abs(gx), np.abs(gy) << 15
    tg22 = ax * TAN_22_5
    horizontal = ay < tg22
    vertical = ~horizontal & (ay > tg22 + (ax << 16))
    # Neighbours compared along the gradient: the first strictly, the second with >=.
    before = np.where(horizontal, at - 1, np.where(vertical, at - step, 0))
    after = np.where(horizontal, at + 1, np.where(vertical, at + step, 0))
    diagonal = ~horizontal & ~vertical
    same_sign = (gx ^ gy) >= 0  # diagonal: down-right when the signs agree, else down-left
    before = np.where(diagonal, np.where(same_sign, at - step - 1, at - step + 1), before)
    after = np.where(diagonal, np.where(same_sign, at + step + 1, at + step - 1), after)
    peak = (centre > m[before]) & np.where(diagonal, centre > m[after], centre >= m[after])
    edges.ravel()[index[peak]] = True
    labels, count = ndimage.label(edges, structure=np.ones((3, 3), dtype=bool))
    strong = np.zeros(count + 1, dtype=bool)
    strong[labels.ravel()[index[peak & (centre > high)]]] = True
    strong[0] = False
    return strong[labels]


def chamfer_distance(edges: np.ndarray, cap: float | None = None,
                     strip: int = CHAMFER_STRIP) -> np.ndarray:
    """OpenCV's distanceTransform(DIST_L2, mask 5) of the non-edge pixels: the 5x5 chamfer
    distance (steps 1, 1.4, 2.1969 in float32) to the nearest edge pixel, by its two raster
    passes. Steps from other rows are added in float32 as OpenCV does; each row's left/right
    sweep is a running minimum that adds a run of unit steps at once, where OpenCV adds them
    one by one (the two can differ in the last float32 bit).

    With a cap, distances are returned as min(distance, cap), and the rows are cut into strips
    of `strip` rows, each computed with the ceil(cap) + 1 rows on either side of it, all strips
    at once (one raster loop over strip + margins instead of over the whole height: a path of
    cost under the cap moves fewer rows than the cap, every row costing at least 1, so the
    strip's values under the cap are the same numbers as without strips)."""
    a, b, c = (np.float32(step) for step in CHAMFER_STEPS)
    height, width = edges.shape
    margin = height if cap is None else math.ceil(cap) + 1
    if strip + 3 * margin >= height:
        strip, margin = height, 0
    starts = np.arange(0, height, strip)
    # Window k: rows [first[k], first[k] + length), strip k and the margins around it; the
    # first ones start above the image (rows without edges, which stay far in the forward
    # pass), the last ones end at its bottom (rows below it would let paths leave the image).
    length = strip + 2 * margin
    first = np.minimum(starts - margin, height - length)
    count = starts.size
    far = np.finfo(np.float32).max
    t = np.full((length + 4, count, width + 4), far, dtype=np.float32)  # 2-row, 2-column border
    # Edge pixels start at 0: min(candidate, t's row) puts them in (then the passes keep them).
    window_rows = np.pad(edges, ((margin, 0), (0, 0)))[margin + first[None, :]
                                                       + np.arange(length)[:, None]]
    np.copyto(t[2:length + 2, :, 2:width + 2], 0, where=window_rows)
    along = np.arange(width, dtype=np.float64)
    inner = slice(2, width + 2)
    pair = np.full((count, width), far, dtype=np.float32)  # min of t[i, j - 1], t[i, j + 1]
    cand = np.empty((count, width), dtype=np.float32)
    tmp = np.empty((count, width), dtype=np.float32)
    run = np.empty((count, width), dtype=np.float64)

    def candidates(near: np.ndarray, pair_far: np.ndarray) -> np.ndarray:
        """The minimum over the row steps: `near` is the adjacent row (steps a, b, c), pair_far
        the j +- 1 minimum of the row two away (knight steps c); returns near's j +- 1 pair."""
        new_pair = np.minimum(near[:, 1:width + 1], near[:, 3:width + 3])
        np.minimum(near[:, 0:width], near[:, 4:width + 4], out=cand)
        np.minimum(cand, pair_far, out=cand)
        np.add(cand, c, out=cand)
        np.add(new_pair, b, out=tmp)
        np.minimum(cand, tmp, out=cand)
        np.add(near[:, inner], a, out=tmp)
        np.minimum(cand, tmp, out=cand)
        return new_pair

    def sweep(row: np.ndarray, backward: bool) -> None:
        """row[j] = min over k <= j (k >= j backward) of min(cand, row)[k] + |j - k| unit
        steps: the row's own values (0 on edges, the forward pass's backward) join in."""
        np.minimum(cand, row, out=cand)
        np.subtract(cand[:, ::-1] if backward else cand, along, out=run)
        np.minimum.accumulate(run, axis=1, out=run)
        np.add(run, along, out=row[:, ::-1] if backward else row, casting="same_kind")

    for i in range(2, length + 2):  # forward: the two rows above, then left to right
        pair = candidates(t[i - 1], pair)
        sweep(t[i, :, inner], backward=False)
    # Backward: the two rows below, then right to left, down to the strips' first rows.
    pair.fill(far)
    for i in range(length + 1, 1 + int((starts - first).min()), -1):
        pair = candidates(t[i + 1], pair)
        sweep(t[i, :, inner], backward=True)
    out = np.empty((height, width), dtype=np.float32)
    for k, start in enumerate(starts):
        stop = min(start + strip, height)
        out[start:stop] = t[2 + start - first[k]:2 + stop - first[k], k, inner]
    return out if cap is None else np.minimum(out, np.float32(cap))


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


def emboss(gray: np.ndarray) -> np.ndarray:
    """OpenCV's filter2D(gray, CV_8U, [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]) of a uint8 image
    (correlation, mirrored reflect-101 edges, saturated to 0..255), as int16."""
    height, width = gray.shape
    p = np.pad(gray.astype(np.int16), 1, mode="reflect")
    out = p[2:, 2:] - p[:-2, :-2]
    out *= 2
    out += p[1:-1, 2:]
    out -= p[:-2, 1:-1]
    out += p[2:, 1:-1]
    out -= p[1:-1, :-2]
    out += p[1:-1, 1:-1]
    return np.clip(out, 0, 255, out=out)


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
