"""Fixtures of the plot tests: a results folder with good, mixed and bad files."""

from __future__ import annotations

from pathlib import Path

import pytest
from plot_synthetic import (
    cpu_rows,
    gpu_rows,
    robustness_rows,
    write_bad_files,
    write_complexity,
    write_robustness,
)


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory) -> Path:
    """A results folder: GPU and CPU model runs, a robustness run, and four bad files."""
    root = tmp_path_factory.mktemp("results")
    write_complexity(root / "gpu" / "complexity-models", gpu_rows())
    write_complexity(root / "cpu" / "complexity-models", cpu_rows(),
                     device_name="cpu: Test CPU 9000")
    write_robustness(root / "robustness", robustness_rows("gfnet-s", 0.20)
                     + robustness_rows("deit-s", 0.22))
    write_bad_files(root / "bad")
    return root
