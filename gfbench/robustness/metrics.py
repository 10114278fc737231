"""ImageNet-C metrics from robustness rows: pure functions of a DataFrame, shared by the CLI
summary and the plots.

Definitions (Hendrycks & Dietterich 2019), E = top-1 error:
  CE(c)          = mean_s E(c, s) / AlexNet(c)                      (needs severities 1..5)
  mCE            = mean of CE over the 15 benchmark corruptions
  relative CE(c) = (mean_s E(c, s) - E_clean) / (AlexNet(c) - AlexNet_clean)
  relative mCE   = mean of relative CE over the 15
  mean error     = plain mean of mean_s E(c, s) over the 15: unnormalised, not mCE.
  C-bar error    = plain mean of E(c, s) over ImageNet-C-bar's (corruption, severity) cases
                   evaluated, no normalisation (Mintun et al. 2021, arXiv 2102.11273).
Calibration (Guo et al. 2017; under shift, Ovadia et al. 2019; see calibration.py): ECE of
15 equal-width confidence bins in percent, NLL in nats and the Brier score (0..2) as they are.
Every error and ECE here is in percent; a metric that needs data that is absent is None.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from gfbench.robustness.calibration import CalibrationSums, parse_bins, pooled
from gfbench.robustness.protocol import (
    ALEXNET_CLEAN_ERROR,
    ALEXNET_ERROR,
    ALL_CORRUPTIONS,
    BENCHMARK_CORRUPTIONS,
    CBAR_CORRUPTIONS,
    EVAL_SET_INFO,
    GROUPS,
    SEVERITIES,
    group_of,
)

CORRUPTION_SOURCES = ("imagenet-c", "generated", "generated-bar")
CBAR_SOURCE = "generated-bar"  # ImageNet-C-bar generated in memory
CBAR_CASES = len(CBAR_CORRUPTIONS) * len(SEVERITIES)  # the 50 of the authors' table
CALIBRATION_FIELDS = ("ece", "nll", "brier", "calibration_bins")  # absent from older files
COMPARABLE_SOURCE = "imagenet-c"
TEST_SETS_SOURCE = "test-sets"  # a summary of test-set rows alone (no clean, no corruptions)


@dataclass
class RobustnessSummary:
    """Every metric of one (model, checkpoint, corruption source), in percent."""

    model: str
    checkpoint: str
    source: str  # imagenet-c | generated | generated-bar | clean (clean/attack rows) | test-sets
    per_corruption: pd.DataFrame  # one row per corruption evaluated (see corruption_table)
    groups: pd.DataFrame  # group, corruptions, mean_error_pct, mean_ce_pct
    attacks: pd.DataFrame  # attack, eps, images, accuracy_top1_pct, clean_accuracy_top1_pct
    test_sets: pd.DataFrame = field(default_factory=lambda: eval_set_table(pd.DataFrame()))
    clean_error_top1_pct: float | None = None
    clean_error_top5_pct: float | None = None
    mce_pct: float | None = None  # only when all 15 corruptions have all 5 severities
    relative_mce_pct: float | None = None  # same, and a clean row
    mean_ce_pct: float | None = None  # mean CE over the corruptions that have one
    ce_corruptions: int = 0  # how many of the 15 have a CE
    mean_error_pct: float | None = None  # unnormalised mean error over the 15 present
    mean_error_corruptions: int = 0
    unreadable: int = 0  # failed image reads, summed over the clean row and this source's parts
    missing: list[str] = field(default_factory=list)  # benchmark "corruption/severity" absent
    checkpoint_sha256: str = ""  # the checkpoint's content hash ("" in files made before it)
    clean_ece_pct: float | None = None  # calibration of the clean row (None: not computed)
    clean_nll: float | None = None
    clean_brier: float | None = None
    # per severity: corruptions, error_top1_pct, ece_pct, nll, brier, means over the benchmark
    # corruptions evaluated at it (see calibration_by_severity)
    calibration: pd.DataFrame = field(default_factory=lambda: calibration_by_severity(
        pd.DataFrame()))
    # (what, pooled bins) for the reliability diagram: clean, then the severest shift
    reliability: list[tuple[str, CalibrationSums]] = field(default_factory=list)
    uncalibrated: int = 0  # parts of this summary whose rows carry no calibration (older files)
    cbar_error_pct: float | None = None  # source generated-bar: the C-bar error (see above)
    cbar_cases: int = 0  # how many of C-bar's 50 (corruption, severity) cases it averages

    @property
    def complete(self) -> bool:
        """All 15 benchmark corruptions at all 5 severities are present (for C-bar rows: all
        10 C-bar corruptions at all 5)."""
        if self.source == CBAR_SOURCE:
            return self.cbar_cases == CBAR_CASES
        return self.ce_corruptions == len(BENCHMARK_CORRUPTIONS)

    @property
    def comparable(self) -> bool:
        """Whether the headline may sit beside published numbers: mCE on the released JPEGs,
        complete; the C-bar error when all 50 cases ran (the authors' own test_c_bar.py also
        corrupts in memory, with other random draws)."""
        return self.source in (COMPARABLE_SOURCE, CBAR_SOURCE) and self.complete


def _pct(numerator: float, denominator: float) -> float | None:
    """100 * numerator / denominator, None when the denominator is 0."""
    return None if denominator == 0 else 100.0 * numerator / denominator


def _mean(values: Sequence[float | None]) -> float | None:
    """Mean of the values that are not None; None when none are."""
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _strict_mean(values: Sequence[object]) -> float | None:
    """Mean of the values, None when there are none or any is missing: a mean over the parts
    that happen to have a number would misstate what it averages."""
    present = [v for v in map(_number, values) if v is not None]
    return sum(present) / len(present) if present and len(present) == len(values) else None


def row_calibration(row: object) -> CalibrationSums | None:
    """A row's calibration sums (from its bins, NLL and Brier), None when it has none."""
    return parse_bins(getattr(row, "calibration_bins", None), getattr(row, "nll", None),
                      getattr(row, "brier", None))


