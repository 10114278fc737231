"""`gfbench plot` as one library call: read results, draw every figure they allow, report."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from gfbench.errors import GfbenchError
from gfbench.plot.breakdown import breakdown_frame, breakdown_sections
from gfbench.plot.complexity import (
    SCALES,
    SPEED_METRICS,
    X_KINDS,
    ComplexityFigure,
    complexity_figure,
    exponent_text,
    resolution_label,
    si_text,
)
from gfbench.plot.load import NothingToPlotError, Setting, settings_of
from gfbench.plot.memory import batch_fit_figures, memory_figure
from gfbench.plot.report import (
    Bullets,
    Paragraph,
    Picture,
    Preformatted,
    Section,
    Table,
    formatted,
    write_report,
)
from gfbench.plot.style import FORMATS, NamedFigure, figure_bytes, save_figure, style_context
from gfbench.results import check_output_folder
from gfbench.results.files import atomic_write
from gfbench.results.frame import (
    Loaded,
    complexity_frame,
    load_results,
    provenance_values,
    robustness_frame,
    split_shared,
)

PLOTTED_STATUSES = ("ok", "oom")


@dataclass(frozen=True)
class PlotOptions:
    """What `gfbench plot` draws and where it writes."""

    out: Path | None = None  # default: <folder the inputs share>/plots
    formats: tuple[str, ...] = ("png", "svg")
    scale: str = "log"  # log (log-log axes) | linear | both
    x: str = "tokens"  # tokens | resolution
    metric: str = "latency"  # latency | throughput
    ref_slopes: bool = True  # grey N log N and N² guides
    compare: tuple[Path, Path] | None = None  # a report section: run B against run A
    combine: bool = False  # join runs of one setting into one curve (checked provenance)


@dataclass
class PlotReport:
    """What a plot run wrote, and one line per input it skipped or row it replaced."""

    out: Path
    figures: list[Path] = field(default_factory=list)
    reports: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)  # figures of an earlier run not made now

    @property
    def written(self) -> list[Path]:
        """Every file written: figures, then the report."""
        return [*self.figures, *self.reports]

    @property
    def failed(self) -> bool:
        """No figure could be drawn (every row an error): the command exits 1."""
        return not self.figures

    def as_json(self) -> dict[str, Any]:
        """What --json prints: the folder, the files written and removed, skips and notes."""
        return {"out": str(self.out), "figures": [str(p) for p in self.figures],
                "reports": [str(p) for p in self.reports],
                "removed": [str(p) for p in self.removed], "problems": self.problems,
                "notes": self.notes}


def parse_formats(text: str) -> tuple[str, ...]:
    """'png,svg' -> ('png', 'svg'); GfbenchError naming the allowed formats otherwise."""
    chosen = tuple(dict.fromkeys(p.strip().lower() for p in text.split(",") if p.strip()))
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        raise GfbenchError(f"unknown figure format {', '.join(unknown) or repr(text)}; "
                           f"allowed: a comma list of {', '.join(FORMATS)}")
    return chosen


def check_options(options: PlotOptions) -> None:
    """One-line errors for choices outside what the plots know."""
    parse_formats(",".join(options.formats))
    if options.x not in X_KINDS:
        raise GfbenchError(f"unknown x axis {options.x!r}; allowed: {', '.join(X_KINDS)}")
    if options.scale not in (*SCALES, "both"):
        raise GfbenchError(f"unknown axis scale {options.scale!r}; allowed: "
                           f"{', '.join((*SCALES, 'both'))}")
    if options.metric not in SPEED_METRICS:
        raise GfbenchError(f"unknown speed metric {options.metric!r}; allowed: "
                           f"{', '.join(SPEED_METRICS)}")


class _FigureWriter:
    """Saves figures under unique stems and turns each into a report picture."""

    def __init__(self, out: Path, formats: Sequence[str]):
        self.out, self.formats = out, tuple(formats)
        self.written: list[Path] = []
        self._stems: set[str] = set()

    def picture(self, named: NamedFigure) -> Picture:
        """Write the figure's files and return what the report shows of it."""
        stem, n = named.stem, 1
        while stem in self._stems:
            n += 1
            stem = f"{named.stem}-{n}"
        self._stems.add(stem)
        files = save_figure(named.figure, self.out / stem, self.formats)
        self.written.extend(files)
        svg = next((f.read_bytes() for f in files if f.suffix == ".svg"), None)
        link = next(f.name for ext in (".png", ".svg", ".pdf") for f in files if f.suffix == ext)
        return Picture(title=named.title, link=link,
                       svg=svg if svg is not None else figure_bytes(named.figure, "svg"))


