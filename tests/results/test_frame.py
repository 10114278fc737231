"""Results as tables: the one key end to end, runs kept apart, --combine checked."""

from __future__ import annotations

import dataclasses

import pytest

from gfbench.compare import compare_runs
from gfbench.errors import CombineError
from gfbench.plot.load import settings_of
from gfbench.results import ComplexityRow, Provenance, ResultsWriter
from gfbench.results.frame import complexity_frame, load_results, provenance_values


def _provenance(**changes) -> Provenance:
    base = Provenance(kind="complexity", command="gfbench complexity", date="2026-01-01",
                      gfbench_version="0.1.0", python_version="3.11", torch_version="2.14.1",
                      timm_version="1.0", fvcore_version="0.1.5", platform="Linux",
                      cpu_model="Test CPU", cpu_threads=2, torch_threads=2,
                      device_name="cpu: Test CPU", cuda_version="", driver_version="",
                      tf32_matmul=False, cudnn_benchmark=False)
    return dataclasses.replace(base, **changes)


def _row(optimizer: str, p50: float, res: int = 224) -> ComplexityRow:
    return ComplexityRow(subject="model", name="deit-s", res_h=res, res_w=res, tokens=196,
                         batch_size=8, precision="fp32", mode="train", device="cpu",
                         optimizer=optimizer, flops=4.6e9, params=22_000_000,
                         latency_ms_p10=0.9 * p50, latency_ms_p50=p50,
                         latency_ms_p90=1.1 * p50, throughput_ips=8000 / p50)


def _write(stem, rows, **changes):
    with ResultsWriter(stem, _provenance(**changes)) as writer:
        writer.extend(rows)
    return writer.json_path


def test_an_sgd_and_an_adamw_row_stay_two_rows_in_writer_plot_and_compare(tmp_path):
    rows = [_row("sgd", 100.0), _row("adamw", 130.0)]
    a = _write(tmp_path / "a", rows)
    b = _write(tmp_path / "b", [_row("sgd", 50.0), _row("adamw", 65.0)])
    assert len(load_results([a]).runs[0].frame) == 2  # the writer kept both
    notes: list[str] = []
    frame = complexity_frame(load_results([a]).runs, notes)
    assert sorted(frame["optimizer"]) == ["adamw", "sgd"] and notes == []  # no "measured again"
    (_, _, plotted), = settings_of(frame)
    assert len(plotted) == 2
    comparison = compare_runs(a, b)
    ratios = {s.optimizer: next(m.ratio for m in s.metrics if m.metric == "latency_ms_p50")
              for s in comparison.settings}
    assert ratios == {"sgd": pytest.approx(0.5), "adamw": pytest.approx(0.5)}


def test_runs_are_apart_by_default_and_combine_joins_them(tmp_path):
    first = _write(tmp_path / "0001-x", [_row("sgd", 100.0, 224)])
    second = _write(tmp_path / "0002-x", [_row("sgd", 200.0, 384)], date="2026-02-01")
    runs = load_results([first, second]).runs
    apart = settings_of(complexity_frame(runs, []))
    assert [len(rows) for _, _, rows in apart] == [1, 1]
    joined = settings_of(complexity_frame(runs, [], combine=True))
    assert [len(rows) for _, _, rows in joined] == [2]


@pytest.mark.parametrize("field, value", [("torch_version", "2.15.0"),
                                          ("gfbench_version", "0.2.0"),
                                          ("device_name", "cpu: Other CPU")])
def test_combine_refuses_runs_of_other_machines_or_versions_in_one_line(tmp_path, field, value):
    first = _write(tmp_path / "a", [_row("sgd", 100.0, 224)])
    second = _write(tmp_path / "b", [_row("sgd", 100.0, 384)], **{field: value})
    runs = load_results([first, second]).runs
    with pytest.raises(CombineError) as info:
        complexity_frame(runs, [], combine=True)
    assert "\n" not in str(info.value) and field in str(info.value)
    assert len(complexity_frame(runs, [])) == 2  # apart, they plot


def test_rows_of_another_cpu_are_another_setting_even_combined(tmp_path):
    first = _write(tmp_path / "a", [_row("sgd", 100.0, 224)])
    second = _write(tmp_path / "b", [_row("sgd", 100.0, 384)], cpu_model="Other CPU")
    groups = settings_of(complexity_frame(load_results([first, second]).runs, [], combine=True))
    assert sorted(s.device for _, s, _ in groups) == ["cpu: Other CPU", "cpu: Test CPU"]


def test_combine_warns_once_when_threads_or_load_differ(tmp_path):
    first = _write(tmp_path / "a", [_row("sgd", 100.0, 224)])
    second = _write(tmp_path / "b", [_row("sgd", 100.0, 384)], torch_threads=1,
                    extra={"load_average_at_start": [7.5, 3.0, 1.0]})
    notes: list[str] = []
    frame = complexity_frame(load_results([first, second]).runs, notes, combine=True)
    assert len(frame) == 2
    assert len([n for n in notes if "torch_threads (2 vs 1)" in n]) == 1
    assert len([n for n in notes if "busy machine (load 7.50 above its 2 cores)" in n]) == 1


def test_the_load_average_is_among_the_provenance_values():
    values = provenance_values(_provenance(extra={"load_average_at_start": [1.25, 1.0, 0.5]}))
    assert values["load average at start"] == "1.25"
    assert values["CPU threads (torch)"] == "2"
