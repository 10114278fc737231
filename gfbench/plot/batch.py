"""Throughput against batch size: one panel per input size, one line per model or mixer.

Drawn for every (models or mixers, device, precision, mode) that was timed at two batch sizes
or more (`gfbench complexity --batch-size 1,8,32`). The complexity figures keep each batch
size apart; this figure is where batches meet: x is the batch (log 2 axis, ticks at the
batches measured), y the images per second at the median latency, with the p10-p90 band. A
batch that ran out of memory is a cross on the x axis. Artists carry gids like the
complexity figures ("data|", "band|", "oom|" + curve label + "|" + panel title).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, NullLocator
from matplotlib.transforms import blended_transform_factory

from gfbench.plot.complexity import (
    LEGEND_ENTRY_IN,
    PANEL_COLUMNS,
    PANEL_IN,
    Curve,
    curves_of,
    resolution_label,
    with_throughput_band,
)
from gfbench.plot.load import run_name
from gfbench.plot.style import DPI, NEUTRAL_GREY, NamedFigure, new_figure

BATCH_FIELDS = ("subject", "device_label", "precision", "mode", "run", "run_id")


@dataclass(frozen=True)
class BatchSetting:
    """What must match for rows to share a throughput-against-batch figure."""

    subject: str
    device: str
    precision: str
    mode: str
    run: str = ""  # the run's file ('' when runs are combined)
    run_id: str = ""

    def title(self) -> str:
        """The setting as a figure title says it."""
        what = "Models" if self.subject == "model" else "Token mixers (one layer)"
        where = run_name(self.run, self.run_id)
        return f"{what} · throughput against batch · {self.device} · {self.precision} · " \
               f"{self.mode}" + (f" · {where}" if where else "")

    def slug(self) -> str:
        """The setting as a file name part (a numbered run's number first): lower case letters,
        digits and dashes."""
        text = f"{self.subject}s-{self.device}-{self.precision}-{self.mode}".lower()
        cleaned = "".join(c if c.isalnum() else "-" for c in text)
        slug = "-".join(part for part in cleaned.split("-") if part)
        return f"run{self.run_id}-{slug}" if self.run_id else slug


def batch_settings(frame: pd.DataFrame) -> list[tuple[BatchSetting, pd.DataFrame]]:
    """Settings timed at two batch sizes or more, with their rows, in a stable order."""
    if frame.empty:
        return []
    found = []
    for key, rows in frame.groupby(list(BATCH_FIELDS), sort=True):
        timed = rows[rows["throughput_ips"].notna()]
        if timed["batch_size"].nunique() >= 2:
            found.append((BatchSetting(*map(str, key)), rows.reset_index(drop=True)))
    return found


def size_title(subject: str, res_h: float, res_w: float) -> str:
    """A panel's input size: '224 px' for a model, '28×28 tokens' for a mixer."""
    if subject == "model":
        return f"{resolution_label(res_h, res_w)} px input"
    return f"{int(res_h)}×{int(res_w)} tokens"


def _plot_batches(ax: Axes, curve: Curve, rows: pd.DataFrame, panel: str) -> bool:
    """One curve in one panel: throughput per batch, band, OOM crosses; True if it drew."""
    rows = rows.sort_values("batch_size")
    ok = rows[(rows["status"] == "ok") & rows["throughput_ips"].notna()]
    oom = rows[rows["status"] == "oom"]
    if not ok.empty:
        x = ok["batch_size"].to_numpy(dtype=float)
        ax.plot(x, ok["throughput_ips"].to_numpy(dtype=float), color=curve.colour,
                marker=curve.marker, linestyle=curve.linestyle, label=curve.label,
                gid=f"data|{curve.label}|{panel}")
        if ok[["throughput_p10", "throughput_p90"]].notna().all(axis=None):
            ax.fill_between(x, ok["throughput_p90"].to_numpy(dtype=float),
                            ok["throughput_p10"].to_numpy(dtype=float), color=curve.colour,
                            alpha=0.2, linewidth=0, gid=f"band|{curve.label}|{panel}")
    if not oom.empty:
        marks = blended_transform_factory(ax.transData, ax.transAxes)
        ax.plot(oom["batch_size"].to_numpy(dtype=float), np.zeros(len(oom)), transform=marks,
                linestyle="none", marker="x", color=curve.colour, clip_on=False,
                gid=f"oom|{curve.label}|{panel}")
    return not ok.empty or not oom.empty


def _batch_axis(ax: Axes, batches: Sequence[float]) -> None:
    """Log 2 x axis with a tick at every batch measured, labelled as a plain number."""
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(list(batches)))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticks(list(batches), [f"{int(b)}" for b in batches])
    ax.set_ylim(bottom=0)
    ax.set_xlabel("batch size")
    ax.set_ylabel("images / s")


def batch_figure(setting: BatchSetting, rows: pd.DataFrame) -> NamedFigure:
    """Throughput against batch size, one panel per input size, one line per model or mixer."""
    rows = with_throughput_band(rows)
    curves = curves_of(rows)
    sizes = sorted({(float(h), float(w)) for h, w in zip(rows["side_h"], rows["side_w"],
                                                          strict=True)},
                   key=lambda s: (s[0] * s[1], s[0]))
    columns = min(len(sizes), PANEL_COLUMNS)
    panel_rows = math.ceil(len(sizes) / columns)
    oom = bool((rows["status"] == "oom").any())
    legend_columns = 1 if len(curves) + int(oom) < 4 else 2
    legend_height = LEGEND_ENTRY_IN * math.ceil((len(curves) + int(oom)) / legend_columns) + 0.3
    height = PANEL_IN[1] * panel_rows + legend_height + 0.5
    fig = new_figure(PANEL_IN[0] * columns, round(height * DPI) / DPI)
    grid = fig.add_gridspec(panel_rows + 1, columns,
                            height_ratios=[PANEL_IN[1]] * panel_rows + [legend_height])
    batches = sorted(rows["batch_size"].unique())
    for i, (res_h, res_w) in enumerate(sizes):
        ax = fig.add_subplot(grid[i // columns, i % columns])
        panel = size_title(setting.subject, res_h, res_w)
        for curve in curves:
            at_size = curve.rows[(curve.rows["side_h"] == res_h) & (curve.rows["side_w"] == res_w)]
            _plot_batches(ax, curve, at_size, panel)
        _batch_axis(ax, batches)
        ax.set_title(panel)
    room = fig.add_subplot(grid[panel_rows, :])
    room.axis("off")
    handles = [Line2D([], [], color=c.colour, marker=c.marker, linestyle=c.linestyle)
               for c in curves]
    labels = [c.label for c in curves]
    if oom:
        handles.append(Line2D([], [], color=NEUTRAL_GREY, linestyle="none", marker="x"))
        labels.append("out of memory at this batch")
    room.legend(handles, labels, loc="upper center", frameon=False, handlelength=3.0,
                ncols=legend_columns)
    fig.suptitle(setting.title(), fontweight="bold")
    fig.supxlabel("images per second at the median latency; band: p10–p90 of the timed repeats",
                  fontsize="small", color="#444444")
    return NamedFigure(stem=f"throughput-batch-{setting.slug()}", title=setting.title(),
                       figure=fig)
