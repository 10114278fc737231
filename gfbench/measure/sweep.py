"""A complexity sweep: planned settings in, one results row per setting out, each written the
moment it finishes, none ever lost.

* One bad setting never stops a sweep: a failure to build, count or run is an ``error`` row
  with a one-line reason, running out of memory an ``oom`` row that keeps its counts.
* Isolation (the default): every step of every setting (count, time, CPU memory) runs in a
  fresh child process forked for it (``gfbench.measure.worker``), with the command's own
  environment, so a timed number is the same inside a sweep as measured alone, and a segfault
  in native code, the kernel's OOM killer, a hang or a poisoned CUDA context costs only that
  step (the counts of a setting whose timing crashed are kept). Without isolation counts and
  timings are taken in the command's process (for debugging; numbers then depend on what ran
  before), and the sweep moves to children the first time the CUDA context is poisoned.
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
from typing import Any

import torch

from gfbench.distributed import DistContext, barrier, broadcast_object
from gfbench.errors import GfbenchError, RunInterrupted
from gfbench.measure.memory import CPU_METHOD, MMAP_THRESHOLD, MemoryResult
from gfbench.measure.plan import SweepPlan
from gfbench.measure.quality import load_average
from gfbench.measure.roofline import fill_roofline
from gfbench.measure.setting import (
    DEVICE_METRICS,
    Setting,
    SweepOptions,
    TimedRow,
    merge_device,
    merge_memory,
    pool_timings,
    repeat_shares,
)
from gfbench.measure.timing import set_threads
from gfbench.measure.worker import CallResult, call_in_child, resolve
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
MeasureFn = Callable[[Setting, SweepOptions], ComplexityRow]


@dataclass
class SweepOutcome:
    """What a sweep left: the run's rows in plan order, and what happened to them."""

    rows: list[ComplexityRow]
    path: Path
    measured: int = 0
    skipped: int = 0  # already in the resumed run (--resume)
    # pids of the child processes started; None where the fork server ended before a call
    children: list[int | None] = field(default_factory=list)
    run_id: str = ""
    notes: list[str] = field(default_factory=list)
    ceilings: dict[str, Any] | None = None  # the run's provenance.extra["ceilings"]
    tf32_matmul: bool = False  # the run's provenance.tf32_matmul

    def counts(self) -> Counter:
        """Rows by status, over the settings this run planned."""
        return Counter(r.status for r in self.rows)


def summary_line(rows: Iterable[ComplexityRow]) -> str:
    """'7 ok, 1 oom, 2 error' over the given rows (every status named, zeros included)."""
    counts = Counter(r.status for r in rows)
    return ", ".join(f"{counts.get(status, 0)} {status}" for status in STATUSES)


# --- running one setting: each step in a fresh child, or in this process ---------------------


@dataclass(frozen=True)
class ChildFunctions:
    """The "module:function" each step of a setting runs (tests inject faults through them)."""

    count: str = "gfbench.measure.setting:count_setting"
    time: str = "gfbench.measure.setting:time_setting"
    memory: str = "gfbench.measure.setting:cpu_memory_setting"
    ceilings: str = "gfbench.measure.ceilings:measure_ceilings"


def _failed_step(setting: Setting, result: CallResult) -> ComplexityRow:
    """The device row of a step whose child died, hung or raised: status and one-line reason."""
    row = setting.row()
    row.status = row.failure = result.failure_status
    row.error = result.error
    return row


