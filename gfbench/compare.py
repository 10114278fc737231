"""Two complexity runs side by side: the settings both measured, B/A per metric, what differs.

`gfbench compare A B` reads results files or folders (as `gfbench plot` does), pairs the rows
that measured the same setting (the one complexity row key but the device: subject, name,
impl, width, image size or token grid, batch, precision, mode, classes, optimizer) and gives,
per metric, both values and the ratio B/A. Each run (results file) of A is compared with
each run of B on its own, unless ``combine`` joins each side's runs first (refused when their
machine or versions differ). A difference is marked only
where it is larger than the runs' own spread: latency (and the throughput derived from it)
when the p10-p90 intervals of A and B do not overlap; counted FLOPs and parameters when they
differ at all. Peak memory has no recorded spread, so its ratio is shown and not judged.
Where the runs were made differs too (device, versions, flags, command), that is listed.
Pure: reads files, returns dataclasses, prints nothing.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from gfbench.errors import GfbenchError
from gfbench.plot.load import run_name
from gfbench.results.frame import (
    Loaded,
    complexity_frame,
    load_results,
    provenance_values,
    split_shared,
)
from gfbench.results.schema import ComplexityRow

# What makes two rows the same setting, whichever machine measured them: the row key less
# the device (a CPU run and a GPU run compare).
SETTING_KEY = tuple(f for f in ComplexityRow.KEY_FIELDS if f != "device")
# How a row was measured: paired when equal, else listed as a difference.
CONDITIONS = ("device_label", "compile", "channels_last", "threads", "warmup", "repeat")
CONDITION_NAMES = {"device_label": "row device", "compile": "compile",
                   "channels_last": "channels-last", "threads": "threads (rows)",
                   "warmup": "warm-up calls", "repeat": "timed calls"}
COUNTED = ("flops", "params")
TIMED = ("latency_ms_p50", "throughput_ips")
METRICS = (*COUNTED, *TIMED, "peak_mem_bytes")

SAME, DIFFERS = "same", "differs"  # counted metrics
WITHIN, BEYOND = "within spread", "beyond spread"  # timed metrics: p10-p90 overlap or not
NOT_JUDGED = "not judged"  # a value without a spread (memory), or a p10/p90 missing
ONE_SIDE = "one side only"  # A or B has no value (OOM, or not measured)


@dataclass(frozen=True)
class MetricComparison:
    """One metric of one setting in A and in B, their ratio B/A and whether it stands out."""

    metric: str
    a: float | None
    b: float | None
    ratio: float | None
    verdict: str  # SAME, DIFFERS, WITHIN, BEYOND, NOT_JUDGED or ONE_SIDE

    @property
    def marked(self) -> bool:
        """True when the difference is larger than the runs' own spread."""
        return self.verdict in (DIFFERS, BEYOND)


@dataclass(frozen=True)
class SettingComparison:
    """A setting both runs measured: what it is, each side's status, and its metrics."""

    subject: str
    name: str
    impl: str
    dim: float | None
    side_h: int  # a model's input pixels, a mixer's token grid
    side_w: int
    batch_size: int
    precision: str
    mode: str
    status_a: str
    status_b: str
    metrics: tuple[MetricComparison, ...]
    optimizer: str = ""
    run_a: str = ""  # the runs compared ('' when a side's runs are combined)
    run_b: str = ""
    reparam: bool = False  # a model counted in its deploy form (--reparam)


@dataclass(frozen=True)
class ProvenanceDifference:
    """A way the two runs were made differently (values joined by '; ' when a side has several)."""

    field: str
    a: str
    b: str


@dataclass(frozen=True)
class Comparison:
    """Everything `gfbench compare` shows: the paired settings and what differs between runs."""

    a: str
    b: str
    a_files: tuple[str, ...]
    b_files: tuple[str, ...]
    settings: tuple[SettingComparison, ...]
    only_a: int  # settings measured by A alone
    only_b: int
    differences: tuple[ProvenanceDifference, ...]
    problems: tuple[str, ...]  # inputs skipped, one line each
    notes: tuple[str, ...] = ()  # --combine warnings, settings measured again

    @property
    def marked(self) -> int:
        """How many (setting, metric) cells differ by more than the runs' spread."""
        return sum(m.marked for s in self.settings for m in s.metrics)

    def as_json(self) -> dict[str, Any]:
        """What --json prints: every field, and how many cells are marked."""
        return {**dataclasses.asdict(self), "marked": self.marked}


