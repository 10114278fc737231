"""Complexity figures, read back from the matplotlib objects: data, estimates, exponents, ticks."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.text import Text
from plot_synthetic import GPU, RESOLUTIONS, gpu_rows, mixer_row, model_row, write_complexity

from gfbench.measure.scaling import fit_exponent
from gfbench.plot.complexity import (
    METRICS,
    complexity_figure,
    prefix_digits,
    si_text,
    token_label,
)
from gfbench.plot.load import settings_of
from gfbench.plot.style import OKABE_ITO, colour_for, style_context, variant_styles
from gfbench.results.frame import complexity_frame, load_results

MEASURED = ("latency", "memory")
COUNTED = ("flops", "params")


def _frame(tmp_path, rows, **prov):
    write_complexity(tmp_path / "run", rows, **prov)
    return complexity_frame(load_results([tmp_path]).runs, [])


def _figure(frame, **options):
    (subject, setting, rows), = settings_of(frame)
    with style_context():
        return complexity_figure(subject, setting, rows, **options)


@pytest.fixture(scope="module")
def gpu_frame(tmp_path_factory):
    return _frame(tmp_path_factory.mktemp("gpu"), gpu_rows())


@pytest.fixture(scope="module")
def gpu_figure(gpu_frame):
    return _figure(gpu_frame)


def _panels(figure):
    """Panel axes by metric key (the legend rooms below them have no title)."""
    by_title = {m.title: key for key, m in METRICS.items()}
    return {by_title[ax.get_title()]: ax for ax in figure.figure.axes if ax.get_title()}


def _gid(ax, kind):
    """Artists of one kind ('data', 'estimate', ...) by curve label."""
    found = {}
    for artist in [*ax.lines, *ax.collections]:
        parts = (artist.get_gid() or "").split("|")
        if parts[0] == kind:
            found[parts[1]] = artist
    return found


def _expected(name, metric, status=("ok", "oom")):
    spec = METRICS[metric]
    rows = [r for r in gpu_rows() if r.name == name and r.status in status
            and getattr(r, spec.column) is not None]
    return (np.array([r.tokens for r in rows], dtype=float),
            np.array([getattr(r, spec.column) * spec.scale for r in rows]))


def test_one_panel_per_quantity_in_the_papers_order(gpu_figure):
    assert list(_panels(gpu_figure)) == ["flops", "params", "latency", "memory"]
    assert "NVIDIA H100 80GB HBM3 · batch 8 · fp16 · inference" in gpu_figure.title


@pytest.mark.parametrize("metric", ["flops", "params", "latency", "memory"])
def test_plotted_points_equal_the_rows(gpu_figure, metric):
    lines = _gid(_panels(gpu_figure)[metric], "data")
    assert sorted(lines) == ["deit-s", "gfnet-xs"]
    for name, line in lines.items():
        # counted quantities exist for OOM rows too; measured ones only for rows that ran
        tokens, values = _expected(name, metric, ("ok", "oom") if metric in COUNTED else ("ok",))
        np.testing.assert_allclose(line.get_xdata(), tokens)
        np.testing.assert_allclose(line.get_ydata(), values)


def test_estimates_exist_exactly_for_oom_rows_on_measured_panels(gpu_figure):
    oom_tokens = [r.tokens for r in gpu_rows() if r.status == "oom"]
    assert oom_tokens and {r.name for r in gpu_rows() if r.status == "oom"} == {"deit-s"}
    panels = _panels(gpu_figure)
    for metric in COUNTED:
        assert _gid(panels[metric], "estimate") == {}
    for metric in MEASURED:
        estimates = _gid(panels[metric], "estimate")
        assert list(estimates) == ["deit-s"]
        line = estimates["deit-s"]
        assert line.get_linestyle() == ":"
        tokens, values = _expected("deit-s", metric, ("ok",))
        # starts at the last point that ran, then one hollow point per OOM row
        assert line.get_xdata()[0] == tokens[-1] and line.get_ydata()[0] == values[-1]
        np.testing.assert_allclose(line.get_xdata()[1:], oom_tokens)
        fit = fit_exponent(tokens, values)
        np.testing.assert_allclose(line.get_ydata()[1:], fit.a * np.array(oom_tokens) ** fit.k)
        assert line.get_markerfacecolor() == "white"


def test_legend_exponents_match_the_fit(gpu_figure):
    for metric, ax in _panels(gpu_figure).items():
        texts = [t.get_text() for t in ax.get_legend().get_texts()]
        for name in ("gfnet-xs", "deit-s"):
            status = ("ok", "oom") if metric in COUNTED else ("ok",)
            tokens, values = _expected(name, metric, status)
            fit = fit_exponent(tokens, values)
            entry = next(t for t in texts if t.startswith(name + " "))
            shown = float(re.search(r"\^\{(-?[\d.]+)\}", entry).group(1))
            assert shown == pytest.approx(fit.k, abs=0.005)
    fitted = {(f.curve, f.metric): f.k for f in gpu_figure.fits}
    assert fitted[("gfnet-xs", "flops")] == pytest.approx(1.0)  # synthetic: FLOPs ~ N
    assert fitted[("deit-s", "flops")] == pytest.approx(1.5)


def test_latency_band_spans_p10_to_p90(gpu_figure):
    band = _gid(_panels(gpu_figure)["latency"], "band")["gfnet-xs"]
    rows = [r for r in gpu_rows() if r.name == "gfnet-xs"]
    ys = set(np.round(band.get_paths()[0].vertices[:, 1], 9))
    assert {round(r.latency_ms_p10, 9) for r in rows} <= ys
    assert {round(r.latency_ms_p90, 9) for r in rows} <= ys
    assert min(ys) == pytest.approx(min(r.latency_ms_p10 for r in rows))


def test_ticks_read_as_squares_and_labels_never_overlap(gpu_figure):
    figure = gpu_figure.figure
    figure.draw_without_rendering()
    renderer = figure.canvas.get_renderer()
    for ax in _panels(gpu_figure).values():
        labels = [t for t in ax.get_xticklabels() if t.get_text()]
        assert labels and all(re.fullmatch(r"\d+²", t.get_text()) for t in labels)
        for tick, label in zip(ax.get_xticks(), labels, strict=True):
            assert label.get_text() == token_label(tick)
        boxes = sorted((t.get_window_extent(renderer) for t in labels), key=lambda b: b.x0)
        assert all(a.x1 <= b.x0 for a, b in zip(boxes, boxes[1:], strict=False))
        legend = ax.get_legend().get_window_extent(renderer)
        assert legend.y1 <= ax.xaxis.label.get_window_extent(renderer).y0  # below the axes


def test_token_labels():
    assert token_label(784) == "28²" and token_label(12544) == "112²"
    assert token_label(392) == "392"


def test_default_is_log_log_with_plain_or_prefixed_labels_and_linear_on_request(gpu_frame,
                                                                               gpu_figure):
    assert "log-log" in gpu_figure.title and not gpu_figure.stem.endswith("-linear")
    gpu_figure.figure.draw_without_rendering()
    for key, ax in _panels(gpu_figure).items():
        assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
        labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
        assert labels and not any("times" in t or "^" in t for t in labels)
        if key in COUNTED:  # counts carry metric prefixes: 2G, 20M
            assert all(re.fullmatch(r"[\d.]+[kMGT]?", t) for t in labels), labels
    linear = _figure(gpu_frame, scale="linear")
    assert linear.stem.endswith("-linear") and "linear" in linear.title
    for ax in _panels(linear).values():
        assert ax.get_xscale() == "linear" and ax.get_ylim()[0] == 0


def test_reference_slopes_follow_n_log_n_and_n_squared_without_rescaling(gpu_frame, gpu_figure):
    plain = _panels(_figure(gpu_frame, ref_slopes=False))["flops"]
    with_refs = _panels(gpu_figure)["flops"]
    assert with_refs.get_ylim() == plain.get_ylim()
    assert _gid(plain, "ref") == {}
    refs = _gid(with_refs, "ref")
    assert sorted(refs) == ["N log N", "N²"]
    x, y = refs["N²"].get_xdata(), refs["N²"].get_ydata()
    np.testing.assert_allclose(y / y[0], (x / x[0]) ** 2)
    x, y = refs["N log N"].get_xdata(), refs["N log N"].get_ydata()
    np.testing.assert_allclose(y / y[0], x * np.log2(x) / (x[0] * np.log2(x[0])))
    assert _gid(_panels(gpu_figure)["params"], "ref") == {}


def test_guides_say_where_they_are_anchored_and_start_there(gpu_figure):
    ax = _panels(gpu_figure)["flops"]
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "guide ∝ N², from the first points (14²)" in texts
    assert "guide ∝ N log N, from the first points (14²)" in texts
    first = [r.flops for r in gpu_rows() if r.res_h == 224]  # 14² tokens, both models
    for line in _gid(ax, "ref").values():
        assert line.get_xdata()[0] == 196
        assert line.get_ydata()[0] == pytest.approx(np.exp(np.mean(np.log(first))))
    assert "smallest N, at the geometric mean" in gpu_figure.figure.get_supxlabel()


def test_resolution_axis_and_throughput_panel(gpu_frame):
    figure = _figure(gpu_frame, x_kind="resolution", speed="throughput")
    panels = _panels(figure)
    assert "throughput" in panels and "latency" not in panels
    line = _gid(panels["throughput"], "data")["gfnet-xs"]
    rows = [r for r in gpu_rows() if r.name == "gfnet-xs"]
    np.testing.assert_allclose(line.get_xdata(), [r.res_h for r in rows])
    np.testing.assert_allclose(line.get_ydata(), [r.throughput_ips for r in rows])
    assert {t.get_text() for t in panels["flops"].get_xticklabels()} <= {
        str(r) for r in (224, 320, 448, 576, 640)}


def test_an_oom_curve_with_one_point_gets_crosses_not_a_guess(tmp_path):
    rows = [model_row("deit-s", 224), model_row("deit-s", 320, oom=True),
            model_row("gfnet-xs", 224), model_row("gfnet-xs", 320)]
    figure = _figure(_frame(tmp_path, rows))
    latency = _panels(figure)["latency"]
    assert _gid(latency, "estimate") == {}
    np.testing.assert_allclose(_gid(latency, "oom")["deit-s"].get_xdata(), [400])
    assert "(k: <2 points)" in " ".join(t.get_text() for t in latency.get_legend().get_texts())


def test_colours_are_okabe_ito_fixed_per_family(gpu_figure):
    line = _gid(_panels(gpu_figure)["flops"], "data")
    assert line["gfnet-xs"].get_color() == colour_for("gfnet-xs") == OKABE_ITO["blue"]
    assert line["deit-s"].get_color() == colour_for("deit_small_patch16_224")
    assert colour_for("global_filter") == colour_for("gfnet-h-b")
    assert colour_for("attention") == colour_for("attention_explicit")  # one family
    # an unknown name's colour is the same in every process (not Python's salted hash)
    other_process = subprocess.run(
        [sys.executable, "-c", "from gfbench.plot.style import colour_for; "
                               "print(colour_for('some-new-model'))"],
        env={**os.environ, "PYTHONHASHSEED": "12345"}, capture_output=True, text=True,
        check=True).stdout.strip()
    assert colour_for("some-new-model") == other_process


def test_variants_of_a_family_differ_by_marker_and_by_line_style():
    styles = variant_styles([("gfnet-b", ""), ("gfnet-ti", ""), ("gfnet-xs", ""),
                             ("deit-s", "")])
    gfnets = styles[:3]
    assert len({m for m, _ in gfnets}) == 3 and len({str(ls) for _, ls in gfnets}) == 3
    assert styles[1] == ("o", "-")  # the smallest variant: circles, solid
    assert styles[3] == ("o", "-")  # another colour starts again
    fast, reference = variant_styles([("global_filter", "fast"), ("global_filter", "reference")])
    assert reference == ("o", "-") and fast[0] != "o" and fast[1] != "-"
    assert all(ls != ":" for _, ls in styles)  # dotted means an estimate past OOM


def test_attention_and_its_explicit_variant_never_look_alike(tmp_path):
    rows = [mixer_row(name, side) for name in ("attention", "attention_explicit")
            for side in (14, 28, 56)]
    figure = _figure(_frame(tmp_path, rows))
    for ax in _panels(figure).values():
        lines = _gid(ax, "data")
        fused, explicit = lines["attention"], lines["attention_explicit"]
        assert fused.get_color() == explicit.get_color()
        assert fused.get_marker() != explicit.get_marker()
        assert fused.get_linestyle() != explicit.get_linestyle()
        legend = {t.get_text().split()[0]: h for t, h in
                  zip(ax.get_legend().get_texts(), ax.get_legend().legend_handles, strict=True)}
        assert legend["attention"].get_marker() != legend["attention_explicit"].get_marker()


def test_every_setting_gets_its_own_figure_with_the_setting_in_its_title(tmp_path):
    rows = gpu_rows() + [model_row("gfnet-xs", r, precision="bf16") for r in (224, 320)]
    groups = settings_of(_frame(tmp_path, rows))
    assert [(s.precision, len(r)) for _, s, r in groups] == [("bf16", 2), ("fp16", 10)]
    with style_context():
        title = complexity_figure(*groups[0]).title
    assert f"{GPU} · batch 8 · bf16" in title


def _mixer_figure(tmp_path, rows, **options):
    return _figure(_frame(tmp_path, rows), **options)


def _span(ax, line):
    """The share of the axes' height one line covers (0: flat, 1: the whole panel)."""
    y = ax.transLimits.transform(ax.transScale.transform(
        np.column_stack([line.get_xdata(), line.get_ydata()])))[:, 1]
    return float(y.max() - y.min())


