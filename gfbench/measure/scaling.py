"""Scaling statistics: how cost grows with the token count N, and how far the data supports it.

Pure functions of numbers (numpy only, no torch: `gfbench plot` uses them too). Two answers:

- ``fit_exponent``: k in cost ≈ a·N^k over the larger half of N, with its fit quality (r² and
  the number of sizes; for timed metrics also the range of k the p10–p90 bands allow). Where
  timings cannot fix k (the median turns back, bands of two sizes overlap, the range is wide, r² is
  low) ``noisy`` says why, and tables and figures print that instead of a number.
- ``compare_growth``: the simplest of c0, c0 + c1·N, c0 + c1·N + c2·N log N and
  c0 + c1·N + c2·N² (non-negative coefficients, relative errors) that fits every size as well
  as the best one up to the noise, or "" with the reason it cannot tell.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Points = Sequence[float] | np.ndarray  # one value per size: a list, a tuple or a numpy column
TERMS = {
    "1": lambda n: np.ones_like(n),
    "N": lambda n: n,
    "N log N": lambda n: n * np.log2(n),
    "N^2": lambda n: n * n,
}
# Each growth class is named by its leading term and keeps every slower one as a free part
# (a fixed cost, per-token layers); classes in one tuple have as many terms and compete.
GROWTH_TERMS = {
    "1": ("1",),
    "N": ("1", "N"),
    "N log N": ("1", "N", "N log N"),
    "N^2": ("1", "N", "N^2"),
}
GROWTH_LEVELS = (("1",), ("N",), ("N log N", "N^2"))
COUNT_TOLERANCE = 1e-4  # relative error a class may leave on exact counts (rounding, padding)
MAX_K_RANGE = 0.5  # a wider p10–p90 range of k cannot tell N from N^1.5
MIN_R2 = 0.9  # below it the larger half is not one power law (or the timings scatter)


@dataclass(frozen=True)
class PowerLawFit:
    """y ~ a * n^k, fitted by least squares in log-log space; r2 is measured there too.

    ``k_low``/``k_high``: the least and greatest k with every point anywhere in its p10–p90
    band (NaN without bands). ``noisy``: why k is not to be trusted ("" when it stands).
    """

    k: float
    a: float
    r2: float
    points: int
    k_low: float = math.nan
    k_high: float = math.nan
    noisy: str = ""


@dataclass(frozen=True)
class GrowthFit:
    """The growth class the points support (a key of GROWTH_TERMS), or "" and ``reason``.

    ``rel_rms``: each class's root-mean-square relative error; ``margin``: how much worse than
    the best a class may fit and still count (the largest of the count tolerance, the noise
    and the best class's own error).
    """

    best: str
    rel_rms: dict[str, float]
    reason: str = ""
    margin: float = math.nan


def _clean(n: Points, y: Points, *bands: Sequence[Any] | None
           ) -> tuple[np.ndarray, ...]:
    """The points a log fit can use (n, y finite and positive), sorted by n; band columns
    ride along (NaN where missing)."""
    columns = [n, y, *(b if b is not None else [None] * len(n) for b in bands)]
    table = np.array([[math.nan if v is None else float(v) for v in column]
                      for column in columns], dtype=float).reshape(len(columns), -1)
    keep = np.isfinite(table[0]) & np.isfinite(table[1]) & (table[0] > 0) & (table[1] > 0)
    table = table[:, keep]
    return tuple(table[:, np.argsort(table[0], kind="stable")])


def fit_power_law(n: Sequence[float], y: Sequence[float]) -> PowerLawFit:
    """Exponent k and prefactor a of y ~ a * n^k; NaN fields when fewer than two distinct n."""
    xs, ys = _clean(n, y)
    if len(np.unique(xs)) < 2:
        return PowerLawFit(k=math.nan, a=math.nan, r2=math.nan, points=len(xs))
    log_n, log_y = np.log(xs), np.log(ys)
    k, log_a = np.polyfit(log_n, log_y, 1)
    residual = log_y - (k * log_n + log_a)
    spread = float(np.sum((log_y - log_y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(residual**2)) / spread if spread > 0 else 1.0
    return PowerLawFit(k=float(k), a=float(math.exp(log_a)), r2=r2, points=len(xs))


def larger_half(n: Points) -> np.ndarray:
    """Mask of the points an exponent is fitted on: the larger half of the distinct N (>= 2).

    Fixed costs (kernel launches, the patch embedding, per-token layers) flatten the small-N
    end of every curve; the larger half shows the growth that extrapolation has to follow.
    """
    values = np.asarray(n, dtype=float)
    distinct = np.unique(values)
    keep = distinct[-max(2, math.ceil(distinct.size / 2)):]
    return np.isin(values, keep)


def slope_range(log_n: np.ndarray, log_low: np.ndarray, log_high: np.ndarray
                ) -> tuple[float, float]:
    """Least and greatest least-squares slope with each log y anywhere in [low, high].

    The slope is linear in y with weights (x - mean x), so its extremes sit at a corner of the
    box: every point left of the mean at one end of its band, every point right at the other.
    """
    centred = log_n - log_n.mean()
    weights = centred / float(np.sum(centred**2))
    rising = weights > 0
    steepest = np.where(rising, log_high, log_low)
    flattest = np.where(rising, log_low, log_high)
    return float(weights @ flattest), float(weights @ steepest)


def _doubt(xs: np.ndarray, ys: np.ndarray, low: np.ndarray, high: np.ndarray,
           fit: PowerLawFit) -> str:
    """Why a measured exponent cannot be trusted, or "": the checks run on the fitted points.

    Direction-free, so that falling curves (throughput) pass the same checks as rising ones.
    """
    sizes = [f"{int(x)}" for x in xs]
    trend = np.sign(ys[-1] - ys[0])
    for i in range(len(xs) - 1):
        if np.sign(ys[i + 1] - ys[i]) == -trend != 0:
            return f"noisy: median turns back at N={sizes[i + 1]}"
    overlap = np.maximum(low[:-1], low[1:]) <= np.minimum(high[:-1], high[1:])  # NaN: False
    if overlap.any():
        i = int(np.flatnonzero(overlap)[0])
        return f"noisy: p10–p90 of N={sizes[i]}, {sizes[i + 1]} overlap"
    if fit.k_high - fit.k_low > MAX_K_RANGE:
        return f"noisy: p10–p90 allow k {fit.k_low:.2f} to {fit.k_high:.2f}"
    if fit.points >= 3 and fit.r2 < MIN_R2:
        return f"noisy: r² {fit.r2:.2f} on {fit.points} sizes"
    return ""


def fit_exponent(n: Points, y: Points, low: Sequence[Any] | None = None,
                 high: Sequence[Any] | None = None, measured: bool = False) -> PowerLawFit:
    """The exponent gfbench reports (table and plots alike): fit_power_law on larger_half(n).

    ``low``/``high`` (p10 and p90 of timed repeats) give k's range; ``measured`` (timed or
    measured rather than counted) turns on the noise checks that fill ``noisy``. Counted
    values are exact: they always keep their k, with r² and the number of sizes.
    """
    xs, ys, lo, hi = _clean(n, y, low, high)
    mask = larger_half(xs)
    xs, ys, lo, hi = xs[mask], ys[mask], lo[mask], hi[mask]
    fit = fit_power_law(xs, ys)
    if not math.isfinite(fit.k):
        return fit
    if np.all(lo > 0) and np.all(hi >= lo):  # NaN compares False: no band, no range
        k_low, k_high = slope_range(np.log(xs), np.log(lo), np.log(hi))
        fit = PowerLawFit(fit.k, fit.a, fit.r2, fit.points, k_low, k_high)
    if measured:
        fit = PowerLawFit(fit.k, fit.a, fit.r2, fit.points, fit.k_low, fit.k_high,
                          _doubt(xs, ys, lo, hi, fit))
    return fit


def _relative_nnls(columns: np.ndarray, y: np.ndarray) -> float:
    """RMS of (fit - y) / y over non-negative combinations of the columns (exact NNLS).

    With at most three columns every subset is tried: the optimum is the unconstrained
    least-squares fit on the subset of its positive coefficients.
    """
    design = columns / y[:, None]
    design = design / np.abs(design).max(axis=0)  # columns of N^2 and 1 differ by 1e8
    target = np.ones_like(y)
    best = float(np.sqrt(np.mean(target**2)))  # all coefficients zero
    for size in range(1, design.shape[1] + 1):
        for subset in itertools.combinations(range(design.shape[1]), size):
            part = design[:, subset]
            coef, *_ = np.linalg.lstsq(part, target, rcond=None)
            if np.all(coef >= 0):
                best = min(best, float(np.sqrt(np.mean((part @ coef - target) ** 2))))
    return best


def _design(name: str, xs: np.ndarray) -> np.ndarray:
    """The columns of one growth class at the given sizes."""
    return np.stack([TERMS[t](xs) for t in GROWTH_TERMS[name]], axis=1)


def _level(name: str) -> int:
    """0 for a constant, 1 for linear, 2 for N log N and N^2."""
    return next(i for i, level in enumerate(GROWTH_LEVELS) if name in level)


def compare_growth(n: Sequence[float], y: Sequence[float], tolerance: float = COUNT_TOLERANCE,
                   noise: float = 0.0) -> GrowthFit:
    """The simplest growth class that fits every point about as well as the best, if any.

    Each class is fitted with non-negative coefficients, errors relative to y. A class counts
    when its RMS error is within ``margin`` of the best class's error, where margin is the
    largest of ``tolerance``, ``noise`` and that best error itself (what even the best class
    leaves unexplained is the scale below which the classes cannot be told apart). The
    verdict is the slowest-growing class that counts, provided that (1) it has at least one
    size more than coefficients, (2) the other class of its level does not count too, and (3)
    the pure leading term of every faster class (N, N log N, N^2) misses the chosen class by
    more than the margin at these sizes, so noise could not have hidden it. Otherwise
    ``best`` is "" and ``reason`` says which of these failed. ``noise``: the points' own
    relative spread (timed repeats).
    """
    xs, ys = _clean(n, y)
    sizes = len(np.unique(xs))
    if sizes < 3:
        return GrowthFit("", {name: math.nan for name in GROWTH_TERMS},
                         f"{sizes} sizes: needs 3", max(tolerance, noise))
    errors = {name: _relative_nnls(_design(name, xs), ys) for name in GROWTH_TERMS}
    floor = min(errors.values())
    margin = max(tolerance, noise, floor)
    counting = ([name for name in level if errors[name] <= floor + margin]
                for level in GROWTH_LEVELS)
    fitting = next(names for names in counting if names)  # the best class always counts
    if len(fitting) > 1:
        return GrowthFit("", errors, f"{' or '.join(fitting)}: both fit", margin)
    chosen = fitting[0]
    if len(GROWTH_TERMS[chosen]) >= sizes:
        return GrowthFit("", errors, f"above N; {sizes} sizes cannot tell", margin)
    for faster in (name for name in GROWTH_TERMS if _level(name) > _level(chosen)):
        if _relative_nnls(_design(chosen, xs), TERMS[faster](xs)) <= margin:
            shown = f"{margin:.0%}" if margin < 1 else "over 100%"
            return GrowthFit("", errors, f"noise {shown} hides {faster}", margin)
    return GrowthFit(chosen, errors, "", margin)


SCALING_METRICS = {"flops": "FLOPs", "params": "params", "latency_ms_p50": "latency",
                   "peak_mem_bytes": "memory"}
COUNTED_METRICS = ("flops", "params")
BANDS = {"latency_ms_p50": ("latency_ms_p10", "latency_ms_p90")}


@dataclass(frozen=True)
class Exponent:
    """How one metric of one model or mixer grows with its token count."""

    name: str
    metric: str  # a key of SCALING_METRICS
    fit: PowerLawFit
    growth: GrowthFit
    counted: bool = True  # flops and params: exact, so never "noisy"
    batch_size: int | None = None  # the batch of the rows fitted (a batch sweep fits each)


def relative_spread(p10: Any, p50: Any, p90: Any) -> float:
    """(p90 - p10) / p50 of one timed row; NaN when any is missing or p50 is not positive."""
    if p10 is None or p50 is None or p90 is None or not float(p50) > 0:
        return math.nan
    return (float(p90) - float(p10)) / float(p50)


def band_noise(rows: Sequence[Any], metric: str) -> float:
    """The relative noise of a timed metric: RMS half-width of its p10–p90 bands over p50."""
    if metric not in BANDS:
        return 0.0
    low, high = BANDS[metric]
    spreads = [relative_spread(getattr(r, low), getattr(r, metric), getattr(r, high))
               for r in rows]
    halves = np.array([s / 2 for s in spreads if math.isfinite(s)])
    return float(np.sqrt(np.mean(halves**2))) if halves.size else 0.0


def scaling_exponents(rows: Sequence[Any]) -> list[Exponent]:
    """Fits per (subject, name, batch, precision, mode, device) and metric, over token counts.

    ``rows`` are ComplexityRow-like (attributes ``tokens`` and the metric columns); a metric
    is fitted where at least two distinct token counts have a value (OOM rows keep their
    counted FLOPs and parameters, and have no latency or memory). k comes from fit_exponent
    (the larger half of N, with the p10–p90 range for latency); the growth class uses every
    point, with the timed bands as its noise.
    """
    groups: dict[tuple, list[Any]] = {}
    for row in rows:
        key = (row.subject, row.name, row.dim, row.batch_size, row.precision, row.mode,
               row.device)
        groups.setdefault(key, []).append(row)
    found = []
    for key, members in groups.items():
        for metric in SCALING_METRICS:
            used = [r for r in members if getattr(r, metric) is not None]
            if len({r.tokens for r in used}) < 2:
                continue
            tokens = [r.tokens for r in used]
            values = [getattr(r, metric) for r in used]
            bands = BANDS.get(metric)
            low, high = ([getattr(r, c) for r in used] for c in bands) if bands else (None, None)
            counted = metric in COUNTED_METRICS
            fit = fit_exponent(tokens, values, low, high, measured=not counted)
            growth = compare_growth(tokens, values, noise=band_noise(used, metric))
            found.append(Exponent(key[1], metric, fit, growth, counted, key[3]))
    return found
