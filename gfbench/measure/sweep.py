"""A complexity sweep: planned settings in, one results row per setting out, each written the
moment it finishes, none ever lost.

* One bad setting never stops a sweep: a failure to build, count or run is an ``error`` row
  with a one-line reason, running out of memory an ``oom`` row that keeps its counts.
* Isolation (the default): settings run in a worker child process, so a segfault in native
  code, the kernel's OOM killer or a hang costs only that setting's measurement; the counts
  are then taken again in a fresh child. An error that poisons the CUDA context ends the child
  after it answers, so the settings after it run in a healthy process. Without isolation the
  sweep moves to a worker child the first time that happens.
* Every invocation writes its own run (``<out>/<NNNN>-<name>.json``, number claimed
  atomically) and never touches another run's rows; ``--resume RUN`` continues one run,
  skipping the settings already in it.
* Under torchrun rank 0 claims the run and tells the other ranks its name; each rank
  measures every k-th setting on its own device and writes its rows to a part file beside
  the run as they finish; rank 0 merges the parts into the run.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from gfbench.distributed import DistContext, barrier, broadcast_object
from gfbench.errors import GfbenchError
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
from gfbench.results import (
    ComplexityRow,
    ResultsWriter,
    collect_provenance,
    find_run,
    new_run,
    read_rows,
    resume_run,
    row_key,
)

STATUSES = ("ok", "oom", "error")
WORKER_FUNCTION = "gfbench.measure.setting:measure_in_worker"
MeasureFn = Callable[[Setting, SweepOptions], ComplexityRow]


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep: how many rows the run keeps, where, and its number (to resume)."""

    def __init__(self, rows_kept: int, path: Path, run_id: str = ""):
        super().__init__(f"{rows_kept} row(s) kept in {path}")
        self.rows_kept = rows_kept
        self.path = path
        self.run_id = run_id


@dataclass
class SweepOutcome:
    """What a sweep left: the run's rows in plan order, and what happened to them."""

    rows: list[ComplexityRow]
    path: Path
    measured: int = 0
    skipped: int = 0  # already in the resumed run (--resume)
    workers_started: int = 0
    run_id: str = ""
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
    """Move the rows of every rank's part file into the run, then drop the parts.

    Also picks up the parts an interrupted torchrun of this run left behind (any world size).
    """
    parts = sorted(writer.stem.parent.glob(f"{writer.stem.name}-rank*.json"))
    for path in parts:
        _, rows = read_rows(path)
        writer.extend(rows)
        path.unlink()
        path.with_suffix(".csv").unlink(missing_ok=True)


def _open_run(plan: SweepPlan) -> ResultsWriter:
    """Rank 0's writer: a new run, or the run --resume names (its leftover parts merged)."""
    provenance = collect_provenance("complexity", device=plan.device,
                                    load_average_at_start=load_average(), **plan.extra)
    if plan.resume is None:
        return new_run(plan.folder, plan.name, provenance)
    writer = resume_run(find_run(plan.folder, plan.name, plan.resume), provenance)
    try:
        _merge_parts(writer)
    except BaseException:
        writer.close()
        raise
    return writer


def _open_writer(plan: SweepPlan) -> tuple[ResultsWriter, dict[tuple, ComplexityRow]]:
    """This rank's writer (the run on rank 0; a part file beside it, named after the run rank
    0 claimed, on the others) and the rows the run already holds, by key."""
    dist = plan.dist
    writer, failure = None, None
    if dist.is_main:
        try:
            writer = _open_run(plan)
        except GfbenchError as exc:
            failure = exc
    stem, message = broadcast_object(
        (writer.stem, None) if writer is not None else (None, str(failure)), dist)
    if failure is not None:
        raise failure
    if stem is None:
        raise GfbenchError(f"rank {dist.rank}: rank 0 could not open the run ({message})")
    if not dist.is_main:
        provenance = collect_provenance("complexity", device=plan.device,
                                        load_average_at_start=load_average(), **plan.extra)
        writer = ResultsWriter(part_stem(stem, dist.rank), provenance)
    done = read_rows(stem.with_suffix(".json"))[1]
    return writer, {row_key(r): r for r in done}


def _my_settings(settings: list[Setting], dist: DistContext) -> list[Setting]:
    """This rank's share: settings rank, rank + k, rank + 2k, ..."""
    return settings[dist.rank::dist.world_size]


def run_sweep(plan: SweepPlan, on_start: Callable[[Setting], None] | None = None,
              on_row: Callable[[ComplexityRow, bool], None] | None = None,
              measure_fn: MeasureFn | None = None,
              worker_function: str = WORKER_FUNCTION) -> SweepOutcome:
    """Measure every setting of this rank, writing each row as it finishes.

    The rows go to a new run, or with ``plan.resume`` to the run it names (RunNotFoundError,
    one line, when there is none; RunLockedError when another process is writing it).
    ``on_row(row, skipped)`` is called for each setting, ``skipped`` being True for rows
    already in a resumed run. ``measure_fn`` replaces the measurement in this process,
    ``worker_function`` the one a worker child runs (tests inject faults with them). On rank
    0 the outcome holds the run's rows in the plan's order (rows of a resumed run that this
    plan does not name come last); the other ranks' outcome holds no rows. Ctrl-C raises
    SweepInterrupted, saying how many rows the run keeps and its number.
    """
    if plan.threads:
        set_threads(plan.threads)
    writer, existing = _open_writer(plan)
    with writer:
        return _sweep(plan, writer, existing, on_start, on_row,
                      SettingRunner(plan.isolate, torch.get_num_threads(), measure_fn,
                                    worker_function))


def _sweep(plan: SweepPlan, writer: ResultsWriter, existing: dict[tuple, ComplexityRow],
           on_start: Callable[[Setting], None] | None,
           on_row: Callable[[ComplexityRow, bool], None] | None,
           runner: SettingRunner) -> SweepOutcome:
    """run_sweep with its writer open: measure this rank's share, then merge on rank 0."""
    outcome = SweepOutcome(rows=[], path=writer.json_path, run_id=writer.run_id)
    try:
        with runner:
            for setting in _my_settings(plan.settings, plan.dist):
                if setting.key() in existing:
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
        raise SweepInterrupted(writer.saved, writer.json_path, writer.run_id) from None
    outcome.workers_started = runner.worker.started
    barrier(plan.dist)
    if not plan.dist.is_main:
        return outcome
    _merge_parts(writer)
    order = {setting.key(): i for i, setting in enumerate(plan.settings)}
    outcome.rows = sorted(writer.rows, key=lambda r: order.get(row_key(r), len(order)))
    return outcome


def planned_rows(outcome: SweepOutcome, plan: SweepPlan) -> list[ComplexityRow]:
    """The rows of the settings this invocation planned (a resumed run may hold others)."""
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

