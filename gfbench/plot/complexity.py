"""Complexity figures: FLOPs, parameters, latency (or throughput) and memory against tokens.

GFNet's efficiency figure, per setting (device, batch, precision, mode): one panel per
measured quantity, one line per model or mixer, its fitted exponent k (cost ~ N**k) in the
legend, and where the run went out of memory the line continues dotted along the fit, with
hollow markers, as an estimate. Axes are log-log by default: a power law is a straight line
whose slope is its exponent, so N log N and N² growth read apart at a glance even where the
small mixers would lie flat at zero on linear axes. Non-square grids (or inputs) are their
own series, markers only, never joined to the square ones. Every artist that carries data
has a gid saying what it is ("data|", "band|", "estimate|", "oom|", "ref|" + label + "|" +
metric) so tests and tools can read the plotted numbers back from the figure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogFormatterSciNotation, NullLocator
from matplotlib.transforms import blended_transform_factory
from matplotlib.typing import LineStyleType

from gfbench.measure.scaling import PowerLawFit, fit_exponent, larger_half
from gfbench.plot.load import LINE_FIELDS, Setting
from gfbench.plot.style import (
    DPI,
    NEUTRAL_GREY,
    NamedFigure,
    colour_for,
    new_figure,
    variant_styles,
)

X_KINDS = ("tokens", "resolution")
SCALES = ("log", "linear")
SPEED_METRICS = ("latency", "throughput")


@dataclass(frozen=True)
class Metric:
    """One panel: which column, in which unit, whether counted (known past OOM) or measured."""

    key: str
    title: str
    unit_label: str
    column: str
    scale: float
    counted: bool
    band: tuple[str, str] | None = None
    reference_slopes: bool = True
    prefixed: bool = False  # tick labels with metric prefixes: 600k, 2M, 1.5G


METRICS = {
    "flops": Metric("flops", "FLOPs per image", "FLOPs (multiply-adds)", "flops", 1.0, True,
                    prefixed=True),
    "params": Metric("params", "Parameters", "parameters", "params", 1.0, True,
                     reference_slopes=False, prefixed=True),
    "latency": Metric("latency", "Latency per batch (median)", "latency (ms)", "latency_ms_p50",
                      1.0, False, band=("latency_ms_p10", "latency_ms_p90")),
    "throughput": Metric("throughput", "Throughput (at median latency)", "images / s",
                         "throughput_ips", 1.0, False, band=("throughput_p90", "throughput_p10"),
                         reference_slopes=False),
    "memory": Metric("memory", "Peak memory above the weights", "memory (MiB)", "peak_mem_bytes",
                     2.0**-20, False),
}
TRAIN_FLOPS_TITLE = "FLOPs per image, forward + backward"  # mode=train counts both passes


def panel_title(metric: Metric, mode: str) -> str:
    """A panel's title; in train mode the FLOPs panel says it counts forward + backward."""
    return TRAIN_FLOPS_TITLE if metric.key == "flops" and mode == "train" else metric.title


def si_text(value: float, digits: int = 3) -> str:
    """623616 -> '624k', 2.5e9 -> '2.5G': significant digits and a metric prefix."""
    for threshold, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= threshold:
            return f"{value / threshold:.{digits}g}{prefix}"
    return f"{value:.{digits}g}"


@dataclass(frozen=True)
class Curve:
    """The rows of one model or mixer within a figure, and how it is drawn and named."""

    label: str
    name: str
    colour: str
    marker: str
    linestyle: LineStyleType
    rows: pd.DataFrame
    square: bool = True  # False: a series of non-square grids, drawn as markers only


@dataclass(frozen=True)
class FitRecord:
    """A fitted exponent as the legend shows it, for the report's table."""

    subject: str
    setting: Setting
    curve: str
    metric: str
    fitted_on: str  # "tokens" or "pixels" (input H·W): what N counts
    k: float
    a: float
    r2: float
    fit_points: int
    estimated_oom_points: int
    k_low: float = math.nan  # the k the p10–p90 bands allow (timed panels)
    k_high: float = math.nan
    noisy: str = ""  # why the timings cannot fix k; the legend then shows no k


