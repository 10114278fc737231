"""`gfbench plot` at the boundary: options reach the library, files and problems are listed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from plot_synthetic import cpu_rows, write_bad_files, write_complexity
from typer.testing import CliRunner

import gfbench.plot
from gfbench.cli import app, main
from gfbench.plot import PlotOptions, PlotReport

runner = CliRunner()


def test_options_reach_the_library_and_written_files_and_problems_are_listed(monkeypatch,
                                                                              tmp_path):
    seen = {}

    def fake_make_plots(paths, options):
        seen.update(paths=paths, options=options)
        return PlotReport(out=tmp_path, figures=[tmp_path / "a.pdf"],
                          reports=[tmp_path / "report.md", tmp_path / "report.html"],
                          problems=["x.json: not a gfbench results file"],
                          notes=["old.json: 1 row(s) measured again in new.json"])

    monkeypatch.setattr(gfbench.plot, "make_plots", fake_make_plots)
    result = runner.invoke(app, ["plot", "r1", "r2.json", "--out", str(tmp_path), "--format",
                                 "pdf,svg", "--scale", "both", "--x", "resolution", "--metric",
                                 "throughput", "--no-ref-slopes", "--compare", "a.json", "b"],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert seen["paths"] == [Path("r1"), Path("r2.json")]
    assert seen["options"] == PlotOptions(out=tmp_path, formats=("pdf", "svg"), scale="both",
                                          x="resolution", metric="throughput", ref_slopes=False,
                                          compare=(Path("a.json"), Path("b")))
    assert "skipped: x.json: not a gfbench results file" in result.output
    assert "wrote 1 figure file(s) and 2 report file(s)" in result.output
    assert str(tmp_path / "report.html") in result.output


def test_defaults_and_a_bad_choice(monkeypatch):
    seen = {}

    def fake_make_plots(paths, options):
        seen["options"] = options
        return PlotReport(out=Path("."), figures=[Path("a.png")])

    monkeypatch.setattr(gfbench.plot, "make_plots", fake_make_plots)
    assert runner.invoke(app, ["plot", "r"]).exit_code == 0
    assert seen["options"] == PlotOptions()
    assert seen["options"].scale == "log" and seen["options"].ref_slopes
    assert runner.invoke(app, ["plot", "r", "--x", "side"]).exit_code == 2
    assert runner.invoke(app, ["plot", "r", "--scale", "semilog"]).exit_code == 2


def _main(monkeypatch, *args):
    monkeypatch.setattr(sys, "argv", ["gfbench", "plot", *map(str, args)])
    with pytest.raises(SystemExit) as caught:
        main()
    return caught.value.code


def test_nothing_to_plot_is_yellow_lines_then_one_red_line_and_exit_1(monkeypatch, capsys,
                                                                      tmp_path):
    bad = write_bad_files(tmp_path)
    assert _main(monkeypatch, tmp_path) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == len(bad) + 1
    assert all(line.startswith("skipped: ") for line in err[:-1])
    assert err[-1].startswith("error: nothing to plot")


def test_a_bad_format_is_one_line_and_exit_1(monkeypatch, capsys, tmp_path):
    assert _main(monkeypatch, tmp_path, "--format", "gif") == 1
    assert capsys.readouterr().err.strip() == (
        "error: unknown figure format gif; allowed: a comma list of png, svg, pdf")


def test_a_real_run_writes_what_it_lists(tmp_path):
    write_complexity(tmp_path / "in" / "cpu", cpu_rows(), device_name="cpu: Test CPU 9000")
    (tmp_path / "in" / "junk.json").write_text("[]")
    result = runner.invoke(app, ["plot", str(tmp_path / "in"), "--format", "svg"],
                           env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    listed = [Path(line.strip()) for line in result.output.splitlines()
              if line.startswith("  /")]
    assert [p.name for p in listed] == [
        "complexity-models-cpu-test-cpu-9000-b1-fp32-inference-tokens.svg", "report.md",
        "report.html"]
    assert all(p.is_file() and p.parent == tmp_path / "in" / "plots" for p in listed)
    assert "skipped:" in result.output and "junk.json" in result.output


def test_an_out_that_is_a_file_is_one_line_and_nothing_is_written(monkeypatch, capsys, tmp_path):
    write_complexity(tmp_path / "in" / "cpu", cpu_rows(), device_name="cpu: Test CPU 9000")
    taken = tmp_path / "taken"
    taken.write_text("mine")
    monkeypatch.setattr(sys, "argv", ["gfbench", "plot", str(tmp_path / "in"), "--out",
                                      str(taken)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1 and taken.read_text() == "mine"
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "is a file, not a folder" in err


def test_results_whose_every_row_failed_draw_no_figure_and_exit_1(tmp_path):
    counted = runner.invoke(app, ["complexity", "--models", "gfnet-ti", "--res", "200",
                                  "--metrics", "flops,params", "--no-fvcore", "--quiet",
                                  "--out", str(tmp_path / "runs")])
    assert counted.exit_code == 1  # 200 is no multiple of GFNet's patch: an error row
    result = runner.invoke(app, ["plot", str(tmp_path / "runs"), "--out", str(tmp_path / "p")],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    assert "no figure drawn" in result.output
    assert (tmp_path / "p" / "report.html").exists()  # the report still lists the error
    assert not list((tmp_path / "p").glob("*.png"))
