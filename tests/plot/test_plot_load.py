"""Reading results for plots: bad files are one line each, settings stay apart, reruns win."""

from __future__ import annotations

import pytest
from plot_synthetic import (
    GPU,
    cpu_rows,
    gpu_rows,
    model_row,
    provenance,
    robustness_rows,
    write_bad_files,
    write_complexity,
    write_robustness,
)

from gfbench.plot.load import settings_of
from gfbench.results.frame import (
    complexity_frame,
    device_label,
    load_results,
    robustness_frame,
)


def test_each_bad_file_is_one_line_naming_it_and_the_rest_loads(tmp_path):
    bad = write_bad_files(tmp_path / "bad")
    good = write_complexity(tmp_path / "good", gpu_rows())
    loaded = load_results([tmp_path])
    assert [run.path for run in loaded.runs] == [good.resolve()]
    assert len(loaded.problems) == len(bad)
    for name, path in bad.items():
        line = next(p for p in loaded.problems if p.startswith(str(path.resolve())))
        assert "\n" not in line, name
    by_name = {name: next(p for p in loaded.problems if str(path.resolve()) in p)
               for name, path in bad.items()}
    assert "not a gfbench results file" in by_name["broken"]
    assert "not a gfbench results file" in by_name["foreign"]
    assert "holds no rows" in by_name["empty"]
    assert "flops is 'lots', expected a number" in by_name["typed"]


def test_rows_without_tokens_are_kept_and_negative_tokens_are_not(tmp_path):
    failed = model_row("deit-s", 224)
    failed.status, failed.tokens, failed.error = "error", 0, "RuntimeError: boom"
    cnn = model_row("resnet50", 224)
    cnn.tokens = 0  # a network without a token mixer
    write_complexity(tmp_path / "ok" / "run", [model_row("gfnet-xs", 224), failed, cnn])
    broken = model_row("deit-s", 224)
    broken.tokens = -4
    bad = write_complexity(tmp_path / "bad" / "run", [broken])
    loaded = load_results([tmp_path])
    assert len(loaded.runs) == 1 and len(loaded.runs[0].frame) == 3
    assert loaded.problems == [f"{bad.resolve()}: row 0: tokens is -4, expected a count (0 or "
                               "empty for a model without tokens)"]
    frame = complexity_frame(loaded.runs, [])
    assert frame.set_index("name")["tokens"].isna().to_dict() == {
        "gfnet-xs": False, "deit-s": True, "resnet50": True}  # 0 reads as "no token count"


def test_missing_inputs_and_empty_folders_are_reported(tmp_path):
    (tmp_path / "nothing").mkdir()
    loaded = load_results([tmp_path / "nothing", tmp_path / "absent.json"])
    assert loaded.runs == []
    assert loaded.problems == [f"{tmp_path / 'nothing'}: no .json results files in this folder",
                               f"{tmp_path / 'absent.json'}: no such file or folder"]


def test_a_csv_stands_for_the_json_beside_it_and_is_read_once(tmp_path):
    json_path = write_complexity(tmp_path / "run", gpu_rows())
    loaded = load_results([json_path.with_suffix(".csv"), json_path, tmp_path])
    assert [run.path for run in loaded.runs] == [json_path.resolve()]
    assert loaded.problems == []


def test_settings_are_kept_apart_and_named_by_device(tmp_path):
    write_complexity(tmp_path / "gpu", gpu_rows())
    write_complexity(tmp_path / "cpu", cpu_rows(), device_name="cpu: Test CPU 9000")
    loaded = load_results([tmp_path])
    groups = settings_of(complexity_frame(loaded.runs, []))
    titles = {setting.title(): len(rows) for _, setting, rows in groups}
    assert titles == {f"{GPU} · batch 8 · fp16 · inference · gpu.json": len(gpu_rows()),
                      "cpu: Test CPU 9000 · batch 1 · fp32 · inference · cpu.json":
                      len(cpu_rows())}  # an unnumbered file is a run named by its file


def test_combined_two_gpus_of_the_same_kind_name_are_one_setting_other_gpus_another(tmp_path):
    a = write_complexity(tmp_path / "a", gpu_rows()[:5])
    b = write_complexity(tmp_path / "b", gpu_rows()[5:])
    write_complexity(tmp_path / "c", gpu_rows(), device_name="NVIDIA A100-SXM4-80GB")
    runs = load_results([a, b]).runs
    groups = settings_of(complexity_frame(runs, [], combine=True))
    assert sorted((s.device, len(rows)) for _, s, rows in groups) == [(GPU, 10)]
    apart = settings_of(complexity_frame(load_results([tmp_path]).runs, []))
    assert sorted((s.device, len(rows)) for _, s, rows in apart) == [
        ("NVIDIA A100-SXM4-80GB", 10), (GPU, 5), (GPU, 5)]  # each run on its own


def test_combined_a_row_measured_again_later_replaces_the_older_and_is_noted(tmp_path):
    old = write_complexity(tmp_path / "old", [model_row("gfnet-xs", 224, scale=1.0),
                                              model_row("gfnet-xs", 320)],
                           date="2026-01-01T00:00:00+00:00")
    new = write_complexity(tmp_path / "new", [model_row("gfnet-xs", 224, scale=5.0)],
                           date="2026-02-01T00:00:00+00:00")
    notes: list[str] = []
    assert len(complexity_frame(load_results([tmp_path]).runs, notes)) == 3  # runs apart
    frame = complexity_frame(load_results([tmp_path]).runs, notes, combine=True)
    assert len(frame) == 2
    kept = frame[frame["res_h"] == 224].iloc[0]
    assert kept["latency_ms_p50"] == pytest.approx(model_row("gfnet-xs", 224, scale=5.0)
                                                   .latency_ms_p50)
    assert kept["source_file"] == str(new.resolve())
    assert notes == [f"{old.resolve()}: 1 row(s) measured again in {new.resolve()}; the newer "
                     "rows are plotted"]


def test_device_label_uses_the_gpu_name_for_cuda_rows_and_the_cpu_name_for_cpu_rows():
    prov = provenance("complexity")
    assert device_label("cuda:0", prov) == GPU
    assert device_label("cpu", prov) == "cpu: Test CPU 9000"


def test_robustness_error_comes_from_the_counts_when_not_stored(tmp_path):
    rows = robustness_rows("gfnet-s", 0.2)
    write_robustness(tmp_path / "rob", rows)
    frame = robustness_frame(load_results([tmp_path]).runs, [])
    expected = [1 - r.correct_top1 / r.images for r in rows]
    assert frame["error_top1"].tolist() == pytest.approx(expected)
