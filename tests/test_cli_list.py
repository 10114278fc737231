"""`gfbench list --timm PATTERN`: what a pattern selects, and one line for one that selects none."""

import pytest
import timm
from typer.testing import CliRunner

from gfbench.cli import app, main
from gfbench.errors import UnknownNameError

runner = CliRunner()


def test_list_timm_pattern_shows_each_model_and_native_resolution():
    result = runner.invoke(app, ["list", "--timm", "resnet1[08]*"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    names = timm.list_models("resnet1[08]*")
    assert f"{len(names)} models selected by resnet1[08]*" in result.output
    assert all(n in result.output for n in names)
    assert "176x176" in result.output  # resnet10t's pretrained input size
    assert "params" not in result.output


def test_list_timm_params_counts_on_meta():
    result = runner.invoke(app, ["list", "--timm", "resnet18", "--params"],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "11.690M" in result.output  # torchvision's published 11,689,512


def test_list_timm_pattern_matching_nothing_is_one_line(monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["gfbench", "list", "--timm", "resnxt_*"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "matches no gfbench or timm model" in err and "Traceback" not in err


def test_list_timm_error_type():
    result = runner.invoke(app, ["list", "--timm", "resnxt_*"])
    assert isinstance(result.exception, UnknownNameError)


def test_list_at_80_columns_folds_timm_names_and_cuts_nothing():
    from terminal_text import assert_whole

    from gfbench.models import model_catalogue

    result = runner.invoke(app, ["list"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    rows = model_catalogue()
    assert any(len(r["timm_name"]) > 20 for r in rows)  # deit_tiny_patch16_224 and longer
    assert_whole(result.output, [r["timm_name"] for r in rows],
                 [f"{r['params'] / 1e6:.3f}M" for r in rows])
    result = runner.invoke(app, ["list", "--timm", "deit*"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert_whole(result.output, timm.list_models("deit*"), ["224x224", "384x384"])
