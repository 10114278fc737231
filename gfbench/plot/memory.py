"""Predicted memory against size, with the capacities of known devices: where each model
stops fitting; and the largest batch that fits a --fit-memory budget against size.

Drawn for every complexity setting whose rows were predicted (`gfbench complexity
--predict`): x is the input side (models: pixels; mixers: the token grid side, both as
sqrt(h*w)), y the predicted need of one step (``pred_need_bytes``: weights, input and the
step's peak; the optimizer state resident in training) in GiB on a log axis. Dashed
horizontal lines mark the distinct nominal capacities of gfbench.hardware.KNOWN_DEVICES
(24, 40, 80, 141 GiB); on each curve a cross marks the first size whose need exceeds a
capacity. Artists carry gids: "need|<name>", "capacity|<GiB>", "stops|<name>|<GiB>".

The batch figure (``batch_fit_figures``) is drawn for rows that hold a --fit-memory answer
(``fit_max_batch``, searched on the meta device in the count step): one figure per budget, x
the same side, y the largest batch whose predicted need fits, on a log2 axis, one line per
name (gid "fit|<name>"). A size where not even batch 1 fits is a triangle at the "0" tick
below the axis's batches (gid "nofit|<name>", one legend entry), not a gap in the line.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from gfbench.hardware import GIB, KNOWN_DEVICES
from gfbench.plot.load import Setting
from gfbench.plot.style import NEUTRAL_GREY, NamedFigure, new_figure


def capacities() -> dict[float, str]:
    """Each distinct nominal capacity in GiB and the device kinds that have it."""
    by_size: dict[float, list[str]] = {}
    for kind in KNOWN_DEVICES.values():
        by_size.setdefault(kind.memory_gib, []).append(kind.name)
    return {size: ", ".join(names) for size, names in sorted(by_size.items())}


def first_exceeding(sides: np.ndarray, needs: np.ndarray, limit: float) -> float | None:
    """The smallest side whose need exceeds ``limit`` (None when every side fits)."""
    over = sides[needs > limit]
    return float(over.min()) if over.size else None


def memory_figure(subject: str, setting: Setting, rows: pd.DataFrame) -> NamedFigure | None:
    """The predicted-need figure of one setting, or None when no row was predicted."""
    if "pred_need_bytes" not in rows:
        return None
    rows = rows[pd.to_numeric(rows["pred_need_bytes"]).notna()]
    if rows.empty:
        return None
    fig = new_figure(6.4, 4.2)
    ax = fig.add_subplot()
    for name, curve in rows.groupby("name", sort=True):
        sides = np.sqrt(curve["side_h"].to_numpy(float) * curve["side_w"].to_numpy(float))
        needs = curve["pred_need_bytes"].to_numpy(float) / GIB
        order = np.argsort(sides)
        (line,) = ax.plot(sides[order], needs[order], marker="o", label=str(name),
                          gid=f"need|{name}")
        for size in capacities():
            side = first_exceeding(sides, needs, size)
            if side is not None:
                ax.plot([side], [needs[sides == side][0]], marker="x", markersize=9,
                        color=line.get_color(), gid=f"stops|{name}|{size:g}")
    for size, kinds in capacities().items():
        ax.axhline(size, color=NEUTRAL_GREY, linestyle="--", linewidth=0.8,
                   gid=f"capacity|{size:g}")
        ax.annotate(f"{size:g} GiB ({kinds})", (0.01, size), xycoords=("axes fraction", "data"),
                    fontsize=7, color=NEUTRAL_GREY, va="bottom")
    ax.set_yscale("log")
    ax.set_xlabel("input side (pixels)" if subject == "model" else "token grid side")
    ax.set_ylabel("predicted need of one step (GiB)")
    ax.legend(fontsize=8, loc="lower right")
    what = "Models" if subject == "model" else "Token mixers"
    title = f"{what} · predicted memory · {setting.title()}"
    ax.set_title(title, fontsize=9)
    stem = f"memory-{'models' if subject == 'model' else 'mixers'}-{setting.slug()}"
    return NamedFigure(stem=stem, title=title, figure=fig)


NO_FIT_Y = 0.5  # where a size that fits no batch is drawn: the "0" tick below batch 1


def fitted(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows that hold a --fit-memory answer, one per name, size and budget."""
    rows = rows[pd.to_numeric(rows["fit_max_batch"]).notna()]
    return rows.drop_duplicates(["name", "side_h", "side_w", "fit_budget_bytes"])


def batch_fit_figures(subject: str, setting: Setting, rows: pd.DataFrame
                      ) -> list[NamedFigure]:
    """The largest-fitting-batch figure of each budget the setting's rows were fitted to
    (none for rows written without --fit-memory, or before the fields existed)."""
    if "fit_max_batch" not in rows:
        return []
    rows = fitted(rows)
    return [_batch_fit_figure(subject, setting, budget_rows)
            for _, budget_rows in rows.groupby("fit_budget_bytes", sort=True)]


def _batch_fit_figure(subject: str, setting: Setting, rows: pd.DataFrame) -> NamedFigure:
    """One budget's figure: per name the largest batch against the side, zeros at NO_FIT_Y."""
    fig = new_figure(6.4, 4.2)
    ax = fig.add_subplot()
    top = 1.0
    for name, curve in rows.groupby("name", sort=True):
        sides = np.sqrt(curve["side_h"].to_numpy(float) * curve["side_w"].to_numpy(float))
        batches = curve["fit_max_batch"].to_numpy(float)
        order = np.argsort(sides)
        sides, batches = sides[order], batches[order]
        fits = batches >= 1
        (line,) = ax.plot(sides[fits], batches[fits], marker="o", label=str(name),
                          gid=f"fit|{name}")
        if not fits.all():
            ax.plot(sides[~fits], np.full((~fits).sum(), NO_FIT_Y), linestyle="none",
                    marker="v", color=line.get_color(), gid=f"nofit|{name}")
        top = max(top, float(batches.max()))
    ax.set_yscale("log", base=2)
    ticks = [NO_FIT_Y, *(2.0 ** k for k in range(int(np.log2(top)) + 2))]
    ax.set_yticks(ticks, ["0", *(f"{t:g}" for t in ticks[1:])])
    ax.set_ylim(NO_FIT_Y / 1.5, ticks[-1] * 1.3)
    handles, _ = ax.get_legend_handles_labels()
    if (rows["fit_max_batch"].astype(float) < 1).any():
        handles.append(Line2D([], [], linestyle="none", marker="v", color=NEUTRAL_GREY,
                              label="no batch fits (0)"))
    ax.legend(handles=handles, fontsize=8, loc="upper right")
    ax.set_xlabel("input side (pixels)" if subject == "model" else "token grid side")
    ax.set_ylabel("largest batch that fits (predicted)")
    budget = str(rows["fit_budget"].iloc[0])
    what = "Models" if subject == "model" else "Token mixers"
    title = f"{what} · largest batch in {budget} (predicted)\n{setting.title()}"
    ax.set_title(title, fontsize=8)
    title = title.replace("\n", " · ")
    stem = (f"fit-{'models' if subject == 'model' else 'mixers'}-{setting.slug()}-"
            f"{int(rows['fit_budget_bytes'].iloc[0])}b")
    return NamedFigure(stem=stem, title=title, figure=fig)