@dataclass(frozen=True)
class ComplexityFigure(NamedFigure):
    """A finished complexity figure and the fits its legends show."""

    fits: tuple[FitRecord, ...] = ()


def with_throughput_band(frame: pd.DataFrame) -> pd.DataFrame:
    """Add throughput at the p10 and p90 latencies (images/s), the throughput band's edges."""
    frame = frame.copy()
    for p in ("p10", "p90"):
        frame[f"throughput_{p}"] = frame["batch_size"] * 1000.0 / frame[f"latency_ms_{p}"]
    return frame


def token_label(tokens: float) -> str:
    """28**2 tokens read '28²'; a count that is not a square stays a number."""
    side = math.isqrt(int(tokens))
    return f"{side}²" if side * side == int(tokens) else f"{int(tokens)}"


def resolution_label(res_h: float, res_w: float) -> str:
    """'224' for a square input, '224×320' otherwise."""
    return f"{int(res_h)}" if res_h == res_w else f"{int(res_h)}×{int(res_w)}"


def aspect_label(res_h: float, res_w: float) -> str:
    """'' for a square, '1:2' for a 20×40 grid (or a 224×448 input): H:W in lowest terms."""
    h, w = int(res_h), int(res_w)
    g = math.gcd(h, w) or 1
    return "" if h == w else f"{h // g}:{w // g}"


def x_values(rows: pd.DataFrame, x_kind: str) -> np.ndarray:
    """Where rows sit on the x axis: token count, or the side of a square of equal area."""
    if x_kind == "tokens":
        return rows["tokens"].to_numpy(dtype=float)
    return np.sqrt(rows["side_h"].to_numpy(dtype=float) * rows["side_w"].to_numpy(dtype=float))


def size_values(rows: pd.DataFrame, x_kind: str) -> np.ndarray:
    """N of the fits: tokens on a token axis, input pixels H·W on a resolution axis."""
    if x_kind == "tokens":
        return rows["tokens"].to_numpy(dtype=float)
    return rows["side_h"].to_numpy(dtype=float) * rows["side_w"].to_numpy(dtype=float)


def token_axis_problem(subject: str, rows: pd.DataFrame) -> str:
    """Why these rows cannot share a token axis ('' when they can): a CNN, or other strides."""
    missing = sorted(set(rows.loc[~(rows["tokens"] > 0), "name"]))
    if missing:
        return f"{', '.join(missing)} {'has' if len(missing) == 1 else 'have'} no token count"
    if subject != "model":
        return ""  # a bare mixer's tokens are its input grid
    per_token = (rows["side_h"] * rows["side_w"] / rows["tokens"]).groupby(rows["name"]).median()
    if per_token.max() > 1.01 * per_token.min():
        return "the models count tokens at different strides"
    return ""


def _describe_variation(key: dict, varying: set[str]) -> str:
    """The suffix that tells apart curves of one name: only the fields that vary are named."""
    parts = []
    if "impl" in varying and key["impl"]:
        parts.append(f"[{key['impl']}]")
    if "dim" in varying and key["dim"] == key["dim"]:
        parts.append(f"d={int(key['dim'])}")
    if "compile" in varying:
        parts.append("compiled" if key["compile"] else "eager")
    if "channels_last" in varying and key["channels_last"]:
        parts.append("channels-last")
    if "threads" in varying and key["threads"] == key["threads"]:
        parts.append(f"{int(key['threads'])} threads")
    if "num_classes" in varying and _hashable(key["num_classes"]) is not None:
        parts.append(f"{int(key['num_classes'])} classes")
    if "reparam" in varying and key["reparam"]:
        parts.append("reparam")
    return " ".join(parts)


