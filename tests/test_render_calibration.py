"""The terminal's calibration numbers: an ECE column per corruption and a calibration table
(clean, each severity, test sets, attacks) that cuts nothing at 80 columns."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pandas as pd
from rich.console import Console

from gfbench.render import robustness_calibration_table, robustness_corruption_table
from gfbench.results import RobustnessRow
from gfbench.robustness.calibration import CalibrationSums
from gfbench.robustness.metrics import summarize
from gfbench.robustness.protocol import ALL_CORRUPTIONS

RNG = np.random.default_rng(5)


def _row(source: str, corruption: str, severity: int, images: int, correct: int,
         eps: float | None = None) -> RobustnessRow:
    """A row whose calibration comes from random per-image confidences."""
    right = np.arange(images) < correct
    confidence = RNG.uniform(0.3, 1.0, images)
    values = np.stack([np.ones(images), right, confidence, RNG.uniform(0, 3, images),
                       RNG.uniform(0, 1.5, images)], 1)
    sums = CalibrationSums.from_images(values)
    return RobustnessRow(model="gfnet-s", checkpoint="gfnet-s.pth", source=source,
                         corruption=corruption, severity=severity, images=images,
                         correct_top1=correct, correct_top5=images, eps=eps, ece=sums.ece,
                         nll=sums.nll, brier=sums.brier, calibration_bins=sums.bins_text())


def _rows() -> list[RobustnessRow]:
    """Clean, all 19 corruptions at every severity (a model better than AlexNet on each: CE
    under 100), FGSM, ImageNet-A and -Sketch."""
    return ([_row("clean", "clean", 0, 200, 160)]
            + [_row("imagenet-c", c, s, 100, 90 - 6 * s) for c in ALL_CORRUPTIONS
               for s in range(1, 6)]
            + [_row("attack", "fgsm", 0, 200, 60, eps=1 / 255),
               _row("imagenet-a", "imagenet-a", 0, 300, 30),
               _row("imagenet-sketch", "imagenet-sketch", 0, 500, 180)])


def _summary(rows):
    (summary,) = summarize(pd.DataFrame([dataclasses.asdict(r) for r in rows]))
    return summary


def _text(table, width: int) -> str:
    console = Console(file=io.StringIO(), width=width)
    console.print(table)
    return console.file.getvalue()


def test_the_calibration_table_lists_every_part_whole_at_80_columns():
    summary = _summary(_rows())
    text = _text(robustness_calibration_table(summary), 80)
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    assert f"{summary.clean_ece_pct:.1f}" in text and f"{summary.clean_nll:.3f}" in text
    for c in summary.calibration.itertuples():
        assert f"severity {c.severity} (mean of 15)" in text
        assert f"{c.ece_pct:.1f}" in text and f"{c.brier:.3f}" in text
    for title in ("ImageNet-A (200 classes)", "ImageNet-Sketch", "FGSM ε=1/255"):
        assert title in text
    assert "NLL" in text and "Brier" in text and "ECE" in text


def test_the_per_corruption_table_has_an_ece_column_and_cuts_nothing_at_80_columns():
    summary = _summary(_rows())
    text = _text(robustness_corruption_table(summary), 80)
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    assert "ECE" in text.splitlines()[2]  # the header's second line
    for r in summary.per_corruption.itertuples():
        line = next(line for line in text.splitlines() if line.startswith(r.corruption + " "))
        assert line.rstrip().endswith(f"{r.ece_pct:.1f}")  # the last column, whole


def test_rows_without_calibration_print_no_calibration_table():
    old = [dataclasses.replace(r, ece=None, nll=None, brier=None, calibration_bins=None)
           for r in _rows()]
    summary = _summary(old)
    assert robustness_calibration_table(summary) is None
    assert summary.uncalibrated == len(old)
