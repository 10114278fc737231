"""Roofline figures, read back from the matplotlib objects: ceilings, points, ratios, labels."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from plot_synthetic import gpu_rows, mixer_row, provenance, write_complexity

from gfbench.plot.load import settings_of
from gfbench.plot.make import PlotOptions, make_plots
from gfbench.plot.roofline import (
    NO_CEILING,
    Ceilings,
    ceilings_for,
    roofline_figure,
    roofline_problem,
    setting_ceilings,
)
from gfbench.plot.style import style_context
from gfbench.results import ResultsWriter
from gfbench.results.frame import complexity_frame, load_results

CEILINGS = {"source": "measured", "device": "cpu", "device_name": "cpu: Test CPU 9000",
            "threads": 2,
            "matmul_flops_s": {"fp32": {"p10": 9.0e10, "p50": 1.0e11, "p90": 1.1e11}},
            "bandwidth_bytes_s": {"copy": {"p10": 1.0e10, "p50": 1.2e10, "p90": 1.3e10},
                                  "triad": {"p10": 0.9e10, "p50": 1.0e10, "p90": 1.1e10}},
            "bandwidth_used": "triad"}
SIDES = (14, 28, 56)


def _rows(precision: str = "fp32"):
    """global_filter and attention rows with bytes; the attention rows store their achieved
    FLOP/s and a roofline ratio (as the roofline work writes them), the global filter's not."""
    rows = []
    for name in ("global_filter", "attention"):
        for side in SIDES:
            row = mixer_row(name, side)
            n, d = side * side, row.dim
            row = dataclasses.replace(row, precision=precision,
                                      bytes=40.0 * n * d if name == "global_filter"
                                      else 12.0 * n * d + 4.0 * n * n)
            if name == "attention":
                row.achieved_flops_s = 1.0e9 * side
                row.roofline_ratio = 2.0 + side / 14
            rows.append(row)
    return rows


def _write(folder, rows, ceilings):
    prov = provenance("complexity", device_name="cpu: Test CPU 9000")
    if ceilings is not None:
        prov.extra["ceilings"] = ceilings
    writer = ResultsWriter(folder / "run", prov)
    for row in rows:
        writer.add(row)
    writer.flush()
    return writer.json_path


def _figure(tmp_path, rows=None, ceilings=CEILINGS):
    path = _write(tmp_path, rows or _rows(), ceilings)
    frame = complexity_frame(load_results([tmp_path]).runs, [])
    (subject, setting, table), = settings_of(frame)
    measured, why = setting_ceilings(table, {str(path): ceilings}, setting.precision)
    with style_context():
        return roofline_figure(subject, setting, table, measured, why or NO_CEILING)


def _gids(figure, kind):
    found = {}
    for ax in figure.figure.axes:
        for artist in [*ax.lines, *ax.texts]:
            parts = (artist.get_gid() or "").split("|")
            if parts[0] == kind:
                found["|".join(parts[1:])] = artist
    return found


def test_ceilings_are_the_measured_medians(tmp_path):
    figure = _figure(tmp_path)
    lines = _gids(figure, "ceiling")
    flat, slope = lines["compute|fp32"], lines["bandwidth|triad"]
    assert np.all(flat.get_ydata() == 1.0e11)
    x, y = slope.get_xdata(), slope.get_ydata()
    assert y / x == pytest.approx(np.full(len(x), 1.0e10), rel=1e-12)
    ridge = 1.0e11 / 1.0e10  # FLOPs per byte where the two meet
    assert x[-1] == pytest.approx(ridge) and flat.get_xdata()[0] == pytest.approx(ridge)
    assert flat.get_label() == "measured fp32 matmul 100GFLOP/s (median)"
    assert slope.get_label() == "measured triad bandwidth 10GB/s (median)"