def _number(value: object) -> float | None:
    """A cell as a float, None when missing (or not a number)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
        return float(value)
    return None


def with_errors(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows with error_top1_pct / error_top5_pct recomputed from the integer counts, and
    ece_pct recomputed from the bins (the stored ece where a row has no bins; None in files
    made before calibration, whose ece/nll/brier columns are added empty)."""
    out = frame.copy()
    images = out["images"].astype(float)
    safe = images.where(images > 0)
    out["error_top1_pct"] = 100.0 * (1.0 - out["correct_top1"] / safe)
    out["error_top5_pct"] = 100.0 * (1.0 - out["correct_top5"] / safe)
    for column in CALIBRATION_FIELDS:
        if column not in out:
            out[column] = None
    eces = []
    for r in out.itertuples():
        sums = row_calibration(r)
        ece = sums.ece if sums is not None else _number(r.ece)
        eces.append(None if ece is None else 100.0 * ece)
    out["ece_pct"] = pd.Series(eces, index=out.index, dtype=float)
    for column in ("nll", "brier"):
        out[column] = pd.to_numeric(out[column], errors="coerce").astype(float)
    return out


def corruption_table(rows: pd.DataFrame, clean_error_pct: float | None) -> pd.DataFrame:
    """Per corruption: group, severities, mean error over them, AlexNet error, CE, relative CE,
    and the mean ECE, NLL and Brier over the severities (None when one lacks them)."""
    records = []
    for corruption in [c for c in ALL_CORRUPTIONS + CBAR_CORRUPTIONS
                       if c in set(rows["corruption"])]:
        part = rows[rows["corruption"] == corruption]
        error = float(part["error_top1_pct"].mean())
        error5 = float(part["error_top5_pct"].mean())
        full = set(part["severity"]) == set(SEVERITIES)
        alexnet = ALEXNET_ERROR.get(corruption)
        ce = relative = None
        if full and alexnet is not None:
            ce = error / alexnet  # percent / fraction = percent of AlexNet's error
            if clean_error_pct is not None:
                relative = (error - clean_error_pct) / (alexnet - ALEXNET_CLEAN_ERROR)
        records.append({
            "corruption": corruption, "group": group_of(corruption),
            "severities": int(part["severity"].nunique()), "images": int(part["images"].sum()),
            "error_top1_pct": error, "error_top5_pct": error5,
            "alexnet_error_pct": None if alexnet is None else 100.0 * alexnet,
            "ce_pct": ce, "relative_ce_pct": relative,
            "ece_pct": _strict_mean(list(part["ece_pct"])), "nll": _strict_mean(list(part["nll"])),
            "brier": _strict_mean(list(part["brier"])),
        })
    columns = ["corruption", "group", "severities", "images", "error_top1_pct", "error_top5_pct",
               "alexnet_error_pct", "ce_pct", "relative_ce_pct", "ece_pct", "nll", "brier"]
    return pd.DataFrame(records, columns=columns)


