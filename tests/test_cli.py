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


def _marked_processes(marker: str) -> list[int]:
    """Live processes whose environment holds ``marker`` (children a command left behind)."""
    from pathlib import Path

    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker.encode() in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_the_quick_exit_keeps_output_exit_codes_and_stops_the_children(tmp_path):
    import json
    import os
    import uuid

    marker = f"GFBENCH_TEST_{uuid.uuid4().hex}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), marker: "1",
           "OMP_NUM_THREADS": "1"}
    timed = subprocess.run(
        [sys.executable, "-m", "gfbench", "complexity", "--mixers", "global_filter",
         "--tokens", "4", "--dim", "8", "--metrics", "flops,latency", "--warmup", "1",
         "--repeat", "2", "--warmup-s", "0", "--json", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300, env=env)
    assert timed.returncode == 0, timed.stderr[-2000:]
    payload = json.loads(timed.stdout)  # all of it reached the pipe
    assert payload["rows"][0]["latency_ms_p50"] > 0
    assert _marked_processes(marker) == []  # no child outlives the command
    bad = subprocess.run([sys.executable, "-m", "gfbench", "complexity", "--precision", "fp8"],
                         capture_output=True, text=True, timeout=120, env=env)
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1


def test_the_quick_exit_runs_the_exit_handlers(tmp_path):
    ran = tmp_path / "ran"
    code = ("import atexit, sys\n"
            f"atexit.register(lambda: open({str(ran)!r}, 'w').write('yes'))\n"
            "sys.argv = ['gfbench', '--version']\n"
            "from gfbench.cli import entry\nentry()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("gfbench ")
    assert ran.read_text() == "yes"
