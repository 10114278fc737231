"""Roofline figures: what each model or mixer achieves against the machine's measured ceilings.

The roofline model (Williams, Waterman and Patterson, "Roofline: an insightful visual
performance model for multicore architectures", CACM 52(4), 2009) puts a kernel at its
arithmetic intensity I (FLOPs per byte moved) and the FLOP rate it achieves; no kernel can sit
above min(compute ceiling, bandwidth × I). gfbench draws one point per model or mixer and size,
joined along N, so the drift with the token count is visible: the global filter's FFTs move
many bytes per FLOP, attention's matmuls few.

Per setting (device, batch, precision, mode), two panels:

- the roofline: x = flops / bytes of a row (both per image), y = its achieved FLOP/s, in
  gfbench's FLOP convention (multiply-adds per second, so a vendor's peak quoted at 2 FLOPs
  per FMA reads half). The ceilings are the run's measured ones (``provenance.extra
  ["ceilings"]``, median of the repeats): the flat matmul line of the rows' precision and the
  sloped bandwidth line. Without them the points stand alone and the panel says "no ceiling
  measured": a guessed ceiling is never drawn.
- the measured latency over the roofline's lower bound (``roofline_ratio``, 1 = at the
  roofline) against N, log-log.

Artists that carry data have a gid ("point|", "ceiling|", "ratio|", "size|" + what), so tests
read the plotted numbers back from the figure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import NullLocator

from gfbench.plot.complexity import (
    LEGEND_ENTRY_IN,
    PANEL_IN,
    Curve,
    PlainLogFormatter,
    PrefixLogFormatter,
    curves_of,
    si_text,
    tick_labels,
    token_label,
    x_axis_label,
)
from gfbench.plot.load import Setting
from gfbench.plot.style import DPI, NEUTRAL_GREY, NamedFigure, new_figure

NO_CEILING = "no ceiling measured"


@dataclass(frozen=True)
class Ceilings:
    """The two lines of one roofline: median matmul rate of a precision (multiply-adds/s) and
    median bandwidth (bytes/s) of the benchmark the run used; None where not measured."""

    compute: float | None
    bandwidth: float | None
    precision: str
    bandwidth_kind: str

    @property
    def ridge(self) -> float | None:
        """The intensity where the two lines meet (FLOPs per byte), when both exist."""
        if self.compute is None or self.bandwidth is None:
            return None
        return self.compute / self.bandwidth


def _median(table: Any, key: str) -> float | None:
    """table[key]["p50"] as a positive number, None when any part is missing."""
    entry = table.get(key) if isinstance(table, Mapping) else None
    value = entry.get("p50") if isinstance(entry, Mapping) else None
    return float(value) if isinstance(value, int | float) and value > 0 else None


def ceilings_for(measured: Any, precision: str) -> Ceilings | None:
    """The ceilings of one precision from a run's ``provenance.extra["ceilings"]`` (missing
    keys tolerated); None when neither line was measured."""
    if not isinstance(measured, Mapping):
        return None
    kind = str(measured.get("bandwidth_used") or "triad")
    found = Ceilings(compute=_median(measured.get("matmul_flops_s"), precision),
                     bandwidth=_median(measured.get("bandwidth_bytes_s"), kind),
                     precision=precision, bandwidth_kind=kind)
    return found if found.compute is not None or found.bandwidth is not None else None


def _numbers(rows: pd.DataFrame, column: str) -> pd.Series:
    """A column as floats (NaN where missing; a column absent from old files is all NaN)."""
    if column not in rows:
        return pd.Series(math.nan, index=rows.index)
    return pd.to_numeric(rows[column], errors="coerce").astype(float)


def roofline_points(rows: pd.DataFrame) -> pd.DataFrame:
    """The timed rows with FLOPs and bytes, with their ``intensity`` (FLOPs per byte) and
    ``achieved`` FLOP/s: the row's achieved_flops_s, or flops × batch / median latency (its
    definition) where a file has none."""
    flops, moved = _numbers(rows, "flops"), _numbers(rows, "bytes")
    latency, stored = _numbers(rows, "latency_ms_p50"), _numbers(rows, "achieved_flops_s")
    keep = (rows["status"] == "ok") & (flops > 0) & (moved > 0) & (latency > 0) & \
        (rows["tokens"] > 0)
    points = rows[keep].copy()
    points["intensity"] = flops[keep] / moved[keep]
    points["achieved"] = stored[keep].where(
        stored[keep] > 0, flops[keep] * points["batch_size"] * 1000.0 / latency[keep])
    points["ratio"] = _numbers(points, "roofline_ratio")
    return points


NOT_TIMED = "not timed"


def roofline_problem(rows: pd.DataFrame) -> str:
    """Why no roofline can be drawn for these rows ('' when it can)."""
    timed = (_numbers(rows, "latency_ms_p50") > 0) & (rows["status"] == "ok")
    if not timed.any():
        return NOT_TIMED
    if not (_numbers(rows, "bytes") > 0).any():
        return "no bytes counted (files written before gfbench counted them)"
    if roofline_points(rows).empty:
        return "no timed row has both bytes and FLOPs"
    return ""


@dataclass(frozen=True)
class RooflineFigure(NamedFigure):
    """A finished roofline figure, the ceilings drawn (None: none) and the points plotted."""

    ceilings: Ceilings | None = None
    points: pd.DataFrame | None = None


def _ceiling_lines(ax: Axes, ceilings: Ceilings, x_low: float, x_high: float) -> None:
    """The sloped bandwidth line up to the ridge and the flat compute line from it, each
    labelled as measured, with its value."""
    ridge = ceilings.ridge
    if ceilings.bandwidth is not None:
        right = ridge if ridge is not None else x_high
        xs = np.geomspace(x_low, right, 32)
        ax.plot(xs, ceilings.bandwidth * xs, color="black", linewidth=1.4,
                label=f"measured {ceilings.bandwidth_kind} bandwidth "
                      f"{si_text(ceilings.bandwidth)}B/s (median)",
                gid=f"ceiling|bandwidth|{ceilings.bandwidth_kind}")
    if ceilings.compute is not None:
        left = ridge if ridge is not None else x_low
        ax.plot([left, x_high], [ceilings.compute] * 2, color="black", linestyle="--",
                linewidth=1.4, label=f"measured {ceilings.precision} matmul "
                                     f"{si_text(ceilings.compute)}FLOP/s (median)",
                gid=f"ceiling|compute|{ceilings.precision}")


def _say_none(ax: Axes, text: str) -> None:
    """A grey line of text inside a panel, where a line would otherwise be."""
    ax.text(0.02, 0.98, text, transform=ax.transAxes, ha="left", va="top", color="#444444",
            fontsize="small", gid="note|" + text)


def _size_labels(ax: Axes, curve: Curve, xs: np.ndarray, ys: np.ndarray,
                 tokens: np.ndarray) -> None:
    """Each point's N beside its marker (28², or the count for a non-square grid)."""
    for x, y, n in zip(xs, ys, tokens, strict=True):
        ax.annotate(token_label(n), (x, y), xytext=(4, 3), textcoords="offset points",
                    fontsize=7, color=curve.colour, gid=f"size|{curve.label}|{int(n)}")


