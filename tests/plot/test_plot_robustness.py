"""Robustness figures, read back from the matplotlib objects: bars, severity lines, summary,
calibration against severity and reliability diagrams."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from plot_synthetic import CORRUPTIONS, robustness_rows, with_calibration, write_robustness

from gfbench.plot.robustness import (
    calibration_severity_figure,
    checkpoint_name,
    corruption_figure,
    entries_of,
    eps_text,
    reliability_figure,
    robustness_figures,
    severity_figure,
    summary_figure,
)
from gfbench.plot.style import colour_for, style_context
from gfbench.results.frame import load_results, robustness_frame


def _rows():
    return robustness_rows("gfnet-s", 0.20) + robustness_rows("deit-s", 0.22)


@pytest.fixture(scope="module")
def entries(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rob")
    write_robustness(folder / "rob", _rows())
    return entries_of(robustness_frame(load_results([folder]).runs, []))


def robustness_frame_of(rows):
    """The rows as the metrics module takes them (a DataFrame of RobustnessRow fields)."""
    import pandas as pd

    return pd.DataFrame([dataclasses.asdict(r) for r in rows])


def _error_pct(row):
    return 100.0 * (1 - row.correct_top1 / row.images)


def _bars(figure):
    """Bar heights by (entry, category) from the patches' gids."""
    found = {}
    for ax in figure.figure.axes:
        for patch in ax.patches:
            parts = (patch.get_gid() or "").split("|")
            if parts[0] == "bar":
                found[(parts[1], parts[2])] = patch.get_height()
    return found


def test_one_entry_per_checkpoint_coloured_by_family(entries):
    assert [e.label for e in entries] == ["deit-s", "gfnet-s"]
    assert [e.colour for e in entries] == [colour_for("deit-s"), colour_for("gfnet-s")]


def test_corruption_bars_are_the_mean_error_over_severities(entries):
    with style_context():
        figure = corruption_figure(entries)
    bars = _bars(figure)
    for model in ("gfnet-s", "deit-s"):
        rows = [r for r in _rows() if r.model == model]
        clean = next(r for r in rows if r.source == "clean")
        assert bars[(model, "clean")] == pytest.approx(_error_pct(clean))
        for corruption in CORRUPTIONS:
            errors = [_error_pct(r) for r in rows if r.corruption == corruption]
            assert len(errors) == 5
            assert bars[(model, corruption)] == pytest.approx(np.mean(errors))
    assert len(bars) == 2 * (1 + len(CORRUPTIONS))
    ax = figure.figure.axes[0]
    groups = [t.get_text() for t in ax.texts]
    assert groups == ["clean", "noise", "blur", "weather", "digital"]


def test_severity_panels_show_each_severitys_error_and_the_clean_line(entries):
    with style_context():
        figure = severity_figure(entries)
    lines = {}
    for ax in figure.figure.axes:
        for line in ax.lines:
            lines[line.get_gid()] = line
    for model in ("gfnet-s", "deit-s"):
        rows = [r for r in _rows() if r.model == model]
        clean = _error_pct(next(r for r in rows if r.source == "clean"))
        for corruption in CORRUPTIONS:
            part = sorted((r for r in rows if r.corruption == corruption),
                          key=lambda r: r.severity)
            line = lines[f"severity|{model}|{corruption}"]
            np.testing.assert_allclose(line.get_xdata(), [1, 2, 3, 4, 5])
            np.testing.assert_allclose(line.get_ydata(), [_error_pct(r) for r in part])
            np.testing.assert_allclose(lines[f"clean|{model}|{corruption}"].get_ydata(),
                                       [clean, clean])
    titles = [ax.get_title() for ax in figure.figure.axes if ax.get_title()]
    assert titles == ["gaussian noise (noise)", "defocus blur (blur)", "snow (weather)",
                      "contrast (digital)"]