def curves_of(rows: pd.DataFrame) -> list[Curve]:
    """One curve per (name, impl, dim, compile, channels-last, threads) present, sorted by label.

    Rows of non-square grids become a curve of their own per aspect ratio (same colour and
    marker, no line): joined to the square ones they would make the line zig-zag.
    """
    fields = [*LINE_FIELDS, "aspect"]
    rows = rows.assign(aspect=[aspect_label(h, w) for h, w in zip(rows["side_h"], rows["side_w"],
                                                                   strict=True)])
    groups = list(rows.groupby(fields, dropna=False, sort=False))
    keys = [dict(zip(fields, key, strict=True)) for key, _ in groups]
    varying = {f for f in LINE_FIELDS if len({_hashable(k[f]) for k in keys}) > 1}
    lines = list(dict.fromkeys((k["name"], k["impl"], _describe_variation(k, varying))
                               for k in keys))
    styles = dict(zip(lines, variant_styles([(n, i) for n, i, _ in lines]), strict=True))
    curves = []
    for key, (_, group) in zip(keys, groups, strict=True):
        line = (key["name"], key["impl"], _describe_variation(key, varying))
        label = f"{key['name']} {line[2]}".strip()
        marker, linestyle = styles[line]
        curves.append(Curve(label=label + (f" (H:W {key['aspect']})" if key["aspect"] else ""),
                            name=key["name"], colour=colour_for(key["name"]), marker=marker,
                            linestyle=linestyle, square=not key["aspect"],
                            rows=group.drop(columns="aspect").sort_values(
                                ["tokens", "side_h", "side_w"])))
    return sorted(curves, key=lambda c: c.label)


def _hashable(value: object) -> object:
    """NaN compares unequal to itself; make it a plain marker so sets count it once."""
    return None if isinstance(value, float) and value != value else value


def panel_metrics(rows: pd.DataFrame, speed: str) -> list[Metric]:
    """The panels this figure has data for, in the paper's order (speed: latency or throughput)."""
    keys = ("flops", "params", speed, "memory")
    return [METRICS[k] for k in keys if rows[METRICS[k].column].notna().any()]


def exponent_text(k: float) -> str:
    """An exponent with two decimals, never '-0.00'."""
    return f"{round(k, 2) + 0.0:.2f}"


def _k_text(fit: PowerLawFit | None) -> str:
    """The exponent as the legend shows it (mathtext superscript) with its p10–p90 range,
    or why there is none."""
    if fit is None:
        return "(k: <2 points)"
    if fit.noisy:
        return "(k: noisy)"
    shown = f"∝N$^{{{exponent_text(fit.k)}}}$"
    if math.isfinite(fit.k_low):
        shown += f" [{exponent_text(fit.k_low)}–{exponent_text(fit.k_high)}]"
    return shown


@dataclass(frozen=True)
class Drawn:
    """What drawing one curve on one panel did: its fit, points, and which OOM marks it used."""

    fit: PowerLawFit | None
    fit_points: int
    oom_points: int
    estimate: bool
    oom_unfitted: bool


