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


def fit_rows(batches: dict[str, list[int]], budget: str = "80 GiB (h100-sxm, nominal)",
             sides=(224, 448, 896, 1024)) -> pd.DataFrame:
    """Model rows holding --fit-memory answers (largest batch per size) for one budget."""
    return pd.DataFrame([{"name": name, "side_h": side, "side_w": side,
                          "fit_max_batch": best, "fit_budget": budget,
                          "fit_budget_bytes": 80 * GIB}
                         for name, bests in batches.items()
                         for side, best in zip(sides, bests, strict=True)])


def artist(figure, gid: str):
    """The one artist with this gid."""
    (found,) = [a for a in figure.findobj() if a.get_gid() == gid]
    return found


def test_batch_figure_lines_are_the_rows_largest_batches():
    from gfbench.plot.memory import batch_fit_figures

    frame = fit_rows({"deit-s": [300, 60, 4, 0], "gfnet-xs": [512, 130, 31, 18]})
    frame = frame.sample(frac=1, random_state=0)  # the rows' order does not matter
    (named,) = batch_fit_figures("model", SETTING, frame)
    deit = artist(named.figure, "fit|deit-s")
    assert list(deit.get_xdata()) == [224, 448, 896] and list(deit.get_ydata()) == [300, 60, 4]
    gfnet = artist(named.figure, "fit|gfnet-xs")
    assert list(gfnet.get_ydata()) == [512, 130, 31, 18]
    # 1024 fits no batch of deit-s: drawn below the axis at the "0" tick, not dropped
    zero = artist(named.figure, "nofit|deit-s")
    assert list(zero.get_xdata()) == [1024]
    (ax,) = named.figure.axes
    assert ax.get_yscale() == "log" and ax.yaxis.get_transform().base == 2
    labels = {t.get_text(): t.get_position()[1] for t in ax.get_yticklabels()}
    assert labels["0"] == zero.get_ydata()[0] < ax.get_ylim()[0] * 2 < 1
    assert "no batch fits (0)" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert "80 GiB (h100-sxm, nominal)" in named.title and "predicted" in named.title
    assert "fp32" in named.title and "train" in named.title
    assert not any(g.startswith("nofit|gfnet") for g in gids(named.figure))


def test_one_batch_figure_per_budget_and_none_without_a_fit():
    from gfbench.plot.memory import batch_fit_figures

    small = fit_rows({"deit-s": [8, 2, 1, 1]}, budget="24GiB")
    small["fit_budget_bytes"] = 24 * GIB
    both = batch_fit_figures("model", SETTING, pd.concat([fit_rows({"deit-s": [9, 9, 9, 9]}),
                                                          small]))
    assert [artist(n.figure, "fit|deit-s").get_ydata().tolist() for n in both] == [
        [8, 2, 1, 1], [9, 9, 9, 9]]  # by budget, smallest first
    assert "24GiB" in both[0].title and both[0].stem != both[1].stem
    assert batch_fit_figures("model", SETTING, rows({"deit-s": [1, 2, 3, 4]})) == []
    failed = fit_rows({"deit-s": [8, 2, 1, 1]})
    failed["fit_max_batch"] = float("nan")  # every search failed: nothing to draw
    assert batch_fit_figures("model", SETTING, failed) == []


def test_a_fit_memory_run_is_drawn_from_its_file(tmp_path):
    # end to end: the count step's fits are in the run's file, and plot draws them
    from gfbench.measure.complexity import run_complexity
    from gfbench.measure.plan import ComplexityRequest
    from gfbench.options import parse_memory_budget
    from gfbench.plot import PlotOptions, make_plots

    request = ComplexityRequest(mixers=("dwconv",), tokens=("8", "16"), dim=16,
                                metrics=("params",), fit_memory=parse_memory_budget("4MiB"),
                                out=tmp_path / "runs", isolate=False)
    report = run_complexity(request)
    made = make_plots([report.files[0]], PlotOptions(out=tmp_path / "plots", formats=("svg",)))
    (figure,) = [p for p in made.figures if p.name.startswith("fit-mixers-")]
    assert "4194304b" in figure.name  # the budget's bytes name it
    assert [f.max_batch for f in report.memory_fit.fits] == [
        r.fit_max_batch for r in report.rows]