def test_summary_shows_the_metrics_modules_numbers_and_attack_accuracy(entries):
    from gfbench.robustness.metrics import summarize

    with style_context():
        figure = summary_figure(entries)
    bars = _bars(figure)
    frame = robustness_frame_of(_rows())
    for summary in summarize(frame):
        assert bars[(summary.model, "clean_error_top1_pct")] == pytest.approx(
            summary.clean_error_top1_pct)
        assert bars[(summary.model, "mean_error_pct")] == pytest.approx(summary.mean_error_pct)
        assert summary.mce_pct is None  # 4 of 15 corruptions: no mCE, and no bar for it
        assert (summary.model, "mce_pct") not in bars
        fgsm = next(r for r in _rows() if r.model == summary.model and r.corruption == "fgsm")
        assert bars[(summary.model, "FGSM ε=1/255")] == pytest.approx(
            100.0 * fgsm.correct_top1 / fgsm.images)
    titles = [ax.get_title() for ax in figure.figure.axes]
    assert "Accuracy under attack" in titles and "Clean error" in titles


def test_the_mce_bar_appears_when_all_15_corruptions_have_all_5_severities(tmp_path):
    from gfbench.robustness.metrics import summarize
    from gfbench.robustness.protocol import BENCHMARK_CORRUPTIONS

    rows = [r for r in robustness_rows("gfnet-s", 0.2) if r.source != "imagenet-c"]
    rows += [dataclasses.replace(template, corruption=c, severity=s,
                                 correct_top1=template.images // (2 + s))
             for template in robustness_rows("gfnet-s", 0.2)[1:2]
             for c in BENCHMARK_CORRUPTIONS for s in range(1, 6)]
    write_robustness(tmp_path / "full", rows)
    found = entries_of(robustness_frame(load_results([tmp_path]).runs, []))
    with style_context():
        bars = _bars(summary_figure(found))
    summary, = summarize(robustness_frame_of(rows))
    assert summary.mce_pct is not None
    assert bars[("gfnet-s", "mce_pct")] == pytest.approx(summary.mce_pct)
    assert bars[("gfnet-s", "relative_mce_pct")] == pytest.approx(summary.relative_mce_pct)


def test_other_precisions_are_separate_entries_named_apart(tmp_path):
    write_robustness(tmp_path / "a", robustness_rows("gfnet-s", 0.20))
    write_robustness(tmp_path / "b", robustness_rows("gfnet-s", 0.25, precision="bf16"))
    found = entries_of(robustness_frame(load_results([tmp_path]).runs, []))
    assert [e.label for e in found] == ["gfnet-s (bf16)", "gfnet-s (fp32)"]
    assert found[0].hatch != found[1].hatch and found[0].marker != found[1].marker
    assert found[0].summary.clean_error_top1_pct == pytest.approx(25.0)
    assert found[1].summary.clean_error_top1_pct == pytest.approx(20.0)


def test_eps_reads_as_grey_levels():
    assert eps_text(1 / 255) == "ε=1/255"
    assert eps_text(0.01) == "ε=0.01"


def test_checkpoints_sharing_a_file_name_are_named_by_path():
    paths = {"a.pth": {"x/a.pth", "y/a.pth"}, "b.pth": {"x/b.pth"}}
    assert checkpoint_name("x/a.pth", paths) == "x/a.pth"
    assert checkpoint_name("x/b.pth", paths) == "b.pth"


def _with_test_sets_and_broken_attacks(model, base_error):
    """Rows where every attacked image is misclassified, plus ImageNet-A and ImageNetV2."""
    rows = [dataclasses.replace(r, correct_top1=0) if r.source == "attack" else r
            for r in robustness_rows(model, base_error)]
    template = rows[0]
    rows.append(dataclasses.replace(template, source="imagenet-a", corruption="imagenet-a",
                                    images=300, correct_top1=30, correct_top5=90))
    rows.append(dataclasses.replace(template, source="imagenet-v2", corruption="imagenet-v2",
                                    images=400, correct_top1=280, correct_top5=380))
    return rows


def test_summary_draws_the_other_test_sets_and_zero_accuracy_from_zero(tmp_path):
    write_robustness(tmp_path / "r", _with_test_sets_and_broken_attacks("gfnet-s", 0.2))
    found = entries_of(robustness_frame(load_results([tmp_path]).runs, []))
    with style_context():
        figure = summary_figure(found)
    bars = _bars(figure)
    assert bars[("gfnet-s", "ImageNet-A")] == pytest.approx(90.0)  # 270 of 300 wrong
    assert bars[("gfnet-s", "ImageNetV2")] == pytest.approx(30.0)
    assert bars[("gfnet-s", "FGSM ε=1/255")] == 0.0
    axes = {ax.get_title(): ax for ax in figure.figure.axes}
    assert list(axes).index("Other test sets") > list(axes).index("Clean error")
    attack = axes["Accuracy under attack"]
    low, high = attack.get_ylim()
    assert low == 0.0 and high > 0.0  # not matplotlib's -0.06..0.06 around nothing
    assert [t.get_text() for t in attack.texts] == ["0.0"]  # the value is written
    for ax in figure.figure.axes:
        assert ax.get_ylim()[0] == 0.0


def test_two_checkpoints_with_one_file_name_are_two_entries(tmp_path):
    first = [dataclasses.replace(r, checkpoint="best.pth", checkpoint_sha256="a" * 64)
             for r in robustness_rows("gfnet-s", 0.20)]
    second = [dataclasses.replace(r, checkpoint="best.pth", checkpoint_sha256="b" * 64)
              for r in robustness_rows("gfnet-s", 0.30)]
    write_robustness(tmp_path / "one", first)
    write_robustness(tmp_path / "two", second)
    notes = []
    found = entries_of(robustness_frame(load_results([tmp_path]).runs, notes))
    assert notes == []  # neither file's rows replace the other's
    assert [e.label for e in found] == ["gfnet-s (best.pth@aaaaaaaa)",
                                        "gfnet-s (best.pth@bbbbbbbb)"]
    assert [e.summary.clean_error_top1_pct for e in found] == pytest.approx([20.0, 30.0])


# --- calibration: ECE/NLL/Brier against severity, reliability diagrams ---


def _calibrated_rows():
    return (with_calibration(robustness_rows("gfnet-s", 0.20))
            + with_calibration(robustness_rows("deit-s", 0.22), seed=1))


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("calibrated")
    write_robustness(folder / "rob", _calibrated_rows())
    return entries_of(robustness_frame(load_results([folder]).runs, []))


def _sums(row):
    from gfbench.robustness.calibration import parse_bins

    return parse_bins(row.calibration_bins, row.nll, row.brier)


def test_calibration_against_severity_draws_clean_then_the_mean_per_severity(calibrated):
    with style_context():
        figure = calibration_severity_figure(calibrated)
    lines = {line.get_gid(): line for ax in figure.figure.axes for line in ax.lines}
    ranges = {c.get_gid() for ax in figure.figure.axes for c in ax.collections}
    for model in ("gfnet-s", "deit-s"):
        rows = [r for r in _calibrated_rows() if r.model == model]
        clean = next(r for r in rows if r.source == "clean")
        corrupted = [r for r in rows if r.source == "imagenet-c"]
        for column, value in (("ece_pct", lambda r: 100 * _sums(r).ece),
                              ("nll", lambda r: r.nll), ("brier", lambda r: r.brier),
                              ("error_top1_pct", _error_pct)):
            line = lines[f"calibration|{model}|{column}"]
            np.testing.assert_allclose(line.get_xdata(), [0, 1, 2, 3, 4, 5])
            expected = [value(clean)] + [np.mean([value(r) for r in corrupted
                                                  if r.severity == s]) for s in range(1, 6)]
            np.testing.assert_allclose(line.get_ydata(), expected, rtol=1e-12)
            assert f"range|{model}|{column}" in ranges
    titles = [ax.get_title() for ax in figure.figure.axes]
    assert titles[:2] == ["Top-1 error", "Expected calibration error (15 bins)"]
    assert figure.stem == "robustness-calibration-severity"


def test_reliability_diagrams_show_each_bins_accuracy_and_share_of_images(calibrated):
    from gfbench.robustness.calibration import pooled

    with style_context():
        figure = reliability_figure(calibrated)
    heights = {}
    for ax in figure.figure.axes:
        for patch in ax.patches:
            if patch.get_gid():
                heights[patch.get_gid()] = patch.get_height()
    texts = [t.get_text() for ax in figure.figure.axes for t in ax.texts]
    for model in ("gfnet-s", "deit-s"):
        rows = [r for r in _calibrated_rows() if r.model == model]
        clean = _sums(next(r for r in rows if r.source == "clean"))
        worst = pooled([_sums(r) for r in rows if r.source == "imagenet-c" and r.severity == 5])
        for what, sums in (("clean", clean), ("severity 5, 4 corruptions pooled", worst)):
            for b, (n, k, c) in enumerate(zip(sums.counts, sums.correct, sums.confidence,
                                              strict=True)):
                share = heights[f"count|{model}|{what}|{b}"]
                assert share == pytest.approx(100 * n / sums.images)
                if n:
                    assert heights[f"reliability|{model}|{what}|{b}"] == pytest.approx(k / n)
                    assert heights[f"gap|{model}|{what}|{b}"] == pytest.approx(c / n - k / n)
                else:
                    assert f"reliability|{model}|{what}|{b}" not in heights
            assert f"ECE {100 * sums.ece:.1f}%\n{sums.images:,} images" in texts
    diagonals = [line for ax in figure.figure.axes for line in ax.lines
                 if list(line.get_xdata()) == [0, 1] and list(line.get_ydata()) == [0, 1]]
    assert len(diagonals) == 4
    assert figure.stem == "robustness-reliability"


def test_files_without_calibration_draw_no_calibration_figures(tmp_path):
    write_robustness(tmp_path / "old", _rows())
    frame = robustness_frame(load_results([tmp_path]).runs, [])
    with style_context():
        _, figures = robustness_figures(frame)
    assert [f.stem for f in figures] == ["robustness-corruptions", "robustness-severity",
                                         "robustness-summary"]


def test_gfbench_plot_puts_the_calibration_figures_and_table_in_the_report(tmp_path):
    from gfbench.plot.make import make_plots

    write_robustness(tmp_path / "rob", _calibrated_rows())
    report = make_plots([tmp_path])
    names = {p.name for p in report.figures}
    assert {"robustness-calibration-severity.png", "robustness-reliability.png"} <= names
    markdown = (tmp_path / "plots" / "report.md").read_text()
    html = (tmp_path / "plots" / "report.html").read_text()
    for text in (markdown, html):
        assert "Calibration against corruption severity" in text
        assert "Reliability diagrams" in text and "Calibration of the top-1 softmax" in text
    assert "| gfnet-s | severity 5 (mean of 4) |" in markdown


def _cbar_rows(model: str = "gfnet-s") -> list:
    """Clean plus two ImageNet-C-bar corruptions x five severities, source generated-bar."""
    from gfbench.results import RobustnessRow

    rows = [RobustnessRow(model=model, checkpoint=f"ckpt/{model}.pth", source="clean",
                          corruption="clean", severity=0, images=100, correct_top1=80,
                          correct_top5=100)]
    for i, corruption in enumerate(("sparkles", "perlin_noise")):
        for severity in range(1, 6):
            rows.append(RobustnessRow(
                model=model, checkpoint=f"ckpt/{model}.pth", source="generated-bar",
                corruption=corruption, severity=severity, images=100,
                correct_top1=70 - 9 * severity - 5 * i, correct_top5=100))
    return rows


def test_c_bar_rows_get_their_own_figure_with_the_c_bar_error(tmp_path):
    rows = _rows() + _cbar_rows()
    write_robustness(tmp_path / "mixed", rows)
    frame = robustness_frame(load_results([tmp_path]).runs, [])
    with style_context():
        entries, figures = robustness_figures(frame)
    stems = [f.stem for f in figures]
    assert "robustness-c-bar" in stems and "robustness-severity" in stems
    (bar,) = [f for f in figures if f.stem == "robustness-c-bar"]
    bar_rows = [r for r in rows if r.source == "generated-bar"]
    mean = sum(_error_pct(r) for r in bar_rows) / len(bar_rows)  # by hand: the plain mean
    lines = {line.get_gid(): line for ax in bar.figure.axes for line in ax.lines}
    label = f"gfnet-s (generated-bar): C-bar error {mean:.1f}% over 10 of 50 cases"
    for corruption in ("sparkles", "perlin_noise"):
        part = sorted((r for r in bar_rows if r.corruption == corruption),
                      key=lambda r: r.severity)
        np.testing.assert_allclose(lines[f"severity|{label}|{corruption}"].get_ydata(),
                                   [_error_pct(r) for r in part])
    (severity,) = [f for f in figures if f.stem == "robustness-severity"]
    drawn = {line.get_gid() for ax in severity.figure.axes for line in ax.lines}
    assert not any("sparkles" in (gid or "") for gid in drawn)  # C's figure keeps C's rows