def _number(value: float | str | None) -> float | None:
    """A cell as a float, None when missing."""
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _ratio(a: float | None, b: float | None) -> float | None:
    """B/A, None when either is missing or A is zero."""
    return None if a is None or b is None or a == 0 else b / a


def _interval(row: pd.Series, metric: str) -> tuple[float, float] | None:
    """The p10-p90 interval of a timed metric; throughput's comes from latency's."""
    low, high = _number(row.get("latency_ms_p10")), _number(row.get("latency_ms_p90"))
    if low is None or high is None:
        return None
    if metric == "throughput_ips":
        batch = float(row["batch_size"])
        return batch * 1000.0 / high, batch * 1000.0 / low
    return low, high


def verdict(metric: str, a: pd.Series, b: pd.Series) -> str:
    """Whether A and B differ by more than their spread, for one metric."""
    va, vb = _number(a.get(metric)), _number(b.get(metric))
    if va is None or vb is None:
        return ONE_SIDE
    if metric in COUNTED:
        return SAME if va == vb else DIFFERS
    if metric in TIMED:
        ia, ib = _interval(a, metric), _interval(b, metric)
        if ia is not None and ib is not None:
            return WITHIN if ia[0] <= ib[1] and ib[0] <= ia[1] else BEYOND
    return NOT_JUDGED


def compare_rows(a: pd.Series, b: pd.Series) -> SettingComparison:
    """One paired setting: both values, B/A and the verdict of every metric either side has."""
    metrics = []
    for metric in METRICS:
        va, vb = _number(a.get(metric)), _number(b.get(metric))
        if va is None and vb is None:
            continue
        metrics.append(MetricComparison(metric=metric, a=va, b=vb, ratio=_ratio(va, vb),
                                        verdict=verdict(metric, a, b)))
    return SettingComparison(
        subject=str(a["subject"]), name=str(a["name"]), impl=str(a["impl"]),
        dim=_number(a["dim"]), side_h=int(a["side_h"]), side_w=int(a["side_w"]),
        batch_size=int(a["batch_size"]), precision=str(a["precision"]), mode=str(a["mode"]),
        status_a=str(a["status"]), status_b=str(b["status"]), metrics=tuple(metrics),
        optimizer=str(a["optimizer"]), run_a=run_name(a["run"], a["run_id"]),
        run_b=run_name(b["run"], b["run_id"]), reparam=bool(a.get("reparam", False)))


def _key(row: pd.Series, fields: Sequence[str]) -> tuple:
    """The values of some fields of a row, NaN made comparable (None), whole floats as ints."""
    return tuple(None if v is None or (isinstance(v, float) and math.isnan(v))
                 else int(v) if isinstance(v, float) and v.is_integer() else v
                 for v in (row[f] for f in fields))


def _by_setting(frame: pd.DataFrame) -> dict[tuple, list[pd.Series]]:
    """A side's rows grouped by setting (a missing width compares equal to a missing width)."""
    groups: dict[tuple, list[pd.Series]] = {}
    for _, row in frame.iterrows():
        groups.setdefault(_key(row, SETTING_KEY), []).append(row)
    return groups


def _pair_within(groups_a: dict[tuple, list[pd.Series]], groups_b: dict[tuple, list[pd.Series]]
                 ) -> list[tuple[pd.Series, pd.Series]]:
    """The pairs of one run of A and one run of B (or of the combined sides).

    A setting each side measured once pairs whatever the conditions (another GPU, threads,
    compile); where a side measured it several times, rows pair when their conditions match.
    """
    pairs: list[tuple[pd.Series, pd.Series]] = []
    for key in sorted(set(groups_a) & set(groups_b), key=str):
        rows_a, rows_b = groups_a[key], groups_b[key]
        if len(rows_a) == 1 and len(rows_b) == 1:
            pairs.append((rows_a[0], rows_b[0]))
            continue
        by_condition = {_key(r, CONDITIONS): r for r in rows_b}
        pairs.extend((r, by_condition[_key(r, CONDITIONS)]) for r in rows_a
                     if _key(r, CONDITIONS) in by_condition)
    return pairs


def pair_rows(a: pd.DataFrame, b: pd.DataFrame) -> tuple[list[tuple[pd.Series, pd.Series]],
                                                          int, int]:
    """Rows of A and B that measured one setting, each run of A against each run of B, and
    how many rows of each side found no partner in any run."""
    pairs: list[tuple[pd.Series, pd.Series]] = []
    for _, rows_a in a.groupby("run", sort=True):
        for _, rows_b in b.groupby("run", sort=True):
            pairs += _pair_within(_by_setting(rows_a), _by_setting(rows_b))
    paired_a = {x.name for x, _ in pairs}  # a row's index label in its side's frame
    paired_b = {y.name for _, y in pairs}
    return pairs, int((~a.index.isin(paired_a)).sum()), int((~b.index.isin(paired_b)).sum())


