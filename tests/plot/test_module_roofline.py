"""The breakdown's per-module roofline, read back from the matplotlib objects: one marker per
timed row at (flops / bytes, achieved FLOP/s), coloured by role, the run's ceilings drawn."""

from __future__ import annotations

import numpy as np
from matplotlib.colors import to_rgba
from plot_synthetic import provenance

from gfbench.plot.breakdown import ROLE_COLOURS
from gfbench.plot.make import PlotOptions, make_plots
from gfbench.plot.module_roofline import module_roofline_figure, run_ceilings
from gfbench.plot.style import style_context
from gfbench.results import BreakdownRow, ResultsWriter
from gfbench.results.frame import load_results

CEILINGS = {"source": "measured", "device": "cpu",
            "matmul_flops_s": {"fp32": {"p10": 9.0e10, "p50": 1.0e11, "p90": 1.1e11}},
            "bandwidth_bytes_s": {"triad": {"p10": 0.9e10, "p50": 1.0e10, "p90": 1.1e10}},
            "bandwidth_used": "triad"}
# (module, role, flops, bytes, achieved MAC/s): a filter low on the slope, an MLP near the roof
ROWS = {"gfnet-xs": [("blocks.0.filter", "token_mixer", 10**6, 4 * 10**6, 2.0e9),
                     ("blocks.0.mlp", "channel_mlp", 6 * 10**7, 10**7, 6.0e10)],
        "deit-s": [("blocks.0.attn", "token_mixer", 5 * 10**7, 10**7, 4.0e10),
                   ("blocks.0.norm1", "norm", 10**5, 2 * 10**5, 1.0e9)]}


def _row(name: str, module: str, role: str, flops: int, moved: int, achieved: float,
         timed: bool = True) -> BreakdownRow:
    latency = flops * 8 * 1000.0 / achieved
    return BreakdownRow(name=name, res_h=224, res_w=224, tokens=196, engine="torch", depth=3,
                        module=module, own=False, group=role, flops=flops, bytes=moved,
                        batch_size=8, device="cpu",
                        time_method="forward hooks, perf_counter_ns" if timed else "",
                        latency_ms_p50=latency if timed else None,
                        achieved_flops_s=achieved if timed else None)


def _write(folder, timed: bool = True):
    prov = provenance("breakdown", device_name="cpu: Test CPU 9000")
    prov.extra["ceilings"] = CEILINGS
    writer = ResultsWriter(folder / "0001-breakdown-d3-torch-cpu-b8", prov)
    for name, rows in ROWS.items():
        for row in rows:
            writer.add(_row(name, *row, timed=timed))
    writer.flush()
    return writer.json_path


def test_the_points_are_the_rows_intensity_and_achieved_rate(tmp_path):
    run = load_results([_write(tmp_path)]).runs[0]
    ceilings = run_ceilings(run.provenance, "cpu")
    assert ceilings.compute == 1.0e11 and ceilings.bandwidth == 1.0e10
    with style_context():
        figure = module_roofline_figure(run.frame, ceilings, "stem")
    axes = figure.figure.axes
    found = {}
    for ax in axes:
        for collection in ax.collections:
            _, name, role = collection.get_gid().split("|")
            found[(name, role)] = collection.get_offsets().data.tolist()
            assert np.allclose(collection.get_facecolor()[0], to_rgba(ROLE_COLOURS[role]))
    expected = {(name, role): [[flops / moved, achieved]]
                for name, rows in ROWS.items() for _, role, flops, moved, achieved in rows}
    assert found.keys() == expected.keys()
    for key, points in expected.items():
        assert np.allclose(found[key], points, rtol=1e-9)
    lines = {line.get_gid() for ax in axes for line in ax.lines}
    assert {"ceiling|bandwidth|triad", "ceiling|compute|fp32"} <= lines
    assert [ax.get_title() for ax in axes if ax.get_title()] == ["gfnet-xs", "deit-s"]


def test_plot_draws_it_for_timed_runs_only(tmp_path):
    _write(tmp_path / "timed")
    _write(tmp_path / "counted", timed=False)
    report = make_plots([tmp_path], PlotOptions(out=tmp_path / "plots", formats=("png",)))
    names = [p.name for p in report.figures if p.name.startswith("module-roofline-")]
    assert names == ["module-roofline-0001-breakdown-d3-torch-cpu-b8-224x224.png"]
    assert "Per-module roofline (gfbench breakdown --time)" in (
        tmp_path / "plots" / "report.md").read_text()
