"""The CLI at its boundary: list, python -m, one-line errors."""

import subprocess
import sys

from typer.testing import CliRunner

from gfbench.cli import app

runner = CliRunner()


def test_list_shows_models_and_mixers():
    result = runner.invoke(app, ["list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "gfnet-h-b" in result.output and "53.744M" in result.output
    assert "deit_small_patch16_224" in result.output
    assert "global_filter" in result.output and "spatial_mlp" in result.output


def test_python_dash_m_runs():
    done = subprocess.run([sys.executable, "-m", "gfbench", "--help"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0
    assert "list" in done.stdout