def calibration_by_severity(rows: pd.DataFrame) -> pd.DataFrame:
    """Per severity evaluated: how many of the 15 benchmark corruptions have it, and the mean
    over them of top-1 error, ECE, NLL and Brier (Ovadia et al.'s calibration against shift;
    a mean is None when any of those parts lacks calibration)."""
    columns = ["severity", "corruptions", "error_top1_pct", "ece_pct", "nll", "brier"]
    if rows.empty:
        return pd.DataFrame(columns=columns)
    benchmark = rows[rows["corruption"].isin(BENCHMARK_CORRUPTIONS)]
    records = []
    for severity in sorted(set(benchmark["severity"])):
        part = benchmark[benchmark["severity"] == severity]
        records.append({
            "severity": int(severity), "corruptions": int(part["corruption"].nunique()),
            "error_top1_pct": float(part["error_top1_pct"].mean()),
            "ece_pct": _strict_mean(list(part["ece_pct"])), "nll": _strict_mean(list(part["nll"])),
            "brier": _strict_mean(list(part["brier"])),
        })
    return pd.DataFrame(records, columns=columns)


def reliability_parts(rows: pd.DataFrame, source: str) -> list[tuple[str, CalibrationSums]]:
    """What the reliability diagram shows: the clean row, then the severest shift evaluated,
    its bins pooled (all corruptions of `source` at the highest severity; without corruptions,
    the test set with the highest top-1 error). Parts without calibration are left out."""
    found: list[tuple[str, CalibrationSums]] = []
    clean = rows[rows["source"] == "clean"]
    if len(clean) and (sums := row_calibration(clean.iloc[-1])) is not None:
        found.append(("clean", sums))
    corrupted = rows[rows["source"] == source] if source in CORRUPTION_SOURCES else rows[:0]
    if len(corrupted):
        top = int(corrupted["severity"].max())
        worst = corrupted[corrupted["severity"] == top]
        sums = pooled([row_calibration(r) for r in worst.itertuples()])
        count = worst["corruption"].nunique()
        if sums is not None:
            found.append((f"severity {top}, {count} corruption{'s' if count > 1 else ''} pooled",
                          sums))
        return found
    tests = rows[rows["source"].isin(list(EVAL_SET_INFO)) & rows["error_top1_pct"].notna()]
    if len(tests):
        worst_test = tests.loc[tests["error_top1_pct"].astype(float).idxmax()]
        sums = row_calibration(worst_test)
        if sums is not None:
            found.append((EVAL_SET_INFO[str(worst_test["source"])][0], sums))
    return found


def group_table(per_corruption: pd.DataFrame) -> pd.DataFrame:
    """Per benchmark group (noise, blur, weather, digital): mean error and mean CE."""
    records = []
    for group, members in GROUPS.items():
        part = per_corruption[per_corruption["corruption"].isin(members)]
        if part.empty:
            continue
        records.append({
            "group": group, "corruptions": len(part),
            "mean_error_pct": float(part["error_top1_pct"].mean()),
            "mean_ce_pct": _mean([None if pd.isna(v) else float(v) for v in part["ce_pct"]]),
        })
    return pd.DataFrame(records, columns=["group", "corruptions", "mean_error_pct",
                                          "mean_ce_pct"])


def attack_table(rows: pd.DataFrame, clean_error_pct: float | None) -> pd.DataFrame:
    """Per attack: budget, images, attacked and clean top-1 accuracy, and the calibration of
    the attacked images' softmax."""
    records = [{
        "attack": r.corruption, "eps": r.eps, "images": int(r.images),
        "accuracy_top1_pct": None if pd.isna(r.error_top1_pct) else 100.0 - r.error_top1_pct,
        "clean_accuracy_top1_pct": None if clean_error_pct is None else 100.0 - clean_error_pct,
        "ece_pct": _number(r.ece_pct), "nll": _number(r.nll), "brier": _number(r.brier),
    } for r in rows.itertuples()]
    return pd.DataFrame(records, columns=["attack", "eps", "images", "accuracy_top1_pct",
                                          "clean_accuracy_top1_pct", "ece_pct", "nll", "brier"])


