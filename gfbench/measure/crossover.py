"""The crossover: the token count N at which the global filter's curve crosses a rival's.

GFNet's case (Rao et al. 2021, "Global Filter Networks for Image Classification", the
complexity table and the efficiency figure) is that an N log N mixer overtakes N² attention
and the spatial MLP as N grows. Where that happens on a given machine is a measured fact: the
N between two measured sizes at which one curve drops below the other.

Pure functions of numbers (numpy only, no torch: `gfbench plot` uses them too). The crossing
is interpolated on power laws (``fit_power_law``, the fit gfbench's exponents use), each
fitted through the two measured sizes that bracket the change of order: where a*N^k1 and
b*N^k2 meet, N = (b/a)^(1/(k1-k2)). A fit over all sizes (or the larger half, as
``fit_exponent`` uses) would place the crossing where the data do not put it: fixed costs
bend the small-N end, where a crossing most often falls. A change of order outside the sizes
measured is not a crossover: the verdict then says which curve is below at every size.

Timed curves carry p10–p90 bands: the crossing of one curve's p10 against the other's p90,
and the reverse, bound where the crossing can be. When either bound finds no crossing with
the same final order, the bands are too wide for the data to tell, and the verdict says so.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gfbench.defaults import FFT_FAMILY, FFT_RIVALS
from gfbench.measure.scaling import Points, PowerLawFit, fit_power_law

# metric column -> (label, p10 column, p90 column); counted metrics have no band
CROSSOVER_METRICS: dict[str, tuple[str, str | None, str | None]] = {
    "latency_ms_p50": ("latency", "latency_ms_p10", "latency_ms_p90"),
    "flops": ("FLOPs", None, None),
    "bytes": ("bytes", None, None),
}
PAIR_FIELDS = ("subject", "batch_size", "precision", "mode", "device", "impl", "dim")
MISSING = {"latency_ms_p50": "not timed", "flops": "no FLOPs", "bytes": "no bytes"}


@dataclass(frozen=True)
class Crossover:
    """Where ``first`` (the global filter) and ``second`` (its rival) cross in one metric.

    ``tokens``: the crossing N, None when there is none within the sizes measured or the bands
    cannot place it; ``low``/``high``: the range the p10–p90 bands allow (equal to tokens for
    counted metrics). ``below_after``: True when first is below second past the crossing (or at
    every size when there is none), None when neither holds. ``verdict``: all of it in words.
    """

    first: str
    second: str
    metric: str  # a key of CROSSOVER_METRICS
    tokens: float | None
    low: float | None
    high: float | None
    verdict: str
    below_after: bool | None = None
    sizes: tuple[float, ...] = ()  # the token counts both curves have
    subject: str = ""
    batch_size: int | None = None
    precision: str = ""
    mode: str = ""
    device: str = ""
    impl: str = ""
    dim: int | None = None


def power_law_crossing(a: PowerLawFit, b: PowerLawFit) -> float:
    """N where a.a*N^a.k equals b.a*N^b.k: (b.a/a.a)^(1/(a.k-b.k)); NaN for parallel laws."""
    if a.k == b.k or not (a.a > 0 and b.a > 0):
        return math.nan
    return float((b.a / a.a) ** (1.0 / (a.k - b.k)))


def crossings(n: Points, ya: Points, yb: Points) -> list[float]:
    """Every N (in increasing order) where the order of ya and yb changes between sizes.

    Between two adjacent sizes of opposite order the crossing is that of the power laws
    through those two points of each curve; a size where the two are exactly equal, with the
    opposite order on both sides, is itself the crossing.
    """
    xs, a, b = (np.asarray(v, dtype=float) for v in (n, ya, yb))
    order = np.sign(np.log(a) - np.log(b))
    nonzero = np.flatnonzero(order)
    found = []
    for i, j in zip(nonzero[:-1], nonzero[1:], strict=True):
        if order[i] == order[j]:
            continue
        if j > i + 1:  # equal at the sizes between: the first of them is where they meet
            found.append(float(xs[i + 1]))
            continue
        pair = slice(i, j + 1)
        found.append(power_law_crossing(fit_power_law(xs[pair].tolist(), a[pair].tolist()),
                                        fit_power_law(xs[pair].tolist(), b[pair].tolist())))
    return found


def _final_order(ya: np.ndarray, yb: np.ndarray) -> float:
    """-1 when a ends below b, 1 above, 0 when equal at every size (the last order that
    differs from equality)."""
    order = np.sign(np.log(ya) - np.log(yb))
    nonzero = order[order != 0]
    return float(nonzero[-1]) if nonzero.size else 0.0


def _number(value: Any) -> float:
    """A cell as a float: NaN when missing (None, NaN or not a number)."""
    try:
        return math.nan if value is None else float(value)
    except (TypeError, ValueError):
        return math.nan


def _series(rows: Sequence[Any], metric: str, band: Sequence[str]) -> dict[float, list[float]]:
    """Token count -> [value, p10, p90] (NaN where a band edge is missing), the median where a
    size has several rows (grids of other aspect ratios). Rows need a positive value; timed
    metrics (those with a band) use ok rows only, counted ones keep OOM rows (exact counts)."""
    found: dict[float, list[list[float]]] = {}
    for row in rows:
        if getattr(row, "status", "ok") not in (("ok",) if band else ("ok", "oom")):
            continue
        tokens, value = (_number(getattr(row, c, None)) for c in ("tokens", metric))
        if tokens > 0 and value > 0 and math.isfinite(value):
            edges = [_number(getattr(row, c, None)) for c in band]
            found.setdefault(tokens, []).append([value, *edges])
    return {n: list(np.median(np.array(v), axis=0)) for n, v in found.items()}


def _n_text(n: float) -> str:
    """N as the verdict writes it: a whole number of tokens."""
    return f"{n:,.0f}"


def _range_text(sizes: Sequence[float]) -> str:
    """'N 196–3,136': the sizes both curves have."""
    return f"N {_n_text(min(sizes))}–{_n_text(max(sizes))}"


def _overlaps(n: np.ndarray, a_band: tuple[np.ndarray, np.ndarray],
              b_band: tuple[np.ndarray, np.ndarray]) -> list[float]:
    """The sizes where the two p10–p90 bands overlap."""
    (a_low, a_high), (b_low, b_high) = a_band, b_band
    return [float(x) for x, overlap in zip(n, (a_low <= b_high) & (b_low <= a_high), strict=True)
            if overlap]


def _bands(a: dict[float, list[float]], b: dict[float, list[float]], sizes: Sequence[float]
           ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None:
    """The p10 and p90 columns of both curves at the common sizes; None unless every edge is
    a positive number at least as wide as its median."""
    edges = [np.array([[s[n][0], s[n][1], s[n][2]] for n in sizes]) for s in (a, b)]
    if not all(np.all(e[:, 1] > 0) and np.all(e[:, 1] <= e[:, 0]) and np.all(e[:, 0] <= e[:, 2])
               for e in edges):  # NaN compares False: a missing edge means no bands
        return None
    return (edges[0][:, 1], edges[0][:, 2]), (edges[1][:, 1], edges[1][:, 2])


def _where(n: np.ndarray, ya: np.ndarray, yb: np.ndarray, overlap: Sequence[float]) -> str:
    """'every size (N 196–3,136)', saying where the curves are equal and where the latency
    bands overlap: the sizes at which 'below' is not shown by the data."""
    equal = [_n_text(x) for x, y, z in zip(n, ya, yb, strict=True) if y == z]
    every = f"every other size (equal at N={', '.join(equal)})" if equal else "every size"
    caveat = f" (p10–p90 overlap at N={', '.join(map(_n_text, overlap))})" if overlap else ""
    return f"{every} ({_range_text(list(n))}){caveat}"


def crossover(first: str, second: str, metric: str, rows_first: Sequence[Any],
              rows_second: Sequence[Any]) -> Crossover:
    """The crossover of two curves (rows of one name each, one setting) in one metric.

    Rows are ComplexityRow-like: ``tokens``, ``status`` and the metric's columns (a missing
    value is None or NaN). Sizes both curves have are compared; see the module docstring.
    """
    _, p10, p90 = CROSSOVER_METRICS[metric]
    band = [p10, p90] if p10 is not None and p90 is not None else []
    a, b = _series(rows_first, metric, band), _series(rows_second, metric, band)
    sizes = tuple(sorted(set(a) & set(b)))

    def result(verdict: str, tokens: float | None = None, low: float | None = None,
               high: float | None = None, below: bool | None = None) -> Crossover:
        return Crossover(first, second, metric, tokens, low, high, verdict, below, sizes)

    if not a or not b:
        return result(MISSING[metric])
    if len(sizes) < 2:
        return result(f"{len(sizes)} size(s) in common: needs 2")
    n = np.array(sizes)
    ya, yb = (np.array([s[n_][0] for n_ in sizes]) for s in (a, b))
    final = _final_order(ya, yb)
    if final == 0:
        return result(f"equal at every size measured ({_range_text(sizes)})")
    below = bool(final < 0)
    order = "below" if below else "above"
    middle = crossings(n, ya, yb)
    bands = _bands(a, b, sizes) if band else None
    if not middle:
        overlap = _overlaps(n, *bands) if bands else []
        return result(f"not within the sizes measured: {first} {order} {second} at "
                      f"{_where(n, ya, yb, overlap)}", below=below)
    tokens = middle[-1]
    again = f"; the curves cross {len(middle)} times, the last shown" if len(middle) > 1 else ""
    if bands is None:
        return result(f"{first} {'drops below' if below else 'rises above'} {second} at "
                      f"N≈{_n_text(tokens)}{again}", tokens, tokens, tokens, below)
    (a_low, a_high), (b_low, b_high) = bands
    edges = [crossings(n, a_low, b_high), crossings(n, a_high, b_low)]
    finals = [_final_order(a_low, b_high), _final_order(a_high, b_low)]
    if not all(edges) or any(f != final for f in finals):
        return result(f"cannot tell: the p10–p90 bands leave {first} and {second} in either "
                      f"order within {_range_text(sizes)} (medians cross at "
                      f"N≈{_n_text(tokens)})", below=None)
    low = min(edges[0][-1], edges[1][-1], tokens)
    high = max(edges[0][-1], edges[1][-1], tokens)
    return result(f"{first} {'drops below' if below else 'rises above'} {second} at "
                  f"N≈{_n_text(tokens)} (p10–p90: {_n_text(low)}–{_n_text(high)}){again}",
                  tokens, low, high, below)


def family(name: str, prefixes: Sequence[str]) -> bool:
    """Whether a model or mixer name belongs to a family of name prefixes (FFT_FAMILY...)."""
    return name.strip().lower().replace("-", "_").startswith(tuple(prefixes))


def _key_value(value: Any) -> Any:
    """A pairing field as a dict key: NaN (a table's missing dim) and None alike."""
    return None if value is None or (isinstance(value, float) and value != value) else value


def crossovers(rows: Sequence[Any]) -> list[Crossover]:
    """Every crossover of the global filter (FFT_FAMILY) against each rival (FFT_RIVALS) in
    latency, FLOPs and bytes, for pairs at the same subject, batch, precision, mode, device,
    impl and dim, measured at two sizes or more; ``rows`` are ComplexityRow-like (row objects
    or a table's itertuples())."""
    groups: dict[tuple, dict[str, list[Any]]] = {}
    for row in rows:
        key = tuple(_key_value(getattr(row, f, None)) for f in PAIR_FIELDS)
        groups.setdefault(key, {}).setdefault(str(row.name), []).append(row)
    found: list[Crossover] = []
    timed = any(not math.isnan(_number(getattr(row, "latency_ms_p50", None)))
                for row in rows)
    metrics = [m for m in CROSSOVER_METRICS if timed or m != "latency_ms_p50"]  # count-only
    for key, curves in groups.items():
        setting = dict(zip(PAIR_FIELDS, key, strict=True))
        for first in (name for name in curves if family(name, FFT_FAMILY)):
            for second in (name for name in curves if family(name, FFT_RIVALS)):
                points = [crossover(first, second, metric, curves[first], curves[second])
                          for metric in metrics]
                if all(len(p.sizes) < 2 for p in points):
                    continue  # one size in common: nothing to cross (as no exponent is fitted)
                found.extend(dataclasses.replace(
                    point, **{**setting, "batch_size": _whole(setting["batch_size"]),
                              "dim": _whole(setting["dim"])}) for point in points)
    return found


def _whole(value: Any) -> int | None:
    """A count from a table cell (8.0 -> 8), None when missing."""
    return None if value is None else int(value)

