"""Everything the terminal shows (rich only): tables, progress bars, the one-line error."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

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
)
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from gfbench.measure.scaling import GrowthFit, PowerLawFit

console = Console()
err_console = Console(stderr=True)


def print_error(message: str, details: Sequence[str] = ()) -> None:
    """The one line a user sees for a GfbenchError: red, on stderr, no traceback (after a
    yellow line per detail, e.g. each input skipped)."""
    for detail in details:
        label, _, text = detail.partition(": ")
        err_console.print(f"[yellow]{label}:[/] {text}", highlight=False, soft_wrap=True)
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
        number = column.startswith(("params", "native"))  # numbers whole; a long name folds
        table.add_column(column, justify="right" if number else "left", no_wrap=number,
                         overflow="fold")
    for row in rows:
        table.add_row(row["name"], row["alias"], row["family"], row["timm_name"],
                      format_count(row["params"]), str(row["native_res"]))
    return table


def selection_table(rows: list[dict], title: str) -> Table:
    """`gfbench list --timm PATTERN`: each selected model, its native resolution (and params)."""
    table = Table(title=escape(title))
    table.add_column("name", overflow="fold")  # a long timm name folds, numbers stay whole
    table.add_column("native res", justify="right", no_wrap=True)
    with_params = any(row["params"] is not None for row in rows)
    if with_params:
        table.add_column("params @native", justify="right", no_wrap=True)
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
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row["name"], row["flops_formula"], row["params_formula"], row["paper"])
    return table


def print_catalogue(models: list[dict], mixers: list[dict]) -> None:
    """`gfbench list`: the models table, then the mixers table."""
    console.print(models_table(models))
    console.print(mixers_table(mixers))


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


def _intensity(flops: float | None, moved: float | None) -> str:
    """Arithmetic intensity, FLOPs per byte moved, in 3 significant figures; '-' if missing."""
    if not flops or not moved:
        return "-"
    return f"{flops / moved:.3g}"


def _mib(value: float | None) -> str:
    """Bytes as MiB (one decimal below 1000 MiB, whole MiB above); '-' when missing."""
    if value is None or value != value:
        return "-"
    mib = value / 2**20
    return f"{mib:.1f}" if mib < 1000 else f"{mib:.0f}"


class EtaColumn(ProgressColumn):
    """Time left = mean seconds per measured setting x settings left; '-:--:--' until one
    setting has been measured (rich's own estimate needs several updates within 30 s, so it
    never shows for sweeps whose rows take longer than that)."""

    def render(self, task: Task) -> Text:
        """'eta 0:03:20' once a rate is known."""
        per_row = task.fields.get("seconds_per_row")
        if per_row is None or task.total is None:
            return Text("eta -:--:--", style="progress.remaining")
        left = max(task.total - task.completed, 0) * per_row
        return Text(f"eta {int(left // 3600)}:{int(left % 3600 // 60):02d}:{int(left % 60):02d}",
                    style="progress.remaining")


class ComplexityProgress:
    """Rich progress for `gfbench complexity`: one bar over the settings, with ETA; each
    finished setting becomes one log line above it, with the time left while settings
    remain (the bar is not drawn where the output is no terminal, so the lines say it too).

    A setting's batch size is named ('b64') when the sweep has several: those of
    ``batch_sizes`` when given, else from the settings seen (any batch other than 1 is named,
    and every one once two differ)."""

    def __init__(self, total: int = 0, enabled: bool = True, target: Console | None = None,
                 batch_sizes: Sequence[int] = ()):
        self.enabled = enabled
        self.batch_sizes = set(batch_sizes)
        self.batches_seen: set[int] = set()
        self.progress = Progress(
            TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), EtaColumn(),
            console=target or console, transient=True, disable=not enabled,
        )
        self.task = self.progress.add_task("complexity", total=total, seconds_per_row=None)
        self.measured = 0
        self.started_at: float | None = None
        self.seconds = 0.0

    def __enter__(self) -> ComplexityProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def begin(self, total: int, batch_sizes: Sequence[int] = ()) -> None:
        """The number of settings this process will measure (the bar's length) and the
        sweep's batch sizes (named per line when there are several)."""
        self.progress.update(self.task, total=total)
        self.batch_sizes = set(batch_sizes)

    def _batch(self, batch_size: int) -> str:
        """' b64' where the sweep has several batch sizes (or this one is not 1), else ''."""
        self.batches_seen.add(batch_size)
        several = (len(self.batch_sizes) > 1 if self.batch_sizes
                   else batch_size != 1 or len(self.batches_seen) > 1)
        return f" b{batch_size}" if several else ""

    def start(self, setting) -> None:
        """Show which setting is being measured."""
        self.started_at = time.monotonic()
        self.progress.update(self.task, description=f"{setting.name} {setting.res_h}x"
                                                    f"{setting.res_w}"
                                                    f"{self._batch(setting.batch_size)}")

    def finish(self, row, skipped: bool) -> None:
        """Advance the bar (and the ETA's rate) and log the finished (or skipped) row."""
        if not skipped and self.started_at is not None:
            self.measured += 1
            self.seconds += time.monotonic() - self.started_at
            self.progress.update(self.task, seconds_per_row=self.seconds / self.measured)
        self.progress.advance(self.task)
        if not self.enabled:
            return
        state = {"ok": "[green]done[/]", "oom": "[yellow]OOM[/]"}.get(row.status, "[red]error[/]")
        state = "[dim]skip[/]" if skipped else state
        timed = "" if row.latency_ms_p50 is None else f"  {_ms(row.latency_ms_p50):>7} ms"
        task = self.progress.tasks[0]  # the bar's own ETA, while settings remain
        measured = task.fields.get("seconds_per_row") is not None
        left = task.total is not None and task.completed < task.total
        eta = f"  {EtaColumn().render(task).plain}" if measured and left else ""
        sides = "x".join(map(str, row.sides())) + self._batch(row.batch_size)
        self.progress.console.print(
            f"{state} {row.name:<14} {sides:<13} "
            f"{format_count(row.flops):>9}"
            f" FLOPs{timed}{eta}  {row.error}", highlight=False)


def complexity_table(rows: list, title: str) -> Table:
    """One line per (model or mixer, resolution), fitting 80 columns: latency and memory
    columns only when measured; a row that ran out of memory (or failed) says so in its
    latency cell (or a status column when nothing was timed); '*' marks a row with a note."""
    timed = any(r.latency_ms_p50 is not None for r in rows)
    with_memory = any(r.peak_mem_bytes is not None for r in rows)
    predicted = any(r.pred_mem_bytes is not None for r in rows)
    flagged = not timed and any(r.status != "ok" for r in rows)
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False,
                  pad_edge=False, padding=(0, 1, 0, 0))
    batches = len({r.batch_size for r in rows}) > 1
    train = any(r.mode == "train" for r in rows)  # flops: forward + backward, fwd_flops apart
    forward = train and not timed  # room for the forward alone where nothing was timed
    # bytes per image and FLOP per byte; a timed table keeps only the intensity (80 columns)
    traffic = ["FLOP/B"] if timed else ["B/img", "FLOP/B"]
    traffic = traffic if any(r.bytes for r in rows) else []
    columns = ["name", "res", *(["batch"] if batches else []), "tokens",
               "fwd+bwd FLOPs" if train else "FLOPs", *(["fwd FLOPs"] if forward else []),
               "params", *traffic]
    columns += ["ms p50", "p10-p90", "img/s"] if timed else []
    columns += ["MiB"] if with_memory else []
    columns += ["pred MiB"] if predicted else []
    columns += ["status"] if flagged else []
    lines = []
    for row in rows:
        status = f"[yellow]{row.status.upper()}[/]"
        cells = [row.name + ("*" if row.error else ""), _side(*row.sides()),
                 *([str(row.batch_size)] if batches else []),
                 str(row.tokens) if row.tokens else "-", format_count(row.flops, spec=".4g"),
                 *([format_count(row.fwd_flops, spec=".4g")] if forward else []),
                 _sig3(row.params)]
        cells += ([_sig3(row.bytes)] if "B/img" in traffic else [])
        cells += [_intensity(row.flops, row.bytes)] if traffic else []
        if timed:
            spread = ("-" if row.latency_ms_p10 is None
                      else f"{_ms(row.latency_ms_p10)}-{_ms(row.latency_ms_p90)}")
            p50 = status if row.status != "ok" else _ms(row.latency_ms_p50)
            cells += [p50, spread, _sig3(row.throughput_ips)]
        if with_memory:
            cells.append(_mib(row.peak_mem_bytes))
        if predicted:
            cells.append(_mib(row.pred_mem_bytes))
        if flagged:
            cells.append(row.status if row.status == "ok" else status)
        lines.append(cells)
    return _filled(table, columns, lines, left=("name", "status"))