def test_markers_sit_at_each_rows_intensity_and_rate(tmp_path):
    figure = _figure(tmp_path)
    points = _gids(figure, "point")
    rows = _rows()
    for name in ("global_filter", "attention"):
        mine = [r for r in rows if r.name == name]
        line = points[name]
        assert list(line.get_xdata()) == pytest.approx([r.flops / r.bytes for r in mine])
        expected = ([r.achieved_flops_s for r in mine] if name == "attention" else
                    [r.flops * r.batch_size * 1000.0 / r.latency_ms_p50 for r in mine])
        assert list(line.get_ydata()) == pytest.approx(expected)
    labels = sorted(t.get_text() for key, t in _gids(figure, "size").items()
                    if key.startswith("global_filter"))
    assert labels == ["14²", "28²", "56²"]


def test_ratio_points_are_the_stored_ratios_against_tokens(tmp_path):
    figure = _figure(tmp_path)
    ratios = _gids(figure, "ratio")
    assert set(ratios) == {"attention"}  # the global filter rows store none
    assert list(ratios["attention"].get_xdata()) == [s * s for s in SIDES]
    assert list(ratios["attention"].get_ydata()) == pytest.approx([2.0 + s / 14 for s in SIDES])
    assert figure.figure.axes[1].get_yscale() == "log"


def test_no_ceilings_draw_points_alone_and_say_so(tmp_path):
    figure = _figure(tmp_path, ceilings=None)
    assert _gids(figure, "ceiling") == {}
    assert _gids(figure, "point")  # the points are still there
    assert NO_CEILING in _gids(figure, "note")


def test_a_precision_without_its_ceiling_draws_bandwidth_only(tmp_path):
    figure = _figure(tmp_path, rows=_rows("bf16"))
    assert set(_gids(figure, "ceiling")) == {"bandwidth|triad"}
    assert "no bf16 matmul ceiling measured" in _gids(figure, "note")


def test_ceilings_tolerate_missing_keys():
    assert ceilings_for(None, "fp32") is None
    assert ceilings_for({}, "fp32") is None
    assert ceilings_for({"matmul_flops_s": {"fp32": {"p10": 1.0}}}, "fp32") is None
    assert ceilings_for({"bandwidth_bytes_s": {"triad": {"p50": 5.0}}}, "fp32") == \
        Ceilings(compute=None, bandwidth=5.0, precision="fp32", bandwidth_kind="triad")
    assert ceilings_for(CEILINGS, "fp32").ridge == pytest.approx(10.0)


def test_rows_without_bytes_or_timings_have_no_roofline(tmp_path):
    write_complexity(tmp_path / "old", gpu_rows())
    frame = complexity_frame(load_results([tmp_path]).runs, [])
    assert roofline_problem(frame).startswith("no bytes counted")
    assert roofline_problem(frame.assign(latency_ms_p50=None)) == "not timed"


def test_plot_adds_the_roofline_and_crossovers_to_the_report(tmp_path):
    _write(tmp_path / "new", _rows(), CEILINGS)
    write_complexity(tmp_path / "old" / "run", gpu_rows())
    report = make_plots([tmp_path], PlotOptions(out=tmp_path / "plots", formats=("png",)))
    names = [p.name for p in report.figures]
    assert any(n.startswith("roofline-mixers-") for n in names)
    assert not any(n.startswith("roofline-models-") for n in names)
    assert any("no roofline figure (no bytes counted" in note for note in report.notes)
    page = (tmp_path / "plots" / "report.html").read_text()
    assert "Roofline · Token mixers" in page
    assert "Crossovers: the N where the global filter" in page
    # gfnet-xs (N^1) against deit-s (N^1.5) in the synthetic GPU run: FLOPs 2e9 (N/196)^k
    # never cross (equal at N=196, then apart), latency neither; the verdicts say so
    markdown = (tmp_path / "plots" / "report.md").read_text()
    assert "gfnet-xs below deit-s at every other size (equal at N=196)" in markdown


def test_a_run_that_timed_nothing_gets_no_roofline_note(tmp_path):
    counted = [dataclasses.replace(row, latency_ms_p10=None, latency_ms_p50=None,
                                   latency_ms_p90=None) for row in _rows()]
    _write(tmp_path / "counted", counted, None)
    report = make_plots([tmp_path], PlotOptions(out=tmp_path / "plots", formats=("png",)))
    assert not any(p.name.startswith("roofline-") for p in report.figures)
    assert not any("roofline" in note for note in report.notes)
