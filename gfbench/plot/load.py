"""What plotting adds to the results tables (gfbench.results.frame): the setting a figure
shows, the fields that make one curve, and the error when nothing can be drawn."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from gfbench.errors import GfbenchError

SETTING_FIELDS = ("device_label", "batch_size", "precision", "mode")
# What makes two complexity rows the same curve within one setting.
LINE_FIELDS = ("subject", "name", "impl", "dim", "compile", "channels_last", "threads",
               "num_classes", "optimizer", "reparam")


class NothingToPlotError(GfbenchError):
    """No input held a single plottable row; `problems` lists why each file was skipped."""

    def __init__(self, message: str, problems: Sequence[str] = ()):
        super().__init__(message)
        self.problems = list(problems)
        self.details = tuple(f"skipped: {problem}" for problem in self.problems)


def run_name(run: str, run_id: str) -> str:
    """A run as titles name it: 'run 0007' or the file name of an unnumbered one ('' none)."""
    return f"run {run_id}" if run_id else (Path(run).name if run else "")


@dataclass(frozen=True, order=True)
class Setting:
    """What must match for complexity rows to share axes: run (unless combined), device,
    batch, precision, mode."""

    device: str
    batch_size: int
    precision: str
    mode: str
    run: str = ""  # the run's file ('' when runs are combined)
    run_id: str = ""  # its number ('' for an unnumbered file or combined runs)

    def title(self) -> str:
        """The setting as a figure title says it."""
        where = run_name(self.run, self.run_id)
        return f"{self.device} · batch {self.batch_size} · {self.precision} · {self.mode}" + \
            (f" · {where}" if where else "")

    def slug(self) -> str:
        """The setting as a file name part (a numbered run's number first): lower case letters,
        digits and dashes."""
        text = f"{self.device}-b{self.batch_size}-{self.precision}-{self.mode}".lower()
        cleaned = "".join(c if c.isalnum() else "-" for c in text)
        slug = "-".join(part for part in cleaned.split("-") if part)
        return f"run{self.run_id}-{slug}" if self.run_id else slug


def settings_of(frame: pd.DataFrame) -> list[tuple[str, Setting, pd.DataFrame]]:
    """(subject, setting, rows) for every complexity figure to draw, in a stable order."""
    if frame.empty:
        return []
    groups = []
    for (subject, run, run_id, device, batch, precision, mode), rows in frame.groupby(
            ["subject", "run", "run_id", *SETTING_FIELDS], sort=True):
        setting = Setting(device=str(device), batch_size=int(batch), precision=str(precision),
                          mode=str(mode), run=str(run), run_id=str(run_id))
        groups.append((str(subject), setting, rows.reset_index(drop=True)))
    return groups