def _filled(table: Table, columns: Sequence[str], lines: list[list[str]],
            left: tuple[str, ...]) -> Table:
    """The table with its columns and rows: numbers are never cut (each column at least as wide
    as its widest cell), only the name column folds; ``left`` columns align left."""
    for i, column in enumerate(columns):
        widest = max([len(column), *(len(Text.from_markup(cells[i]).plain) for cells in lines)])
        table.add_column(column, justify="left" if column in left else "right",
                         no_wrap=column != "name", overflow="fold",
                         min_width=None if column == "name" else widest)
    for cells in lines:
        table.add_row(*cells)
    return table


def _roofline_cells(row, batches: bool) -> list[str]:
    """One roofline line: name, size, FLOP/B, MAC/s, shares, bound, floor ms, ratio."""
    intensity = (row.flops / row.bytes if row.flops is not None and row.bytes else None)
    size = _side(*row.sides()) + (f" b{row.batch_size}" if batches else "")
    return [row.name, size, _ms(intensity), _sig3(row.achieved_flops_s),
            *(_pct(None if share is None else 100 * share)
              for share in (row.compute_share, row.bandwidth_share)), row.bound or "-",
            _ms(row.roofline_ms), _ms(row.roofline_ratio)]


def roofline_table(rows: list, title: str) -> Table | None:
    """The roofline of every timed row against the run's measured ceilings (None when no row
    has one): intensity, achieved rate, share of each ceiling, the bound and the gap to it."""
    timed = [r for r in rows if r.achieved_flops_s is not None or r.bound]
    if not timed:
        return None
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False,
                  pad_edge=False, padding=(0, 1, 0, 0))
    batches = len({r.batch_size for r in timed}) > 1
    lines = [_roofline_cells(r, batches) for r in timed]
    columns = ("name", "size", "FLOP/B", "MAC/s", "% peak", "% bw", "bound", "floor ms",
               "ratio")
    return _filled(table, columns, lines, left=("name", "bound"))


def roofline_title(ceilings: dict | None, rows: list, tf32: bool = False) -> str:
    """What the roofline table compares against: the measured ceilings (medians) it used, and
    on CUDA whether fp32 rows ran with TF32 (then held to the tf32 ceiling)."""
    from gfbench.measure.roofline import bandwidth, matmul_peak

    if not ceilings or ceilings.get("source") != "measured":
        return "roofline: no measured ceilings (achieved rates only)"
    peaks = ", ".join(f"{key} {_sig3(matmul_peak(ceilings, key))}"
                      for key in ceilings.get("matmul_flops_s", {}))
    cuda_fp32 = any(r.precision == "fp32" and str(r.device).startswith("cuda") for r in rows)
    mode = f" (fp32 rows: TF32 {'on' if tf32 else 'off'})" if cuda_fp32 else ""
    return (f"roofline vs measured ceilings (medians): GEMM MAC/s {peaks}{mode}; "
            f"{ceilings.get('bandwidth_used')} {_sig3(bandwidth(ceilings))}B/s")


