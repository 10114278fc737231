"""Predicted memory against size, with the capacities of known devices: where each model
stops fitting.

Drawn for every complexity setting whose rows were predicted (`gfbench complexity
--predict`): x is the input side (models: pixels; mixers: the token grid side, both as
sqrt(h*w)), y the predicted need of one step (``pred_need_bytes``: weights, input and the
step's peak; the optimizer state resident in training) in GiB on a log axis. Dashed
horizontal lines mark the distinct nominal capacities of gfbench.hardware.KNOWN_DEVICES
(24, 40, 80, 141 GiB); on each curve a cross marks the first size whose need exceeds a
capacity. Artists carry gids: "need|<name>", "capacity|<GiB>", "stops|<name>|<GiB>".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

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