def test_small_mixers_rise_visibly_on_the_default_figure_not_only_in_the_legend(tmp_path):
    rows = [mixer_row(name, side) for name in ("global_filter", "attention")
            for side in (14, 28, 56, 112)]
    default = _panels(_mixer_figure(tmp_path / "log", rows))["flops"]
    linear = _panels(_mixer_figure(tmp_path / "lin", rows, scale="linear"))["flops"]
    assert _span(linear, _gid(linear, "data")["global_filter"]) < 0.01  # flat at zero
    gf, att = _gid(default, "data")["global_filter"], _gid(default, "data")["attention"]
    assert _span(default, gf) > 0.25 and _span(default, att) > 0.5
    # on log-log the slope in the panel is the exponent: N² climbs about twice as steeply
    assert 1.6 < _span(default, att) / _span(default, gf) < 2.4


def test_a_non_square_grid_is_its_own_series_and_gets_no_tick(tmp_path):
    rows = [mixer_row("global_filter", s) for s in (14, 28, 42, 56)]
    rows.append(mixer_row("global_filter", 20, 40))  # 800 tokens, beside 28² = 784
    figure = _mixer_figure(tmp_path, rows)
    for ax in _panels(figure).values():
        lines = _gid(ax, "data")
        assert sorted(lines) == ["global_filter", "global_filter (H:W 1:2)"]
        square, wide = lines["global_filter"], lines["global_filter (H:W 1:2)"]
        np.testing.assert_array_equal(square.get_xdata(), [196, 784, 1764, 3136])
        np.testing.assert_array_equal(wide.get_xdata(), [800])
        assert wide.get_linestyle() == "None" and wide.get_marker() == square.get_marker()
        assert wide.get_color() == square.get_color()
        assert list(ax.get_xticks()) == [196, 784, 1764, 3136]
        assert [t.get_text() for t in ax.get_xticklabels()] == ["14²", "28²", "42²", "56²"]