def complexity_notes(rows: list) -> list[str]:
    """'* name res: message' for every row that carries an error or a warning."""
    return [f"* {r.name} {'x'.join(map(str, r.sides()))}: {r.error}" for r in rows if r.error]


def _growth_text(growth: GrowthFit) -> str:
    """The growth class the points support (N² not N^2), or '-' and why there is none."""
    if growth.best:
        return growth.best.replace("^2", "²")
    return f"- ({growth.reason.replace('^2', '²')})"


def _fit_text(fit: PowerLawFit, counted: bool) -> str:
    """How far to trust k: why not (noisy), else its p10–p90 range, r² and the sizes fitted."""
    if fit.noisy:
        return fit.noisy
    if not math.isfinite(fit.k):
        return f"{fit.points} size{'s' if fit.points != 1 else ''}"
    parts = [] if counted or not math.isfinite(fit.k_low) else [
        f"p10–p90 {fit.k_low + 0.0:.2f}–{fit.k_high + 0.0:.2f}"]
    parts.append(f"r² {fit.r2:.3f} on {fit.points} sizes" if fit.points >= 3
                 else f"{fit.points} sizes")
    return ", ".join(parts)


def _exponent_cell(item, column: str, batches: bool = False) -> str:
    """The text of the name, metric or k cell of one exponent (the name with its batch,
    'b8', where a batch sweep fits each batch)."""
    from gfbench.measure.scaling import SCALING_METRICS

    if column == "name":
        return f"{item.name} b{item.batch_size}" if batches else item.name
    if column == "metric":
        return SCALING_METRICS[item.metric]
    stands = math.isfinite(item.fit.k) and not item.fit.noisy
    return f"{round(item.fit.k, 2) + 0.0:.2f}" if stands else "-"  # no "-0.00"


def exponents_table(exponents: list) -> Table:
    """Per model or mixer and metric: k in cost ≈ a·N^k over the larger half of N, how far to
    trust it, and the growth class every size supports ('-' with the reason where none)."""

    table = Table(title="k in cost ≈ a·N^k (larger half of N); growth: the fastest term that "
                  "every N needs in c0 + c1·N [+ c2·N log N | + c2·N²]",
                  title_justify="left",
                  box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 2, 0, 0))
    batches = len({e.batch_size for e in exponents}) > 1
    fold = max((len(_exponent_cell(e, "name", batches)) for e in exponents), default=0) > 30
    for column in ("name", "metric", "k"):  # never cut: the reasons wrap, a long name folds
        table.add_column(column, justify="right" if column == "k" else "left",
                         no_wrap=not (fold and column == "name"), overflow="fold",
                         min_width=None if fold and column == "name" else max(
                             [len(column),
                              *(len(_exponent_cell(e, column, batches)) for e in exponents)]))
    for column in ("fit", "growth"):
        table.add_column(column, justify="left", ratio=1, overflow="fold")
    for item in exponents:
        table.add_row(*(_exponent_cell(item, c, batches) for c in ("name", "metric", "k")),
                      _fit_text(item.fit, item.counted), _growth_text(item.growth))
    return table


def crossover_table(crossovers: list) -> Table:
    """Per pair of the global filter and a rival, and metric: where one curve drops below the
    other between the sizes measured (with the range the p10–p90 bands allow), or why not."""
    from gfbench.measure.crossover import CROSSOVER_METRICS

    table = Table(title="crossover: the N where the global filter and a rival change order, "
                  "between the two sizes that bracket it (power law through each pair)",
                  title_justify="left",
                  box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 2, 0, 0))
    batches = len({c.batch_size for c in crossovers}) > 1
    cells = [(f"{c.first} vs {c.second}" + (f" b{c.batch_size}" if batches else ""),
              CROSSOVER_METRICS[c.metric][0], c.verdict) for c in crossovers]
    for i, column in enumerate(("pair", "metric")):
        table.add_column(column, no_wrap=True,
                         min_width=max([len(column), *(len(cell[i]) for cell in cells)]))
    table.add_column("crossover", ratio=1, overflow="fold")
    for cell in cells:
        table.add_row(*cell)
    return table


def print_complexity_report(rows: list, exponents: list, paths: list, convention: str,
                            title: str, warnings: list[str] | tuple = (),
                            crossovers: list | tuple = (), ceilings: dict | None = None,
                            tf32: bool = False) -> None:
    """The table, the roofline of the timed rows, the scaling exponents and crossovers, the FLOP
    convention, the files written and one yellow line per warning about the timings."""
    console.print(complexity_table(rows, title))
    for note in complexity_notes(rows):
        console.print(note, highlight=False, soft_wrap=True)
    roofline = roofline_table(rows, roofline_title(ceilings, rows, tf32))
    if roofline is not None:
        console.print()
        console.print(roofline)
    if exponents:
        console.print()
        console.print(exponents_table(exponents))
    if crossovers:
        console.print()
        console.print(crossover_table(list(crossovers)))
    forward = (" of a training step's forward and backward passes (fwd: the forward alone; "
               "normalisation backward and the optimizer's update are not counted)") \
        if any(r.mode == "train" for r in rows) else ""
    console.print(f"[dim]FLOPs per image{forward}; k, M, G = 10^3, 10^6, 10^9. {convention}"
                  f"{_bytes_note(rows)}[/]", highlight=False, soft_wrap=True)
    console.print("wrote " + ", ".join(str(p) for p in paths), highlight=False, soft_wrap=True)
    for warning in warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)


def _bytes_note(rows: list) -> str:
    """The bytes convention, after the FLOP one, where the table shows bytes."""
    from gfbench.defaults import BYTES_CONVENTION

    return f" {BYTES_CONVENTION}" if any(r.bytes for r in rows) else ""