COMPLEXITY_COLUMNS = {
    "name": "name", "impl": "impl", "dim": "dim", "resolution": "resolution",
    "tokens": "tokens", "batch_size": "batch", "status": "status", "flops": "FLOPs",
    "params": "params", "latency_ms_p10": "latency p10 (ms)",
    "latency_ms_p50": "latency p50 (ms)", "latency_ms_p90": "latency p90 (ms)",
    "throughput_ips": "throughput (img/s)", "peak_mem_mib": "peak memory (MiB)",
    "error": "error",
}


def _prefixed(values: pd.Series) -> list[str]:
    """Counts as the figures label them (624k, 2.86G), 4 significant digits; '' if missing."""
    return ["" if v != v else si_text(float(v), 4) for v in values]


def complexity_table(rows: pd.DataFrame, mode: str = "") -> pd.DataFrame:
    """The rows of one figure's setting as the report lists them (empty columns dropped).

    Counts carry metric prefixes (k, M, G), memory is in MiB as in the figures and the
    terminal; in train mode the FLOPs column says it counts forward + backward.
    """
    rows = rows.sort_values(["name", "impl", "batch_size", "tokens", "side_h", "side_w"],
                            kind="stable")
    table = pd.DataFrame({
        "name": rows["name"], "impl": rows["impl"], "dim": rows["dim"],
        "resolution": [resolution_label(h, w) for h, w in zip(rows["side_h"], rows["side_w"],
                                                              strict=True)],
        "tokens": rows["tokens"].where(rows["tokens"] > 0), "batch_size": rows["batch_size"],
        "status": rows["status"], "flops": _prefixed(rows["flops"]),
        "params": _prefixed(rows["params"]),
        "latency_ms_p10": rows["latency_ms_p10"], "latency_ms_p50": rows["latency_ms_p50"],
        "latency_ms_p90": rows["latency_ms_p90"], "throughput_ips": rows["throughput_ips"],
        "peak_mem_mib": rows["peak_mem_bytes"] * 2.0**-20, "error": rows["error"].fillna(""),
    })
    keep = [c for c in table.columns if table[c].replace("", None).notna().any()]
    columns = dict(COMPLEXITY_COLUMNS)
    if mode == "train":
        columns["flops"] = "FLOPs (forward + backward)"
    return formatted(table[keep].rename(columns=columns))


def fits_table(figure: ComplexityFigure) -> pd.DataFrame:
    """The exponents the figure's legends show, with the quality of each fit."""
    return formatted(pd.DataFrame([{
        "curve": f.curve, "panel": f.metric, "N counts": f.fitted_on,
        "k (cost ∝ N^k)": f.noisy or exponent_text(f.k),
        "k range (p10–p90)": "" if f.noisy or pd.isna(f.k_low)
        else f"{exponent_text(f.k_low)}–{exponent_text(f.k_high)}",
        # two points always fit a line exactly: r² says something from three on
        "r² (log-log)": f.r2 if f.fit_points >= 3 else "", "points fitted": f.fit_points,
        "OOM rows estimated": f.estimated_oom_points,
    } for f in figure.fits]))