def _side_values(loaded: Loaded, rows: Sequence[pd.Series]) -> dict[str, str]:
    """How one side's paired rows were made: provenance, conditions and command, as text."""
    files = {str(r["source_file"]) for r in rows}
    runs = [run for run in loaded.runs if str(run.path) in files]
    fields: dict[str, set[str]] = {}
    for run in runs:
        for field, value in provenance_values(run.provenance).items():
            fields.setdefault(field, set()).add(value)
        fields.setdefault("command", set()).add(run.provenance.command)
        fields.setdefault("FLOP convention", set()).add(run.provenance.flop_convention)
    for condition in CONDITIONS:
        fields[CONDITION_NAMES[condition]] = {
            "-" if (v := _key(r, [condition])[0]) is None else str(v) for r in rows}
    return {field: "; ".join(sorted(values)) for field, values in fields.items()}


def _differences(loaded_a: Loaded, loaded_b: Loaded,
                 pairs: Sequence[tuple[pd.Series, pd.Series]]) -> list[ProvenanceDifference]:
    """The fields in which the paired rows of A and of B were made differently."""
    side_a = _side_values(loaded_a, [a for a, _ in pairs])
    side_b = _side_values(loaded_b, [b for _, b in pairs])
    _, differing = split_shared([side_a, side_b])
    return [ProvenanceDifference(field=f, a=side_a[f], b=side_b.get(f, "")) for f in differing]


def _side(path: Path | str, notes: list[str], combine: bool) -> tuple[Loaded, pd.DataFrame]:
    """The complexity rows under one input; GfbenchError when it holds none."""
    loaded = load_results([path])
    frame = complexity_frame(loaded.runs_of("complexity"), notes, combine)
    if frame.empty:
        why = f" ({'; '.join(loaded.problems)})" if loaded.problems else ""
        raise GfbenchError(f"{path}: holds no complexity results to compare{why}")
    return loaded, frame


def compare_runs(a: Path | str, b: Path | str, combine: bool = False) -> Comparison:
    """Compare the complexity results under A with those under B (files or folders): each
    run of A with each run of B, or each side's runs joined first when ``combine``.

    Raises GfbenchError (one line) when either holds no complexity rows, the two have no
    setting in common, or runs to combine were made on other machines or versions.
    """
    notes: list[str] = []
    loaded_a, frame_a = _side(a, notes, combine)
    loaded_b, frame_b = _side(b, notes, combine)
    pairs, only_a, only_b = pair_rows(frame_a, frame_b)
    if not pairs:
        raise GfbenchError(f"{a} and {b} have no setting in common (a setting is: "
                           f"{', '.join(SETTING_KEY)}); A has {len(frame_a)} row(s), "
                           f"B has {len(frame_b)}")
    settings = sorted((compare_rows(x, y) for x, y in pairs),
                      key=lambda s: (s.run_a, s.run_b, s.subject, s.name, s.impl, s.batch_size,
                                     s.precision, s.mode, s.side_h * s.side_w, s.side_h))
    return Comparison(
        a=str(a), b=str(b), a_files=_files(loaded_a), b_files=_files(loaded_b),
        settings=tuple(settings), only_a=only_a, only_b=only_b,
        differences=tuple(_differences(loaded_a, loaded_b, pairs)),
        problems=tuple([*loaded_a.problems, *loaded_b.problems]), notes=tuple(notes))


def _files(loaded: Loaded) -> tuple[str, ...]:
    """The complexity files one side read."""
    return tuple(str(run.path) for run in loaded.runs_of("complexity"))


def comparison_records(comparison: Comparison) -> Iterable[dict]:
    """One flat dict per (setting, metric): what a report table or a script needs."""
    for s in comparison.settings:
        for m in s.metrics:
            yield {"run_a": s.run_a, "run_b": s.run_b, "subject": s.subject, "name": s.name,
                   "impl": s.impl, "dim": s.dim, "side_h": s.side_h, "side_w": s.side_w,
                   "optimizer": s.optimizer, "reparam": s.reparam, "batch_size": s.batch_size,
                   "precision": s.precision, "mode": s.mode, "status_a": s.status_a,
                   "status_b": s.status_b, "metric": m.metric, "a": m.a, "b": m.b,
                   "ratio": m.ratio, "verdict": m.verdict, "marked": m.marked}
