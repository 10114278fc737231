"""The predicted-memory figure: capacity lines and where each curve first exceeds them."""

import numpy as np
import pandas as pd

from gfbench.hardware import GIB
from gfbench.plot.load import Setting
from gfbench.plot.memory import capacities, first_exceeding, memory_figure

SETTING = Setting(device="meta", batch_size=64, precision="fp32", mode="train")


def rows(needs_gib: dict[str, list[float]], sides=(224, 448, 896, 1024)) -> pd.DataFrame:
    """Model rows with the given predicted needs (GiB) at square sizes."""
    return pd.DataFrame([{"name": name, "side_h": side, "side_w": side,
                          "pred_need_bytes": need * GIB}
                         for name, needs in needs_gib.items()
                         for side, need in zip(sides, needs, strict=True)])


def gids(figure) -> list[str]:
    """Every artist gid of the figure."""
    return [a.get_gid() for a in figure.findobj() if a.get_gid()]


def test_capacities_are_the_known_devices_distinct_sizes():
    assert list(capacities()) == [24, 40, 80, 141]
    assert "h100-sxm" in capacities()[80] and "a100-80gb" in capacities()[80]


def test_first_exceeding_is_the_smallest_side_above_the_limit():
    sides, needs = np.array([448.0, 224.0, 896.0]), np.array([30.0, 10.0, 90.0])
    assert first_exceeding(sides, needs, 24) == 448
    assert first_exceeding(sides, needs, 80) == 896
    assert first_exceeding(sides, needs, 141) is None


def test_figure_marks_each_capacity_and_where_each_curve_stops_fitting():
    named = memory_figure("model", SETTING, rows({"deit-s": [4, 30, 90, 200],
                                                  "gfnet-xs": [3, 12, 50, 70]}))
    marks = gids(named.figure)
    assert {f"capacity|{c}" for c in (24, 40, 80, 141)} <= set(marks)
    # deit-s passes 24 and 40 GiB at 448, 80 at 896, 141 at 1024; gfnet-xs 24 and 40 at 896
    assert sorted(m for m in marks if m.startswith("stops|")) == sorted([
        "stops|deit-s|24", "stops|deit-s|40", "stops|deit-s|80", "stops|deit-s|141",
        "stops|gfnet-xs|24", "stops|gfnet-xs|40"])
    stop = next(a for a in named.figure.findobj() if a.get_gid() == "stops|deit-s|80")
    assert list(stop.get_xdata()) == [896] and list(stop.get_ydata()) == [90]
    assert named.stem.startswith("memory-models-")


def test_no_figure_without_predictions():
    frame = rows({"deit-s": [1, 2, 3, 4]})
    frame["pred_need_bytes"] = float("nan")
    assert memory_figure("model", SETTING, frame) is None
