"""The breakdown figure from real `gfbench breakdown` rows: files, plotted values, bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from matplotlib.text import Text

from gfbench.measure.breakdown import BreakdownRequest, plan_breakdown, run_breakdown
from gfbench.plot import PlotOptions, make_plots
from gfbench.plot.breakdown import ROLES, breakdown_figure, breakdown_frame
from gfbench.plot.style import style_context
from gfbench.results.frame import load_results

MODELS = ("gfnet-ti", "deit-ti")
SIDES = ("112", "224")


@pytest.fixture(scope="module")
def counted(tmp_path_factory):
    """A results folder holding one breakdown run (torch engine on meta, depth 1)."""
    root = tmp_path_factory.mktemp("breakdown")
    run_breakdown(plan_breakdown(BreakdownRequest(models=MODELS, resolutions=SIDES, depth=1,
                                                  out=root)))
    return root


def mixer_share(path, name, side):
    """The token mixer's share in % from the JSON rows, added up here in plain Python."""
    rows = [r for r in json.loads(path.read_text())["rows"]
            if r["name"] == name and r["res_h"] == side]
    return 100 * sum(r["flops"] for r in rows if r["group"] == "token_mixer") / \
        rows[0]["model_flops"]


def test_gfbench_plot_draws_the_breakdown_and_reports_it(counted, tmp_path):
    report = make_plots([counted], PlotOptions(out=tmp_path))
    assert {p.name for p in report.figures} == {"breakdown-mixer-share-torch.png",
                                                "breakdown-mixer-share-torch.svg"}
    markdown = (tmp_path / "report.md").read_text()
    assert "Where the FLOPs go" in markdown and "token mixer (% FLOPs)" in markdown


def test_plotted_values_are_the_rows_shares(counted):
    notes: list[str] = []
    table = breakdown_frame(load_results([counted]).runs_of("breakdown"), notes)
    figure = breakdown_figure(table, "torch").figure
    line_ax, bar_ax = figure.axes[:2]
    stored = counted / "0001-breakdown-d1-torch.json"
    for name in MODELS:
        line = next(a for a in line_ax.get_lines() if a.get_gid() == f"data|{name}|mixer_share")
        expected = [mixer_share(stored, name, int(side)) for side in SIDES]
        np.testing.assert_allclose(line.get_xdata(), [112, 224])
        np.testing.assert_allclose(line.get_ydata(), expected)
        bar = next(p for p in bar_ax.patches if p.get_gid() == f"bar|{name} 224|token_mixer")
        assert bar.get_width() == pytest.approx(expected[1])
    bars = [p for p in bar_ax.patches if p.get_gid().startswith("bar|deit-ti 112|")]
    assert sum(p.get_width() for p in bars) == pytest.approx(100)  # the roles fill the model
    assert notes == []


def test_a_bad_breakdown_file_is_skipped_in_one_line(counted, tmp_path):
    bad = tmp_path / "bad" / "breakdown-bad.json"
    bad.parent.mkdir()
    payload = json.loads((counted / "0001-breakdown-d1-torch.json").read_text())
    payload["rows"][0]["group"] = "mixer"
    bad.write_text(json.dumps(payload))
    report = make_plots([counted, bad.parent], PlotOptions(out=tmp_path / "out"))
    assert report.problems == [f"{bad}: row 0: group is 'mixer', expected one of token_mixer, "
                               "channel_mlp, norm, embedding, head, other"]
    assert len(report.figures) == 2


def test_a_later_run_of_the_same_settings_replaces_the_older_one(counted, tmp_path):
    run_breakdown(plan_breakdown(BreakdownRequest(models=("deit-ti",), resolutions=("224",),
                                                  depth=0, out=tmp_path)))
    notes: list[str] = []
    table = breakdown_frame(load_results([counted, tmp_path]).runs_of("breakdown"), notes)
    assert len(table) == 4  # 2 models x 2 sides, the repeated setting once
    assert notes == [f"{counted / '0001-breakdown-d1-torch.json'}: 1 breakdown setting(s) counted "
                     f"again in {tmp_path / '0001-breakdown-d0-torch.json'}; the newer counts are "
                     "plotted"]
    deit = table[(table["name"] == "deit-ti") & (table["res_h"] == 224)].iloc[0]
    expected = mixer_share(tmp_path / "0001-breakdown-d0-torch.json", "deit-ti", 224)
    assert 100 * deit["flops_token_mixer"] / deit["model_flops"] == pytest.approx(expected)


def crowded_table() -> pd.DataFrame:
    """Long timm names, two lines ending 0.5% apart near the top, one near 0%."""
    rows = []
    for name, mixer in (("deit_tiny_patch16_224.fb_in1k", (0.80, 0.90, 0.97)),
                        ("gfnet-ti", (0.004, 0.005, 0.006)),
                        ("vit_base_patch14_reg4_dinov2.lvd142m", (0.50, 0.70, 0.965))):
        for side, share in zip((112, 224, 448), mixer, strict=True):
            split = {"token_mixer": share, "channel_mlp": 0.97 - share, "norm": 0.005,
                     "embedding": 0.02, "head": 0.004, "other": 0.001}
            row = {"name": name, "res_h": side, "res_w": side, "engine": "torch",
                   "tokens": (side // 16) ** 2, "model_flops": 1e7 * side, "model_params": 2e7}
            row.update({f"flops_{role}": split[role] * 1e7 * side for role in ROLES})
            row.update({f"params_{role}": 2e7 / len(ROLES) for role in ROLES})
            rows.append(row)
    return pd.DataFrame(rows)


@pytest.mark.parametrize("source", ["counted", "crowded"])
def test_legends_hide_no_label_and_no_label_hides_another(counted, source):
    table = (crowded_table() if source == "crowded" else
             breakdown_frame(load_results([counted]).runs_of("breakdown"), []))
    with style_context():
        figure = breakdown_figure(table, "torch").figure
        figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    legends = [a.get_legend() for a in figure.axes if a.get_legend()] + list(figure.legends)
    assert len(legends) == 2
    line_ax, bar_ax = figure.axes[:2]
    ends = [t.get_window_extent(renderer) for t in line_ax.texts]
    bar_labels = [t.get_window_extent(renderer) for t in bar_ax.get_yticklabels()]
    assert len(ends) == len(set(table["name"])) and len(bar_labels) == len(table)
    words = [t for t in figure.findobj(Text) if t.get_visible() and t.get_text().strip()]
    for legend in legends:
        box = legend.get_window_extent(renderer)
        own = set(legend.get_texts())
        hidden = [t.get_text() for t in words
                  if t not in own and t.get_window_extent(renderer).overlaps(box)]
        assert hidden == [], hidden  # value labels, bar labels, ticks, axis labels, titles
        assert not any(ax.get_window_extent(renderer).overlaps(box) for ax in figure.axes)
        assert figure.bbox.containsx(box.x0) and figure.bbox.containsx(box.x1)
        assert figure.bbox.containsy(box.y0) and figure.bbox.containsy(box.y1)
    assert not legends[0].get_window_extent(renderer).overlaps(
        legends[1].get_window_extent(renderer))
    for labels in (ends, bar_labels):
        assert not any(a.overlaps(b) for i, a in enumerate(labels) for b in labels[i + 1:])
