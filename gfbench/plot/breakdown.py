"""The breakdown figure: how much of a model's FLOPs its token mixer takes, across resolutions.

From ``gfbench breakdown`` results (rows per module and role), per counting engine: the left
panel draws the token mixer's share of the FLOPs against the input resolution, one line per
model (why GFNet scales: its FFT filter's share stays small while attention's grows); the
right panel splits every (model, resolution) into its roles as a stacked bar. Artists carry
gids ("data|model|mixer_share", "bar|model|resolution|role") so tests can read the plotted
numbers back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg

from gfbench.plot.report import Section, Table, formatted
from gfbench.plot.style import (
    NEUTRAL_GREY,
    OKABE_ITO,
    NamedFigure,
    colour_for,
    marker_for,
    new_figure,
)
from gfbench.results.schema import BREAKDOWN_GROUPS

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from matplotlib.text import Annotation
    from matplotlib.transforms import Bbox

ROLES = BREAKDOWN_GROUPS
ROLE_LABELS = {"token_mixer": "token mixer", "channel_mlp": "channel MLP", "norm": "norm",
               "embedding": "embedding", "head": "head", "other": "other"}
# Role colours kept apart from the model lines beside them (GFNet blue, DeiT vermillion).
ROLE_COLOURS = {"token_mixer": OKABE_ITO["reddish_purple"], "channel_mlp": OKABE_ITO["sky_blue"],
                "norm": OKABE_ITO["yellow"], "embedding": OKABE_ITO["bluish_green"],
                "head": OKABE_ITO["black"], "other": NEUTRAL_GREY}
NUMBERS = ("res_h", "res_w", "tokens", "depth", "flops", "params", "model_flops",
           "model_params")
SETTING_KEY = ("name", "res_h", "res_w", "engine")


def breakdown_frame(runs: Sequence, notes: list[str]) -> pd.DataFrame:
    """Per (model, resolution, engine), FLOPs and parameters by role and the totals; a setting
    counted again in a later run (or at another depth: the roles add up the same) is read
    from the newest run only."""
    frames = []
    for order, run in enumerate(runs):
        rows = run.frame[run.frame["status"] == "ok"].copy()
        rows["run_date"], rows["run_order"] = run.provenance.date, order
        rows["source_file"] = str(run.path)
        frames.append(rows)
    if not frames or all(f.empty for f in frames):
        return pd.DataFrame()
    rows = pd.concat(frames, ignore_index=True)
    for column in NUMBERS:
        rows[column] = pd.to_numeric(rows[column]).astype(float)
    newest = (rows.sort_values(["run_date", "run_order"], kind="stable")
              .groupby(list(SETTING_KEY))[["source_file"]].last())
    rows = rows.join(newest.rename(columns={"source_file": "newest"}), on=list(SETTING_KEY))
    dropped = rows[rows["source_file"] != rows["newest"]]
    for (old, new), group in dropped.groupby(["source_file", "newest"]):
        settings = len(group.drop_duplicates(list(SETTING_KEY)))
        notes.append(f"{old}: {settings} breakdown setting(s) counted again in {new}; the "
                     "newer counts are plotted")
    rows = rows[rows["source_file"] == rows["newest"]]
    flops = rows.pivot_table(index=list(SETTING_KEY), columns="group", values="flops",
                             aggfunc="sum", fill_value=0.0).reindex(columns=ROLES, fill_value=0.0)
    params = rows.pivot_table(index=list(SETTING_KEY), columns="group", values="params",
                              aggfunc="sum", fill_value=0.0).reindex(columns=ROLES,
                                                                     fill_value=0.0)
    totals = rows.groupby(list(SETTING_KEY))[["tokens", "model_flops", "model_params"]].first()
    table = pd.concat([flops.add_prefix("flops_"), params.add_prefix("params_"), totals], axis=1)
    return table.reset_index().sort_values(["engine", "name", "res_h", "res_w"],
                                           ignore_index=True)


def _side(rows: pd.DataFrame) -> np.ndarray:
    """Where rows sit on the x axis: the side of a square of the same area."""
    return np.sqrt(rows["res_h"].to_numpy(dtype=float) * rows["res_w"].to_numpy(dtype=float))


def _resolution(res_h: float, res_w: float) -> str:
    """'224' for a square input, '224×320' otherwise."""
    return f"{int(res_h)}" if res_h == res_w else f"{int(res_h)}×{int(res_w)}"


def shares(table: pd.DataFrame, kind: str = "flops") -> pd.DataFrame:
    """Each role's share (0..1) of the model's FLOPs or parameters, per table row."""
    total = table[f"model_{kind}"].where(table[f"model_{kind}"] > 0)
    return pd.DataFrame({role: table[f"{kind}_{role}"] / total for role in ROLES})


def _keep_apart(fig: Figure, labels: list[Annotation]) -> None:
    """Lines that end close together: move each end-value label, from the top down, below
    the labels it would cover; positions are read once the layout is done."""
    fig.draw_without_rendering()
    renderer = cast(FigureCanvasAgg, fig.canvas).get_renderer()  # new_figure's canvas
    placed: list[Bbox] = []
    for label in sorted(labels, key=lambda a: -a.xy[1]):
        box = label.get_window_extent(renderer)
        for _ in range(len(placed)):
            covered = [b for b in placed if b.overlaps(box)]
            if not covered:
                break
            drop = (box.y1 - min(b.y0 for b in covered) + 1) * 72 / fig.dpi
            label.xyann = (label.xyann[0], label.xyann[1] - drop)
            box = label.get_window_extent(renderer)
        placed.append(box)


def breakdown_figure(table: pd.DataFrame, engine: str) -> NamedFigure:
    """The token mixer's share against resolution, and every setting split by role."""
    rows = table[table["engine"] == engine]
    flop_shares = shares(rows)
    names = sorted(set(rows["name"]))
    # the legends sit below both panels, hiding nothing: the models' (left) in as many
    # columns as their names allow, the roles' (right) in three; each bar gets 0.24 in
    model_columns = max(1, min(len(names), 3, 48 // (max(map(len, names)) + 6)))
    legend_rows = max(-(-len(names) // model_columns), -(-len(ROLES) // 3))
    fig = new_figure(10.0, max(3.7, 1.3 + 0.24 * len(rows)) + 0.235 * legend_rows)
    line_ax, bar_ax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.25]})
    ends = []
    for name, group in rows.groupby("name", sort=True):
        order = np.argsort(_side(group), kind="stable")
        x = _side(group)[order]
        y = 100 * flop_shares.loc[group.index, "token_mixer"].to_numpy()[order]
        line_ax.plot(x, y, color=colour_for(name), marker=marker_for(name), label=name,
                     gid=f"data|{name}|mixer_share")
        ends.append(line_ax.annotate(f"{y[-1]:.1f}%", (x[-1], y[-1]), xytext=(6, 0),
                                     textcoords="offset points", ha="left", va="center",
                                     fontsize=7.5, color=colour_for(name)))
    sides = sorted(set(_side(rows)))
    line_ax.set_xticks(sides, [f"{s:g}" for s in sides])
    line_ax.set_ylim(0, 100)
    line_ax.set_xlabel("input resolution (side, pixels)")
    line_ax.set_ylabel("token mixer's share of FLOPs (%)")
    line_ax.set_title("Token mixer's share of the FLOPs")

    ordered = rows.sort_values(["name", "res_h", "res_w"])
    labels = [f"{n} {_resolution(h, w)}" for n, h, w in
              zip(ordered["name"], ordered["res_h"], ordered["res_w"], strict=True)]
    positions = np.arange(len(ordered))[::-1]
    left = np.zeros(len(ordered))
    for role in ROLES:
        width = 100 * flop_shares.loc[ordered.index, role].to_numpy()
        bars = bar_ax.barh(positions, width, left=left, color=ROLE_COLOURS[role],
                           label=ROLE_LABELS[role], height=0.75)
        for bar, label in zip(bars, labels, strict=True):
            bar.set_gid(f"bar|{label}|{role}")
        left += width
    bar_ax.set_yticks(positions, labels)
    bar_ax.set_xlim(0, 100)
    bar_ax.set_xlabel("share of FLOPs (%)")
    bar_ax.set_title("Where the FLOPs go")
    bar_ax.grid(axis="y", visible=False)
    fig.legend(*line_ax.get_legend_handles_labels(), loc="outside lower left",
               ncols=model_columns, frameon=False)
    fig.legend(*bar_ax.get_legend_handles_labels(), loc="outside lower right", ncols=3,
               frameon=False, handlelength=1.0, columnspacing=0.8)
    fig.suptitle(f"FLOPs by role ({engine} engine; one fused multiply-add = one FLOP)")
    _keep_apart(fig, ends)
    return NamedFigure(stem=f"breakdown-mixer-share-{engine}",
                       title=f"Token mixer's share of FLOPs ({engine} engine)", figure=fig)


def shares_table(table: pd.DataFrame) -> pd.DataFrame:
    """The report's table: per setting, total GFLOPs and each role's share (%)."""
    flop_shares = 100 * shares(table)
    return formatted(pd.DataFrame({
        "model": table["name"], "resolution": [_resolution(h, w) for h, w in
                                               zip(table["res_h"], table["res_w"], strict=True)],
        "tokens": table["tokens"], "engine": table["engine"],
        "GFLOPs": table["model_flops"] * 1e-9,
        **{f"{ROLE_LABELS[role]} (% FLOPs)": flop_shares[role] for role in ROLES},
        "token mixer (% params)": 100 * shares(table, "params")["token_mixer"],
    }))


def breakdown_sections(table: pd.DataFrame, pictures) -> list[Section]:  # noqa: ANN001
    """The breakdown section of the report: one figure per engine and the shares."""
    if table.empty:
        return []
    section = Section(title="Where the FLOPs go (gfbench breakdown)")
    for engine in sorted(set(table["engine"])):
        section.blocks.append(pictures.picture(breakdown_figure(table, engine)))
    section.blocks.append(Table("Share of each role per setting (rows add up to 100% of the "
                                "engine's model total)", shares_table(table)))
    return [section]
