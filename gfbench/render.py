"""Everything the terminal shows (rich only): tables, progress bars, the one-line error."""

from __future__ import annotations

import math

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

console = Console()
err_console = Console(stderr=True)


def print_error(message: str) -> None:
    """The one line a user sees for a GfbenchError: red, on stderr, no traceback."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)


def format_count(value: float | None, unit: str = "", spec: str = ".3f") -> str:
    """A count with a metric prefix (7.512M with .3f, 15.9M with .3g); '-' when missing."""
    if value is None or value != value:
        return "-"
    for threshold, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= threshold:
            return f"{value / threshold:{spec}}{prefix}{unit}"
    return f"{value:{'.3g' if spec == '.3g' else '.0f'}}{unit}"


# --- list ---


def models_table(rows: list[dict]) -> Table:
    """The models half of `gfbench list`."""
    table = Table(title="Models (any timm model name works too)")
    for column in ("name", "alias", "family", "timm name", "params @224", "native res"):
        table.add_column(column, justify="right" if column.startswith(("params", "native"))
                         else "left")
    for row in rows:
        table.add_row(row["name"], row["alias"], row["family"], row["timm_name"],
                      format_count(row["params"]), str(row["native_res"]))
    return table


def selection_table(rows: list[dict], title: str) -> Table:
    """`gfbench list --timm PATTERN`: each selected model, its native resolution (and params)."""
    table = Table(title=escape(title))
    table.add_column("name")
    table.add_column("native res", justify="right")
    with_params = any(row["params"] is not None for row in rows)
    if with_params:
        table.add_column("params @native", justify="right")
    for row in rows:
        height, width = row["native_res"]
        cells = [row["name"], f"{height}x{width}"]
        if with_params:
            cells.append(format_count(row["params"]))
        table.add_row(*cells)
    return table


def mixers_table(rows: list[dict]) -> Table:
    """The mixers half of `gfbench list`."""
    table = Table(title="Token mixers: (B, H, W, D) -> (B, H, W, D); FLOPs per image")
    for column in ("name", "FLOPs (multiply-adds)", "params", "GFNet paper (FLOPs / params)"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["name"], row["flops_formula"], row["params_formula"], row["paper"])
    return table


# --- complexity ---


def _ms(value: float | None) -> str:
    """Milliseconds with 3 significant figures; '-' when missing."""
    if value is None or value != value:
        return "-"
    return f"{value:.3g}" if value < 1000 else f"{value:.0f}"


def _sig3(value: float | None) -> str:
    """A count in 3 significant figures with a metric prefix (15.9M, 86.0k); '-' if missing."""
    return format_count(value, spec=".3g")


def _side(height: int, width: int) -> str:
    """'224' for a square input, '384x512' otherwise."""
    return str(height) if height == width else f"{height}x{width}"


def _mib(value: float | None) -> str:
    """Bytes as MiB; '-' when missing."""
    if value is None or value != value:
        return "-"
    return f"{value / 2**20:.1f}"


class ComplexityProgress:
    """Rich progress for `gfbench complexity`: one bar over the settings, with ETA; each
    finished setting becomes one log line above it."""

    def __init__(self, total: int, enabled: bool = True, target: Console | None = None):
        self.enabled = enabled
        self.progress = Progress(
            TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
            console=target or console, transient=True, disable=not enabled,
        )
        self.task = self.progress.add_task("complexity", total=total)

    def __enter__(self) -> ComplexityProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def start(self, setting) -> None:
        """Show which setting is being measured."""
        self.progress.update(self.task, description=f"{setting.name} {setting.res_h}x"
                                                    f"{setting.res_w}")

    def finish(self, row, skipped: bool) -> None:
        """Advance the bar and log the finished (or skipped) row in one line."""
        self.progress.advance(self.task)
        if not self.enabled:
            return
        state = {"ok": "[green]done[/]", "oom": "[yellow]OOM[/]"}.get(row.status, "[red]error[/]")
        state = "[dim]skip[/]" if skipped else state
        timed = "" if row.latency_ms_p50 is None else f"  {_ms(row.latency_ms_p50):>7} ms"
        self.progress.console.print(
            f"{state} {row.name:<14} {row.res_h}x{row.res_w:<9} {format_count(row.flops):>9}"
            f" FLOPs{timed}  {row.error}", highlight=False)


def complexity_table(rows: list, title: str) -> Table:
    """One line per (model or mixer, resolution), fitting 80 columns: latency and memory
    columns only when measured; a row that ran out of memory (or failed) says so in its
    latency cell (or a status column when nothing was timed); '*' marks a row with a note."""
    timed = any(r.latency_ms_p50 is not None for r in rows)
    with_memory = any(r.peak_mem_bytes is not None for r in rows)
    flagged = not timed and any(r.status != "ok" for r in rows)
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False,
                  pad_edge=False, padding=(0, 1, 0, 0))
    columns = ["name", "res", "tokens", "GFLOPs", "params"]
    columns += ["ms p50", "p10-p90", "img/s"] if timed else []
    columns += ["MiB"] if with_memory else []
    columns += ["status"] if flagged else []
    for column in columns:
        table.add_column(column, justify="left" if column in ("name", "status") else "right",
                         no_wrap=True)
    for row in rows:
        status = f"[yellow]{row.status.upper()}[/]"
        cells = [row.name + ("*" if row.error else ""), _side(row.res_h, row.res_w),
                 str(row.tokens), "-" if row.flops is None else f"{row.flops / 1e9:.4g}",
                 _sig3(row.params)]
        if timed:
            spread = ("-" if row.latency_ms_p10 is None
                      else f"{_ms(row.latency_ms_p10)}-{_ms(row.latency_ms_p90)}")
            p50 = status if row.status != "ok" else _ms(row.latency_ms_p50)
            cells += [p50, spread, _sig3(row.throughput_ips)]
        if with_memory:
            cells.append(_mib(row.peak_mem_bytes))
        if flagged:
            cells.append(row.status if row.status == "ok" else status)
        table.add_row(*cells)
    return table


def complexity_notes(rows: list) -> list[str]:
    """'* name res: message' for every row that carries an error or a warning."""
    return [f"* {r.name} {r.res_h}x{r.res_w}: {r.error}" for r in rows if r.error]


def exponents_table(exponents: list) -> Table:
    """Per model or mixer, the exponent k of each metric's fit cost ~ a*N^k over the token
    counts measured, with the better of the N log N and N^2 growth fits in brackets."""
    from gfbench.measure.scaling import SCALING_METRICS

    metrics = [m for m in SCALING_METRICS if any(e.metric == m for e in exponents)]
    cells: dict[str, dict[str, str]] = {}
    for item in exponents:
        growth = f" ({item.growth.best})" if item.growth.best else ""
        k = item.fit.k
        text = f"{round(k, 2) + 0.0:.2f}{growth}" if math.isfinite(k) else "-"  # no "-0.00"
        cells.setdefault(item.name, {})[item.metric] = text
    table = Table(title="k in cost ~ N^k over the larger half of N "
                  "(bracket: N log N or N^2 fits better)",
                  title_justify="left",
                  box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 2, 0, 0))
    for column in ["name", *(SCALING_METRICS[m] for m in metrics)]:
        table.add_column(column, justify="left" if column == "name" else "right", no_wrap=True)
    for name, by_metric in cells.items():
        table.add_row(name, *(by_metric.get(m, "-") for m in metrics))
    return table


def print_complexity_report(rows: list, exponents: list, paths: list, convention: str,
                            title: str) -> None:
    """The table, the scaling exponents under it, the FLOP convention and the files written."""
    console.print(complexity_table(rows, title))
    for note in complexity_notes(rows):
        console.print(note, highlight=False, soft_wrap=True)
    if exponents:
        console.print()
        console.print(exponents_table(exponents))
    console.print(f"[dim]GFLOPs per image. {convention}[/]", highlight=False, soft_wrap=True)
    console.print("wrote " + ", ".join(str(p) for p in paths), highlight=False, soft_wrap=True)


def print_json(payload: object) -> None:
    """Machine-readable output for scripts (no colour, no wrapping)."""
    import json

    console.out(json.dumps(payload, indent=1), highlight=False)


# --- robustness ---


def _pct(value: float | None, digits: int = 1) -> str:
    """A percentage with fixed digits; '-' when missing."""
    if value is None or value != value:
        return "-"
    return f"{value:.{digits}f}"


class ImagesPerSecondColumn(ProgressColumn):
    """Images per second of a progress task (rich's moving speed estimate)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-- img/s" if speed is None else f"{speed:,.1f} img/s", style="cyan")


class RobustnessProgress:
    """Rich progress for `gfbench robustness`: an overall bar plus one task per running
    (corruption, severity), each with images/s and ETA; finished parts become log lines.
    Nothing is drawn until the library calls begin (ranks other than 0 never do)."""

    def __init__(self, target: Console | None = None):
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            ImagesPerSecondColumn(), TimeElapsedColumn(), TextColumn("eta"),
            TimeRemainingColumn(), console=target or console, transient=False,
        )
        self.tasks: list[TaskID] = []
        self.names: list[str] = []
        self.overall: TaskID | None = None

    def __enter__(self) -> RobustnessProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def begin(self, parts) -> None:
        """Start the display with every part queued (hidden until it runs)."""
        self.progress.start()
        total = sum(n for _, n in parts)
        self.overall = self.progress.add_task(f"all {len(parts)} parts", total=total)
        for name, count in parts:
            self.names.append(name)
            self.tasks.append(self.progress.add_task(name, total=count, visible=False))

    def advance(self, part: int, images: int) -> None:
        """Count images for a part and for the whole run."""
        self.progress.update(self.tasks[part], advance=images, visible=True)
        self.progress.advance(self.overall, images)

    def finish(self, part: int, row) -> None:
        """Replace a finished part's bar by a one-line result."""
        self.progress.remove_task(self.tasks[part])
        error = "-" if row.error_top1 is None else f"{100 * row.error_top1:.2f}%"
        unreadable = f", [yellow]{row.unreadable} unreadable[/]" if row.unreadable else ""
        self.progress.console.print(
            f"[green]done[/] {self.names[part]:<32} top-1 error {error:>7}  ({row.images} images"
            f"{unreadable})", highlight=False)