def _plot_curve(ax: Axes, curve: Curve, metric: Metric, x_kind: str) -> Drawn:
    """Draw one curve on one panel: data, band, and estimates past OOM."""
    rows = curve.rows
    has_value = rows[metric.column].notna()
    drawn = rows[has_value] if metric.counted else rows[has_value & (rows["status"] == "ok")]
    if drawn.empty:
        return Drawn(fit=None, fit_points=0, oom_points=0, estimate=False, oom_unfitted=False)
    x = x_values(drawn, x_kind)
    y = drawn[metric.column].to_numpy(dtype=float) * metric.scale
    sizes = size_values(drawn, x_kind)
    tail = larger_half(sizes)
    low, high = ((drawn[c].to_numpy(dtype=float) * metric.scale for c in metric.band)
                 if metric.band and not metric.counted else (None, None))
    fitted = fit_exponent(sizes, y, low, high, measured=not metric.counted)
    fit = fitted if math.isfinite(fitted.k) else None
    ax.plot(x, y, color=curve.colour, marker=curve.marker,
            linestyle=curve.linestyle if curve.square else "none",
            label=f"{curve.label}  {_k_text(fit)}", gid=f"data|{curve.label}|{metric.key}")
    if metric.band is not None and curve.square and \
            drawn[list(metric.band)].notna().all(axis=None):
        low, high = (drawn[c].to_numpy(dtype=float) * metric.scale for c in metric.band)
        ax.fill_between(x, low, high, color=curve.colour, alpha=0.2, linewidth=0,
                        gid=f"band|{curve.label}|{metric.key}")
    oom = rows[rows["status"] == "oom"] if not metric.counted else rows.iloc[0:0]
    if not oom.empty and fit is not None and not fit.noisy:
        _plot_estimate(ax, curve, metric, x_kind, drawn, oom, fit)
    elif not oom.empty:
        marks = blended_transform_factory(ax.transData, ax.transAxes)
        ax.plot(x_values(oom, x_kind), np.zeros(len(oom)), transform=marks, linestyle="none",
                marker="x", color=curve.colour, clip_on=False,
                gid=f"oom|{curve.label}|{metric.key}")
    trusted = fit is not None and not fit.noisy
    return Drawn(fit=fit, fit_points=int(tail.sum()), oom_points=len(oom),
                 estimate=not oom.empty and trusted, oom_unfitted=not oom.empty and not trusted)


def _plot_estimate(ax: Axes, curve: Curve, metric: Metric, x_kind: str, drawn: pd.DataFrame,
                   oom: pd.DataFrame, fit: PowerLawFit) -> None:
    """Continue a curve dotted along its fit through the OOM rows, from the last point before."""
    x_oom = x_values(oom, x_kind)
    y_oom = fit.a * size_values(oom, x_kind) ** fit.k
    x_drawn = x_values(drawn, x_kind)
    before = x_drawn < x_oom.min()
    if before.any():
        last = int(np.flatnonzero(before)[-1])
        y_last = drawn[metric.column].to_numpy(dtype=float)[last] * metric.scale
        x_oom, y_oom = np.concatenate([[x_drawn[last]], x_oom]), np.concatenate([[y_last], y_oom])
    ax.plot(x_oom, y_oom, linestyle=":" if curve.square else "none", color=curve.colour,
            marker=curve.marker, markerfacecolor="white",
            gid=f"estimate|{curve.label}|{metric.key}")


def _reference_slopes(ax: Axes, curves: Sequence[Curve], metric: Metric, x_kind: str,
                      anchor_label: str) -> None:
    """Grey N log N and N² guides from the panel's first points, not rescaling the axes.

    Both start at the smallest N any curve has, at the geometric mean of the curves' values
    there; the legend names that N, so a reader knows where the guides are anchored.
    """
    firsts = []
    for curve in curves:
        rows = curve.rows[curve.rows[metric.column].notna()]
        if not metric.counted:
            rows = rows[rows["status"] == "ok"]
        if not rows.empty and curve.square:
            firsts.append((x_values(rows, x_kind)[0], float(size_values(rows, x_kind)[0]),
                           float(rows[metric.column].iloc[0]) * metric.scale))
    if not firsts:
        return
    x0 = min(f[0] for f in firsts)
    n0 = min(f[1] for f in firsts if f[0] == x0)
    y0 = float(np.exp(np.mean([np.log(f[2]) for f in firsts if f[0] == x0 and f[2] > 0] or [0])))
    x_max = ax.get_xlim()[1]
    xs = np.geomspace(x0, x_max, 64)
    power = 1.0 if x_kind == "tokens" else 2.0  # pixels grow with the square of the side
    n = n0 * (xs / x0) ** power
    limits = ax.get_xlim(), ax.get_ylim()
    shapes = (("N log N", n * np.log2(n) / (n0 * np.log2(n0)), "--"), ("N²", (n / n0) ** 2, "-."))
    for name, ratio, style in shapes:
        ax.plot(xs, y0 * ratio, color=NEUTRAL_GREY, linestyle=style, linewidth=1.0,
                label=f"guide ∝ {name}, from the first points ({anchor_label})",
                gid=f"ref|{name}|{metric.key}")
    ax.set_xlim(limits[0])
    ax.set_ylim(limits[1])


