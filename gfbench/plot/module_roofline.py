"""The breakdown's per-module roofline: every timed row of `gfbench breakdown --time` at its
arithmetic intensity and the FLOP rate its own time achieved, against the run's measured
ceilings (Williams, Waterman & Patterson, "Roofline", CACM 2009).

One figure per timed run and resolution, one panel per model (shared axes, so the models
compare), one marker per row coloured by its role in the breakdown figure's colours (and
shaped by it; rows without FLOPs, such as residual adds, have no intensity and are not drawn): the
global filter's FFTs sit far left on the bandwidth slope (few FLOPs per byte), attention's
and the MLPs' matmuls right, near the compute ceiling. The points are the rows' own
(intensity = flops / bytes, achieved = achieved_flops_s, as gfbench.plot.roofline reads any
timed row); the ceilings are drawn as the roofline figures draw them. Artists carry gids
("point|model|role", "ceiling|...") so tests read the plotted numbers back.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from gfbench.measure.roofline import ceiling_key
from gfbench.plot.breakdown import ROLE_COLOURS, ROLE_LABELS, ROLES
from gfbench.plot.report import Section
from gfbench.plot.roofline import (
    Ceilings,
    _ceiling_lines,
    _say_none,
    ceilings_for,
    roofline_points,
)
from gfbench.plot.style import NamedFigure, new_figure

PANEL_IN = (4.2, 3.8)  # one model's panel, legible at report size
# A shape per role besides its colour, and the token mixer drawn last, on top: GFNet's filter
# and its norms share an intensity (~0.6 FLOP/B) and would hide one another.
ROLE_MARKERS = {"token_mixer": "D", "channel_mlp": "o", "norm": "s", "embedding": "^",
                "head": "v", "other": "X"}
DRAW_ORDER = (*(role for role in ROLES if role != "token_mixer"), "token_mixer")
MIN_WIDTH_IN = 8.0  # room for the title and the ceilings' legend with a single model
COLUMNS = 3  # panels per line (the trio on one)


@dataclass(frozen=True)
class ModuleRooflineFigure(NamedFigure):
    """A finished per-module roofline, the ceilings drawn (None: none) and the points."""

    ceilings: Ceilings | None = None
    points: pd.DataFrame | None = None


def run_ceilings(provenance: Any, device: str) -> Ceilings | None:
    """The ceilings a timed breakdown run measured, at the key its fp32 rows ran at."""
    extra = provenance.extra or {}
    return ceilings_for(extra.get("ceilings"),
                        ceiling_key("fp32", device, bool(provenance.tf32_matmul)))


def _panel(ax: Any, name: str, points: pd.DataFrame, ceilings: Ceilings | None,
           limits: tuple[float, float]) -> None:
    """One model: its rows by role, the ceilings, log-log."""
    for order, role in enumerate(DRAW_ORDER):
        mine = points[points["group"] == role]
        if not mine.empty:
            ax.scatter(mine["intensity"].to_numpy(float), mine["achieved"].to_numpy(float),
                       s=34, color=ROLE_COLOURS[role], marker=ROLE_MARKERS[role],
                       edgecolors="black", linewidths=0.4, label=ROLE_LABELS[role],
                       gid=f"point|{name}|{role}", zorder=3 + order)
    ax.set_xscale("log")
    ax.set_yscale("log")
    if ceilings is not None:
        _ceiling_lines(ax, ceilings, *limits)
    else:
        _say_none(ax, "no ceiling measured")
    ax.set_xlim(*limits)
    ax.set_title(name)
    ax.set_xlabel("FLOPs per byte moved")
    ax.set_ylabel("achieved FLOP/s (MAC/s)")


def module_roofline_figure(rows: pd.DataFrame, ceilings: Ceilings | None, stem: str
                           ) -> ModuleRooflineFigure:
    """One resolution of one timed run: a panel per model (rows must hold timed points)."""
    points = roofline_points(rows)
    names = list(dict.fromkeys(points["name"]))
    columns = min(len(names), COLUMNS)
    lines = math.ceil(len(names) / columns)
    fig = new_figure(max(PANEL_IN[0] * columns, MIN_WIDTH_IN), PANEL_IN[1] * lines + 1.3)
    axes = fig.subplots(lines, columns, squeeze=False, sharex=True, sharey=True)
    ridge = ceilings.ridge if ceilings is not None else None
    intensities = points["intensity"].to_numpy(float)
    limits = (min(intensities.min(), ridge or math.inf) / 2,
              max(intensities.max(), ridge or 0.0) * 2)
    for ax, name in zip(axes.flat, names, strict=False):
        _panel(ax, name, points[points["name"] == name], ceilings, limits)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    handles: dict[str, Any] = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    fig.legend(list(handles.values()), list(handles), loc="outside lower center",
               ncol=min(3, len(handles)), frameon=False, fontsize="small")
    first = points.iloc[0]
    side = (f"{int(first['res_h'])}" if first["res_h"] == first["res_w"]
            else f"{int(first['res_h'])}×{int(first['res_w'])}")
    title = (f"Per-module roofline · {side} px, batch {int(first['batch_size'])}, "
             f"{first['device']}")
    fig.suptitle(title, fontweight="bold")
    return ModuleRooflineFigure(stem=stem, title=title, figure=fig, ceilings=ceilings,
                                points=points)


def module_roofline_sections(runs: Sequence, pictures: Any) -> list[Section]:
    """A section of per-module rooflines for the timed breakdown runs ([] when none)."""
    section = Section(title="Per-module roofline (gfbench breakdown --time)")
    for run in runs:
        frame = run.frame
        if "latency_ms_p50" not in frame or frame["latency_ms_p50"].isna().all():
            continue
        for (res_h, res_w), rows in frame.groupby(["res_h", "res_w"], sort=True):
            if roofline_points(rows).empty:
                continue
            device = str(rows["device"].iloc[0])
            stem = f"module-roofline-{run.path.stem}-{int(res_h)}x{int(res_w)}"
            section.blocks.append(pictures.picture(module_roofline_figure(
                rows, run_ceilings(run.provenance, device), stem)))
    return [section] if section.blocks else []