def eval_set_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per test set evaluated (ImageNet-A, -R, -Sketch, V2): images, top-1/top-5 error and
    whether every image of the release was read (a partial download or --limit is not)."""
    columns = ["test_set", "title", "images", "unreadable", "released_images", "complete",
               "error_top1_pct", "error_top5_pct", "accuracy_top1_pct", "ece_pct", "nll",
               "brier"]
    records = []
    for name, (title, released) in EVAL_SET_INFO.items():
        if rows.empty or name not in set(rows["source"]):
            continue
        row = rows[rows["source"] == name].iloc[-1]
        error = None if pd.isna(row.error_top1_pct) else float(row.error_top1_pct)
        records.append({
            "test_set": name, "title": title, "images": int(row.images),
            "unreadable": int(row.unreadable), "released_images": released,
            "complete": int(row.images) + int(row.unreadable) == released,
            "error_top1_pct": error,
            "error_top5_pct": None if pd.isna(row.error_top5_pct) else float(row.error_top5_pct),
            "accuracy_top1_pct": None if error is None else 100.0 - error,
            "ece_pct": _number(row.ece_pct), "nll": _number(row.nll),
            "brier": _number(row.brier),
        })
    return pd.DataFrame(records, columns=columns)


def missing_parts(rows: pd.DataFrame,
                  names: Sequence[str] = BENCHMARK_CORRUPTIONS) -> list[str]:
    """(corruption/severity) pairs of names (the 15 benchmark ones) with no row, in order."""
    have = set(zip(rows["corruption"], rows["severity"], strict=True))
    return [f"{c}/{s}" for c in names for s in SEVERITIES if (c, s) not in have]


def cbar_error(rows: pd.DataFrame) -> tuple[float | None, int]:
    """(plain mean top-1 error in percent, cases) over the C-bar (corruption, severity) cases
    in rows with errors: each case once (its last row), no normalisation."""
    bar = rows[rows["corruption"].isin(CBAR_CORRUPTIONS)]
    cases = bar.groupby(["corruption", "severity"], sort=False)["error_top1_pct"].last()
    return (float(cases.mean()) if len(cases) else None), len(cases)


def summarize_one(rows: pd.DataFrame, model: str, checkpoint: str, source: str,
                  checkpoint_sha256: str = "") -> RobustnessSummary:
    """The summary of one model's rows for one corruption source (clean/attack rows shared)."""
    rows = with_errors(rows)
    clean = rows[rows["source"] == "clean"]
    clean_error = float(clean["error_top1_pct"].iloc[-1]) if len(clean) else None
    last_clean = clean.iloc[-1] if len(clean) else None
    clean_error5 = float(clean["error_top5_pct"].iloc[-1]) if len(clean) else None
    corrupted = rows[rows["source"] == source]
    per_corruption = corruption_table(corrupted, clean_error)
    benchmark = per_corruption[per_corruption["corruption"].isin(BENCHMARK_CORRUPTIONS)]
    ces = [float(v) for v in benchmark["ce_pct"] if not pd.isna(v)]
    relatives = [float(v) for v in benchmark["relative_ce_pct"] if not pd.isna(v)]
    complete = len(ces) == len(BENCHMARK_CORRUPTIONS)
    bar_error, bar_cases = cbar_error(corrupted) if source == CBAR_SOURCE else (None, 0)
    missing_of = CBAR_CORRUPTIONS if source == CBAR_SOURCE else BENCHMARK_CORRUPTIONS
    read = rows[rows["source"].isin([source, "clean"])]  # attacks re-read the clean files
    scope = rows[rows["source"].isin([source, "clean", "attack", *EVAL_SET_INFO])]
    return RobustnessSummary(
        model=model, checkpoint=checkpoint, source=source,
        per_corruption=per_corruption, groups=group_table(per_corruption),
        attacks=attack_table(rows[rows["source"] == "attack"], clean_error),
        test_sets=eval_set_table(rows),
        clean_error_top1_pct=clean_error, clean_error_top5_pct=clean_error5,
        mce_pct=_mean(ces) if complete else None,
        relative_mce_pct=_mean(relatives) if complete and len(relatives) == len(ces) else None,
        mean_ce_pct=_mean(ces), ce_corruptions=len(ces),
        mean_error_pct=_mean([float(v) for v in benchmark["error_top1_pct"]]),
        mean_error_corruptions=len(benchmark),
        unreadable=int(read["unreadable"].sum()),
        missing=missing_parts(corrupted, missing_of) if source in CORRUPTION_SOURCES else [],
        checkpoint_sha256=checkpoint_sha256,
        clean_ece_pct=None if last_clean is None else _number(last_clean["ece_pct"]),
        clean_nll=None if last_clean is None else _number(last_clean["nll"]),
        clean_brier=None if last_clean is None else _number(last_clean["brier"]),
        calibration=calibration_by_severity(
            corrupted if source in CORRUPTION_SOURCES else corrupted[:0]),
        reliability=reliability_parts(rows, source),
        uncalibrated=int(scope["ece_pct"].isna().sum()),
        cbar_error_pct=bar_error, cbar_cases=bar_cases,
    )