def _roofline_panel(ax: Axes, curves: Sequence[Curve], points: pd.DataFrame,
                    ceilings: Ceilings | None, why_none: str) -> None:
    """Achieved FLOP/s against intensity, one line per curve along N, and the ceilings."""
    for curve in curves:
        mine = points.loc[points.index.intersection(curve.rows.index)].sort_values("tokens")
        if mine.empty:
            continue
        xs, ys = mine["intensity"].to_numpy(float), mine["achieved"].to_numpy(float)
        ax.plot(xs, ys, color=curve.colour, marker=curve.marker,
                linestyle=curve.linestyle if curve.square else "none", label=curve.label,
                gid=f"point|{curve.label}")
        _size_labels(ax, curve, xs, ys, mine["tokens"].to_numpy(float))
    intensities = points["intensity"].to_numpy(float)
    ridge = ceilings.ridge if ceilings is not None else None
    x_low = min(intensities.min(), ridge or math.inf) / 2
    x_high = max(intensities.max(), ridge or 0.0) * 2
    ax.set_xscale("log")
    ax.set_yscale("log")
    if ceilings is not None:
        _ceiling_lines(ax, ceilings, x_low, x_high)
        missing = [f"no {ceilings.precision} matmul ceiling measured"] * \
            (ceilings.compute is None) + ["no bandwidth ceiling measured"] * \
            (ceilings.bandwidth is None)
        if missing:
            _say_none(ax, "; ".join(missing))
    else:
        _say_none(ax, why_none)
    ax.set_xlim(x_low, x_high)
    ax.xaxis.set_major_formatter(PlainLogFormatter())
    ax.xaxis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    ax.yaxis.set_major_formatter(PrefixLogFormatter())
    ax.yaxis.set_minor_formatter(PrefixLogFormatter(labelOnlyBase=False,
                                                    minor_thresholds=(2, 0.5)))
    ax.set_title("Roofline (one point per size, joined along N)")
    ax.set_xlabel("arithmetic intensity (FLOPs per byte moved)")
    ax.set_ylabel("achieved FLOP/s (multiply-adds per second)")


