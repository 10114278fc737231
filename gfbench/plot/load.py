"""Read results files for plotting: every readable run in, one line per file that is not.

Rows from different runs are combined when their setting (device, batch, precision, mode)
matches and kept apart otherwise; a row measured again in a later run replaces the older one
and the replacement is noted, never silent.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from gfbench.errors import GfbenchError, ResultsFileError
from gfbench.plot.breakdown import bad_breakdown
from gfbench.results import Provenance, find_results, read_results


class NothingToPlotError(GfbenchError):
    """No input held a single plottable row; `problems` lists why each file was skipped."""

    def __init__(self, message: str, problems: Sequence[str] = ()):
        super().__init__(message)
        self.problems = list(problems)


COMPLEXITY_NUMBERS = ("res_h", "res_w", "tokens", "batch_size", "dim", "flops", "params",
                      "latency_ms_p10", "latency_ms_p50", "latency_ms_p90", "throughput_ips",
                      "peak_mem_bytes", "threads")
ROBUSTNESS_NUMBERS = ("severity", "images", "correct_top1", "correct_top5", "error_top1",
                      "error_top5", "eps")
STATUSES = ("ok", "oom", "error", "skipped")
SUBJECTS = ("model", "mixer")
SETTING_FIELDS = ("device_label", "batch_size", "precision", "mode")
# What makes two complexity rows the same curve within one setting.
LINE_FIELDS = ("subject", "name", "impl", "dim", "compile", "channels_last", "threads",
               "num_classes")
ROBUSTNESS_KEY = ("model", "checkpoint", "source", "corruption", "severity", "eps", "precision",
                  "device", "checkpoint_sha256")


@dataclass
class Run:
    """One results file that was read: where it came from, how it was made, its rows."""

    path: Path
    provenance: Provenance
    frame: pd.DataFrame

    @property
    def kind(self) -> str:
        """'complexity' or 'robustness'."""
        return self.provenance.kind


@dataclass(frozen=True, order=True)
class Setting:
    """What must match for complexity rows to share axes: device, batch, precision, mode."""

    device: str
    batch_size: int
    precision: str
    mode: str

    def title(self) -> str:
        """The setting as a figure title says it."""
        return f"{self.device} · batch {self.batch_size} · {self.precision} · {self.mode}"

    def slug(self) -> str:
        """The setting as a file name part: lower case letters, digits and dashes."""
        text = f"{self.device}-b{self.batch_size}-{self.precision}-{self.mode}".lower()
        cleaned = "".join(c if c.isalnum() else "-" for c in text)
        return "-".join(part for part in cleaned.split("-") if part)


@dataclass
class Loaded:
    """Everything read from the inputs: the runs, and one line per input that was skipped."""

    runs: list[Run] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    base: Path = Path(".")

    def runs_of(self, kind: str) -> list[Run]:
        """The runs of one kind, in input order."""
        return [run for run in self.runs if run.kind == kind]


def _shown(value: object) -> str:
    """A cell as a one-line message shows it: text quoted, numbers plain (not np.int64(0))."""
    if isinstance(value, str):
        return repr(value)
    return str(value.item() if hasattr(value, "item") else value)


def _bad_number(frame: pd.DataFrame, columns: Iterable[str]) -> str | None:
    """The first cell that should hold a number and does not, described for a one-line error."""
    for column in columns:
        values = frame[column]
        numeric = pd.to_numeric(values, errors="coerce")
        bad = values.notna() & (numeric.isna() | ~numeric.map(lambda v: v == v and abs(v) < 1e300))
        if bad.any():
            i = int(bad.idxmax())
            return f"row {i}: {column} is {_shown(values[i])}, expected a number"
    return None


def _bad_complexity(frame: pd.DataFrame) -> str | None:
    """Why a complexity table cannot be plotted, or None when it can."""
    if (problem := _bad_number(frame, COMPLEXITY_NUMBERS)) is not None:
        return problem
    checks = (
        (~frame["subject"].isin(SUBJECTS), "subject", "one of " + ", ".join(SUBJECTS)),
        (~frame["status"].isin(STATUSES), "status", "one of " + ", ".join(STATUSES)),
        # 0 or empty: a network with no token mixer (a CNN); plotted against resolution
        (pd.to_numeric(frame["tokens"]) < 0, "tokens",
         "a count (0 or empty for a model without tokens)"),
        (~(pd.to_numeric(frame["res_h"]) > 0) | ~(pd.to_numeric(frame["res_w"]) > 0),
         "res_h", "a positive size"),
        (~(pd.to_numeric(frame["batch_size"]) > 0), "batch_size", "a positive count"),
    )
    for bad, column, allowed in checks:
        if bad.any():
            i = int(bad.idxmax())
            return f"row {i}: {column} is {_shown(frame[column][i])}, expected {allowed}"
    return None


def _bad_robustness(frame: pd.DataFrame) -> str | None:
    """Why a robustness table cannot be plotted, or None when it can."""
    if (problem := _bad_number(frame, ROBUSTNESS_NUMBERS)) is not None:
        return problem
    images = pd.to_numeric(frame["images"])
    correct = pd.to_numeric(frame["correct_top1"])
    severity = pd.to_numeric(frame["severity"])
    checks = (
        (~(images >= 0), "images", "a count"),
        (~((correct >= 0) & (correct <= images)), "correct_top1", "a count up to images"),
        (~severity.isin(range(6)), "severity", "0..5"),
    )
    for bad, column, allowed in checks:
        if bad.any():
            i = int(bad.idxmax())
            return f"row {i}: {column} is {_shown(frame[column][i])}, expected {allowed}"
    return None


_CHECKS = {"complexity": _bad_complexity, "robustness": _bad_robustness}
_CHECKS["breakdown"] = bad_breakdown  # gfbench breakdown's rows (gfbench/plot/breakdown.py)


def _read_run(path: Path) -> Run:
    """One results file as a Run; ResultsFileError (one line naming the file) when unusable."""
    provenance, frame = read_results(path)
    if frame.empty:
        raise ResultsFileError(f"{path}: holds no rows")
    if (problem := _CHECKS[provenance.kind](frame)) is not None:
        raise ResultsFileError(f"{path}: {problem}")
    return Run(path=path, provenance=provenance, frame=frame)


def _json_files(inputs: Sequence[Path], problems: list[str]) -> list[Path]:
    """The JSON files the inputs name (a .csv stands for its .json twin), noting empty inputs."""
    files: list[Path] = []
    for item in inputs:
        if not item.exists():
            problems.append(f"{item}: no such file or folder")
        elif item.is_dir():
            found = find_results([item])
            if not found:
                problems.append(f"{item}: no .json results files in this folder")
            files.extend(found)
        elif item.suffix == ".csv" and item.with_suffix(".json").is_file():
            files.append(item.with_suffix(".json"))
        else:
            files.append(item)
    unique: dict[Path, None] = {}
    for path in files:
        unique.setdefault(path.resolve(), None)
    return list(unique)


def common_base(inputs: Sequence[Path]) -> Path:
    """The folder the inputs share (a file counts as its folder): where plots/ goes by default."""
    folders = [str(p.resolve() if p.is_dir() else p.resolve().parent) for p in inputs]
    return Path(os.path.commonpath(folders)) if folders else Path.cwd()


def load_results(paths: Iterable[Path | str]) -> Loaded:
    """Read every results file under the given files or folders; a bad one becomes one line."""
    inputs = [Path(p) for p in paths]
    loaded = Loaded(base=common_base(inputs))
    for path in _json_files(inputs, loaded.problems):
        try:
            loaded.runs.append(_read_run(path))
        except ResultsFileError as exc:
            loaded.problems.append(str(exc))
    return loaded


# What a run's provenance says about how it was measured, by the name a table shows.
PROVENANCE_FIELDS = {
    "device": "device_name", "CPU": "cpu_model", "CPU threads (torch)": "torch_threads",
    "platform": "platform", "python": "python_version", "gfbench": "gfbench_version",
    "torch": "torch_version", "timm": "timm_version", "fvcore": "fvcore_version",
    "CUDA": "cuda_version", "driver": "driver_version", "TF32 matmul": "tf32_matmul",
    "cudnn.benchmark": "cudnn_benchmark",
}


def provenance_values(provenance: Provenance) -> dict[str, str]:
    """A run's PROVENANCE_FIELDS as text ('' when not recorded), in the table's order."""
    return {label: str(getattr(provenance, attr)) for label, attr in PROVENANCE_FIELDS.items()}


def split_shared(values: Sequence[dict[str, str]]) -> tuple[dict[str, str], list[str]]:
    """The fields every run has alike (with their value), and the names of those that differ."""
    shared = {k: v for k, v in values[0].items() if all(d.get(k) == v for d in values)} \
        if values else {}
    differing = [k for k in (values[0] if values else {}) if k not in shared]
    return shared, differing


def device_label(row_device: str, provenance: Provenance) -> str:
    """The device a row ran on by name: the GPU's model for cuda rows, the CPU's for cpu rows."""
    device = str(row_device)
    if device.startswith("cuda") and provenance.device_name and \
            not provenance.device_name.startswith("cpu"):
        return provenance.device_name
    if device == "cpu":
        return f"cpu: {provenance.cpu_model}" if provenance.cpu_model else "cpu"
    return device


def _stamp(run: Run, order: int) -> pd.DataFrame:
    """A run's rows with where they came from (file, date, input order) and the device's name."""
    frame = run.frame.copy()
    frame["source_file"] = str(run.path)
    frame["run_date"] = run.provenance.date
    frame["run_order"] = order
    frame["device_label"] = [device_label(d, run.provenance) for d in frame["device"]]
    return frame


def _keep_newest(frame: pd.DataFrame, key: Sequence[str], notes: list[str]) -> pd.DataFrame:
    """One row per key: the newest run's (by date, then input order); replacements are noted."""
    frame = frame.sort_values(["run_date", "run_order"], kind="stable")
    duplicated = frame.duplicated(subset=list(key), keep="last")
    newest = frame.groupby(list(key), dropna=False, sort=False)["source_file"].transform("last")
    replaced = frame[duplicated].assign(newer=newest[duplicated])
    for (old, new), count in replaced.groupby(["source_file", "newer"]).size().items():
        notes.append(f"{old}: {count} row(s) measured again in {new}; the newer rows are plotted")
    return frame[~duplicated].reset_index(drop=True)