def print_complexity_run(report) -> None:
    """A finished `gfbench complexity`: the report, then what a resume skipped and the count
    of rows by status."""
    from gfbench.defaults import FLOP_CONVENTION

    print_complexity_report(report.rows, report.exponents, report.files, FLOP_CONVENTION,
                            report.title, report.warnings, report.crossovers,
                            report.ceilings, report.tf32_matmul)
    if report.memory_fit is not None:
        print_memory_fit(report.memory_fit)
    print_sweep_outcome(report)


def print_memory_fit(fit) -> None:
    """--fit-memory: per setting the predicted need at its batch and the largest batch that
    fits (with the measured peak where it was checked), then the first size that does not."""
    checked = any(f.check for f in fit.fits)
    table = Table(title=f"--fit-memory {fit.budget} (predicted, fp32)", title_justify="left",
                  box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    columns = ["name", "res", "batch", "need MiB", "fits", "max batch",
               *(["pred MiB", "meas MiB"] if checked else [])]
    for column in columns:
        table.add_column(column, justify="left" if column == "name" else "right")
    for f in fit.fits:
        cells = [f.name, f.size, str(f.batch_size), _mib(f.need_bytes) if not f.error else "-",
                 "error" if f.error else "yes" if f.fits else "[yellow]no[/]", str(f.max_batch)]
        if checked:
            cells += [_mib(f.pred_peak_at_max), _mib(f.measured_peak_at_max)
                      if f.check in ("", "ok") else f"[yellow]{f.check.split(':')[0]}[/]"]
        table.add_row(*cells)
    console.print(table)
    for f in fit.fits:
        if f.error:
            console.print(f"* {f.name} {f.size}: {f.error}", highlight=False)
    unfit = fit.smallest_unfit()
    console.print("smallest size that does not fit: " + (", ".join(
        f"{name} {size}" for name, size in unfit.items()) or "none (every size fits)") +
        ". need = weights, input, and the step's predicted peak (the optimizer state "
        "resident in training)" + ("; pred/meas MiB: peak above resident at max batch, "
                                   "predicted and measured." if checked else "."),
        highlight=False)


# --- ceilings ---

CEILING_PRECISIONS = ("fp32", "tf32", "bf16", "fp16")


def ceilings_table(ceilings: dict, spec: dict | None) -> Table:
    """Measured ceilings, p10/p50/p90 per kernel (MAC/s, B/s), with the vendor spec beside
    them (labelled) where the device matched a known kind."""
    threads = f", {ceilings['threads']} threads" if ceilings.get("threads") else ""
    table = Table(title=f"ceilings of {ceilings['device_name']}{threads}, measured",
                  title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                  padding=(0, 1, 0, 0))
    for column in ("kernel", "unit", "p10", "p50", "p90", *(["spec"] if spec else [])):
        table.add_column(column, justify="left" if column in ("kernel", "unit") else "right",
                         no_wrap=column != "kernel", overflow="fold")
    sizes = ceilings.get("sizes", {})
    for key, spread in ceilings["matmul_flops_s"].items():
        n = sizes.get(f"gemm_n_{key}")
        peak = spec["matmul_flops_s"].get(key) if spec else None
        table.add_row(f"{key} GEMM n={n}" if n else f"{key} GEMM",
                      "MAC/s", *(_sig3(spread[q]) for q in ("p10", "p50", "p90")),
                      *([_sig3(peak)] if spec else []))
    for key, spread in ceilings["bandwidth_bytes_s"].items():
        used = " (roofline)" if key == ceilings.get("bandwidth_used") else ""
        table.add_row(key + used, "B/s", *(_sig3(spread[q]) for q in ("p10", "p50", "p90")),
                      *([_sig3(spec["bandwidth_bytes_s"])] if spec else []))
    return table


def specs_table(specs: list[dict]) -> Table:
    """Vendor specs (dense peaks as multiply-adds, bandwidth), labelled: never measurements."""
    table = Table(title="vendor specs (not measured): dense MAC/s (vendor FLOPS / 2), B/s",
                  title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                  padding=(0, 1, 0, 0))
    for column in ("kind", *CEILING_PRECISIONS, "B/s"):
        table.add_column(column, justify="left" if column == "kind" else "right",
                         no_wrap=column != "kind", overflow="fold")
    for spec in specs:
        peaks = spec["matmul_flops_s"]
        table.add_row(spec["kind"], *(_sig3(peaks.get(p)) for p in CEILING_PRECISIONS),
                      _sig3(spec["bandwidth_bytes_s"]))
    return table


def print_ceilings(report) -> None:
    """`gfbench ceilings`: the measured table (spec beside it) or the specs, and the sources."""
    from gfbench.measure.ceilings import GEMM_MAX_S, GEMM_MIN_S, STREAM_FACTOR

    if report.ceilings is not None:
        ceilings = report.ceilings.as_json()
        console.print(ceilings_table(ceilings, report.specs[0] if report.specs else None))
        for precision, reason in ceilings["skipped"].items():
            console.print(f"{precision} not measured: {reason}", highlight=False, soft_wrap=True)
        console.print(f"[dim]GEMM: n^3 multiply-adds, n grown until its rate settles with a "
                      f"call of {GEMM_MIN_S * 1000:.0f}-{GEMM_MAX_S * 1000:.0f} ms; copy 2, "
                      f"triad 3 arrays moved, each {STREAM_FACTOR}x the last-level cache; "
                      "rates p10/p50/p90 over the timed calls. The roofline uses the triad's "
                      "and the GEMM's medians.[/]",
                      highlight=False, soft_wrap=True)
    else:
        console.print(specs_table(report.specs))
    for spec in report.specs:
        console.print(f"[dim]spec {spec['kind']}: {spec['reference']}[/]", highlight=False,
                      soft_wrap=True)
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)