class SettingRunner:
    """Measures settings one by one: by default every step (count, time, CPU memory) of every
    setting in a fresh child process forked for it, so no number depends on what ran before
    and a crash costs one row. A count-only run counts in this process (on the meta device,
    and fvcore's trace on small CPU tensors: nothing runs on a device that could crash it).
    Without isolation the counts and timings are taken in this process (numbers then depend
    on what ran before; for debugging); CPU memory is always measured in a child of its own
    (its allocator setting would slow a timing down)."""

    def __init__(self, isolate: bool, threads: int, measure_fn: MeasureFn | None = None,
                 functions: ChildFunctions = ChildFunctions()):
        self.isolate = isolate
        self.threads = threads
        self.measure_fn = measure_fn
        self.functions = functions
        self.children: list[int | None] = []  # children's pids, in order (as SweepOutcome)

    def __call__(self, setting: Setting, options: SweepOptions) -> ComplexityRow:
        """The row of one setting."""
        if self.measure_fn is not None:
            return self.measure_fn(setting, options)
        if not options.metrics & DEVICE_METRICS:  # meta-device counts: nothing can crash
            return resolve(self.functions.count)(setting=setting, options=options)
        row = self._step(self.functions.count, setting, options)
        if row.params is None:
            return row  # a model that cannot be built is not built again on the device
        on_cuda = setting.device.startswith("cuda")
        if "latency" in options.metrics or ("memory" in options.metrics and on_cuda):
            device_row = self._timed(setting, options)
            merge_device(row, device_row)
            if device_row.failure == "poisoned":  # this process's CUDA context is gone
                self.isolate = True
        if "memory" in options.metrics and not on_cuda and row.status == "ok":
            merge_memory(row, self._memory(setting, options))
        return row

    def _step(self, function: str, setting: Setting, options: SweepOptions) -> Any:
        """One step's result: from a fresh child, or from this process without isolation; a
        child that died, hung or raised gives a row saying so."""
        if not self.isolate:
            return resolve(function)(setting=setting, options=options)
        result = call_in_child(function, {"setting": setting, "options": options},
                               threads=self.threads)
        self.children.append(result.pid)
        return result.value if result.ok else _failed_step(setting, result)

    def _timed(self, setting: Setting, options: SweepOptions) -> ComplexityRow:
        """The timing row: the repeats spread over ``options.processes`` fresh processes and
        pooled (one process, this one, without isolation); stops at the first failure."""
        shares = repeat_shares(options.repeat, options.processes if self.isolate else 1)
        parts = []
        for share in shares:
            part = self._step(self.functions.time, setting,
                              dataclasses.replace(options, repeat=share))
            parts.append(part if isinstance(part, TimedRow) else TimedRow(part))
            if parts[-1].row.status != "ok":
                break
        return pool_timings(parts, setting.batch_size)

    def _memory(self, setting: Setting, options: SweepOptions) -> MemoryResult:
        """Peak CPU memory, always in a child whose allocator was set up for it."""
        result = call_in_child(self.functions.memory, {"setting": setting, "options": options},
                               threads=self.threads, mmap_threshold=MMAP_THRESHOLD)
        self.children.append(result.pid)
        if result.ok:
            return result.value
        return MemoryResult(None, CPU_METHOD, result.failure_status, result.error)


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


def _open_run(plan: SweepPlan, ceilings: str) -> ResultsWriter:
    """Rank 0's writer: a new run, or the run --resume names (its leftover parts merged),
    with the device's ceilings recorded (function ``ceilings``) where it times anything."""
    provenance = collect_provenance("complexity", device=plan.device,
                                    load_average_at_start=load_average(), **plan.extra)
    if plan.resume is None:
        writer = new_run(plan.folder, plan.name, provenance)
    else:
        writer = resume_run(find_run(plan.folder, plan.name, plan.resume), provenance)
    try:
        _check_same_budget(writer, plan)
        _merge_parts(writer)
        _record_ceilings(writer, plan, ceilings)
    except BaseException:
        writer.close()
        raise
    return writer


def _check_same_budget(writer: ResultsWriter, plan: SweepPlan) -> None:
    """A resumed run's rows hold one --fit-memory answer (or none): resuming it with another
    budget, or with none where it had one, is refused (GfbenchError) before any work."""
    had, asked = writer.provenance.extra.get("fit_memory"), plan.extra.get("fit_memory")
    if had != asked:
        raise GfbenchError(f"--resume {writer.run_id}: the run was made with {_said(had)}, "
                           f"not {_said(asked)}; resume it as it was made, so its rows agree")


def _said(fit: dict | None) -> str:
    """A run's --fit-memory as a message names it."""
    return f"--fit-memory {fit['budget']}" if fit else "no --fit-memory"


def _record_ceilings(writer: ResultsWriter, plan: SweepPlan, function: str) -> None:
    """Measure the device's ceilings once, before any timed setting, in a fresh child with the
    timed steps' threads (never in the process that times), into provenance.extra["ceilings"].
    Count-only runs record none; a resumed run keeps the ceilings it measured first; a child
    that fails leaves the reason instead of a number (gfbench.measure.ceilings)."""
    from gfbench.measure.ceilings import measured, no_ceilings

    timed = "latency" in plan.options.metrics and plan.device != "meta"
    if not timed or measured(writer.provenance.extra.get("ceilings")):
        return
    try:
        result = call_in_child(function, {"device": plan.device},
                               threads=torch.get_num_threads())
    except KeyboardInterrupt:  # Ctrl-C before any setting: the run keeps what it holds
        raise RunInterrupted(writer.saved, writer.json_path, writer.run_id) from None
    writer.provenance.extra["ceilings"] = (result.value.as_json() if result.ok
                                           else no_ceilings(result.error))
    writer.flush()