def _legend(ax: Axes, room: Axes, drawn: Sequence[Drawn]) -> None:
    """The panel's legend, in the empty axes below it: curves with k, then what the marks mean."""
    handles, labels = ax.get_legend_handles_labels()
    if any(d.estimate for d in drawn):
        handles.append(Line2D([], [], color=NEUTRAL_GREY, linestyle=":", marker="o",
                              markerfacecolor="white"))
        labels.append("estimate from the fit (OOM)")
    if any(d.oom_unfitted for d in drawn):
        handles.append(Line2D([], [], color=NEUTRAL_GREY, linestyle="none", marker="x"))
        labels.append("out of memory (no fit to extrapolate)")
    legend = ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 1.0),
                       bbox_transform=room.transAxes, frameon=False, borderaxespad=0.0,
                       handlelength=3.0)
    legend.set_in_layout(False)  # the empty axes below reserves its room


def tick_labels(rows: pd.DataFrame, x_kind: str) -> dict[float, str]:
    """Where the x ticks go and what they say: one kind of label per axis.

    Square grids (inputs) are the ticks, labelled 28² (or 224 px); non-square rows get no
    tick of their own (their series says H:W in the legend). Only when no row is square are
    the points themselves labelled, as plain token counts (or H×W).
    """
    square = rows[rows["side_h"] == rows["side_w"]]
    shown = square if not square.empty else rows
    labels: dict[float, str] = {}
    for x, h, w, n in zip(x_values(shown, x_kind), shown["side_h"], shown["side_w"],
                          shown["tokens"], strict=True):
        if x_kind == "tokens":
            labels.setdefault(float(x), token_label(n) if h == w else f"{int(n)}")
        else:
            labels.setdefault(float(x), resolution_label(h, w))
    return labels


def _x_ticks(ax: Axes, curves: Sequence[Curve], x_kind: str) -> dict[float, str]:
    """Ticks at the measured square grids, labelled 28², 56², ... (or 224, 320, ... px)."""
    labels = tick_labels(pd.concat([c.rows for c in curves]), x_kind)
    ticks = sorted(labels)
    ax.set_xticks(ticks, [labels[t] for t in ticks])
    ax.xaxis.set_minor_locator(NullLocator())
    return labels


def thin_tick_labels(fig: Figure, axes: Sequence[Axes], pad_px: float = 8.0) -> None:
    """Drop x tick labels that would overlap, keeping the largest values (read right to left).

    One layout pass measures the labels; the padding leaves room for the small shifts the
    layout makes once the dropped labels are gone.
    """
    fig.draw_without_rendering()
    renderer = cast(FigureCanvasAgg, fig.canvas).get_renderer()  # new_figure's canvas
    for ax in axes:
        ticks = list(ax.get_xticks())
        labels = ax.get_xticklabels()
        boxes = [t.get_window_extent(renderer) for t in labels]
        kept: list[int] = []
        for i in sorted(range(len(ticks)), key=lambda j: -ticks[j]):
            if not kept or boxes[i].x1 + pad_px <= boxes[kept[-1]].x0:
                kept.append(i)
        if len(kept) < len(ticks):
            kept.sort()
            ax.set_xticks([ticks[i] for i in kept], [labels[i].get_text() for i in kept])