def print_sweep_outcome(report) -> None:
    """What a resume skipped, and the count of rows by status (red when any is an error)."""
    if report.skipped:
        console.print(f"[dim]{report.skipped} setting(s) already in run {report.run_id}, "
                      "skipped (--resume)[/]", highlight=False)
    console.print(f"[{'red' if report.failed else 'green'}]{report.summary}[/]", highlight=False)


def print_interrupted(rows_kept: int, path, resume_command: str | None) -> None:
    """Ctrl-C: one line saying what is kept, where, and how to go on (if anything resumes)."""
    resume = f"; resume with: {resume_command}" if resume_command else ""
    err_console.print(f"[yellow]interrupted:[/] {rows_kept} row(s) kept in {path}{resume}",
                      highlight=False, soft_wrap=True)


def print_json(payload: object) -> None:
    """Machine-readable output for scripts (no colour, no wrapping)."""
    import json

    console.out(json.dumps(payload, indent=1), highlight=False)


# --- breakdown ---

GROUP_LABELS = {"token_mixer": "token mixer", "channel_mlp": "channel MLP", "norm": "norm",
                "embedding": "embedding", "head": "head", "other": "other"}


class BreakdownProgress:
    """A transient bar over the (model, resolution, engine) settings of `gfbench breakdown`."""

    def __init__(self, total: int = 0, enabled: bool = True, target: Console | None = None):
        self.progress = Progress(TextColumn("{task.description:<28}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(),
                                 console=target or console, transient=True, disable=not enabled)
        self.task = self.progress.add_task("breakdown", total=total)

    def __enter__(self) -> BreakdownProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def begin(self, total: int) -> None:
        """The number of (model, resolution, engine) settings to count."""
        self.progress.update(self.task, total=total)

    def done(self, name: str, size: tuple[int, int], engine: str) -> None:
        """Advance the bar past one counted setting."""
        self.progress.update(self.task, advance=1,
                             description=f"{name} {_side(*size)} {engine}")


def _share(value: float | None) -> str:
    """A fraction as a percentage with one decimal; '-' when missing."""
    return "-" if value is None or value != value else f"{100 * value:.1f}"


def breakdown_table(rows: list) -> Table:
    """One (model, resolution, engine): a line per module and role, '(own)' marking what a
    shallower module does itself, with the ops no rule counted."""
    first = rows[0]
    table = Table(title=f"{first.name} at {_side(first.res_h, first.res_w)}: {first.engine} "
                  f"engine, depth {first.depth} ({format_count(first.model_flops)} FLOPs, "
                  f"{_sig3(first.model_params)} params)", title_justify="left",
                  box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    for column in ("module", "role", "GFLOPs", "% FLOPs", "bytes", "params", "% params",
                   "uncounted"):
        text = column in ("module", "role", "uncounted")  # numbers whole; long text folds
        table.add_column(column, justify="left" if text else "right", no_wrap=not text,
                         overflow="fold")
    for row in rows:
        table.add_row(row.module + (" (own)" if row.own else ""),
                      GROUP_LABELS.get(row.group, row.group), f"{row.flops / 1e9:.4g}",
                      _share(row.flops_share), _sig3(row.bytes), _sig3(row.params),
                      _share(row.params_share),
                      row.uncounted_ops.replace(";", " "))  # wraps between ops
    return table


def breakdown_summary_table(summaries: list) -> Table:
    """Per (model, resolution[, engine]): each role's share of the FLOPs, the mixer's first,
    and the mixer's share of the parameters; fits 80 columns."""
    engines = len({s.engine for s in summaries}) > 1
    table = Table(title="Share of FLOPs by role (%); N tokens; mixer P: the token mixer's share "
                  "of parameters (%)", title_justify="left", box=box.SIMPLE_HEAD,
                  show_edge=False, pad_edge=False, padding=(0, 0, 0, 0))
    columns = ["model", "res", "N", *(["engine"] if engines else []), "GFLOPs", "mixer", "MLP",
               "norm", "embed", "head", "other", "mixer P"]  # GROUP_LABELS' order
    for column in columns:
        table.add_column(column, justify="left" if column in ("model", "engine") else "right",
                         no_wrap=column != "model", overflow="fold")  # a long name folds
    for s in summaries:
        shares = [_share(s.flops[g] / s.model_flops if s.model_flops else None)
                  for g in GROUP_LABELS]
        mixer_params = s.params["token_mixer"] / s.model_params if s.model_params else None
        table.add_row(s.name, _side(s.res_h, s.res_w), "-" if s.tokens is None else str(s.tokens),
                      *([s.engine] if engines else []), f"{s.model_flops / 1e9:.4g}", *shares,
                      _share(mixer_params))
    return table


def breakdown_time_table(rows: list, timing: dict | None = None) -> Table:
    """One timed (model, resolution): each timed row's own median latency, FLOP/B, the
    ceiling its lower bound hits and latency / bound; the hook overhead in the title."""
    first = rows[0]
    record = (timing or {}).get(f"{first.name} {first.res_h}x{first.res_w}", {})
    overhead = (f"; hooks add {_ms(record['hook_overhead_ms'])} ms to a "
                f"{_ms(record['forward_ms_p50'])} ms forward" if "hook_overhead_ms" in record
                else "")
    table = Table(title=f"{first.name} at {_side(first.res_h, first.res_w)}, batch "
                  f"{first.batch_size} on {first.device}: own time per row ({first.time_method})"
                  f"{overhead}", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False,
                  pad_edge=False, padding=(0, 1, 0, 0))
    for column in ("module", "role", "ms p50", "FLOP/B", "bound", "ratio"):
        text = column in ("module", "role", "bound")
        table.add_column(column, justify="left" if text else "right",
                         no_wrap=column != "module", overflow="fold")
    for row in rows:
        if row.latency_ms_p50 is not None:
            table.add_row(row.module + (" (own)" if row.own else ""),
                          GROUP_LABELS.get(row.group, row.group), _ms(row.latency_ms_p50),
                          _intensity(row.flops, row.bytes), row.bound or "-",
                          _ms(row.roofline_ratio))
    return table


def print_breakdown_run(report) -> None:
    """A finished `gfbench breakdown`: its tables, the convention and the files."""
    from gfbench.defaults import FLOP_CONVENTION

    print_breakdown_report(report.rows, report.summaries, report.files, FLOP_CONVENTION)
    timed: dict[tuple, list] = {}
    for row in report.rows:
        if row.status == "ok" and row.time_method:
            timed.setdefault((row.name, row.res_h, row.res_w), []).append(row)
    for members in timed.values():
        console.print()
        console.print(breakdown_time_table(members, report.timing.get("module_time")))
    if timed:
        from gfbench.measure.roofline import below_roofline_warning

        console.print(roofline_title(report.timing.get("ceilings"), []), highlight=False,
                      soft_wrap=True)
        if warning := below_roofline_warning(report.rows):
            console.print(f"[yellow]{warning}[/]", highlight=False, soft_wrap=True)


def print_breakdown_report(rows: list, summaries: list, paths: list, convention: str) -> None:
    """A table per setting, the per-role summary, failed settings, the convention, the files."""
    settings: dict[tuple, list] = {}
    for row in rows:
        if row.status == "ok":
            settings.setdefault((row.name, row.res_h, row.res_w, row.engine), []).append(row)
    for members in settings.values():
        console.print(breakdown_table(members))
        console.print()
    if summaries:
        console.print(breakdown_summary_table(summaries))
    for row in rows:
        if row.status != "ok":
            console.print(f"[red]{row.engine} engine failed[/] on {row.name} "
                          f"{_side(row.res_h, row.res_w)}: {row.error}", highlight=False,
                          soft_wrap=True)
    console.print(f"[dim]GFLOPs per image. {convention}[/]", highlight=False, soft_wrap=True)
    console.print("wrote " + ", ".join(str(p) for p in paths), highlight=False, soft_wrap=True)


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


def eta_seconds(left: dict[str, int], seconds: dict[str, float], images: dict[str, int]
                ) -> float | None:
    """Seconds still to go: the images left of each kind (a forward pass, or an attack) times
    the seconds per image measured for that kind; a kind not timed yet is costed at the
    slowest kind timed. None while nothing has been timed."""
    rates = {k: seconds[k] / images[k] for k in images if images[k] > 0}
    if not rates:
        return None
    slowest = max(rates.values())
    return sum(n * rates.get(kind, slowest) for kind, n in left.items())


def clock_text(seconds: float | None) -> str:
    """H:MM:SS, or '-:--:--' when unknown."""
    if seconds is None:
        return "-:--:--"
    whole = int(round(seconds))
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


class RobustnessProgress:
    """Rich progress for `gfbench robustness`: an overall bar plus one task per running
    (corruption, severity), each with images/s; finished parts become log lines. The ETA
    counts the images left of each kind (forward pass, FGSM, PGD) at the speed measured for
    that kind, shown once the first part is done. Nothing is drawn until the library calls
    begin (ranks other than 0 never do)."""

    def __init__(self, target: Console | None = None, enabled: bool = True,
                 clock=time.monotonic):
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            ImagesPerSecondColumn(), TimeElapsedColumn(), TextColumn("eta {task.fields[eta]}"),
            console=target or console, transient=False, disable=not enabled,
        )
        self.enabled = enabled
        self.clock = clock
        self.tasks: list[TaskID] = []
        self.names: list[str] = []
        self.kinds: list[str] = []
        self.left: list[int] = []
        self.seconds: dict[str, float] = {}
        self.images: dict[str, int] = {}
        self.finished = 0
        self.last = clock()
        self.overall: TaskID | None = None

    def __enter__(self) -> RobustnessProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def begin(self, parts) -> None:
        """Start the display with every part queued (hidden until it runs)."""
        self.progress.start()
        total = sum(n for _, n, _ in parts)
        self.overall = self.progress.add_task(f"all {len(parts)} parts", total=total,
                                              eta=clock_text(None))
        for name, count, kind in parts:
            self.names.append(name)
            self.kinds.append(kind)
            self.left.append(count)
            self.tasks.append(self.progress.add_task(name, total=count, visible=False,
                                                     eta=clock_text(None)))
        self.last = self.clock()

    def eta(self, part: int | None = None) -> float | None:
        """Seconds left for one part, or for the whole run; None before a part is done."""
        if self.finished == 0:
            return None
        indices = range(len(self.left)) if part is None else [part]
        left: dict[str, int] = {}
        for i in indices:
            left[self.kinds[i]] = left.get(self.kinds[i], 0) + self.left[i]
        return eta_seconds(left, self.seconds, self.images)

    def advance(self, part: int, images: int) -> None:
        """Count images for a part and for the whole run; time them by kind."""
        now = self.clock()
        kind = self.kinds[part]
        self.seconds[kind] = self.seconds.get(kind, 0.0) + now - self.last
        self.images[kind] = self.images.get(kind, 0) + images
        self.last = now
        self.left[part] -= images
        assert self.overall is not None  # begin() ran
        self.progress.update(self.tasks[part], advance=images, visible=True,
                             eta=clock_text(self.eta(part)))
        self.progress.update(self.overall, advance=images, eta=clock_text(self.eta()))

    def finish(self, part: int, row) -> None:
        """Replace a finished part's bar by a one-line result."""
        self.finished += 1
        self.progress.remove_task(self.tasks[part])
        assert self.overall is not None  # begin() ran
        self.progress.update(self.overall, eta=clock_text(self.eta()))
        if not self.enabled:
            return
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
    """Per corruption: severities, top-1/top-5 error, AlexNet error, CE, relative CE and ECE."""
    title = f"{summary.model} on {_source_label(summary.source)}: per corruption (%)"
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False,
                  pad_edge=False, padding=(0, 1, 0, 0))  # fits 80 columns, names whole
    for column in ("corruption", "group", "severities", "top-1\nerr", "top-5\nerr",
                   "AlexNet\nerr", "CE", "rel.\nCE", "ECE"):
        name = column in ("corruption", "group")
        table.add_column(column, justify="left" if name else "right", no_wrap=not name,
                         overflow="fold")
    for r in summary.per_corruption.itertuples():
        table.add_row(r.corruption, r.group, str(r.severities), _pct(r.error_top1_pct),
                      _pct(r.error_top5_pct), _pct(r.alexnet_error_pct), _pct(r.ce_pct),
                      _pct(r.relative_ce_pct), _pct(r.ece_pct))
    return table