def crossover_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """The crossovers of the global filter against its rivals in one setting, as the report
    lists them (empty when no pair was measured at two sizes)."""
    from gfbench.measure.crossover import CROSSOVER_METRICS, crossovers

    return formatted(pd.DataFrame([{
        "pair": f"{c.first} vs {c.second}", "impl": c.impl, "batch": c.batch_size,
        "metric": CROSSOVER_METRICS[c.metric][0],
        "N": "" if c.tokens is None else f"{c.tokens:,.0f}",
        "range (p10–p90)": "" if c.low is None or c.low == c.high
        else f"{c.low:,.0f}–{c.high:,.0f}", "verdict": c.verdict,
    } for c in crossovers(list(rows.itertuples()))]))


def _roofline_blocks(subject: str, setting: Setting, rows: pd.DataFrame, ceilings: dict[str, Any],
                     pictures: _FigureWriter, notes: list[str]) -> list[Picture]:
    """The roofline figure of one setting, or a note saying why a timed one has none (a run
    that timed nothing never has one: no note)."""
    from gfbench.plot.roofline import NOT_TIMED, roofline_figure, roofline_problem, setting_ceilings

    if (problem := roofline_problem(rows)):
        if problem != NOT_TIMED:
            notes.append(f"{subject}s on {setting.title()}: no roofline figure ({problem})")
        return []
    measured, why_none = setting_ceilings(rows, ceilings, setting.precision)
    return [pictures.picture(roofline_figure(subject, setting, rows, measured, why_none))]


def _complexity_sections(frame: pd.DataFrame, options: PlotOptions, pictures: _FigureWriter,
                         notes: list[str], ceilings: dict[str, Any] | None = None
                         ) -> list[Section]:
    """One section per (models or mixers, setting): figures, fitted exponents, the rows."""
    sections = []
    for subject, setting, rows in settings_of(frame):
        plotted = rows[rows["status"].isin(PLOTTED_STATUSES)]
        if plotted.empty:
            notes.append(f"{subject}s on {setting.title()}: no row finished (all error or "
                         "skipped); listed in the report only")
        scales = SCALES if options.scale == "both" else (options.scale,)
        figures = [] if plotted.empty else [
            complexity_figure(subject, setting, plotted, x_kind=options.x, speed=options.metric,
                              scale=scale, ref_slopes=options.ref_slopes)
            for scale in scales
        ]
        section = Section(title=f"{'Models' if subject == 'model' else 'Token mixers'} · "
                                f"{setting.title()}")
        for figure in figures:
            section.blocks.append(pictures.picture(figure))
        memory = None if plotted.empty else memory_figure(subject, setting, plotted)
        if memory is not None:  # rows predicted with --predict
            section.blocks.append(pictures.picture(memory))
        for fit in [] if plotted.empty else batch_fit_figures(subject, setting, plotted):
            section.blocks.append(pictures.picture(fit))  # rows fitted with --fit-memory
        if figures and figures[0].fits:
            section.blocks.append(Table("Fitted exponents (larger half of N; the legends show "
                                        "the same k)", fits_table(figures[0])))
        if not (crossing := crossover_frame(rows)).empty:
            section.blocks.append(Table("Crossovers: the N where the global filter and a rival "
                                        "change order, between the two sizes that bracket it",
                                        crossing))
        if not plotted.empty:
            section.blocks.extend(_roofline_blocks(subject, setting, plotted, ceilings or {},
                                                   pictures, notes))
        section.blocks.append(Table("Rows (one per measured setting; OOM rows have counted "
                                    "FLOPs and parameters only)",
                                    complexity_table(rows, setting.mode)))
        sections.append(section)
    return sections


def _batch_sections(frame: pd.DataFrame, pictures: _FigureWriter) -> list[Section]:
    """Throughput against batch, for every setting timed at two batch sizes or more."""
    from gfbench.plot.batch import batch_figure, batch_settings

    sections = []
    for setting, rows in batch_settings(frame[frame["status"].isin(PLOTTED_STATUSES)]
                                        if not frame.empty else frame):
        figure = batch_figure(setting, rows)
        sections.append(Section(title=figure.title, blocks=[pictures.picture(figure)]))
    return sections