def summarize(frame: pd.DataFrame) -> list[RobustnessSummary]:
    """One summary per (model, checkpoint, corruption source) in a frame of robustness rows;
    a model with only clean and attack rows gets one summary of source 'clean', one with only
    test-set rows (ImageNet-A/R/Sketch/V2) one of source 'test-sets'."""
    frame = frame.copy()
    if "checkpoint_sha256" not in frame:
        frame["checkpoint_sha256"] = ""
    frame["checkpoint_sha256"] = frame["checkpoint_sha256"].fillna("").astype(str)
    summaries = []
    for (model, checkpoint, sha), rows in frame.groupby(
            ["model", "checkpoint", "checkpoint_sha256"], sort=False):
        present = set(rows["source"])
        sources = [s for s in CORRUPTION_SOURCES if s in present] or (
            ["clean"] if present & {"clean", "attack"} else [TEST_SETS_SOURCE])
        summaries += [summarize_one(rows, str(model), str(checkpoint), s, str(sha))
                      for s in sources]
    return summaries


def summary_frame(summaries: list[RobustnessSummary]) -> pd.DataFrame:
    """One row per summary: the scalar metrics and the group means (percent)."""
    records = []
    for s in summaries:
        record = {
            "model": s.model, "checkpoint": s.checkpoint, "source": s.source,
            "complete": s.complete, "comparable": s.comparable,
            "clean_error_top1_pct": s.clean_error_top1_pct, "mce_pct": s.mce_pct,
            "relative_mce_pct": s.relative_mce_pct, "mean_ce_pct": s.mean_ce_pct,
            "ce_corruptions": s.ce_corruptions, "mean_error_pct": s.mean_error_pct,
            "unreadable": s.unreadable, "clean_ece_pct": s.clean_ece_pct,
            "clean_nll": s.clean_nll, "clean_brier": s.clean_brier,
            "c_bar_error_pct": s.cbar_error_pct, "c_bar_cases": s.cbar_cases,
        }
        for c in s.calibration.itertuples():
            record[f"severity{c.severity}_mean_ece_pct"] = c.ece_pct
        for g in s.groups.itertuples():
            record[f"{g.group}_mean_error_pct"] = g.mean_error_pct
            record[f"{g.group}_mean_ce_pct"] = g.mean_ce_pct
        for a in s.attacks.itertuples():
            record[f"{a.attack}_accuracy_top1_pct"] = a.accuracy_top1_pct
        for t in s.test_sets.itertuples():
            record[f"{t.test_set}_error_top1_pct"] = t.error_top1_pct
            record[f"{t.test_set}_ece_pct"] = t.ece_pct
        records.append(record)
    return pd.DataFrame(records)


def _json_number(value: object) -> object:
    """A JSON-safe scalar: NaN and NA become None, numpy numbers plain Python ones."""
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return None
    return value.item() if hasattr(value, "item") else value


def _records(table: pd.DataFrame) -> list[dict]:
    """A table as JSON-safe records."""
    return [{k: _json_number(v) for k, v in r.items()} for r in table.to_dict("records")]


def summary_records(summaries: list[RobustnessSummary]) -> list[dict]:
    """The summaries as stored in a results file (and printed by `--json`): every headline
    number, the groups, attacks and test sets, and whether mCE may sit beside published ones."""
    records = []
    for s in summaries:
        records.append({
            "model": s.model, "checkpoint": s.checkpoint,
            "checkpoint_sha256": s.checkpoint_sha256, "source": s.source,
            "clean_error_top1_pct": s.clean_error_top1_pct,
            "clean_error_top5_pct": s.clean_error_top5_pct,
            "mce_pct": s.mce_pct, "relative_mce_pct": s.relative_mce_pct,
            "unnormalised_mean_error_pct": s.mean_error_pct,
            "unnormalised_mean_error_corruptions": s.mean_error_corruptions,
            "mean_ce_pct": s.mean_ce_pct, "ce_corruptions": s.ce_corruptions,
            "complete": s.complete, "comparable_to_published": s.comparable,
            "missing_parts": len(s.missing), "unreadable": s.unreadable,
            "c_bar_error_pct": s.cbar_error_pct, "c_bar_cases": s.cbar_cases,
            "missing": list(s.missing),
            "clean_ece_pct": s.clean_ece_pct, "clean_nll": s.clean_nll,
            "clean_brier": s.clean_brier, "calibration_by_severity": _records(s.calibration),
            "parts_without_calibration": s.uncalibrated,
            "groups": _records(s.groups), "attacks": _records(s.attacks),
            "test_sets": _records(s.test_sets),
        })
    return records