def _source_label(source: str) -> str:
    """How a row source is named to the user."""
    return {"imagenet-c": "ImageNet-C (released JPEGs)",
            "generated": "corruptions generated in memory by gfbench (not the released JPEGs)",
            "generated-bar": "ImageNet-C-bar generated in memory by gfbench",
            "clean": "clean validation images",
            "test-sets": "ImageNet-A/R/Sketch/V2 test sets"}.get(source, source)


def robustness_summary_table(summary, reference: dict[str, float]) -> Table:
    """The headline numbers: clean error, mCE, relative mCE, unnormalised mean error, groups,
    attacks; published reference mCEs in the caption."""
    corrupted = summary.source in ("imagenet-c", "generated")
    table = Table(title=f"{summary.model} ({summary.checkpoint}): summary (%)",
                  caption="published mCE: " + ", ".join(f"{k} {v}" for k, v in reference.items())
                  + " (ImageNet-C, released JPEGs)" if corrupted else None)
    table.add_column("metric", overflow="fold")
    table.add_column("value", justify="right", no_wrap=True)  # "46.0 / 51.1" on one line
    table.add_column("what it is", overflow="fold")
    if summary.clean_error_top1_pct is not None or summary.source != "test-sets":
        table.add_row("clean top-1 error", _pct(summary.clean_error_top1_pct),
                      "clean val images")
    if corrupted:
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
    if summary.source == "generated-bar":
        table.add_row(f"C-bar error ({summary.cbar_cases} of 50 cases)",
                      _pct(summary.cbar_error_pct), _cbar_meaning(summary))
    for t in summary.test_sets.itertuples():
        scope = "200 classes (1000-way logits restricted)" if t.test_set in (
            "imagenet-a", "imagenet-r") else "1000 classes"
        whole = ("whole release" if t.complete
                 else f"partial: {t.images + t.unreadable} of {t.released_images} images")
        table.add_row(f"{t.title} top-1 error", _pct(t.error_top1_pct),
                      f"{scope}; {t.images} images, {whole}")
    return table