def _comparison_section(comparison) -> Section:
    """`gfbench compare` A B as a report section: B/A per setting, then what differs."""
    from gfbench.compare import comparison_records

    records = pd.DataFrame(comparison_records(comparison))
    records["cell"] = [("" if r != r else f"{r:#.3g}×") + (" *" if m else "")
                       for r, m in zip(records["ratio"], records["marked"], strict=True)]
    records["resolution"] = [resolution_label(h, w) for h, w in zip(
        records["side_h"], records["side_w"], strict=True)]
    several_runs = len(records[["run_a", "run_b"]].drop_duplicates()) > 1
    setting = [*(["run_a", "run_b"] if several_runs else []), "name", "impl", "resolution",
               "batch_size", "precision", "mode"]
    wide = records.pivot_table(index=setting, columns="metric", values="cell",
                               aggfunc="first", sort=False)
    names = {"flops": "FLOPs B/A", "params": "params B/A", "latency_ms_p50": "latency B/A",
             "throughput_ips": "throughput B/A", "peak_mem_bytes": "memory B/A"}
    wide = wide[[m for m in names if m in wide.columns]].rename(columns=names).reset_index()
    blocks: list = [
        Paragraph(f"A: {comparison.a}; B: {comparison.b}. {len(comparison.settings)} "
                  f"setting(s) in common ({comparison.only_a} measured by A only, "
                  f"{comparison.only_b} by B only); {comparison.marked} value(s) marked *: "
                  "beyond the runs' own spread (timed: p10–p90 intervals do not overlap; "
                  "counted: any difference). Memory has no recorded spread and is not marked."),
        Table("B/A per setting both runs measured",
              formatted(wide.rename(columns={"batch_size": "batch", "run_a": "A run",
                                             "run_b": "B run"}).fillna(""))),
    ]
    if comparison.differences:
        blocks.append(Table("Made differently", formatted(pd.DataFrame(
            [{"what": d.field, "A": d.a, "B": d.b} for d in comparison.differences]))))
    return Section(title="Comparison: B against A", blocks=blocks)


def _robustness_tables(entries: Sequence) -> list[Table]:
    """The summary metrics and the per-corruption errors of every robustness entry."""
    from gfbench.plot.robustness import eps_text

    summary = pd.DataFrame([{
        "entry": e.label, "source": e.summary.source, "checkpoint": e.summary.checkpoint,
        "clean error (%)": e.summary.clean_error_top1_pct, "mCE (%)": e.summary.mce_pct,
        "relative mCE (%)": e.summary.relative_mce_pct,
        "mean corruption error (%, not mCE)": e.summary.mean_error_pct,
        "corruptions with CE": f"{e.summary.ce_corruptions}/15",
        "comparable to published": e.summary.comparable,
        **{f"{a.attack.upper()} {eps_text(a.eps)} accuracy (%)": a.accuracy_top1_pct
           for a in e.summary.attacks.itertuples()},
        **{f"{t.title} top-1 error (%)": t.error_top1_pct
           for t in e.summary.test_sets.itertuples()},
    } for e in entries])
    tables = [Table("Summary (mCE only when all 15 corruptions have all 5 severities)",
                    formatted(summary))]
    with_corruptions = [e for e in entries if not e.summary.per_corruption.empty]
    if with_corruptions:
        from gfbench.robustness.protocol import ALL_CORRUPTIONS, group_of

        for column, caption in (("error_top1_pct", "Top-1 error per corruption, mean over "
                                 "severities (%)"), ("ce_pct", "CE per corruption (%, AlexNet "
                                                     "= 100; all 5 severities needed)")):
            wide = pd.concat([e.summary.per_corruption.set_index("corruption")[column]
                              .rename(e.label) for e in with_corruptions], axis=1)
            order = [c for c in ALL_CORRUPTIONS if c in wide.index]
            wide = wide.loc[order]
            wide.insert(0, "group", [group_of(c) for c in order])
            tables.append(Table(caption, formatted(wide.rename_axis("corruption")
                                                   .reset_index())))
    tables += _calibration_tables(entries)
    return tables


