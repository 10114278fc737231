"""Complexity figures, read back from the matplotlib objects: data, estimates, exponents, ticks."""

from __future__ import annotations

import re

import numpy as np
import pytest
from plot_synthetic import GPU, RESOLUTIONS, gpu_rows, model_row, write_complexity

from gfbench.measure.scaling import fit_exponent
from gfbench.plot.complexity import METRICS, complexity_figure, token_label
from gfbench.plot.load import complexity_frame, load_results, settings_of
from gfbench.plot.style import OKABE_ITO, colour_for, marker_for, style_context

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


def test_log_variant_is_log_log_with_plain_labels(gpu_frame):
    figure = _figure(gpu_frame, log=True)
    assert figure.stem.endswith("-loglog") and "log-log" in figure.title
    figure.figure.draw_without_rendering()
    for ax in _panels(figure).values():
        assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
        assert not any("times" in t.get_text() or "^" in t.get_text()
                       for t in ax.get_yticklabels())


def test_reference_slopes_follow_n_log_n_and_n_squared_without_rescaling(gpu_frame, gpu_figure):
    figure = _figure(gpu_frame, ref_slopes=True)
    plain, with_refs = _panels(gpu_figure)["flops"], _panels(figure)["flops"]
    assert with_refs.get_ylim() == plain.get_ylim()
    refs = _gid(with_refs, "ref")
    assert sorted(refs) == ["N log N", "N²"]
    x, y = refs["N²"].get_xdata(), refs["N²"].get_ydata()
    np.testing.assert_allclose(y / y[0], (x / x[0]) ** 2)
    x, y = refs["N log N"].get_xdata(), refs["N log N"].get_ydata()
    np.testing.assert_allclose(y / y[0], x * np.log2(x) / (x[0] * np.log2(x[0])))
    assert _gid(_panels(figure)["params"], "ref") == {}


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


def test_colours_are_okabe_ito_fixed_per_family_and_markers_tell_variants_apart(gpu_figure):
    line = _gid(_panels(gpu_figure)["flops"], "data")
    assert line["gfnet-xs"].get_color() == colour_for("gfnet-xs") == OKABE_ITO["blue"]
    assert line["deit-s"].get_color() == colour_for("deit_small_patch16_224")
    assert colour_for("global_filter") == colour_for("gfnet-h-b")
    assert colour_for("attention") != colour_for("attention_explicit")
    assert colour_for("some-new-model") == colour_for("some-new-model")
    assert marker_for("gfnet-ti") != marker_for("gfnet-xs") != marker_for("gfnet-b")
    assert marker_for("global_filter", "fast") != marker_for("global_filter", "reference")


def test_every_setting_gets_its_own_figure_with_the_setting_in_its_title(tmp_path):
    rows = gpu_rows() + [model_row("gfnet-xs", r, precision="bf16") for r in (224, 320)]
    groups = settings_of(_frame(tmp_path, rows))
    assert [(s.precision, len(r)) for _, s, r in groups] == [("bf16", 2), ("fp16", 10)]
    with style_context():
        title = complexity_figure(*groups[0]).title
    assert f"{GPU} · batch 8 · bf16" in title


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
