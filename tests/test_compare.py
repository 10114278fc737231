"""gfbench compare: pairing, ratios B/A worked out by hand, spread marks, provenance, bad input."""

from __future__ import annotations

import dataclasses
import json
import sys

import pytest
from typer.testing import CliRunner

from gfbench.cli import app, main
from gfbench.compare import (
    BEYOND,
    DIFFERS,
    NOT_JUDGED,
    ONE_SIDE,
    SAME,
    WITHIN,
    compare_runs,
)
from gfbench.errors import GfbenchError
from gfbench.results import ComplexityRow, Provenance, ResultsWriter, RobustnessRow

runner = CliRunner()


def _provenance(kind="complexity", device_name="cpu: Test CPU", torch="2.14.1",
                command="gfbench complexity --models gfnet-xs") -> Provenance:
    return Provenance(kind=kind, command=command, date="2026-01-01T00:00:00+00:00",
                      gfbench_version="0.1.0", python_version="3.11.2", torch_version=torch,
                      timm_version="1.0.31", fvcore_version="0.1.5", platform="Linux",
                      cpu_model="Test CPU", cpu_threads=2, torch_threads=2,
                      device_name=device_name, cuda_version="", driver_version="",
                      tf32_matmul=False, cudnn_benchmark=False)


def _row(name="gfnet-xs", res=224, *, p50=10.0, spread=(0.9, 1.1), flops=2.0e9, batch=4,
         device="cpu", mem=1e8, status="ok", **fields) -> ComplexityRow:
    timed = status == "ok"
    return ComplexityRow(subject="model", name=name, res_h=res, res_w=res,
                         tokens=(res // 16) ** 2, batch_size=batch, precision="fp32",
                         mode="infer", device=device, status=status, flops=flops,
                         params=16_000_000,
                         latency_ms_p10=p50 * spread[0] if timed else None,
                         latency_ms_p50=p50 if timed else None,
                         latency_ms_p90=p50 * spread[1] if timed else None,
                         throughput_ips=batch * 1000.0 / p50 if timed else None,
                         peak_mem_bytes=mem if timed else None, **fields)


def _write(stem, rows, **provenance):
    writer = ResultsWriter(stem, _provenance(**provenance))
    for row in rows:
        writer.add(row)
    return writer.json_path


def _metric(setting, name):
    return next(m for m in setting.metrics if m.metric == name)


def test_a_run_compared_with_itself_is_all_ones_and_nothing_is_marked(tmp_path):
    path = _write(tmp_path / "a", [_row(res=r) for r in (224, 320)])
    comparison = compare_runs(path, path.with_suffix(".csv"))
    assert len(comparison.settings) == 2 and comparison.marked == 0
    assert comparison.only_a == comparison.only_b == 0 and comparison.differences == ()
    for setting in comparison.settings:
        assert {m.ratio for m in setting.metrics} == {1.0}
        assert {m.metric: m.verdict for m in setting.metrics} == {
            "flops": SAME, "params": SAME, "latency_ms_p50": WITHIN, "throughput_ips": WITHIN,
            "peak_mem_bytes": NOT_JUDGED}


def test_ratios_are_b_over_a_and_marks_follow_the_spread(tmp_path):
    a = _write(tmp_path / "a", [_row(res=224, p50=10.0, spread=(0.95, 1.05)),
                                _row(res=320, p50=20.0, spread=(0.5, 1.5)),
                                _row(res=448, p50=40.0)])
    b = _write(tmp_path / "b", [_row(res=224, p50=20.0, spread=(0.95, 1.05), mem=3e8),
                                _row(res=320, p50=21.0, spread=(0.5, 1.5), flops=2.0e9 + 1),
                                _row(res=448, status="oom")])
    by_res = {s.side_h: s for s in compare_runs(a, b).settings}
    # 224: twice as slow, p10-p90 of 9.5-10.5 ms against 19-21 ms: beyond the spread
    latency = _metric(by_res[224], "latency_ms_p50")
    assert (latency.a, latency.b, latency.ratio, latency.verdict) == (10.0, 20.0, 2.0, BEYOND)
    throughput = _metric(by_res[224], "throughput_ips")
    assert throughput.ratio == pytest.approx(0.5) and throughput.verdict == BEYOND
    memory = _metric(by_res[224], "peak_mem_bytes")
    assert memory.ratio == pytest.approx(3.0) and memory.verdict == NOT_JUDGED
    assert not memory.marked
    # 320: 5 % slower inside wide intervals (10-30 ms, 10.5-31.5 ms): not marked; one FLOP more
    # is a difference, since FLOPs are counted
    assert _metric(by_res[320], "latency_ms_p50").verdict == WITHIN
    flops = _metric(by_res[320], "flops")
    assert flops.verdict == DIFFERS and flops.marked and flops.ratio == pytest.approx(1.0)
    # 448: B ran out of memory, so it has counted values and no latency
    assert by_res[448].status_b == "oom"
    assert _metric(by_res[448], "latency_ms_p50").verdict == ONE_SIDE
    assert _metric(by_res[448], "flops").verdict == SAME


def test_runs_on_different_devices_pair_and_their_differences_are_listed(tmp_path):
    a = _write(tmp_path / "a", [_row(res=r) for r in (224, 320, 448)])
    b = _write(tmp_path / "b", [_row(res=r, device="cuda", compile=True) for r in (224, 320)],
               device_name="NVIDIA H100 80GB HBM3", torch="2.15.0",
               command="gfbench complexity --models gfnet-xs --compile")
    comparison = compare_runs(a, b)
    assert len(comparison.settings) == 2 and comparison.only_a == 1 and comparison.only_b == 0
    differences = {d.field: (d.a, d.b) for d in comparison.differences}
    assert differences["device"] == ("cpu: Test CPU", "NVIDIA H100 80GB HBM3")
    assert differences["torch"] == ("2.14.1", "2.15.0")
    assert differences["compile"] == ("False", "True")
    assert differences["command"][1].endswith("--compile")
    assert "python" not in differences and "timm" not in differences


def test_folders_holding_several_runs_pair_rows_measured_alike(tmp_path):
    for side, factor in (("a", 1.0), ("b", 3.0)):
        _write(tmp_path / side / "cpu", [_row(p50=10.0 * factor)])
        _write(tmp_path / side / "gpu", [_row(p50=1.0, device="cuda")],
               device_name="NVIDIA H100 80GB HBM3")
    comparison = compare_runs(tmp_path / "a", tmp_path / "b", combine=True)
    ratios = sorted(_metric(s, "latency_ms_p50").ratio for s in comparison.settings)
    assert ratios == [pytest.approx(1.0), pytest.approx(3.0)]  # cpu with cpu, gpu with gpu
    assert len(comparison.a_files) == 2 and comparison.differences == ()
    apart = compare_runs(tmp_path / "a", tmp_path / "b")  # each run of A with each run of B
    assert sorted((s.run_a, s.run_b) for s in apart.settings) == [
        ("cpu.json", "cpu.json"), ("cpu.json", "gpu.json"), ("gpu.json", "cpu.json"),
        ("gpu.json", "gpu.json")]


def test_no_setting_in_common_is_one_line(tmp_path):
    a = _write(tmp_path / "a", [_row(res=224)])
    b = _write(tmp_path / "b", [_row(res=320), _row(res=224, batch=8)])
    with pytest.raises(GfbenchError) as caught:
        compare_runs(a, b)
    message = str(caught.value)
    assert "\n" not in message and "have no setting in common" in message
    assert "A has 1 row(s), B has 2" in message


def test_inputs_without_complexity_rows_are_one_line(tmp_path):
    a = _write(tmp_path / "a", [_row()])
    writer = ResultsWriter(tmp_path / "rob", _provenance(kind="robustness"))
    writer.add(RobustnessRow(model="m", checkpoint="c", source="clean", corruption="clean",
                             severity=0, images=10, correct_top1=5, correct_top5=9))
    (tmp_path / "junk.json").write_text("{ not json")
    for other in (writer.json_path, tmp_path / "junk.json", tmp_path / "absent"):
        with pytest.raises(GfbenchError, match="holds no complexity results to compare"):
            compare_runs(a, other)


def _main(monkeypatch, *args):
    monkeypatch.setattr(sys, "argv", ["gfbench", "compare", *map(str, args)])
    with pytest.raises(SystemExit) as caught:
        main()
    return caught.value.code


def test_cli_no_common_setting_exits_1_with_one_red_line(monkeypatch, capsys, tmp_path):
    a = _write(tmp_path / "a", [_row(res=224)])
    b = _write(tmp_path / "b", [_row(res=320)])
    assert _main(monkeypatch, a, b) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "no setting in common" in err[0]


def test_cli_table_marks_what_is_beyond_the_spread_and_lists_differences(tmp_path):
    a = _write(tmp_path / "a", [_row(res=224, p50=10.0), _row(res=320, p50=20.0)])
    b = _write(tmp_path / "b", [_row(res=224, p50=5.0), _row(res=320, p50=20.5)],
               torch="2.15.0")
    result = runner.invoke(app, ["compare", str(a), str(b)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    row_224 = next(line for line in lines if line.startswith("gfnet-xs") and " 224 " in line)
    row_320 = next(line for line in lines if line.startswith("gfnet-xs") and " 320 " in line)
    assert "0.500x *" in row_224 and "2.00x *" in row_224  # latency halved, throughput doubled
    assert "1.02x" in row_320 and "*" not in row_320
    assert "2 setting(s) in common, 2 value(s) marked" in result.output
    assert "B/A per setting both runs measured (batch 4, fp32, infer)" in result.output
    assert "Made differently" in result.output and "2.15.0" in result.output


def test_cli_json_is_the_comparison(tmp_path):
    a = _write(tmp_path / "a", [_row(p50=10.0)])
    b = _write(tmp_path / "b", [_row(p50=30.0)])
    result = runner.invoke(app, ["compare", str(a), str(b), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["marked"] == 2 and payload["a"] == str(a)
    setting, = payload["settings"]
    latency = next(m for m in setting["metrics"] if m["metric"] == "latency_ms_p50")
    assert latency == dataclasses.asdict(_metric(compare_runs(a, b).settings[0],
                                                 "latency_ms_p50"))
    assert latency["ratio"] == pytest.approx(3.0) and latency["verdict"] == BEYOND


def test_the_deploy_form_pairs_only_with_the_deploy_form(tmp_path):
    a = _write(tmp_path / "a", [_row("repvgg_a0", flops=1.5e9),
                                _row("repvgg_a0", flops=1.36e9, reparam=True)])
    b = _write(tmp_path / "b", [_row("repvgg_a0", flops=1.36e9, reparam=True)])
    (setting,) = compare_runs(a, b).settings
    assert setting.reparam and _metric(setting, "flops").verdict == SAME
