"""Results files as pandas tables: every readable run in, one line per file that is not.

The loading that `gfbench plot` and `gfbench compare` share. A run is one results file; its
rows carry where they came from (``source_file``, ``run``, ``run_id``) and the device by name
(``device_label``). Rows of different runs are kept apart unless the caller combines them,
and combining is refused (CombineError) when the runs were made on another machine or with
other versions. Imports no torch.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from gfbench.errors import CombineError, ResultsFileError
from gfbench.results.files import find_results, read_results
from gfbench.results.schema import BREAKDOWN_GROUPS, SUBJECTS, ComplexityRow, Provenance

COMPLEXITY_NUMBERS = ("res_h", "res_w", "grid_h", "grid_w", "tokens", "batch_size", "dim",
                      "flops", "params", "latency_ms_p10", "latency_ms_p50", "latency_ms_p90",
                      "throughput_ips", "peak_mem_bytes", "threads")
ROBUSTNESS_NUMBERS = ("severity", "images", "correct_top1", "correct_top5", "error_top1",
                      "error_top5", "eps", "ece", "nll", "brier")
BREAKDOWN_NUMBERS = ("res_h", "res_w", "tokens", "depth", "flops", "params", "model_flops",
                     "model_params")
STATUSES = ("ok", "oom", "error", "skipped")
# How a row was measured besides its key: rows that differ here are separate curves.
CONDITIONS = ("compile", "channels_last", "threads")
ROBUSTNESS_KEY = ("model", "checkpoint", "source", "corruption", "severity", "eps", "precision",
                  "device", "checkpoint_sha256")
# What must be equal for --combine to join runs, and what only earns a warning.
MACHINE_FIELDS = ("device_name", "cpu_model")
VERSION_FIELDS = ("gfbench_version", "torch_version", "timm_version")


def complexity_key() -> tuple[str, ...]:
    """The one complexity row key, with the device by name ('cpu' on two machines differs)."""
    return tuple("device_label" if f == "device" else f for f in ComplexityRow.KEY_FIELDS)


@dataclass
class Run:
    """One results file that was read: where it came from, how it was made, its rows."""

    path: Path
    provenance: Provenance
    frame: pd.DataFrame

    @property
    def kind(self) -> str:
        """'complexity', 'robustness' or 'breakdown'."""
        return self.provenance.kind

    @property
    def run_id(self) -> str:
        """The run number the file carries ('' for a file written before runs were numbered)."""
        return str((self.provenance.extra or {}).get("run_id", ""))


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


def _first_bad(frame: pd.DataFrame, checks: Iterable[tuple[pd.Series, str, str]]) -> str | None:
    """The first (rows, column, allowed) check some row fails, as one line."""
    for bad, column, allowed in checks:
        if bad.any():
            i = int(bad.idxmax())
            return f"row {i}: {column} is {_shown(frame[column][i])}, expected {allowed}"
    return None


def _bad_complexity(frame: pd.DataFrame) -> str | None:
    """Why a complexity table cannot be plotted, or None when it can."""
    if (problem := _bad_number(frame, COMPLEXITY_NUMBERS)) is not None:
        return problem
    mixer = frame["subject"] == "mixer"
    return _first_bad(frame, (
        (~frame["subject"].isin(SUBJECTS), "subject", "one of " + ", ".join(SUBJECTS)),
        (~frame["status"].isin(STATUSES), "status", "one of " + ", ".join(STATUSES)),
        # 0 or empty: a network with no token mixer (a CNN); plotted against resolution
        (pd.to_numeric(frame["tokens"]) < 0, "tokens",
         "a count (0 or empty for a model without tokens)"),
        (~mixer & (~(pd.to_numeric(frame["res_h"]) > 0) | ~(pd.to_numeric(frame["res_w"]) > 0)),
         "res_h", "a positive size (a model's input pixels)"),
        (mixer & (~(pd.to_numeric(frame["grid_h"]) > 0) | ~(pd.to_numeric(frame["grid_w"]) > 0)),
         "grid_h", "a positive size (a mixer's token grid)"),
        (~(pd.to_numeric(frame["batch_size"]) > 0), "batch_size", "a positive count"),
    ))


def _bad_robustness(frame: pd.DataFrame) -> str | None:
    """Why a robustness table cannot be plotted, or None when it can."""
    if (problem := _bad_number(frame, ROBUSTNESS_NUMBERS)) is not None:
        return problem
    images = pd.to_numeric(frame["images"])
    correct = pd.to_numeric(frame["correct_top1"])
    severity = pd.to_numeric(frame["severity"])
    return _first_bad(frame, (
        (~(images >= 0), "images", "a count"),
        (~((correct >= 0) & (correct <= images)), "correct_top1", "a count up to images"),
        (~severity.isin(range(6)), "severity", "0..5"),
    ))


def _bad_breakdown(frame: pd.DataFrame) -> str | None:
    """Why a breakdown table cannot be plotted, or None when it can."""
    if (problem := _bad_number(frame, BREAKDOWN_NUMBERS)) is not None:
        return problem
    ok = frame["status"] == "ok"
    return _first_bad(frame, (
        (ok & ~frame["group"].isin(BREAKDOWN_GROUPS), "group",
         "one of " + ", ".join(BREAKDOWN_GROUPS)),
        (ok & ~(pd.to_numeric(frame["flops"]) >= 0), "flops", "a count"),
        (~(pd.to_numeric(frame["res_h"]) > 0) | ~(pd.to_numeric(frame["res_w"]) > 0),
         "res_h", "a positive size"),
    ))


_CHECKS = {"complexity": _bad_complexity, "robustness": _bad_robustness,
           "breakdown": _bad_breakdown}


def read_run(path: Path) -> Run:
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
            loaded.runs.append(read_run(path))
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


def load_at_start(provenance: Provenance) -> str:
    """The 1-minute load average when the run started, as text ('' when not recorded)."""
    load = (provenance.extra or {}).get("load_average_at_start")
    return f"{float(load[0]):.2f}" if isinstance(load, list | tuple) and load else ""


def provenance_values(provenance: Provenance) -> dict[str, str]:
    """A run's PROVENANCE_FIELDS (and its load at start) as text, in the table's order."""
    values = {label: str(getattr(provenance, attr)) for label, attr in PROVENANCE_FIELDS.items()}
    values["load average at start"] = load_at_start(provenance)
    return values


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


def _stamp(run: Run, order: int, combine: bool) -> pd.DataFrame:
    """A run's rows with where they came from (file, run, date, input order), the device's
    name; ``run`` is '' for every row when runs are combined, else the run's file."""
    frame = run.frame.copy()
    frame["source_file"] = str(run.path)
    frame["run"] = "" if combine else str(run.path)
    frame["run_id"] = "" if combine else run.run_id
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