def _cbar_meaning(summary) -> str:
    """What the C-bar error is and whether it may sit beside Mintun et al.'s table."""
    what = "plain mean top-1 error over (corruption, severity), no normalisation; "
    if summary.comparable:
        return what + "all 50 cases: comparable to Mintun et al. 2021 (in memory)"
    return what + f"not comparable: {len(summary.missing)} of 50 cases missing"


def robustness_calibration_table(summary) -> Table | None:
    """Calibration of the top-1 softmax (Ovadia et al. 2019): clean, each severity (mean over
    the benchmark corruptions), each test set and attack; None when no part has it."""
    from gfbench.plot.robustness import calibration_table

    parts = calibration_table(summary)
    if parts.empty:
        return None
    table = Table(title=f"{summary.model}: calibration of the top-1 softmax",
                  caption="ECE (%): 15 confidence bins; NLL: nats",
                  title_justify="left", caption_justify="left", box=box.SIMPLE_HEAD,
                  show_edge=False, pad_edge=False, padding=(0, 2, 0, 0))
    table.add_column("part", overflow="fold")
    for column in ("top-1 err", "ECE", "NLL", "Brier"):
        table.add_column(column, justify="right", no_wrap=True)
    for r in parts.itertuples():
        table.add_row(r.part, _pct(r.error_top1_pct), _pct(r.ece_pct), _pct(r.nll, 3),
                      _pct(r.brier, 3))
    return table


def print_robustness_run(report) -> None:
    """A finished `gfbench robustness`: its tables against the published mCEs, and files."""
    from gfbench.robustness.protocol import REFERENCE_MCE

    print_robustness_report(report, REFERENCE_MCE)


def fourier_lines(rows) -> list[str]:
    """One line per Fourier heat map of a run's rows: its grid, error range and worst
    frequency (the map itself is a figure: gfbench plot)."""
    import dataclasses

    import numpy as np
    import pandas as pd

    from gfbench.robustness.fourier import fourier_maps

    frame = pd.DataFrame([dataclasses.asdict(r) for r in rows])
    lines = []
    for m in fourier_maps(frame):
        if not np.isfinite(m.error).any():
            continue
        i, j = np.unravel_index(np.nanargmax(m.error), m.error.shape)
        clean = "" if m.clean_error is None else f" (clean {m.clean_error:.1f}%)"
        lines.append(f"Fourier heat map of {m.model}, eps {m.eps:g}: {m.evaluated} frequencies "
                     f"on a {len(m.ky)}x{len(m.kx)} grid, top-1 error "
                     f"{np.nanmin(m.error):.1f}-{np.nanmax(m.error):.1f}%{clean}, worst at "
                     f"frequency ({m.ky[i]}, {m.kx[j]}); gfbench plot draws it")
    return lines


