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