def _differs(a: Run, b: Run, fields: Sequence[str]) -> str | None:
    """The first provenance field two runs disagree on, as 'field (a vs b)'."""
    for name in fields:
        va, vb = getattr(a.provenance, name), getattr(b.provenance, name)
        if va != vb:
            return f"{name} ({va} vs {vb})"
    return None


def _busy(run: Run) -> bool:
    """Whether the machine was busier than its cores when the run started."""
    load = load_at_start(run.provenance)
    return bool(load) and float(load) > (run.provenance.cpu_threads or 0) > 0


def check_combinable(runs: Sequence[Run]) -> list[str]:
    """Runs that --combine joins: CombineError (one line) when a machine or version differs;
    one warning line per run whose threads or load differ from the first's."""
    warnings: list[str] = []
    if not runs:
        return warnings
    first = runs[0]
    for run in runs[1:]:
        if (why := _differs(first, run, (*MACHINE_FIELDS, *VERSION_FIELDS))) is not None:
            raise CombineError(f"--combine refused: {first.path} and {run.path} differ in {why}; "
                               "plot or compare them apart (without --combine)")
        if (why := _differs(first, run, ("torch_threads",))) is not None:
            warnings.append(f"--combine: {first.path} and {run.path} differ in {why}")
    warnings += [f"--combine: {run.path} started on a busy machine (load "
                 f"{load_at_start(run.provenance)} above its {run.provenance.cpu_threads} cores)"
                 for run in runs if _busy(run)]
    return warnings


def combine_groups(frame: pd.DataFrame, runs: Sequence[Run]) -> list[list[Run]]:
    """The runs --combine would join, per (subject, device, batch, precision, mode) they share."""
    by_path = {str(run.path): run for run in runs}
    groups = frame.groupby(["subject", "device_label", "batch_size", "precision", "mode"],
                           sort=True)["source_file"].unique()
    return [[by_path[p] for p in files] for files in groups if len(files) > 1]


def complexity_frame(runs: Sequence[Run], notes: list[str], combine: bool = False
                     ) -> pd.DataFrame:
    """All complexity rows, typed, stamped with their run and device name, one per key.

    Each run stays apart (the ``run`` column) unless ``combine``: then rows of one setting
    from several runs become one table (a setting measured again: the newest row, noted),
    after check_combinable (its warnings go to ``notes``). ``side_h``/``side_w`` are the
    sizes a figure shows: input pixels for models, the token grid for mixers.
    """
    if not runs:
        return pd.DataFrame()
    frame = pd.concat([_stamp(run, i, combine) for i, run in enumerate(runs)], ignore_index=True)
    for column in COMPLEXITY_NUMBERS:
        frame[column] = pd.to_numeric(frame[column]).astype(float)
    for column in ("impl", "precision", "mode", "name", "subject", "optimizer"):
        frame[column] = frame[column].fillna("").astype(str)
    frame["tokens"] = frame["tokens"].where(frame["tokens"] > 0)  # 0: no token count
    on_gpu = ~frame["device"].astype(str).str.startswith("cpu")
    frame.loc[on_gpu, "threads"] = float("nan")  # CPU threads do not change a GPU's timing
    mixer = frame["subject"] == "mixer"
    frame["side_h"] = frame["grid_h"].where(mixer, frame["res_h"])
    frame["side_w"] = frame["grid_w"].where(mixer, frame["res_w"])
    if combine:
        for group in combine_groups(frame, runs):
            notes.extend(check_combinable(group))
    return _keep_newest(frame, [*complexity_key(), *CONDITIONS, "run"], notes)


def robustness_frame(runs: Sequence[Run], notes: list[str]) -> pd.DataFrame:
    """All robustness rows with top-1 error as a fraction (from the counts when not stored)."""
    if not runs:
        return pd.DataFrame()
    frame = pd.concat([_stamp(run, i, True) for i, run in enumerate(runs)], ignore_index=True)
    for column in ROBUSTNESS_NUMBERS:
        frame[column] = pd.to_numeric(frame[column]).astype(float)
    counted = 1.0 - frame["correct_top1"] / frame["images"].where(frame["images"] > 0)
    frame["error_top1"] = frame["error_top1"].fillna(counted)
    frame = frame[frame["error_top1"].notna()]
    return _keep_newest(frame, ROBUSTNESS_KEY, notes)
