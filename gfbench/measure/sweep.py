"""A complexity sweep: planned settings in, one results row per setting out, each written the
moment it finishes, none ever lost.

* One bad setting never stops a sweep: a failure to build, count or run is an ``error`` row
  with a one-line reason, running out of memory an ``oom`` row that keeps its counts.
* Isolation (the default): settings run in a worker child process, so a segfault in native
  code, the kernel's OOM killer or a hang costs only that setting's measurement; the counts
  are then taken again in a fresh child. An error that poisons the CUDA context ends the child
  after it answers, so the settings after it run in a healthy process. Without isolation the
  sweep moves to a worker child the first time that happens.
* Rows of other settings already in the results file are kept; a setting measured again
  replaces its row (``--resume`` skips it instead).
* Under torchrun each rank measures every k-th setting on its own device and writes its rows
  to a part file as they finish; rank 0 merges the parts into the one results file.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from gfbench.distributed import DistContext, barrier
from gfbench.measure.memory import CpuMemoryWorker
from gfbench.measure.plan import SweepPlan
from gfbench.measure.quality import load_average
from gfbench.measure.setting import (
    Setting,
    SweepOptions,
    measure_checked,
)
from gfbench.measure.timing import set_threads
from gfbench.measure.worker import CallResult, ChildWorker
from gfbench.results import ComplexityRow, ResultsWriter, collect_provenance, read_rows, row_key

STATUSES = ("ok", "oom", "error")
WORKER_FUNCTION = "gfbench.measure.setting:measure_in_worker"
MeasureFn = Callable[[Setting, SweepOptions], ComplexityRow]


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep: how many rows the results file keeps, and where."""

    def __init__(self, rows_kept: int, path: Path):
        super().__init__(f"{rows_kept} row(s) kept in {path}")
        self.rows_kept = rows_kept
        self.path = path


@dataclass
class SweepOutcome:
    """What a sweep left: the file's rows in plan order, and what happened to them."""

    rows: list[ComplexityRow]
    path: Path
    measured: int = 0
    skipped: int = 0  # already in the file (--resume)
    replaced: int = 0  # measured again: the older row was replaced
    kept: int = 0  # rows of earlier runs still in the file
    workers_started: int = 0
    notes: list[str] = field(default_factory=list)

    def counts(self) -> Counter:
        """Rows by status, over the settings this run planned."""
        return Counter(r.status for r in self.rows)


def summary_line(rows: Iterable[ComplexityRow]) -> str:
    """'7 ok, 1 oom, 2 error' over the given rows (every status named, zeros included)."""
    counts = Counter(r.status for r in rows)
    return ", ".join(f"{counts.get(status, 0)} {status}" for status in STATUSES)


# --- running one setting: in this process or in a worker child --------------------------------


def _row_from_failure(setting: Setting, result: CallResult) -> ComplexityRow:
    """The row of a setting whose worker died, hung or raised: status and one-line reason."""
    row = setting.row()
    row.status = result.failure_status
    row.error = result.error
    return row


class SettingRunner:
    """Measures settings one by one, in this process or in a worker child (isolation)."""

    def __init__(self, isolate: bool, threads: int, measure_fn: MeasureFn | None = None,
                 worker_function: str = WORKER_FUNCTION):
        self.isolate = isolate
        self.threads = threads
        self.measure_fn = measure_fn
        self.worker_function = worker_function
        self.worker = ChildWorker(threads=threads)
        self.memory_worker = CpuMemoryWorker(threads)

    def __enter__(self) -> SettingRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.worker.close()
        self.memory_worker.close()

    def __call__(self, setting: Setting, options: SweepOptions) -> ComplexityRow:
        """The row of one setting."""
        if self.measure_fn is not None:
            return self.measure_fn(setting, options)
        if not self.isolate:
            row, poisoned = measure_checked(setting, options, self.memory_worker)
            if poisoned:  # this process's CUDA context is gone: the rest runs in a child
                self.isolate = True
            return row
        return self._in_worker(setting, options)

    def _call(self, setting: Setting, options: SweepOptions) -> CallResult:
        """One measure_in_worker call in the child."""
        return self.worker.call(self.worker_function, {"setting": dataclasses.asdict(setting),
                                                  "options": options.to_json()})

    def _in_worker(self, setting: Setting, options: SweepOptions) -> ComplexityRow:
        """Measure in the child; if it dies, count again in a fresh one (counts survive)."""
        result = self._call(setting, options)
        if result.ok:
            return ComplexityRow(**result.value)
        row = _row_from_failure(setting, result)
        counting = dataclasses.replace(options, fvcore_max_flops=-1.0, metrics=frozenset(
            options.metrics & {"flops", "params"}) | {"params"})
        recount = self._call(setting, counting)
        if recount.ok:
            counted = ComplexityRow(**recount.value)
            row.tokens, row.params = counted.tokens, counted.params
            row.flops = row.flops_torch = counted.flops
            row.flops_engine, row.uncounted_ops = counted.flops_engine, counted.uncounted_ops
        return row


