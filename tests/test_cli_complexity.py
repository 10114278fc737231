"""`gfbench complexity` at its boundary: help, table, JSON, quiet, one-line errors."""

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from gfbench.cli import app, main
from gfbench.defaults import BYTES_CONVENTION
from gfbench.errors import RunInterrupted

runner = CliRunner()
MIXER_ARGS = ["complexity", "--mixers", "global_filter,attention,spatial_mlp",
              "--tokens", "7,14,28", "--dim", "64", "--metrics", "flops,params"]


def test_help_states_the_flop_convention():
    result = runner.invoke(app, ["complexity", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "one fused multiply-add = one FLOP" in result.output
    assert "H*W*D*ceil(log2(H*W))" in result.output and "2*N^2*D" in result.output


def test_counting_sweep_prints_table_exponents_and_files(tmp_path):
    result = runner.invoke(app, [*MIXER_ARGS, "--out", str(tmp_path)],
                           env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "global_filter" in result.output and "spatial_mlp" in result.output
    exponents = result.output[result.output.index("k in cost ≈ a·N^k"):]
    spatial_mlp = next(line for line in exponents.splitlines() if "spatial_mlp" in line)
    # FLOPs: N^2 exactly, k from the two larger sizes; three sizes cannot name the class
    assert spatial_mlp.split()[1:5] == ["FLOPs", "2.00", "2", "sizes"]
    assert spatial_mlp.endswith("- (above N; 3 sizes cannot tell)")
    assert "one fused multiply-add = one FLOP" in result.output
    written = tmp_path / "0001-complexity-mixers-meta-b1-fp32-infer.json"
    assert written.exists() and written.with_suffix(".csv").exists()


def test_json_output_is_machine_readable(tmp_path):
    result = runner.invoke(app, [*MIXER_ARGS, "--json", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert len(payload["rows"]) == 9
    # bytes per row: the global filter on a 7x7 grid of 64 channels by hand (float32 grid,
    # complex64 half spectrum of 7x4; rfft2, product with the filter, irfft2)
    real, spectrum = 7 * 7 * 64 * 4, 7 * 4 * 64 * 8
    small = next(r for r in payload["rows"] if r["name"] == "global_filter" and r["grid_h"] == 7)
    assert small["bytes"] == 2 * (real + spectrum) + 3 * spectrum == 96_768
    assert all(r["bytes"] > 0 for r in payload["rows"])
    written = json.loads((tmp_path / "0001-complexity-mixers-meta-b1-fp32-infer.json")
                         .read_text())
    assert written["provenance"]["extra"]["bytes_convention"] == BYTES_CONVENTION
    assert {e["name"] for e in payload["exponents"]} == {"global_filter", "attention",
                                                         "spatial_mlp"}


def test_quiet_prints_nothing_but_writes(tmp_path):
    result = runner.invoke(app, [*MIXER_ARGS, "--quiet", "--out", str(tmp_path)])
    assert result.exit_code == 0 and result.output == ""
    assert (tmp_path / "0001-complexity-mixers-meta-b1-fp32-infer.csv").exists()


def test_conflicting_options_fail_in_one_red_line(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["gfbench", "complexity", "--models", "deit",
                                      "--mixers", "attention"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "Traceback" not in err
    assert "--models and --mixers cannot be combined" in err


def test_a_failing_model_is_an_error_row_the_summary_counts_it_and_the_exit_is_1(tmp_path):
    result = runner.invoke(app, ["complexity", "--models", "gfnet-ti,resnet18", "--res", "200",
                                 "--metrics", "flops,params", "--no-fvcore", "--no-isolate",
                                 "--out", str(tmp_path)], env={"COLUMNS": "160"})
    assert result.exit_code == 1, result.output
    assert "1 ok, 0 oom, 1 error" in result.output
    assert "multiple of 16" in result.output and "Traceback" not in result.output
    payload = json.loads((tmp_path / "0001-complexity-models-meta-b1-fp32-infer.json")
                         .read_text())
    assert [r["status"] for r in payload["rows"]] == ["error", "ok"]


def test_a_rerun_is_a_new_run_and_resume_continues_the_one_named(tmp_path):
    first = runner.invoke(app, [*MIXER_ARGS, "--out", str(tmp_path), "--no-isolate"])
    assert first.exit_code == 0, first.output
    name = "complexity-mixers-meta-b1-fp32-infer"
    before = (tmp_path / f"0001-{name}.json").read_text()
    again = runner.invoke(app, ["complexity", "--mixers", "attention", "--tokens", "14,42",
                                "--dim", "64", "--metrics", "flops,params", "--no-isolate",
                                "--out", str(tmp_path)], env={"COLUMNS": "200"})
    assert again.exit_code == 0, again.output
    assert "replaced" not in again.output and f"0002-{name}.json" in again.output
    assert (tmp_path / f"0001-{name}.json").read_text() == before
    assert len(json.loads((tmp_path / f"0002-{name}.json").read_text())["rows"]) == 2
    resumed = runner.invoke(app, ["complexity", "--mixers", "attention", "--tokens", "14,42,56",
                                  "--dim", "64", "--metrics", "flops,params", "--no-isolate",
                                  "--out", str(tmp_path), "--resume", "last"],
                            env={"COLUMNS": "200"})
    assert resumed.exit_code == 0, resumed.output
    assert "2 setting(s) already in run 0002, skipped (--resume)" in resumed.output
    assert len(json.loads((tmp_path / f"0002-{name}.json").read_text())["rows"]) == 3
    assert not list(tmp_path.glob(f"0003-{name}.*"))


def test_a_resume_of_a_run_that_is_not_there_is_one_line_listing_the_runs(tmp_path, monkeypatch,
                                                                          capsys):
    monkeypatch.setattr(sys, "argv", ["gfbench", *MIXER_ARGS, "--out", str(tmp_path),
                                      "--resume", "0007"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "no run 0007" in err and "holds no runs" in err


def test_ctrl_c_says_what_is_kept_and_how_to_resume_this_run(tmp_path, monkeypatch, capsys):
    from gfbench.measure import complexity

    def interrupted(plan, **kwargs):
        raise RunInterrupted(3, plan.folder / f"0007-{plan.name}.json", "0007")

    monkeypatch.setattr(complexity, "run_sweep", interrupted)
    monkeypatch.setattr(sys, "argv", ["gfbench", *MIXER_ARGS, "--out", str(tmp_path),
                                      "--resume=last"])
    (tmp_path / "0001-complexity-mixers-meta-b1-fp32-infer.json").write_text("{}")
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 130
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "Traceback" not in err
    assert "3 row(s) kept in" in err and err.strip().endswith("--resume 0007")
    assert "--resume=last" not in err


def test_an_out_that_is_a_file_fails_before_any_work(tmp_path, monkeypatch, capsys):
    taken = tmp_path / "taken"
    taken.write_text("mine")
    monkeypatch.setattr(sys, "argv", ["gfbench", *MIXER_ARGS, "--out", str(taken)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1 and taken.read_text() == "mine"
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "is a file, not a folder" in err


def test_busy_machine_and_wide_spreads_are_one_warning_line_each(monkeypatch, tmp_path):
    from gfbench.measure import complexity, sweep
    from gfbench.results import ComplexityRow

    def timed_rows(plan, on_start=None, on_row=None):
        rows = [ComplexityRow(subject="mixer", name="attention", res_h=s, res_w=s, tokens=s * s,
                              batch_size=1, precision="fp32", mode="infer", device="cpu",
                              dim=64, latency_ms_p10=0.5 * s, latency_ms_p50=s,
                              latency_ms_p90=1.5 * s)
                for s in (7, 14, 28)]
        return sweep.SweepOutcome(path=plan.folder / f"0001-{plan.name}.json", rows=rows)

    monkeypatch.setattr(complexity, "run_sweep", timed_rows)
    monkeypatch.setattr(complexity, "load_average", lambda: [64.0, 64.0, 64.0])
    result = runner.invoke(app, ["complexity", "--mixers", "attention", "--tokens", "7,14,28",
                                 "--dim", "64", "--device", "cpu", "--out", str(tmp_path)],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2
    assert "busy machine: 1-minute load average 64.00, 64.00 (start, end)" in warnings[0]
    assert "in 3 of 3 timed rows (widest: attention 7x7, 100%)" in warnings[1]
    latency = next(line for line in result.output.splitlines() if " latency " in line)
    assert "noisy: p10–p90 of N=196, 784 overlap" in latency and " - " in latency


def test_two_concurrent_invocations_into_one_folder_keep_every_row(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    common = ["--res", "64", "--metrics", "flops,params", "--no-fvcore", "--quiet",
              "--out", str(tmp_path)]
    runs = [subprocess.Popen([sys.executable, "-m", "gfbench", "complexity", "--models", model,
                              *common], env=env, stderr=subprocess.PIPE, text=True)
            for model in ("deit_tiny_patch16_224", "resnet18")]
    for run in runs:
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err[-2000:]
    files = sorted(tmp_path.glob("*-complexity-models-meta-b1-fp32-infer.json"))
    assert [f.name[:5] for f in files] == ["0001-", "0002-"]  # each its own run
    names = sorted(r["name"] for f in files for r in json.loads(f.read_text())["rows"])
    assert names == ["deit-ti", "resnet18"]  # gfbench names timm's deit_tiny_patch16_224 deit-ti
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob("*.lock"))


# timm's published counts (results/benchmark-infer-amp-nchw-pt291-cu128-4090.csv in
# huggingface/pytorch-image-models, measured with --reparam): infer_gmacs, param_count (M)
TIMM_DEPLOY = {"repvgg_a0": (1.36, 8.31), "mobileone_s0": (0.28, 2.08)}


def _agrees_with_timm(row: dict, gmacs: float, mparams: float) -> bool:
    """benchmarks/zoo_vs_timm.py's tolerance: MACs within max(1%, the table's 0.005 G
    rounding), parameters within its 0.01 M rounding."""
    return (abs(row["flops"] / 1e9 - gmacs) <= max(0.01 * gmacs, 0.005)
            and abs(row["params"] / 1e6 - mparams) <= 0.01)


def test_reparam_counts_the_deploy_form_timm_publishes(tmp_path):
    args = ["complexity", "--models", ",".join(TIMM_DEPLOY), "--res", "224",
            "--metrics", "flops,params", "--json", "--out", str(tmp_path)]
    fused = runner.invoke(app, [*args, "--reparam"])
    assert fused.exit_code == 0, fused.output
    rows = {r["name"]: r for r in json.loads(fused.output)["rows"]}
    for name, (gmacs, mparams) in TIMM_DEPLOY.items():
        row = rows[name]
        assert row["reparam"] is True and row["flops_engine"] == "fvcore", row
        assert _agrees_with_timm(row, gmacs, mparams), (name, row["flops"], row["params"])
    built = runner.invoke(app, [*args, "--no-fvcore"])
    assert built.exit_code == 0, built.output
    for row in json.loads(built.output)["rows"]:  # the training-time branches: not timm's
        assert row["reparam"] is False
        assert not _agrees_with_timm(row, *TIMM_DEPLOY[row["name"]])
    assert (tmp_path / "0001-complexity-models-meta-b1-fp32-infer-reparam.json").exists()


def test_reparam_with_mixers_fails_in_one_line(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["gfbench", "complexity", "--mixers", "attention",
                                      "--reparam"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "--reparam applies to --models" in err


def test_crossovers_follow_the_exponents_and_go_into_json(tmp_path):
    result = runner.invoke(app, [*MIXER_ARGS, "--json", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    flops = {(r["name"], r["tokens"]): r["flops"] for r in payload["rows"]}
    found = {(c["first"], c["second"]): c for c in payload["crossovers"]
             if c["metric"] == "flops"}
    assert set(found) == {("global_filter", "attention"), ("global_filter", "spatial_mlp")}
    for (first, second), item in found.items():
        # at dim 64 the global filter counts fewer FLOPs at 7², 14² and 28²: no crossing
        assert all(flops[(first, n)] < flops[(second, n)] for n in (49, 196, 784))
        assert item["tokens"] is None and item["below_after"] is True
        assert item["verdict"] == (f"not within the sizes measured: {first} below {second} "
                                   "at every size (N 49–784)")
    text = runner.invoke(app, [*MIXER_ARGS, "--out", str(tmp_path)], env={"COLUMNS": "120"})
    table = text.output[text.output.index("crossover: the N where"):]
    assert "global_filter vs attention" in table and "not within the sizes measured" in table
    assert text.output.index("k in cost ≈ a·N^k") < text.output.index("crossover: the N")


def test_train_mode_flops_add_the_backward_to_the_inference_forward(tmp_path):
    from gfbench.measure.flops import count_flops
    from gfbench.models import create_model

    result = runner.invoke(app, ["complexity", "--models", "deit-s", "--res", "224",
                                 "--metrics", "flops,params", "--mode", "train", "--json",
                                 "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)["rows"]
    inference = count_flops(lambda: create_model("deit-s", img_size=224), (1, 3, 224, 224))
    assert row["mode"] == "train" and row["fwd_flops"] == inference.total
    assert row["flops_engine"] == "fvcore"  # fvcore's forward agreed with the torch engine's
    assert row["flops"] == row["flops_torch"] > 2.9 * row["fwd_flops"]  # backward about 2x


def test_a_bad_fit_memory_budget_fails_in_one_line(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["gfbench", *MIXER_ARGS, "--fit-memory", "h900"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "'h900'" in err and "h100-sxm" in err


def test_predict_and_fit_memory_print_their_columns_and_json(tmp_path):
    args = ["complexity", "--mixers", "dwconv", "--tokens", "8,16", "--dim", "16",
            "--metrics", "params", "--predict", "--fit-memory", "4MiB", "--out", str(tmp_path)]
    shown = runner.invoke(app, args, env={"COLUMNS": "120"})
    assert shown.exit_code == 0, shown.output
    assert "pred MiB" in shown.output and "--fit-memory 4MiB" in shown.output
    assert "max batch" in shown.output and "smallest size that does not fit" in shown.output
    result = runner.invoke(app, [*args, "--json"])
    payload = json.loads(result.output)
    fits = payload["fit_memory"]["fits"]
    assert payload["fit_memory"]["budget_bytes"] == 4 * 2**20
    assert [f["size"] for f in fits] == ["8x8", "16x16"]
    assert all(f["max_batch"] >= 1 for f in fits)
    assert fits[0]["max_batch"] > fits[1]["max_batch"]  # 4x the tokens: a smaller batch
    assert all(r["pred_mem_bytes"] > 0 for r in payload["rows"])


def test_fit_memory_is_kept_in_the_run_and_agrees_with_json(tmp_path):
    # the fit is searched in the count step, so the file's rows hold what --json says; each
    # row's batch is recomputed here from the prediction itself (largest b with need <= budget)
    from gfbench.measure.predict import predict_setting
    from gfbench.measure.setting import Setting
    from gfbench.results import read_results

    args = ["complexity", "--mixers", "dwconv", "--tokens", "8,16", "--dim", "16",
            "--metrics", "params", "--fit-memory", "4MiB", "--out", str(tmp_path), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    _, rows = read_results(payload["files"][0])
    fits = payload["fit_memory"]["fits"]
    assert list(rows["fit_max_batch"]) == [f["max_batch"] for f in fits]
    assert list(rows["fit_need_bytes"]) == [f["need_bytes"] for f in fits]
    assert set(rows["fit_budget_bytes"]) == {4 * 2**20} and set(rows["fit_budget"]) == {"4MiB"}
    for side, best in zip((8, 16), rows["fit_max_batch"], strict=True):
        setting = Setting("mixer", "dwconv", side, side, 1, "fp32", "infer", "meta", dim=16)
        assert predict_setting(setting, batch_size=best).need_total <= 4 * 2**20
        assert predict_setting(setting, batch_size=best + 1).need_total > 4 * 2**20


def test_a_run_resumes_only_with_the_budget_it_was_made_with(tmp_path, monkeypatch, capsys):
    args = ["complexity", "--mixers", "dwconv", "--dim", "16", "--metrics", "params",
            "--no-isolate", "--out", str(tmp_path)]
    assert runner.invoke(app, [*args, "--tokens", "8", "--fit-memory", "4MiB"]).exit_code == 0
    name = tmp_path / "0001-complexity-mixers-meta-b1-fp32-infer.json"
    before = name.read_text()
    for other in (["--fit-memory", "8MiB"], []):
        monkeypatch.setattr(sys, "argv", ["gfbench", *args, "--tokens", "8", *other,
                                          "--resume", "last"])
        with pytest.raises(SystemExit) as exit_info:
            main()
        assert exit_info.value.code == 1
        err = capsys.readouterr().err
        assert err.strip().count("\n") == 0 and "made with --fit-memory 4MiB" in err
    assert name.read_text() == before
    resumed = runner.invoke(app, [*args, "--tokens", "8,16", "--fit-memory", "4MiB",
                                  "--resume", "last"])
    assert resumed.exit_code == 0, resumed.output
    rows = json.loads(name.read_text())["rows"]
    assert [r["fit_budget"] for r in rows] == ["4MiB", "4MiB"]
    assert rows[0]["fit_max_batch"] > rows[1]["fit_max_batch"] >= 1