def _mce_label(summary) -> str:
    """'mCE', or an honest name when the 15 x 5 grid is incomplete or generated."""
    if summary.source == "generated":
        return "mCE (generated in memory, not comparable)"
    return "mCE"


def robustness_corruption_table(summary) -> Table:
    """Per corruption: severities, top-1/top-5 error, AlexNet error, CE and relative CE."""
    title = f"{summary.model} on {_source_label(summary.source)}: per corruption (%)"
    table = Table(title=title)
    for column in ("corruption", "group", "sev", "top-1 err", "top-5 err", "AlexNet err", "CE",
                   "rel. CE"):
        table.add_column(column, justify="left" if column in ("corruption", "group")
                         else "right")
    for r in summary.per_corruption.itertuples():
        table.add_row(r.corruption, r.group, str(r.severities), _pct(r.error_top1_pct),
                      _pct(r.error_top5_pct), _pct(r.alexnet_error_pct), _pct(r.ce_pct),
                      _pct(r.relative_ce_pct))
    return table


def _source_label(source: str) -> str:
    """How a row source is named to the user."""
    return {"imagenet-c": "ImageNet-C (released JPEGs)",
            "generated": "corruptions generated in memory by gfbench (not the released JPEGs)",
            "clean": "clean validation images"}.get(source, source)