def _calibration_tables(entries: Sequence) -> list[Table]:
    """Calibration of every entry's parts (clean, per severity, test sets, attacks), when
    any row carries it (files written before gfbench computed it have none)."""
    from gfbench.plot.robustness import calibration_table

    parts = [calibration_table(e.summary).assign(entry=e.label) for e in entries]
    parts = [p for p in parts if not p.empty]
    if not parts:
        return []
    frame = pd.concat(parts, ignore_index=True)[["entry", "part", "error_top1_pct", "ece_pct",
                                                 "nll", "brier"]]
    frame = frame.rename(columns={"error_top1_pct": "top-1 error (%)", "ece_pct": "ECE (%)",
                                  "nll": "NLL (nats)", "brier": "Brier (0..2)"})
    return [Table("Calibration of the top-1 softmax (ECE: 15 equal-width confidence bins, "
                  "Guo et al. 2017; severities: mean over the benchmark corruptions)",
                  formatted(frame))]


def _robustness_section(frame: pd.DataFrame, pictures: _FigureWriter) -> list[Section]:
    """The robustness figures and tables, when there are robustness rows."""
    if frame.empty:
        return []
    from gfbench.plot.robustness import robustness_figures

    entries, figures = robustness_figures(frame)
    section = Section(title="Robustness")
    section.blocks.extend(pictures.picture(f) for f in figures)
    section.blocks.extend(_robustness_tables(entries))
    return [section]


def _relative(path: Path, base: Path) -> str:
    """A path as the report names it: relative to the folder the inputs share."""
    try:
        return os.path.relpath(path, base)
    except ValueError:
        return str(path)


def folder_name(loaded: Loaded) -> str:
    """The inputs' folder as every part of the report names it: relative to the working folder."""
    return _relative(loaded.base, Path.cwd())  # no machine-specific absolute path


def _provenance_sections(loaded: Loaded) -> list[Section]:
    """Where every run came from: one short row per run, then what all share and what differs.

    Three narrow tables instead of one with a column per field, so the report never has to
    scroll or clip sideways, and a difference between runs stands out.
    """
    runs = pd.DataFrame([{
        "run": f"#{i}", "file": _relative(run.path, loaded.base), "kind": run.kind,
        "rows": len(run.frame), "date": run.provenance.date,
    } for i, run in enumerate(loaded.runs, start=1)])
    values = [provenance_values(run.provenance) for run in loaded.runs]
    shared, differing = split_shared(values)
    blocks: list = [Table(f"Every run read (files relative to {folder_name(loaded)})",
                          formatted(runs))]
    if shared:
        blocks.append(Table("The same in every run", formatted(pd.DataFrame(
            {"setting": list(shared), "value": list(shared.values())}))))
    if differing:
        blocks.append(Table("Different between runs", formatted(pd.DataFrame(
            {"setting": differing, **{f"#{i}": [v[k] for k in differing]
                                      for i, v in enumerate(values, start=1)}}))))
    commands = "\n".join(f"#{i} {_relative(run.path, loaded.base)}: {run.provenance.command}"
                         for i, run in enumerate(loaded.runs, start=1))
    provenance = Section(title="Provenance", blocks=[
        *blocks, Paragraph("Command lines:"), Preformatted(commands)])
    conventions: dict[str, list[str]] = {}
    for run in loaded.runs_of("complexity"):
        conventions.setdefault(run.provenance.flop_convention, []).append(
            _relative(run.path, loaded.base))
    flops = Section(title="FLOP convention")
    for text, files in conventions.items():
        flops.blocks.append(Paragraph("Used by: " + ", ".join(files)))
        flops.blocks.append(Preformatted(text))
    return [provenance] + ([flops] if conventions else [])