def print_robustness_report(report, reference: dict[str, float]) -> None:
    """Tables, notes and files of a finished `gfbench robustness` run."""
    for summary in report.summaries:
        if summary.source in ("imagenet-c", "generated", "generated-bar"):
            console.print(robustness_corruption_table(summary))
        console.print(robustness_summary_table(summary, reference))
        calibration = robustness_calibration_table(summary)
        if calibration is not None:
            console.print(calibration)
        if summary.uncalibrated:
            console.print(f"[yellow]note:[/] {summary.uncalibrated} part(s) carry no calibration "
                          "(evaluated before gfbench computed it); --no-resume evaluates them "
                          "again.")
        if summary.missing and summary.source == "imagenet-c":
            console.print(f"[yellow]note:[/] {len(summary.missing)} of 75 benchmark "
                          "(corruption, severity) parts were not evaluated, so there is no mCE.")
        if summary.missing and summary.source == "generated-bar":
            console.print(f"[yellow]note:[/] {len(summary.missing)} of 50 ImageNet-C-bar "
                          f"(corruption, severity) cases were not evaluated: "
                          f"{', '.join(summary.missing)}", highlight=False)
        if summary.unreadable:
            console.print(f"[yellow]note:[/] {summary.unreadable} image reads failed (files "
                          "that could not be decoded, counted per part in the 'unreadable' "
                          "column and not scored).")
    for line in fourier_lines(report.rows):
        console.print(line, highlight=False)
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
    if not report.figures:
        print_error("no figure drawn: no row of the inputs finished (each is an error or was "
                    "skipped); the report lists them")
    for path in report.written:
        console.print(f"  {path}", highlight=False, soft_wrap=True)
    if report.removed:
        console.print(f"[dim]removed {len(report.removed)} file(s) an earlier `gfbench plot` "
                      f"made in {report.out} and this one did not: "
                      f"{', '.join(p.name for p in report.removed)}[/]", highlight=False,
                      soft_wrap=True)


# --- compare ---

_COMPARED = {"flops": "FLOPs", "params": "params", "latency_ms_p50": "latency",
             "throughput_ips": "img/s", "peak_mem_bytes": "memory"}


def _ratio_cell(metric) -> str:
    """B/A as '0.512x', '*' when beyond the runs' spread, '-' when a side has no value."""
    if metric is None or metric.ratio is None:
        return "-"
    mark = " [bold yellow]*[/]" if metric.marked else ""
    return f"{metric.ratio:#.3g}x{mark}"


def comparison_table(comparison) -> Table:
    """One line per setting both runs measured: latency of each side, then B/A per metric.

    Batch, precision and mode get a column only when they vary; otherwise the title says them.
    """
    present = [m for m in _COMPARED
               if any(x.metric == m for s in comparison.settings for x in s.metrics)]
    timed = "latency_ms_p50" in present
    shared = {field: {str(getattr(s, field)) for s in comparison.settings}
              for field in ("run_a", "run_b", "batch_size", "precision", "mode")}
    varying = [field for field, values in shared.items() if len(values) > 1]
    common = ", ".join(("batch " if f == "batch_size" else "") + next(iter(v))
                       for f, v in shared.items() if len(v) == 1 and not f.startswith("run"))
    table = Table(title="B/A per setting both runs measured" + (f" ({common})" if common else "")
                  + ("; ms A, ms B: median latency" if timed else ""),
                  title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                  padding=(0, 1, 0, 0))
    headers = {"run_a": "A run", "run_b": "B run", "batch_size": "batch", "precision": "prec",
               "mode": "mode"}
    columns = ["name", "res", *(headers[f] for f in varying)]
    columns += ["ms A", "ms B"] if timed else []
    columns += [_COMPARED[m] for m in present]  # the title says these are B/A
    for column in columns:
        text = column in ("name", "prec", "mode", "A run", "B run")  # names fold, numbers stay
        table.add_column(column, justify="left" if text else "right",
                         no_wrap=column not in ("name", "A run", "B run"), overflow="fold")
    for s in comparison.settings:
        by_metric = {m.metric: m for m in s.metrics}
        cells = [s.name + (f" [{s.impl}]" if s.impl not in ("", "reference") else "")
                 + (" [reparam]" if s.reparam else ""),
                 _side(s.side_h, s.side_w), *(str(getattr(s, f)) for f in varying)]
        if timed:
            latency = by_metric.get("latency_ms_p50")
            cells += [_ms(getattr(latency, side, None)) if status == "ok" else status.upper()
                      for side, status in (("a", s.status_a), ("b", s.status_b))]
        cells += [_ratio_cell(by_metric.get(m)) for m in present]
        table.add_row(*cells)
    return table


def provenance_differences_table(comparison) -> Table:
    """How the two runs were made differently: device, versions, flags, command."""
    table = Table(title="Made differently", title_justify="left", box=box.SIMPLE_HEAD,
                  show_edge=False, pad_edge=False, padding=(0, 2, 0, 0))
    for column in ("what", "A", "B"):
        table.add_column(column, overflow="fold")
    for d in comparison.differences:
        table.add_row(d.field, d.a, d.b)
    return table


def print_comparison(comparison) -> None:
    """`gfbench compare`: the paired settings, what the marks mean, and what differs."""
    print_skipped(list(comparison.problems))
    for note in comparison.notes:
        console.print(f"[yellow]warning:[/] {note}", highlight=False, soft_wrap=True)
    for side, path, files in (("A", comparison.a, comparison.a_files),
                              ("B", comparison.b, comparison.b_files)):
        console.print(f"{side}: {path} ({len(files)} complexity file(s))", highlight=False,
                      soft_wrap=True)
    console.print(comparison_table(comparison))
    console.print("[bold yellow]*[/] beyond the runs' own spread (timed: the p10-p90 "
                  "intervals do not overlap; counted: any difference); memory has no "
                  "recorded spread and is never marked.", highlight=False, soft_wrap=True)
    console.print(f"{len(comparison.settings)} setting(s) in common, {comparison.marked} "
                  f"value(s) marked; measured by A only: {comparison.only_a}, by B only: "
                  f"{comparison.only_b}", highlight=False)
    if comparison.differences:
        console.print(provenance_differences_table(comparison))
    else:
        console.print("Both runs were made alike (device, versions, flags, command).")