def robustness_summary_table(summary, reference: dict[str, float]) -> Table:
    """The headline numbers: clean error, mCE, relative mCE, unnormalised mean error, groups,
    attacks; published reference mCEs in the caption."""
    table = Table(title=f"{summary.model} ({summary.checkpoint}): summary (%)",
                  caption="published mCE: " + ", ".join(f"{k} {v}" for k, v in reference.items())
                  + " (ImageNet-C, released JPEGs)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("what it is")
    table.add_row("clean top-1 error", _pct(summary.clean_error_top1_pct), "clean val images")
    if summary.source in ("imagenet-c", "generated"):
        if summary.complete:
            table.add_row(_mce_label(summary), _pct(summary.mce_pct),
                          "mean over 15 of CE = error / AlexNet error")
            table.add_row("relative mCE", _pct(summary.relative_mce_pct),
                          "needs --clean" if summary.relative_mce_pct is None
                          else "(error - clean) / (AlexNet error - AlexNet clean)")
        else:
            table.add_row(f"mean CE over {summary.ce_corruptions} of 15", _pct(summary.mean_ce_pct),
                          "not mCE: needs all 15 corruptions x 5 severities")
        table.add_row(f"mean error over {summary.mean_error_corruptions} of 15 (unnormalised)",
                      _pct(summary.mean_error_pct), "plain mean top-1 error, not mCE")
        for g in summary.groups.itertuples():
            table.add_row(f"{g.group}: mean error / mean CE",
                          f"{_pct(g.mean_error_pct)} / {_pct(g.mean_ce_pct)}",
                          f"corruptions: {g.corruptions}")
    for a in summary.attacks.itertuples():
        table.add_row(f"{a.attack.upper()} top-1 accuracy", _pct(a.accuracy_top1_pct),
                      f"eps {a.eps * 255:.1f}/255, clean accuracy "
                      f"{_pct(a.clean_accuracy_top1_pct)}")
    return table


def print_robustness_report(report, reference: dict[str, float]) -> None:
    """Tables, notes and files of a finished `gfbench robustness` run."""
    for summary in report.summaries:
        if summary.source in ("imagenet-c", "generated"):
            console.print(robustness_corruption_table(summary))
        console.print(robustness_summary_table(summary, reference))
        if summary.missing and summary.source == "imagenet-c":
            console.print(f"[yellow]note:[/] {len(summary.missing)} of 75 benchmark "
                          "(corruption, severity) parts were not evaluated, so there is no mCE.")
        if summary.unreadable:
            console.print(f"[yellow]note:[/] {summary.unreadable} image reads failed (files "
                          "that could not be decoded, counted per part in the 'unreadable' "
                          "column and not scored).")
    for note in report.notes:
        console.print(f"[yellow]note:[/] {note}")
    if report.resumed:
        console.print(f"resumed: {len(report.resumed)} parts were already in the results file "
                      "and were not evaluated again")
    speed = report.images_per_second
    if speed is not None:
        console.print(f"evaluated {report.evaluated_images} images in {report.seconds:.1f} s "
                      f"({speed:,.1f} images/s, {report.world_size} process"
                      f"{'es' if report.world_size > 1 else ''})")
    console.print(f"wrote {report.json_path} and {report.csv_path}")


# --- plot ---


def print_skipped(problems: list[str]) -> None:
    """One yellow line per input `gfbench plot` could not use (on stderr)."""
    for problem in problems:
        err_console.print(f"[yellow]skipped:[/] {problem}", highlight=False, soft_wrap=True)


def print_plot_report(report) -> None:
    """What `gfbench plot` wrote, after the inputs it skipped and the rows it replaced."""
    print_skipped(report.problems)
    for note in report.notes:
        console.print(f"[dim]note:[/] {note}", highlight=False, soft_wrap=True)
    console.print(f"wrote {len(report.figures)} figure file(s) and {len(report.reports)} "
                  f"report file(s) to {report.out}", highlight=False)
    for path in report.written:
        console.print(f"  {path}", highlight=False, soft_wrap=True)
