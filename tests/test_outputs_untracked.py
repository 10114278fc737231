"""The main job and the plot of its results write only where git does not track: a fresh
clone's `git status` shows nothing changed afterwards (the committed reference results in
results/ are re-made only by benchmarks/reference_results.py)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(),
                    reason="needs git and a git checkout of gfbench")
def test_the_main_job_and_its_plot_leave_every_tracked_file_as_it_was(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    env = {**os.environ, "PYTHONPATH": str(clone), "COLUMNS": "100"}
    # the default output folder, as `make demo` uses it (counted only, to stay fast)
    job = subprocess.run([sys.executable, "-m", "gfbench", "complexity", "--models", "deit",
                          "--res", "64,96", "--metrics", "flops,params", "--no-fvcore"],
                         cwd=clone, env=env, capture_output=True, text=True, timeout=300)
    assert job.returncode == 0, job.stderr[-2000:]
    plot = subprocess.run([sys.executable, "-m", "gfbench", "plot", "runs"], cwd=clone, env=env,
                          capture_output=True, text=True, timeout=300)
    assert plot.returncode == 0, plot.stderr[-2000:]
    written = sorted(p.relative_to(clone).as_posix() for p in (clone / "runs").rglob("*")
                     if p.is_file())
    assert "runs/0001-complexity-models-meta-b1-fp32-infer.json" in written
    assert any(name.startswith("runs/plots/") for name in written)
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"],
                            cwd=clone, capture_output=True, text=True, check=True).stdout
    assert status == "", status