def x_axis_label(subject: str, x_kind: str, why_not_tokens: str = "") -> str:
    """What the x axis counts, in words and units; on resolution, why not tokens if forced."""
    if x_kind == "tokens":
        return "tokens N (grid of the first token mixer)" if subject == "model" else \
            "tokens N (H×W of the mixer input)"
    if why_not_tokens:
        return f"input resolution (px), not tokens:\n{why_not_tokens}"
    return "input resolution (px)" if subject == "model" else "token grid side"


class PlainLogFormatter(LogFormatterSciNotation):
    """Log-axis labels where matplotlib would put them, written 0.1, 30, 400 (not 3×10¹)."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        """matplotlib's choice of which ticks to label, with plain numbers."""
        return f"{x:g}" if super().__call__(x, pos) else ""


def prefix_digits(low: float, high: float) -> int:
    """Significant digits that tell apart ticks between low and high: 3, more on a narrow range.

    Parameters of 16.000M to 16.004M need 6 digits, or every tick would read '16M'.
    """
    if not (high > low > 0):
        return 3
    return max(3, math.ceil(math.log10(high / (high - low))) + 2)


class PrefixLogFormatter(LogFormatterSciNotation):
    """Log-axis labels where matplotlib would put them, written 600k, 2M, 1G."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        """matplotlib's choice of which ticks to label, with metric prefixes."""
        if not super().__call__(x, pos):
            return ""
        assert self.axis is not None  # set when the formatter is attached to an axis
        return si_text(x, prefix_digits(*sorted(self.axis.get_view_interval())))


class PrefixFormatter(FuncFormatter):
    """Linear-axis labels written 0, 250M, 500M, with enough digits to tell ticks apart."""

    def __init__(self) -> None:
        super().__init__(self._label)

    def _label(self, x: float, pos: int | None = None) -> str:
        """One tick's label."""
        assert self.axis is not None  # set when the formatter is attached to an axis
        return si_text(x, prefix_digits(*sorted(self.axis.get_view_interval())))


