"""Scaling exponents: fit cost ~ a * N^k over token counts, and tell N log N from N^2 growth.

Pure functions of numbers (no torch): the complexity table and the plots both use them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

GROWTH_TERMS = {
    "N log N": lambda n: n * np.log2(n),
    "N^2": lambda n: n * n,
}


@dataclass(frozen=True)
class PowerLawFit:
    """y ~ a * n^k, fitted by least squares in log-log space; r2 is measured there too."""

    k: float
    a: float
    r2: float
    points: int


@dataclass(frozen=True)
class GrowthFit:
    """Which of y ~ c1*N + c2*N log N and y ~ c1*N + c2*N^2 fits better (relative RMS error)."""

    best: str  # a key of GROWTH_TERMS, or "" when the points cannot tell them apart
    rel_rms: dict[str, float]


def _positive_pairs(n: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The (n, y) pairs a log fit can use: both finite and positive, sorted by n."""
    pairs = sorted((float(a), float(b)) for a, b in zip(n, y, strict=True)
                   if a is not None and b is not None and math.isfinite(float(a))
                   and math.isfinite(float(b)) and float(a) > 0 and float(b) > 0)
    arr = np.array(pairs, dtype=float).reshape(-1, 2)
    return arr[:, 0], arr[:, 1]


def fit_power_law(n: Sequence[float], y: Sequence[float]) -> PowerLawFit:
    """Exponent k and prefactor a of y ~ a * n^k; NaN fields when fewer than two distinct n."""
    xs, ys = _positive_pairs(n, y)
    if len(np.unique(xs)) < 2:
        return PowerLawFit(k=math.nan, a=math.nan, r2=math.nan, points=len(xs))
    log_n, log_y = np.log(xs), np.log(ys)
    k, log_a = np.polyfit(log_n, log_y, 1)
    residual = log_y - (k * log_n + log_a)
    spread = float(np.sum((log_y - log_y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(residual**2)) / spread if spread > 0 else 1.0
    return PowerLawFit(k=float(k), a=float(math.exp(log_a)), r2=r2, points=len(xs))


def larger_half(n: Sequence[float]) -> np.ndarray:
    """Mask of the points an exponent is fitted on: the larger half of the distinct N (>= 2).

    Fixed costs (kernel launches, the patch embedding, per-token layers) flatten the small-N
    end of every curve; the larger half shows the growth that extrapolation has to follow.
    """
    values = np.asarray(n, dtype=float)
    distinct = np.unique(values)
    keep = distinct[-max(2, math.ceil(distinct.size / 2)):]
    return np.isin(values, keep)


def fit_exponent(n: Sequence[float], y: Sequence[float]) -> PowerLawFit:
    """The exponent gfbench reports (table and plots alike): fit_power_law on larger_half(n)."""
    values, costs = np.asarray(n, dtype=float), np.asarray(y, dtype=float)
    mask = larger_half(values)
    return fit_power_law(values[mask], costs[mask])


def compare_growth(n: Sequence[float], y: Sequence[float], tolerance: float = 1e-3) -> GrowthFit:
    """Fit y = c1*N + c2*g(N) (c1, c2 >= 0) for g = N log N and g = N^2; name the better one.

    Costs are a linear part (per-token layers) plus the mixer's own growth term, so each
    candidate gets a free linear term. Errors are relative (each point weighted by 1/y).
    With fewer than three distinct N, or errors within ``tolerance`` of each other, ``best``
    is "" rather than a guess.
    """
    from scipy.optimize import nnls  # scipy is slow to import; only this fit needs it

    xs, ys = _positive_pairs(n, y)
    if len(np.unique(xs)) < 3:
        return GrowthFit(best="", rel_rms={name: math.nan for name in GROWTH_TERMS})
    errors: dict[str, float] = {}
    for name, term in GROWTH_TERMS.items():
        design = np.stack([xs, term(xs)], axis=1) / ys[:, None]
        coef, _ = nnls(design, np.ones_like(ys))
        errors[name] = float(np.sqrt(np.mean((design @ coef - 1.0) ** 2)))
    ranked = sorted(errors, key=errors.get)
    decisive = errors[ranked[1]] - errors[ranked[0]] > tolerance
    return GrowthFit(best=ranked[0] if decisive else "", rel_rms=errors)


SCALING_METRICS = {"flops": "FLOPs", "params": "params", "latency_ms_p50": "latency",
                   "peak_mem_bytes": "memory"}


@dataclass(frozen=True)
class Exponent:
    """How one metric of one model or mixer grows with its token count."""

    name: str
    metric: str  # a key of SCALING_METRICS
    fit: PowerLawFit
    growth: GrowthFit


def scaling_exponents(rows: Sequence[Any]) -> list[Exponent]:
    """Fits per (subject, name, batch, precision, mode, device) and metric, over token counts.

    ``rows`` are ComplexityRow-like (attributes ``tokens`` and the metric columns); a metric
    is fitted where at least two distinct token counts have a value (OOM rows keep their
    counted FLOPs and parameters, and have no latency or memory). k comes from fit_exponent
    (the larger half of N); the growth comparison uses every point.
    """
    groups: dict[tuple, list[Any]] = {}
    for row in rows:
        key = (row.subject, row.name, row.dim, row.batch_size, row.precision, row.mode,
               row.device)
        groups.setdefault(key, []).append(row)
    found = []
    for key, members in groups.items():
        for metric in SCALING_METRICS:
            pairs = [(r.tokens, getattr(r, metric)) for r in members
                     if getattr(r, metric) is not None]
            if len({n for n, _ in pairs}) < 2:
                continue
            tokens, values = zip(*pairs, strict=True)
            found.append(Exponent(key[1], metric, fit_exponent(tokens, values),
                                  compare_growth(tokens, values)))
    return found
