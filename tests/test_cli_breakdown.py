"""`gfbench breakdown` at its boundary: help, tables, JSON, files, one-line errors."""

import json
import sys

import pytest
import torch
from typer.testing import CliRunner

from gfbench.cli import app, main
from gfbench.defaults import BYTES_CONVENTION
from gfbench.measure.flops import count_flops
from gfbench.models import create_model
from gfbench.results import read_rows

runner = CliRunner()
ARGS = ["breakdown", "--models", "deit-ti,gfnet-ti", "--res", "112", "--depth", "1"]


def test_help_names_the_roles_and_the_engines():
    result = runner.invoke(app, ["breakdown", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for word in ("token mixer", "channel MLP", "norm", "embedding", "head", "--engine",
                 "--depth"):
        assert word in result.output


def test_tables_summary_and_files(tmp_path):
    result = runner.invoke(app, [*ARGS, "--out", str(tmp_path)], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "deit-ti at 112: torch engine, depth 1" in result.output
    assert "blocks" in result.output and "token mixer" in result.output
    summary = result.output[result.output.index("Share of FLOPs by role"):]
    deit = next(line for line in summary.splitlines() if line.startswith("deit-ti"))
    _, stored = read_rows(tmp_path / "0001-breakdown-d1-torch.json")
    rows = [r for r in stored if r.name == "deit-ti"]
    mixer = sum(r.flops for r in rows if r.group == "token_mixer") / rows[0].model_flops
    assert deit.split()[4] == f"{100 * mixer:.1f}"  # model res N GFLOPs mixer ...
    table = summary[:summary.index("GFLOPs per image")].splitlines()
    assert len(table) >= 4 and max(len(line) for line in table) <= 80
    assert (tmp_path / "0001-breakdown-d1-torch.csv").exists()


def test_json_output_has_rows_and_role_totals(tmp_path):
    result = runner.invoke(app, [*ARGS, "--json", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert {g["name"] for g in payload["groups"]} == {"deit-ti", "gfnet-ti"}
    written = json.loads((tmp_path / "0001-breakdown-d1-torch.json").read_text())
    assert written["provenance"]["extra"]["bytes_convention"] == BYTES_CONVENTION
    for group in payload["groups"]:
        rows = [r for r in payload["rows"] if r["name"] == group["name"]]
        assert sum(r["flops"] for r in rows) == group["model_flops"]
        with torch.device("meta"):
            model = create_model(group["name"], img_size=112)
        traced = count_flops(model, (1, 3, 112, 112))
        assert sum(r["bytes"] for r in rows) == traced.bytes_total  # modules' bytes add up
        assert group["mixer_share"] == group["flops"]["token_mixer"] / group["model_flops"]


@pytest.mark.parametrize(("args", "message"), [
    (["--depth", "9"], "--depth 9 does not exist in deit-ti"),
    (["--depth", "-2"], "--depth -2 must be 0"),
    (["--res", "100"], "deit-ti cannot run at 100x100"),
    (["--repeat", "3"], "--repeat: used only with --time"),
    (["--device", "cpu", "--batch-size", "4"], "--batch-size, --device: used only with --time"),
    (["--time", "--engine", "fvcore"], "--time needs --engine torch"),
    (["--time", "--repeat", "0"], "--batch-size, --warmup and --repeat must be >= 1"),
    (["--time", "--batch-size", "2,4"], "breakdown takes one batch size"),
])
def test_bad_input_is_one_red_line_and_exit_1(monkeypatch, capsys, tmp_path, args, message):
    monkeypatch.setattr(sys, "argv", ["gfbench", "breakdown", "--models", "deit-ti",
                                      "--out", str(tmp_path), *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "Traceback" not in err and message in err
    assert not list(tmp_path.iterdir())  # refused before anything was written


def test_an_unknown_engine_is_a_usage_error():
    result = runner.invoke(app, ["breakdown", "--engine", "jit"])
    assert result.exit_code == 2 and "torch" in result.output


def test_the_depth_message_says_what_is_allowed(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(sys, "argv", ["gfbench", "breakdown", "--models", "resmlp",
                                      "--depth", "5", "--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        main()
    assert capsys.readouterr().err.strip() == (
        "error: --depth 5 does not exist in resmlp-12: its modules go from 0 (the whole "
        "model) to 4 (e.g. blocks.0.mlp_channels.fc1); allowed: 0 to 4")


def test_an_out_that_cannot_be_written_is_one_line_before_counting(tmp_path, monkeypatch,
                                                                   capsys):
    taken = tmp_path / "taken"
    taken.write_text("mine")
    monkeypatch.setattr(sys, "argv", ["gfbench", "breakdown", "--models", "gfnet-ti", "--res",
                                      "224", "--out", str(taken / "below")])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "cannot write there" in err


def test_reparam_breaks_down_the_deploy_form(tmp_path):
    args = ["breakdown", "--models", "repvgg_a0", "--res", "224", "--depth", "0", "--json",
            "--out", str(tmp_path)]
    fused = runner.invoke(app, [*args, "--reparam"])
    assert fused.exit_code == 0, fused.output
    _, rows = read_rows(tmp_path / "0001-breakdown-d0-torch-reparam.json")
    assert rows and all(r.reparam for r in rows)
    assert rows[0].model_params == 8_309_384  # fused: timm's published 8.31 M
    built = runner.invoke(app, args)
    assert built.exit_code == 0, built.output
    _, plain = read_rows(tmp_path / "0002-breakdown-d0-torch.json")
    assert not any(r.reparam for r in plain) and plain[0].model_params > 9_000_000


def test_time_times_rows_in_a_child_with_ceilings_and_the_hook_overhead(tmp_path):
    args = ["breakdown", "--models", "gfnet-ti", "--res", "64", "--depth", "1", "--time",
            "--device", "cpu", "--batch-size", "2", "--warmup", "1", "--repeat", "3",
            "--out", str(tmp_path)]
    result = runner.invoke(app, args, env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    path = tmp_path / "0001-breakdown-d1-torch-cpu-b2.json"
    written = json.loads(path.read_text())
    extra = written["provenance"]["extra"]
    assert extra["timing"] == {"device": "cpu", "batch": 2, "warmup": 1, "repeat": 3}
    assert extra["ceilings"]["source"] in ("measured", "none")
    record = extra["module_time"]["gfnet-ti 64x64"]
    assert record["samples"] == 3 and record["method"] == "forward hooks, perf_counter_ns"
    assert record["hook_overhead_ms"] == pytest.approx(
        record["hooked_forward_ms_p50"] - record["forward_ms_p50"])
    _, rows = read_rows(path)
    assert {(r.batch_size, r.device) for r in rows} == {(2, "cpu")}
    timed = [r for r in rows if r.latency_ms_p50 is not None]
    assert {r.group for r in timed} >= {"token_mixer", "channel_mlp", "norm", "embedding"}
    assert all(r.latency_ms_p10 <= r.latency_ms_p50 <= r.latency_ms_p90 for r in timed)
    table = result.output[result.output.index("gfnet-ti at 64, batch 2 on cpu"):]
    assert "hooks add" in table and "ratio" in table
    assert max(len(line) for line in table.splitlines()[:-2]) <= 80