def _inputs_section(loaded: Loaded, notes: Sequence[str]) -> Section:
    """What was read, what was skipped and why, and which rows replaced older ones."""
    section = Section(title="Inputs", blocks=[Paragraph(
        f"{len(loaded.runs)} results file(s) read under {folder_name(loaded)}.")])
    if loaded.problems:
        section.blocks += [Paragraph("Skipped:"), Bullets(tuple(loaded.problems))]
    if notes:
        section.blocks += [Paragraph("Notes:"), Bullets(tuple(notes))]
    return section


def make_plots(paths: Iterable[Path | str], options: PlotOptions | None = None) -> PlotReport:
    """Every figure the results under `paths` allow, their files, and report.md / report.html.

    Raises NothingToPlotError (with the per-file problems) when no input holds a usable row.
    """
    options = options or PlotOptions()
    check_options(options)
    comparison = None
    if options.compare is not None:  # first, so a bad pair fails before any file is written
        from gfbench.compare import compare_runs

        comparison = compare_runs(*options.compare, combine=options.combine)
    paths = list(paths)
    loaded = load_results(paths)
    notes: list[str] = []
    complexity = complexity_frame(loaded.runs_of("complexity"), notes, options.combine)
    robustness = robustness_frame(loaded.runs_of("robustness"), notes)
    breakdown = breakdown_frame(loaded.runs_of("breakdown"), notes)
    if complexity.empty and robustness.empty and breakdown.empty:
        raise NothingToPlotError(f"nothing to plot: no readable gfbench results in "
                                 f"{len(paths)} input(s)" + (f" ({len(loaded.problems)} file(s) "
                                 "skipped)" if loaded.problems else ""), loaded.problems)
    out = check_output_folder(Path(options.out) if options.out is not None
                              else loaded.base / "plots")
    pictures = _FigureWriter(out, options.formats)
    with style_context():
        ceilings = {str(run.path): (run.provenance.extra or {}).get("ceilings")
                    for run in loaded.runs_of("complexity")}
        sections = _complexity_sections(complexity, options, pictures, notes, ceilings)
        sections += _batch_sections(complexity, pictures)
        sections += _robustness_section(robustness, pictures)
        sections += breakdown_sections(breakdown, pictures)
        from gfbench.plot.module_roofline import module_roofline_sections

        sections += module_roofline_sections(loaded.runs_of("breakdown"), pictures)
    if comparison is not None:
        sections.append(_comparison_section(comparison))
    sections = [_inputs_section(loaded, notes), *sections, *_provenance_sections(loaded)]
    reports = write_report(out, f"gfbench report: {folder_name(loaded)}", sections)
    removed = replace_manifest(out, [*pictures.written, *reports])
    return PlotReport(out=out, figures=pictures.written, reports=reports,
                      problems=loaded.problems, notes=notes, removed=removed)


MANIFEST = ".gfbench-plots.json"  # in the output folder: the files gfbench plot wrote there


def _manifest_names(out: Path) -> list[str]:
    """The file names the last plot run wrote into ``out`` ([] when none was recorded)."""
    try:
        names = json.loads((out / MANIFEST).read_text()).get("files", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [n for n in names if isinstance(n, str) and n == Path(n).name]


def replace_manifest(out: Path, written: Sequence[Path]) -> list[Path]:
    """Remove the figures an earlier plot run made in ``out`` that this one did not make again
    (only files its manifest lists), then record what this run wrote; returns the removed."""
    now = sorted({p.name for p in written})
    removed = [out / name for name in _manifest_names(out) if name not in now]
    for path in removed:
        path.unlink(missing_ok=True)
    atomic_write(out / MANIFEST, json.dumps({"files": now}, indent=1) + "\n")
    return removed
