"""`gfbench complexity` as one library call: plan the request, run the sweep (alone or as one
torchrun rank), fit the exponents and collect the warnings, then hand back everything a
renderer needs. The CLI only parses, calls run_complexity and renders."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from gfbench.defaults import FLOP_CONVENTION
from gfbench.distributed import init_distributed, shutdown_distributed
from gfbench.measure.crossover import Crossover, crossovers
from gfbench.measure.plan import ComplexityRequest, SweepPlan, plan_complexity
from gfbench.measure.predict import MemoryFit
from gfbench.measure.quality import available_cores, load_average, timing_warnings
from gfbench.measure.roofline import below_roofline_warning, ceilings_warning
from gfbench.measure.scaling import Exponent, scaling_exponents
from gfbench.measure.setting import Setting
from gfbench.measure.sweep import complexity_title, planned_rows, run_sweep, summary_line
from gfbench.results import ComplexityRow


class SweepProgress(Protocol):
    """What run_complexity tells a progress display (the CLI's rich bar)."""

    def begin(self, total: int, batch_sizes: Sequence[int]) -> None:
        """This process will measure ``total`` settings; the sweep's batch sizes."""

    def start(self, setting: Setting) -> None:
        """A setting starts."""

    def finish(self, row: ComplexityRow, skipped: bool) -> None:
        """A setting's row is written (``skipped``: it was already in the resumed run)."""


@dataclass
class ComplexityReport:
    """A finished sweep: the rows this invocation planned, their fits, warnings and files."""

    rows: list[ComplexityRow]
    exponents: list[Exponent]
    warnings: list[str]
    files: list[Path]
    run_id: str
    title: str
    skipped: int = 0  # settings already in the resumed run
    is_main: bool = True  # under torchrun only rank 0 reports
    status_counts: dict[str, int] = field(default_factory=dict)
    crossovers: list[Crossover] = field(default_factory=list)  # global filter against rivals
    ceilings: dict[str, Any] | None = None  # the run's measured ceilings (or why none)
    tf32_matmul: bool = False  # fp32 matmuls on CUDA ran as TF32 (held to the tf32 ceiling)
    memory_fit: MemoryFit | None = None  # --fit-memory: the largest batches that fit

    @property
    def failed(self) -> bool:
        """Any row is an error (the command's exit code is then 1)."""
        return any(r.status == "error" for r in self.rows)

    @property
    def summary(self) -> str:
        """'7 ok, 1 oom, 2 error'."""
        return summary_line(self.rows)

    def as_json(self) -> dict[str, Any]:
        """What --json prints: files, run, convention, rows, exponents, crossovers, warnings
        and the ceilings the roofline fields were computed against."""
        return {"files": [str(p) for p in self.files], "run_id": self.run_id,
                "flop_convention": FLOP_CONVENTION, "summary": self.status_counts,
                "rows": [dataclasses.asdict(r) for r in self.rows],
                "exponents": [dataclasses.asdict(e) for e in self.exponents],
                "crossovers": [dataclasses.asdict(c) for c in self.crossovers],
                "warnings": self.warnings, "ceilings": self.ceilings,
                **({"fit_memory": self.memory_fit.as_json()} if self.memory_fit else {})}


def run_complexity(request: ComplexityRequest, progress: SweepProgress | None = None
                   ) -> ComplexityReport:
    """Validate the request (GfbenchError, one line), measure every setting into a new run (or
    the one --resume names), fit the exponents and find the crossovers. Ctrl-C raises
    RunInterrupted; under torchrun the ranks share the settings and rank 0's report holds
    the run."""
    dist = init_distributed("cpu")  # gloo: the ranks only wait for each other
    progress = progress if dist.is_main else None  # rank 0 speaks for the job
    try:
        plan = plan_complexity(request, dist=dist)
        load_at_start = load_average()
        if progress is not None:
            progress.begin(len(plan.settings[dist.rank::dist.world_size]),
                           sorted({s.batch_size for s in plan.settings}))
        outcome = run_sweep(plan, on_start=progress.start if progress else None,
                            on_row=progress.finish if progress else None)
    finally:
        shutdown_distributed()
    rows = planned_rows(outcome, plan)
    files = [outcome.path, outcome.path.with_suffix(".csv")]
    if not dist.is_main:
        return ComplexityReport(rows, [], [], files, outcome.run_id, "", is_main=False)
    warnings = timing_warnings(rows, [load_at_start, load_average()], available_cores(),
                               dist.local_world_size)
    warnings += [w for w in [ceilings_warning(outcome.ceilings, rows),
                             below_roofline_warning(rows)] if w]
    return ComplexityReport(rows, scaling_exponents(rows), warnings, files, outcome.run_id,
                            complexity_title(plan), outcome.skipped, True,
                            dict(outcome.counts()), crossovers(rows), outcome.ceilings,
                            outcome.tf32_matmul, _memory_fit(request, plan, rows))


def _memory_fit(request: ComplexityRequest, plan: SweepPlan, rows: list[ComplexityRow]
                ) -> MemoryFit | None:
    """--fit-memory: each setting's largest fitting batch as its row records it (searched in
    the count step); checked by measuring it where the run measures on a device."""
    if request.fit_memory is None:
        return None
    from gfbench.measure.predict import check_on_device, memory_fit

    budget = request.fit_memory
    fit = memory_fit(rows, budget.bytes, budget.label)
    if plan.device != "meta":
        check_on_device(fit, plan)
    return fit