def _ratio_panel(ax: Axes, subject: str, curves: Sequence[Curve], points: pd.DataFrame,
                 why_none: str) -> None:
    """Measured latency over the roofline's lower bound against N, with the line ratio = 1."""
    rated = points[points["ratio"] > 0]
    for curve in curves:
        mine = rated.loc[rated.index.intersection(curve.rows.index)].sort_values("tokens")
        if not mine.empty:
            ax.plot(mine["tokens"].to_numpy(float), mine["ratio"].to_numpy(float),
                    color=curve.colour, marker=curve.marker,
                    linestyle=curve.linestyle if curve.square else "none", label=curve.label,
                    gid=f"ratio|{curve.label}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    if rated.empty:
        _say_none(ax, f"{why_none}: no lower bound" if why_none else "no roofline_ratio stored")
    else:
        ax.axhline(1.0, color=NEUTRAL_GREY, linewidth=1.0, label="at the roofline (ratio 1)",
                   gid="ref|ratio 1")
    labels = tick_labels(points, "tokens")
    ax.set_xticks(sorted(labels), [labels[t] for t in sorted(labels)])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(PlainLogFormatter())
    ax.yaxis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    ax.set_title("Measured latency / roofline lower bound")
    ax.set_xlabel(x_axis_label(subject, "tokens"))
    ax.set_ylabel("latency p50 / roofline (1 = at the roofline)")


def _legend(ax: Axes, room: Axes) -> None:
    """The panel's legend in the empty axes below it."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        legend = ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 1.0),
                           bbox_transform=room.transAxes, frameon=False, borderaxespad=0.0)
        legend.set_in_layout(False)
    room.axis("off")


def roofline_figure(subject: str, setting: Setting, rows: pd.DataFrame,
                    ceilings: Ceilings | None, why_none: str = NO_CEILING) -> RooflineFigure:
    """The roofline and the ratio to its lower bound for one subject in one setting.

    ``rows`` must pass roofline_problem; ``why_none`` is what the panels say when
    ``ceilings`` is None.
    """
    points = roofline_points(rows)
    curves = [c for c in curves_of(rows) if not points.index.intersection(c.rows.index).empty]
    entries = len(curves) + 2
    legend_height = LEGEND_ENTRY_IN * entries + 0.15
    height = PANEL_IN[1] + legend_height + 0.8
    fig = new_figure(PANEL_IN[0] * 2 + 0.4, round(height * DPI) / DPI)
    grid = fig.subplots(2, 2, squeeze=False, height_ratios=[PANEL_IN[1], legend_height])
    _roofline_panel(grid[0, 0], curves, points, ceilings, why_none)
    _ratio_panel(grid[0, 1], subject, curves, points, why_none if ceilings is None else "")
    for column in range(2):
        _legend(grid[0, column], grid[1, column])
    what = "Models" if subject == "model" else "Token mixers (one layer)"
    title = f"Roofline · {what} · {setting.title()}"
    fig.suptitle(title, fontweight="bold")
    fig.supxlabel("FLOPs and bytes per image, FLOP/s at the batch's median latency; labels: "
                  "tokens N of each point", fontsize="small", color="#444444")
    stem = f"roofline-{'models' if subject == 'model' else 'mixers'}-{setting.slug()}"
    return RooflineFigure(stem=stem, title=title, figure=fig, ceilings=ceilings, points=points)


def setting_ceilings(rows: pd.DataFrame, measured: Mapping[str, Any], precision: str
                     ) -> tuple[Ceilings | None, str]:
    """The ceilings of the runs a setting's rows come from (``measured``: source file ->
    provenance.extra["ceilings"]), or None and why: none measured, or the runs disagree."""
    files = sorted(set(rows["source_file"])) if "source_file" in rows else []
    found = [ceilings_for(measured.get(f), precision) for f in files]
    if not found or any(c is None for c in found):
        return None, NO_CEILING
    if len(set(found)) > 1:
        return None, "runs measured different ceilings: none drawn"
    return found[0], ""