def test_only_non_square_grids_label_their_points_plainly(tmp_path):
    rows = [mixer_row("global_filter", s, 2 * s) for s in (8, 16, 32)]
    ax = _panels(_mixer_figure(tmp_path, rows))["flops"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["128", "512", "2048"]


def test_memory_is_in_mib_like_the_tables(gpu_figure):
    ax = _panels(gpu_figure)["memory"]
    assert ax.get_ylabel() == "memory (MiB)"
    line = _gid(ax, "data")["gfnet-xs"]
    rows = [r for r in gpu_rows() if r.name == "gfnet-xs"]
    np.testing.assert_allclose(line.get_ydata(), [r.peak_mem_bytes / 2**20 for r in rows])


def test_train_mode_says_its_flops_are_of_both_passes(tmp_path):
    rows = [model_row("gfnet-xs", r) for r in (224, 320)]
    for row in rows:
        row.mode = "train"
    figure = _figure(_frame(tmp_path, rows))
    titles = [ax.get_title() for ax in figure.figure.axes if ax.get_title()]
    assert "FLOPs per image, forward + backward" in titles and "FLOPs per image" not in titles


def test_rows_without_tokens_plot_against_resolution_and_the_axis_says_why(tmp_path):
    cnn = [model_row("resnet50", r) for r in (224, 320, 448)]
    for row in cnn:
        row.tokens = 0  # a CNN has no token mixer
    figure = _figure(_frame(tmp_path, gpu_rows() + cnn))
    assert figure.stem.endswith("-resolution")
    for ax in _panels(figure).values():
        assert "input resolution (px), not tokens" in ax.get_xlabel()
        assert "resnet50 has no token count" in ax.get_xlabel()
        np.testing.assert_allclose(_gid(ax, "data")["resnet50"].get_xdata(), [224, 320, 448])
    # exponents are fitted on pixels, which grow as tokens do for a fixed patch size
    fits = {(f.curve, f.metric): f for f in figure.fits}
    assert fits[("gfnet-xs", "flops")].fitted_on == "pixels"
    assert fits[("gfnet-xs", "flops")].k == pytest.approx(1.0, abs=0.02)
    assert "N = input pixels H·W" in figure.figure.get_supxlabel()


def test_models_with_different_token_strides_share_no_token_axis(tmp_path):
    pyramid = [model_row("gfnet-h-ti", r) for r in (224, 320)]
    for row in pyramid:
        row.tokens = (row.res_h // 4) ** 2  # the first stage of a pyramid: stride 4
    figure = _figure(_frame(tmp_path, [model_row("deit-s", r) for r in (224, 320)] + pyramid))
    xlabel = _panels(figure)["flops"].get_xlabel()
    assert "count tokens at different strides" in xlabel
    same = _figure(_frame(tmp_path / "same", [model_row("deit-s", r) for r in (224, 320)]
                          + [model_row("gfnet-xs", r) for r in (224, 320)]))
    assert _panels(same)["flops"].get_xlabel().startswith("tokens N")


def test_text_stays_legible_at_the_width_the_html_report_shows(gpu_figure):
    """Figures are shown at most at their natural size (96 px per inch) in a page of 1400 px."""
    figure = gpu_figure.figure
    natural_px = figure.get_figwidth() * 96
    shown = min(1.0, (1400 - 2 * 16) / natural_px)
    sizes = [t.get_fontsize() for t in figure.findobj(Text) if t.get_text().strip()]
    assert sizes and min(sizes) * 96 / 72 * shown >= 11.0  # px, at least ~8 pt on screen
    assert natural_px <= 1400 - 2 * 16  # never shrunk


def test_rows_of_different_batch_sizes_never_share_a_line(tmp_path):
    rows = gpu_rows() + [model_row(n, r, batch=64) for n in ("gfnet-xs",) for r in (224, 320)]
    groups = settings_of(_frame(tmp_path, rows))
    assert sorted((s.batch_size, len(r)) for _, s, r in groups) == [(8, 10), (64, 2)]
    for _, setting, frame in groups:
        assert set(frame["batch_size"]) == {setting.batch_size}


def test_throughput_against_batch_one_panel_per_size_one_line_per_model(tmp_path):
    from gfbench.plot.batch import batch_figure, batch_settings

    rows = [model_row(n, r, batch=b, oom=(n == "deit-s" and r == 320 and b == 32))
            for n in ("gfnet-xs", "deit-s") for r in (224, 320) for b in (1, 8, 32)]
    (setting, frame), = batch_settings(_frame(tmp_path, rows))
    assert (setting.subject, setting.precision) == ("model", "fp16")
    with style_context():
        figure = batch_figure(setting, frame)
    assert figure.stem == "throughput-batch-models-nvidia-h100-80gb-hbm3-fp16-inference"
    panels = {ax.get_title(): ax for ax in figure.figure.axes if ax.get_title()}
    assert sorted(panels) == ["224 px input", "320 px input"]
    for title, ax in panels.items():
        res = int(title.split()[0])
        assert ax.get_xscale() == "log" and list(ax.get_xticks()) == [1, 8, 32]
        assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "8", "32"]
        assert ax.get_ylabel() == "images / s"
        for name, line in _gid(ax, "data").items():
            expected = [r for r in rows if r.name == name and r.res_h == res and r.status == "ok"]
            np.testing.assert_allclose(line.get_xdata(), [r.batch_size for r in expected])
            np.testing.assert_allclose(line.get_ydata(), [r.throughput_ips for r in expected])
    np.testing.assert_allclose(_gid(panels["320 px input"], "oom")["deit-s"].get_xdata(), [32])
    one_batch = _frame(tmp_path / "one", gpu_rows())
    assert batch_settings(one_batch) == []  # a single batch size: no such figure


def test_count_labels_keep_enough_digits_to_tell_ticks_apart(gpu_figure, gpu_frame):
    # parameters of the synthetic models span 16.002M to 16.016M: '16M' on every tick says
    # nothing, so the labels carry the digits that differ
    for figure in (gpu_figure, _figure(gpu_frame, scale="linear")):
        ax = _panels(figure)["params"]
        figure.figure.draw_without_rendering()
        labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
        assert len(labels) >= 2 and len(set(labels)) == len(labels), labels
    assert si_text(623_616) == "624k" and si_text(2.5e9) == "2.5G" and si_text(12) == "12"
    assert prefix_digits(16.0e6, 16.004e6) == 6 and prefix_digits(1e6, 1e9) == 3


def test_noisy_timings_get_no_exponent_no_estimate_and_say_why(tmp_path):
    rows = [model_row("gfnet-xs", res) for res in RESOLUTIONS[:3]]
    rows += [model_row("deit-s", 224), model_row("deit-s", 320), model_row("deit-s", 448),
             model_row("deit-s", 576, oom=True)]
    for row in rows[3:6]:  # deit-s: repeats spread ±40%, too wide to fix k
        row.latency_ms_p10, row.latency_ms_p90 = 0.6 * row.latency_ms_p50, 1.4 * row.latency_ms_p50
    figure = _figure(_frame(tmp_path, rows))
    latency = _panels(figure)["latency"]
    texts = " ".join(t.get_text() for t in latency.get_legend().get_texts())
    assert "deit-s  (k: noisy)" in texts and re.search(r"gfnet-xs  ∝N\$\^\{[\d.]+\}\$ \[", texts)
    assert _gid(latency, "estimate") == {} and "deit-s" in _gid(latency, "oom")
    record = next(f for f in figure.fits if (f.curve, f.metric) == ("deit-s", "latency"))
    assert record.noisy.startswith("noisy: p10–p90 allow k ")
    assert "noisy: the timings cannot fix k" in figure.figure.get_supxlabel()


def test_the_fits_table_shows_r2_only_where_three_or_more_points_were_fitted(gpu_figure):
    from gfbench.plot.make import fits_table

    table = fits_table(gpu_figure)
    points = table["points fitted"].astype(int)
    assert (points == 2).any() and (points >= 3).any()  # the synthetic run has both
    assert (table.loc[points == 2, "r² (log-log)"] == "").all()
    assert (table.loc[points >= 3, "r² (log-log)"] != "").all()


def test_the_deploy_form_is_a_curve_of_its_own(tmp_path):
    from gfbench.plot.complexity import curves_of

    rows = [model_row("repvgg_a0", res) for res in RESOLUTIONS]
    fused = [model_row("repvgg_a0", res, scale=0.8) for res in RESOLUTIONS]
    for row in fused:
        row.reparam = True
    frame = _frame(tmp_path, rows + fused)
    assert sorted(c.label for c in curves_of(frame)) == ["repvgg_a0", "repvgg_a0 reparam"]