def _y_axis(ax: Axes, metric: Metric, scale: str) -> None:
    """Log or linear y (and x) axes; counts labelled with metric prefixes, others plainly."""
    if scale == "log":
        ax.set_xscale("log")
        ax.set_yscale("log")
        kind = PrefixLogFormatter if metric.prefixed else PlainLogFormatter
        ax.yaxis.set_major_formatter(kind())
        ax.yaxis.set_minor_formatter(kind(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    else:
        ax.set_ylim(bottom=0)
        if metric.prefixed:
            ax.yaxis.set_major_formatter(PrefixFormatter())


LEGEND_ENTRY_IN = 0.235  # height of one legend line at legend.fontsize, inches
PANEL_IN = (4.6, 3.4)  # width and height of one panel (without its legend), inches
PANEL_COLUMNS = 2  # 2 x 2 panels: the figure stays legible at the width the report shows


def complexity_figure(subject: str, setting: Setting, rows: pd.DataFrame, *, x_kind: str = "tokens",
                      speed: str = "latency", scale: str = "log",
                      ref_slopes: bool = True) -> ComplexityFigure:
    """GFNet's efficiency figure for one subject (models or mixers) in one setting.

    A token axis becomes a resolution axis (saying why on its label) when some rows have no
    token count (a CNN) or the models count tokens at different strides.
    """
    rows = with_throughput_band(rows)
    why_not_tokens = token_axis_problem(subject, rows) if x_kind == "tokens" else ""
    x_kind = "resolution" if why_not_tokens else x_kind
    curves = curves_of(rows)
    metrics = panel_metrics(rows, speed)
    entries = len(curves) + int((rows["status"] == "oom").any()) + 2 * int(ref_slopes)
    legend_height = LEGEND_ENTRY_IN * entries + 0.15
    columns = min(len(metrics), PANEL_COLUMNS) or 1
    panel_rows = math.ceil(len(metrics) / columns) or 1
    height = (PANEL_IN[1] + legend_height) * panel_rows + 0.8
    fig = new_figure(PANEL_IN[0] * columns, round(height * DPI) / DPI)  # whole pixels
    grid = fig.subplots(2 * panel_rows, columns, squeeze=False,
                        height_ratios=[PANEL_IN[1], legend_height] * panel_rows)
    panels = [(grid[2 * (i // columns), i % columns], grid[2 * (i // columns) + 1, i % columns])
              for i in range(panel_rows * columns)]
    fits: list[FitRecord] = []
    fitted_on = "tokens" if x_kind == "tokens" else "pixels"
    every_drawn: list[Drawn] = []
    for (ax, room), metric in zip(panels, metrics, strict=False):
        drawn = [_plot_curve(ax, curve, metric, x_kind) for curve in curves]
        every_drawn.extend(drawn)
        fits.extend(FitRecord(subject=subject, setting=setting, curve=curve.label,
                              metric=metric.key, fitted_on=fitted_on, k=d.fit.k, a=d.fit.a,
                              r2=d.fit.r2, fit_points=d.fit_points,
                              estimated_oom_points=d.oom_points, k_low=d.fit.k_low,
                              k_high=d.fit.k_high, noisy=d.fit.noisy)
                    for curve, d in zip(curves, drawn, strict=True) if d.fit is not None)
        _y_axis(ax, metric, scale)
        labels = _x_ticks(ax, curves, x_kind)
        if ref_slopes and metric.reference_slopes:
            _reference_slopes(ax, curves, metric, x_kind, labels[min(labels)])
        ax.set_title(panel_title(metric, setting.mode))
        ax.set_ylabel(metric.unit_label)
        ax.set_xlabel(x_axis_label(subject, x_kind, why_not_tokens))
        room.axis("off")
        _legend(ax, room, drawn)
    for ax, room in panels[len(metrics):]:
        ax.axis("off")
        room.axis("off")
    what = "Models" if subject == "model" else "Token mixers (one layer)"
    title = f"{what} · {setting.title()}" + (" · log-log" if scale == "log" else " · linear")
    fig.suptitle(title, fontweight="bold")
    fitted = [d.fit for d in every_drawn if d.fit is not None]
    fig.supxlabel("\n".join(_notes(grid, x_kind, ref_slopes, fitted)), fontsize="small",
                  color="#444444")
    thin_tick_labels(fig, [ax for ax, _ in panels[:len(metrics)]])
    stem = f"complexity-{'models' if subject == 'model' else 'mixers'}-{setting.slug()}-{x_kind}"
    return ComplexityFigure(stem=stem + ("-linear" if scale == "linear" else ""), title=title,
                            figure=fig, fits=tuple(fits))


def _notes(grid: np.ndarray, x_kind: str, ref_slopes: bool,
           fitted: Sequence[PowerLawFit]) -> list[str]:
    """The figure's footnote lines: what k, N, the dotted estimates, bands and guides mean."""
    what_n = "tokens" if x_kind == "tokens" else "input pixels H·W"
    notes = [f"k: exponent fitted on the larger half of N, cost ∝ N$^k$ (N = {what_n})"]
    if any(not f.noisy and math.isfinite(f.k_low) for f in fitted):
        notes.append("[ ]: the k the p10–p90 bands allow")
    if any(f.noisy for f in fitted):
        notes.append("noisy: the timings cannot fix k")
    artists = [a for ax in grid.flat for a in [*ax.lines, *ax.collections]]
    gids = [(a.get_gid() or "").split("|")[0] for a in artists]
    if "estimate" in gids:
        notes.append("dotted, hollow: estimated from the fit where the run went out of memory")
    if "band" in gids:
        notes.append("band: p10–p90 of the timed repeats")
    if ref_slopes and "ref" in gids:
        notes.append("grey guides start at the smallest N, at the geometric mean of the "
                     "curves' values there")
    return notes