# --- files: the results file, and the part files of the other ranks ---------------------------


def part_stem(stem: Path, rank: int) -> Path:
    """Where rank ``rank`` (> 0) writes its rows while a torchrun sweep runs."""
    return stem.with_name(f"{stem.name}-rank{rank}")


def _merge_parts(writer: ResultsWriter) -> None:
    """Move the rows of every rank's part file into the results file, then drop the parts.

    Also picks up the parts an interrupted torchrun left behind (any world size).
    """
    parts = sorted(writer.stem.parent.glob(f"{writer.stem.name}-rank*.json"))
    for path in parts:
        _, rows = read_rows(path)
        for row in rows:
            writer.add(row)
        path.unlink()
        path.with_suffix(".csv").unlink(missing_ok=True)


def _open_writer(plan: SweepPlan) -> tuple[ResultsWriter, dict[tuple, ComplexityRow]]:
    """This rank's writer (the results file on rank 0, with leftover parts merged in; a part
    file on the others) and the rows the results file already holds, by key."""
    provenance = collect_provenance("complexity", device=plan.device,
                                    load_average_at_start=load_average(), **plan.extra)
    dist = plan.dist
    if dist.is_main:
        writer = ResultsWriter(plan.stem, provenance)
        _merge_parts(writer)
    barrier(dist)
    if not dist.is_main:
        writer = ResultsWriter(part_stem(plan.stem, dist.rank), provenance)
    done = read_rows(plan.json_path)[1] if plan.json_path.exists() else []
    return writer, {row_key(r): r for r in done}


def _my_settings(settings: list[Setting], dist: DistContext) -> list[Setting]:
    """This rank's share: settings rank, rank + k, rank + 2k, ..."""
    return settings[dist.rank::dist.world_size]


def run_sweep(plan: SweepPlan, on_start: Callable[[Setting], None] | None = None,
              on_row: Callable[[ComplexityRow, bool], None] | None = None,
              measure_fn: MeasureFn | None = None,
              worker_function: str = WORKER_FUNCTION) -> SweepOutcome:
    """Measure every setting of this rank, writing each row as it finishes.

    ``on_row(row, skipped)`` is called for each setting, ``skipped`` being True for rows
    already present under ``--resume``. ``measure_fn`` replaces the measurement in this
    process, ``worker_function`` the one a worker child runs (tests inject faults with them).
    On rank 0 the outcome holds the results file's rows in the plan's order (rows of earlier
    runs that the plan does not name come last); the other ranks' outcome holds no rows.
    Ctrl-C raises SweepInterrupted, saying how many rows the file keeps.
    """
    if plan.threads:
        set_threads(plan.threads)
    writer, existing = _open_writer(plan)
    outcome = SweepOutcome(rows=[], path=plan.json_path)
    mine = _my_settings(plan.settings, plan.dist)
    runner = SettingRunner(plan.isolate, torch.get_num_threads(), measure_fn, worker_function)
    try:
        with runner:
            for setting in mine:
                if plan.resume and setting.key() in existing:
                    outcome.skipped += 1
                    if on_row:
                        on_row(existing[setting.key()], True)
                    continue
                if on_start:
                    on_start(setting)
                row = runner(setting, plan.options)
                writer.add(row)
                outcome.measured += 1
                if on_row:
                    on_row(row, False)
    except KeyboardInterrupt:
        writer.flush()
        raise SweepInterrupted(len(writer.rows), writer.json_path) from None
    outcome.workers_started = runner.worker.started
    barrier(plan.dist)
    if not plan.dist.is_main:
        return outcome
    _merge_parts(writer)
    writer.flush()
    outcome.replaced = len(writer.replaced)
    order = {setting.key(): i for i, setting in enumerate(plan.settings)}
    outcome.rows = sorted(writer.rows, key=lambda r: order.get(row_key(r), len(order)))
    outcome.kept = sum(1 for r in writer.rows if row_key(r) not in order)
    return outcome


def planned_rows(outcome: SweepOutcome, plan: SweepPlan) -> list[ComplexityRow]:
    """The rows of the settings this run planned (not those of earlier runs kept in the file)."""
    keys = {s.key() for s in plan.settings}
    return [r for r in outcome.rows if row_key(r) in keys]


def complexity_title(plan: SweepPlan) -> str:
    """What the table measured, in one line: device, batch, precision, mode."""
    if plan.device == "meta":
        return "gfbench complexity: counted on the meta device"
    where = (torch.cuda.get_device_name(torch.device(plan.device))
             if plan.device.startswith("cuda") else f"cpu ({torch.get_num_threads()} threads)")
    batches = sorted({s.batch_size for s in plan.settings})
    first = plan.settings[0] if plan.settings else None
    batch = "batch " + ",".join(map(str, batches))
    setting = f", {batch}, {first.precision}, {first.mode}" if first else ""
    return f"gfbench complexity: {where}{setting}"