def _open_writer(plan: SweepPlan, ceilings: str
                 ) -> tuple[ResultsWriter, dict[tuple, ComplexityRow]]:
    """This rank's writer (the run on rank 0; a part file beside it, named after the run rank
    0 claimed, on the others, with rank 0's ceilings) and the rows the run already holds."""
    dist = plan.dist
    writer, failure = None, None
    if dist.is_main:
        try:
            writer = _open_run(plan, ceilings)
        except GfbenchError as exc:
            failure = exc
    stem, message, measured = broadcast_object(
        (writer.stem, None, writer.provenance.extra.get("ceilings")) if writer is not None
        else (None, str(failure), None), dist)
    if failure is not None:
        raise failure
    if stem is None:
        raise GfbenchError(f"rank {dist.rank}: rank 0 could not open the run ({message})")
    if not dist.is_main:
        provenance = collect_provenance("complexity", device=plan.device,
                                        load_average_at_start=load_average(), **plan.extra)
        if measured is not None:
            provenance.extra["ceilings"] = measured
        writer = ResultsWriter(part_stem(stem, dist.rank), provenance)
    assert writer is not None  # rank 0 opened the run (or raised), the others a part file
    done = read_rows(stem.with_suffix(".json"))[1]
    return writer, {row_key(r): r for r in done}


def _my_settings(settings: list[Setting], dist: DistContext) -> list[Setting]:
    """This rank's share: settings rank, rank + k, rank + 2k, ..."""
    return settings[dist.rank::dist.world_size]


def run_sweep(plan: SweepPlan, on_start: Callable[[Setting], None] | None = None,
              on_row: Callable[[ComplexityRow, bool], None] | None = None,
              measure_fn: MeasureFn | None = None,
              functions: ChildFunctions = ChildFunctions()) -> SweepOutcome:
    """Measure every setting of this rank, writing each row as it finishes.

    The rows go to a new run, or with ``plan.resume`` to the run it names (RunNotFoundError,
    one line, when there is none; RunLockedError when another process is writing it).
    ``on_row(row, skipped)`` is called for each setting, ``skipped`` being True for rows
    already in a resumed run. ``measure_fn`` replaces the measurement in this process,
    ``functions`` the steps a child runs (tests inject faults with them). On rank
    0 the outcome holds the run's rows in the plan's order (rows of a resumed run that this
    plan does not name come last); the other ranks' outcome holds no rows. Ctrl-C raises
    RunInterrupted, saying how many rows the run keeps and its number.
    """
    if plan.threads:
        set_threads(plan.threads)
    writer, existing = _open_writer(plan, functions.ceilings)
    with writer:
        return _sweep(plan, writer, existing, on_start, on_row,
                      SettingRunner(plan.isolate, torch.get_num_threads(), measure_fn,
                                    functions))


def _sweep(plan: SweepPlan, writer: ResultsWriter, existing: dict[tuple, ComplexityRow],
           on_start: Callable[[Setting], None] | None,
           on_row: Callable[[ComplexityRow, bool], None] | None,
           runner: SettingRunner) -> SweepOutcome:
    """run_sweep with its writer open: measure this rank's share, then merge on rank 0."""
    outcome = SweepOutcome(rows=[], path=writer.json_path, run_id=writer.run_id,
                           ceilings=writer.provenance.extra.get("ceilings"),
                           tf32_matmul=writer.provenance.tf32_matmul)
    try:
        for setting in _my_settings(plan.settings, plan.dist):
            if setting.key() in existing:
                outcome.skipped += 1
                if on_row:
                    on_row(existing[setting.key()], True)
                continue
            if on_start:
                on_start(setting)
            row = runner(setting, plan.options)
            fill_roofline(row, outcome.ceilings, outcome.tf32_matmul)
            writer.add(row)
            outcome.measured += 1
            if on_row:
                on_row(row, False)
    except KeyboardInterrupt:
        raise RunInterrupted(writer.saved, writer.json_path, writer.run_id,
                             plan.dist.is_main) from None
    outcome.children = runner.children
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
    """What the table measured, in one line: device, batch, precision, mode (and the deploy
    form when --reparam fused the models)."""
    form = ", deploy form (--reparam)" if any(s.reparam for s in plan.settings) else ""
    if plan.device == "meta":
        return f"gfbench complexity: counted on the meta device{form}"
    where = (torch.cuda.get_device_name(torch.device(plan.device))
             if plan.device.startswith("cuda") else f"cpu ({torch.get_num_threads()} threads)")
    batches = sorted({s.batch_size for s in plan.settings})
    first = plan.settings[0] if plan.settings else None
    batch = "batch " + ",".join(map(str, batches))
    setting = f", {batch}, {first.precision}, {first.mode}" if first else ""
    return f"gfbench complexity: {where}{setting}{form}"