def complexity_frame(runs: Sequence[Run], notes: list[str]) -> pd.DataFrame:
    """All complexity rows, typed, stamped with their run and device name, one per setting+key."""
    if not runs:
        return pd.DataFrame()
    frame = pd.concat([_stamp(run, i) for i, run in enumerate(runs)], ignore_index=True)
    for column in COMPLEXITY_NUMBERS:
        frame[column] = pd.to_numeric(frame[column]).astype(float)
    for column in ("impl", "precision", "mode", "name", "subject"):
        frame[column] = frame[column].fillna("").astype(str)
    frame["tokens"] = frame["tokens"].where(frame["tokens"] > 0)  # 0: no token count
    on_gpu = ~frame["device"].astype(str).str.startswith("cpu")
    frame.loc[on_gpu, "threads"] = float("nan")  # CPU threads do not change a GPU's timing
    key = [*SETTING_FIELDS, *LINE_FIELDS, "res_h", "res_w"]
    return _keep_newest(frame, key, notes)


def robustness_frame(runs: Sequence[Run], notes: list[str]) -> pd.DataFrame:
    """All robustness rows with top-1 error as a fraction (from the counts when not stored)."""
    if not runs:
        return pd.DataFrame()
    frame = pd.concat([_stamp(run, i) for i, run in enumerate(runs)], ignore_index=True)
    for column in ROBUSTNESS_NUMBERS:
        frame[column] = pd.to_numeric(frame[column]).astype(float)
    counted = 1.0 - frame["correct_top1"] / frame["images"].where(frame["images"] > 0)
    frame["error_top1"] = frame["error_top1"].fillna(counted)
    frame = frame[frame["error_top1"].notna()]
    return _keep_newest(frame, ROBUSTNESS_KEY, notes)


def settings_of(frame: pd.DataFrame) -> list[tuple[str, Setting, pd.DataFrame]]:
    """(subject, setting, rows) for every complexity figure to draw, in a stable order."""
    if frame.empty:
        return []
    groups = []
    for (subject, device, batch, precision, mode), rows in frame.groupby(
            ["subject", *SETTING_FIELDS], sort=True):
        setting = Setting(device=str(device), batch_size=int(batch), precision=str(precision),
                          mode=str(mode))
        groups.append((str(subject), setting, rows.reset_index(drop=True)))
    return groups
