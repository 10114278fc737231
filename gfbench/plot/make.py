"""`gfbench plot` as one library call: read results, draw every figure they allow, report."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from gfbench.errors import GfbenchError
from gfbench.plot.breakdown import breakdown_frame, breakdown_sections
from gfbench.plot.complexity import (
    SPEED_METRICS,
    X_KINDS,
    ComplexityFigure,
    complexity_figure,
    exponent_text,
    resolution_label,
)
from gfbench.plot.load import (
    Loaded,
    NothingToPlotError,
    complexity_frame,
    load_results,
    robustness_frame,
    settings_of,
)
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

PLOTTED_STATUSES = ("ok", "oom")


@dataclass(frozen=True)
class PlotOptions:
    """What `gfbench plot` draws and where it writes."""

    out: Path | None = None  # default: <folder the inputs share>/plots
    formats: tuple[str, ...] = ("png", "svg")
    log: bool = False  # also draw log-log versions of the complexity figures
    x: str = "tokens"  # tokens | resolution
    metric: str = "latency"  # latency | throughput
    ref_slopes: bool = False  # grey N log N and N² guides


@dataclass
class PlotReport:
    """What a plot run wrote, and one line per input it skipped or row it replaced."""

    out: Path
    figures: list[Path] = field(default_factory=list)
    reports: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def written(self) -> list[Path]:
        """Every file written: figures, then the report."""
        return [*self.figures, *self.reports]


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
    "tokens": "tokens", "status": "status", "gflops": "GFLOPs", "params_m": "params (M)",
    "latency_ms_p10": "latency p10 (ms)", "latency_ms_p50": "latency p50 (ms)",
    "latency_ms_p90": "latency p90 (ms)", "throughput_ips": "throughput (img/s)",
    "peak_mem_gib": "peak memory (GiB)", "error": "error",
}


def complexity_table(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of one figure's setting as the report lists them (empty columns dropped)."""
    rows = rows.sort_values(["name", "impl", "tokens", "res_h", "res_w"], kind="stable")
    table = pd.DataFrame({
        "name": rows["name"], "impl": rows["impl"], "dim": rows["dim"],
        "resolution": [resolution_label(h, w) for h, w in zip(rows["res_h"], rows["res_w"],
                                                              strict=True)],
        "tokens": rows["tokens"].astype(int), "status": rows["status"],
        "gflops": rows["flops"] * 1e-9, "params_m": rows["params"] * 1e-6,
        "latency_ms_p10": rows["latency_ms_p10"], "latency_ms_p50": rows["latency_ms_p50"],
        "latency_ms_p90": rows["latency_ms_p90"], "throughput_ips": rows["throughput_ips"],
        "peak_mem_gib": rows["peak_mem_bytes"] * 2.0**-30, "error": rows["error"].fillna(""),
    })
    keep = [c for c in table.columns if table[c].replace("", None).notna().any()]
    return formatted(table[keep].rename(columns=COMPLEXITY_COLUMNS))


def fits_table(figure: ComplexityFigure) -> pd.DataFrame:
    """The exponents the figure's legends show, with the quality of each fit."""
    return formatted(pd.DataFrame([{
        "curve": f.curve, "panel": f.metric, "k (cost ∝ N^k)": f.noisy or exponent_text(f.k),
        "k range (p10–p90)": "" if f.noisy or pd.isna(f.k_low)
        else f"{exponent_text(f.k_low)}–{exponent_text(f.k_high)}",
        "r² (log-log)": f.r2, "points fitted": f.fit_points,
        "OOM rows estimated": f.estimated_oom_points,
    } for f in figure.fits]))


def _complexity_sections(frame: pd.DataFrame, options: PlotOptions, pictures: _FigureWriter,
                         notes: list[str]) -> list[Section]:
    """One section per (models or mixers, setting): figures, fitted exponents, the rows."""
    sections = []
    for subject, setting, rows in settings_of(frame):
        plotted = rows[rows["status"].isin(PLOTTED_STATUSES)]
        if plotted.empty:
            notes.append(f"{subject}s on {setting.title()}: no row finished (all error or "
                         "skipped); listed in the report only")
        figures = [] if plotted.empty else [
            complexity_figure(subject, setting, plotted, x_kind=options.x, speed=options.metric,
                              log=log, ref_slopes=options.ref_slopes)
            for log in ((False, True) if options.log else (False,))
        ]
        section = Section(title=f"{'Models' if subject == 'model' else 'Token mixers'} · "
                                f"{setting.title()}")
        for figure in figures:
            section.blocks.append(pictures.picture(figure))
        if figures and figures[0].fits:
            section.blocks.append(Table("Fitted exponents (larger half of N; the legends show "
                                        "the same k)", fits_table(figures[0])))
        section.blocks.append(Table("Rows (one per measured setting; OOM rows have counted "
                                    "FLOPs and parameters only)", complexity_table(rows)))
        sections.append(section)
    return sections


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
    return tables


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


def _provenance_sections(loaded: Loaded) -> list[Section]:
    """Where every run came from, and the FLOP convention(s) its counts follow."""
    table = pd.DataFrame([{
        "file": _relative(run.path, loaded.base), "kind": run.kind, "rows": len(run.frame),
        "date": run.provenance.date, "device": run.provenance.device_name,
        "gfbench": run.provenance.gfbench_version, "torch": run.provenance.torch_version,
        "timm": run.provenance.timm_version, "fvcore": run.provenance.fvcore_version,
        "python": run.provenance.python_version, "CUDA": run.provenance.cuda_version,
        "driver": run.provenance.driver_version, "TF32 matmul": run.provenance.tf32_matmul,
        "cudnn.benchmark": run.provenance.cudnn_benchmark,
        "CPU threads (torch)": run.provenance.torch_threads,
    } for run in loaded.runs])
    commands = "\n".join(f"{_relative(run.path, loaded.base)}: {run.provenance.command}"
                         for run in loaded.runs)
    provenance = Section(title="Provenance", blocks=[
        Table("Every run read (results folder: " + str(loaded.base) + ")", formatted(table)),
        Paragraph("Command lines:"), Preformatted(commands)])
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
        f"{len(loaded.runs)} results file(s) read under "
        f"{_relative(loaded.base, Path.cwd())}.")])  # no machine-specific absolute path
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
    paths = list(paths)
    loaded = load_results(paths)
    notes: list[str] = []
    complexity = complexity_frame(loaded.runs_of("complexity"), notes)
    robustness = robustness_frame(loaded.runs_of("robustness"), notes)
    breakdown = breakdown_frame(loaded.runs_of("breakdown"), notes)
    if complexity.empty and robustness.empty and breakdown.empty:
        raise NothingToPlotError(f"nothing to plot: no readable gfbench results in "
                                 f"{len(paths)} input(s)" + (f" ({len(loaded.problems)} file(s) "
                                 "skipped)" if loaded.problems else ""), loaded.problems)
    out = Path(options.out) if options.out is not None else loaded.base / "plots"
    pictures = _FigureWriter(out, options.formats)
    with style_context():
        sections = _complexity_sections(complexity, options, pictures, notes)
        sections += _robustness_section(robustness, pictures)
        sections += breakdown_sections(breakdown, pictures)
    sections = [_inputs_section(loaded, notes), *sections, *_provenance_sections(loaded)]
    reports = write_report(out, f"gfbench report: {loaded.base.name or loaded.base}", sections)
    return PlotReport(out=out, figures=pictures.written, reports=reports,
                      problems=loaded.problems, notes=notes)
