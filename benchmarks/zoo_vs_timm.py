"""gfbench's counts of timm's zoo against timm's own published benchmark table.

Inputs: gfbench complexity results files (``zoo_count.py`` writes one: FLOPs as multiply-adds
and parameters per (model, resolution); where several hold a setting, its deploy-form row
(``reparam``, what timm's table counts) is taken) and timm's
``benchmark-infer-amp-nchw-pt*-cu*-4090.csv``
(huggingface/pytorch-image-models ``results/``; its ``infer_gmacs`` come from fvcore at
``infer_img_size``, rounded to 0.01 G, and ``param_count`` is rounded to 0.01 M).

A row agrees on MACs when |gfbench - timm| <= max(1% of timm, 0.005 G) (the table's rounding)
and on parameters when |gfbench - timm| <= 0.01 M. Every row that disagrees is given the
first reason whose fnmatch pattern (and metric) fits it, from a committed reasons table
(``benchmarks/zoo/zoo_vs_timm_reasons.csv``: pattern, metric, category, reason), and
written with its numbers to the triage table; rows no reason fits are ``untriaged``.

    python benchmarks/zoo_vs_timm.py benchmarks/zoo/complexity-zoo-meta-b1-fp32-infer.json \\
        /tmp/timm-bench-4090.csv --reasons benchmarks/zoo/zoo_vs_timm_reasons.csv \\
        --triage benchmarks/zoo/zoo_vs_timm_triage.csv
    python benchmarks/zoo_vs_timm.py benchmarks/zoo/native/complexity-models-*.json \
        /tmp/timm-bench-4090.csv --reasons benchmarks/zoo/zoo_vs_timm_reasons.csv
"""

from __future__ import annotations

import argparse
import fnmatch
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from gfbench.results import read_results

MACS_RELATIVE = 0.01
MACS_ROUNDING_G = 0.005
PARAMS_TOLERANCE_M = 0.01


@dataclass(frozen=True)
class Reason:
    """Why rows matching a pattern disagree on a metric ('macs', 'params' or 'both')."""

    pattern: str
    metric: str
    category: str
    reason: str

    def explains(self, model: str, macs_agree: bool, params_agree: bool) -> bool:
        """Whether this reason covers every metric a row of this model disagrees on."""
        failing = {m for m, ok in (("macs", macs_agree), ("params", params_agree)) if not ok}
        covered = {"macs", "params"} if self.metric == "both" else {self.metric}
        return fnmatch.fnmatch(model, self.pattern) and failing <= covered


def read_reasons(path: Path | None) -> list[Reason]:
    """The committed reasons, in file order (the first that fits wins)."""
    if path is None:
        return []
    frame = pd.read_csv(path, comment="#")
    return [Reason(r.pattern, r.metric, r.category, r.reason) for r in frame.itertuples()]


def compare(results: Path | list[Path], table: Path) -> pd.DataFrame:
    """One row per (model, size) both sides have: gfbench's and timm's MACs and params (the
    deploy form where the results hold both forms of a setting)."""
    paths = [results] if isinstance(results, Path) else results
    ours = pd.concat([read_results(path)[1] for path in paths], ignore_index=True)
    ours = ours[ours["status"] == "ok"].sort_values("reparam", kind="stable")
    ours = ours.drop_duplicates(["name", "res_h"], keep="last")
    theirs = pd.read_csv(table).drop_duplicates(["model", "infer_img_size"])
    both = theirs.merge(ours, left_on=["model", "infer_img_size"], right_on=["name", "res_h"])
    frame = pd.DataFrame({
        "model": both["model"], "img_size": both["infer_img_size"],
        "gfbench_gmacs": both["flops"] / 1e9, "timm_gmacs": both["infer_gmacs"],
        "gfbench_params_m": both["params"] / 1e6, "timm_params_m": both["param_count"],
        "uncounted_ops": both["uncounted_ops"].fillna(""),
    })
    tolerance = (MACS_RELATIVE * frame["timm_gmacs"]).clip(lower=MACS_ROUNDING_G)
    frame["macs_agree"] = (frame["gfbench_gmacs"] - frame["timm_gmacs"]).abs() <= tolerance
    frame["params_agree"] = (
        (frame["gfbench_params_m"] - frame["timm_params_m"]).abs() <= PARAMS_TOLERANCE_M)
    frame["macs_ratio"] = frame["gfbench_gmacs"] / frame["timm_gmacs"]
    return frame


def triage(frame: pd.DataFrame, reasons: list[Reason]) -> pd.DataFrame:
    """The disagreeing rows, each with the category and reason that explains it."""
    wrong = frame[~(frame["macs_agree"] & frame["params_agree"])].copy()
    found = [next((r for r in reasons if r.explains(m, a, p)), None) for m, a, p in
             zip(wrong["model"], wrong["macs_agree"], wrong["params_agree"], strict=True)]
    wrong["category"] = [r.category if r else "untriaged" for r in found]
    wrong["reason"] = [r.reason if r else "" for r in found]
    columns = ["model", "img_size", "gfbench_gmacs", "timm_gmacs", "macs_ratio",
               "gfbench_params_m", "timm_params_m", "macs_agree", "params_agree", "category",
               "reason"]
    return wrong[columns].round({"gfbench_gmacs": 4, "macs_ratio": 4, "gfbench_params_m": 4})


def summary(frame: pd.DataFrame, triaged: pd.DataFrame, table_rows: int) -> str:
    """Agreement rates and the disagreements by category, as plain lines."""
    rows = len(frame)
    both = int((frame["macs_agree"] & frame["params_agree"]).sum())
    lines = [
        f"settings in timm's table: {table_rows}; counted by gfbench: {rows}",
        f"MACs within 1% (or 0.005 G): {int(frame['macs_agree'].sum())}/{rows} "
        f"({frame['macs_agree'].mean():.1%})",
        f"params within 0.01 M: {int(frame['params_agree'].sum())}/{rows} "
        f"({frame['params_agree'].mean():.1%})",
        f"both: {both}/{rows} ({both / rows:.1%})",
        "disagreements by category (rows):",
    ]
    for category, count in triaged["category"].value_counts().items():
        lines.append(f"  {category}: {count}")
    explained = triaged["category"].isin(("timm_incomplete", "convention", "timm_version"))
    agreeing = both + int(explained.sum())
    lines.append(f"agree or explained by timm's count or a stated convention: {agreeing}/{rows} "
                 f"({agreeing / rows:.1%})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Compare, triage, write the triage table and print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="+",
                        help="gfbench complexity results (.json), one or more")
    parser.add_argument("table", type=Path, help="timm's benchmark-infer-amp-nchw-*.csv")
    parser.add_argument("--reasons", type=Path, default=None)
    parser.add_argument("--triage", type=Path, default=None, help="where to write the triage")
    args = parser.parse_args(argv)
    frame = compare(args.results, args.table)
    triaged = triage(frame, read_reasons(args.reasons))
    if args.triage:
        triaged.to_csv(args.triage, index=False)
    table_rows = len(pd.read_csv(args.table).drop_duplicates(["model", "infer_img_size"]))
    print(summary(frame, triaged, table_rows))
    untriaged = triaged[triaged["category"] == "untriaged"]
    if len(untriaged):
        print(untriaged.to_string(index=False))


if __name__ == "__main__":
    main()
