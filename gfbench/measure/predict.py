"""Peak memory of one step predicted without the device: the step that gfbench measures
(``gfbench.measure.timing.make_step``) run on the meta device, every tensor storage it creates
tracked from its allocation to its release.

The prediction has the meaning of the measured ``peak_mem_bytes`` (gfbench.measure.memory):
the most bytes held during one step above what is resident before it. Resident is what the
measured protocol keeps between its steps: parameters, buffers and the input. Gradients and
optimizer state are released before the measured step, so they belong to the step's peak (the
optimizer creates its state on the step's update, as on a first training step); they are also
reported apart (``by_category``). ``steady_total`` is the peak of a training loop's later
steps, where the optimizer state stays resident from the previous update: what a budget must
hold (``--fit-memory``).

How: a ``TorchDispatchMode`` sees every aten op the step runs, forward, backward and update
alike (the autograd engine runs meta ops on the calling thread). Each output storage on the
traced device that no argument of the op already holds is a new allocation, counted in the
allocator's sizes (``allocation_bytes``) until a weak-reference finaliser on the storage says
it was freed; the live total's maximum is the peak. Nothing is allocated: a DeiT-S training
step at batch 64 is traced in under a second on a 2-core CPU (docs/memory.md).

Allocator models (``device_kind``):

* ``cuda``: the caching allocator rounds every request up to a multiple of 512 bytes, and
  ``max_memory_allocated`` counts the rounded sizes (PyTorch, c10/cuda/CUDACachingAllocator.cpp,
  ``kMinBlockSize`` and ``round_size``). The optimizer runs its multi-tensor (``foreach``)
  update, torch's default for CUDA tensors, whose temporaries are part of the peak.
* ``cpu``: no rounding (the measured resident set is page-granular; see the benchmark).

What the prediction cannot see: workspaces libraries allocate beside torch's tensors (cuDNN
convolution workspaces come from the caching allocator and raise a measured CUDA peak; cuBLAS
and cuFFT keep theirs from the warm-up step on, so they are resident when measured), oneDNN
weight reorders and thread stacks in a CPU resident set, and the allocator's fragmentation
(``memory_reserved`` can exceed the allocated peak). ``scaled_dot_product_attention`` is traced
as a fused kernel (output and log-sum-exp, no N x N scores), as the CPU (flash attention for
CPU) and CUDA (flash or memory-efficient) backends run it; on meta torch would otherwise take
its math fallback, which holds the scores. Precisions other than fp32 are not predicted yet
(autocast has no meta device).
"""

from __future__ import annotations

import dataclasses
import math
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from gfbench.errors import GfbenchError

if TYPE_CHECKING:
    from gfbench.measure.plan import SweepPlan
    from gfbench.measure.setting import Setting
    from gfbench.measure.timing import ModelStep
    from gfbench.results import ComplexityRow

CUDA_BLOCK = 512  # bytes: the caching allocator's smallest block and rounding unit
DEVICE_KINDS = ("cuda", "cpu")
PREDICT_METHOD = ("meta-device trace of the measured step: storages live between their "
                  "allocation and release, {kind} allocator sizes")


def allocation_bytes(nbytes: int, device_kind: str) -> int:
    """Bytes one storage of ``nbytes`` takes on the device's allocator (what its peak counts)."""
    if device_kind == "cuda":
        return CUDA_BLOCK * math.ceil(nbytes / CUDA_BLOCK)
    return nbytes


@dataclass(frozen=True)
class MemoryPrediction:
    """Predicted bytes of one step: resident before it, the peak above that, and by category."""

    resident: int  # parameters, buffers and input (kept between the measured steps)
    peak_above_resident: int  # the measured peak_mem_bytes' meaning
    by_category: dict[str, int]  # live at the peak (resident categories included)
    steady_total: int  # training loops' later steps: optimizer state resident too
    device_kind: str
    trace_s: float = 0.0  # seconds the trace took
    method: str = ""

    @property
    def peak_total(self) -> int:
        """Resident plus the step's peak: the device memory the measured step needs."""
        return self.resident + self.peak_above_resident

    @property
    def need_total(self) -> int:
        """What a budget must hold: the larger of the first step and the steady state."""
        return max(self.peak_total, self.steady_total)


def _storage(tensor: torch.Tensor) -> torch.UntypedStorage:
    """The storage under a tensor (views share it)."""
    return tensor.untyped_storage()


@dataclass
class LiveBytes(TorchDispatchMode):
    """Tracks the bytes of storages the ops under it allocate on ``device``, live and at peak."""

    device: str = "meta"
    device_kind: str = "cuda"
    live: dict[int, tuple[int, int]] = field(default_factory=dict)  # key -> (uid, bytes)
    current: int = 0
    peak: int = 0
    at_peak: dict[int, int] = field(default_factory=dict)  # uid -> bytes live at the peak
    _rising: bool = False
    _uids: int = 0

    def __post_init__(self) -> None:
        super().__init__()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        out = func(*args, **(kwargs or {}))
        inputs = {_storage(t)._cdata for t in tree_flatten((args, kwargs))[0]
                  if isinstance(t, torch.Tensor)}
        for tensor in tree_flatten(out)[0]:
            if isinstance(tensor, torch.Tensor) and tensor.device.type == self.device:
                storage = _storage(tensor)
                if storage._cdata not in inputs and storage._cdata not in self.live:
                    self._allocate(storage)
        return out

    def _allocate(self, storage: torch.UntypedStorage) -> None:
        """Count a new storage until its finaliser runs."""
        nbytes = allocation_bytes(storage.nbytes(), self.device_kind)
        self._uids += 1
        self.live[storage._cdata] = (self._uids, nbytes)
        weakref.finalize(storage, self._free, storage._cdata)
        self.current += nbytes
        if self.current > self.peak:
            self.peak, self._rising = self.current, True

    def _free(self, key: int) -> None:
        """A storage was released; the first release after a new peak snapshots what was live."""
        if self._rising:
            self.snapshot()
        _, nbytes = self.live.pop(key)
        self.current -= nbytes

    def snapshot(self) -> None:
        """Remember what is live at the peak just reached (by uid: keys can be reused)."""
        self.at_peak, self._rising = dict(self.live.values()), False

    def uids(self, tensors: Iterable[torch.Tensor]) -> set[int]:
        """The uids of the tracked storages under these tensors."""
        keys = {_storage(t)._cdata for t in tensors}
        return {self.live[k][0] for k in keys if k in self.live}


class FusedAttention(TorchFunctionMode):
    """Traces scaled_dot_product_attention as the fused kernel the device runs (no N x N
    scores; output and log-sum-exp only) instead of the math fallback torch takes on meta."""

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        if func is torch.nn.functional.scaled_dot_product_attention and len(args) == 3 and \
                kwargs.get("attn_mask") is None and not kwargs.get("dropout_p"):
            from gfbench.measure.flops import fused_attention

            out = fused_attention(args, kwargs)
            if out is not None:
                return out
        return func(*args, **kwargs)


def unique_bytes(tensors: Iterable[torch.Tensor], device_kind: str) -> int:
    """Allocator bytes of the distinct storages under these tensors."""
    sizes = {_storage(t)._cdata: _storage(t).nbytes() for t in tensors}
    return sum(allocation_bytes(n, device_kind) for n in sizes.values())


def _state_tensors(optimizer: torch.optim.Optimizer | None) -> list[torch.Tensor]:
    """The optimizer state's tensors on the traced device (AdamW keeps its step on the CPU)."""
    if optimizer is None:
        return []
    return [v for state in optimizer.state.values() for v in state.values()
            if isinstance(v, torch.Tensor) and v.is_meta]


def _traced(step: Callable[[], None], device_kind: str) -> LiveBytes:
    """Run one step under the tracker; the snapshot is taken at the end if the peak was last."""
    tracker = LiveBytes(device_kind=device_kind)
    with FusedAttention(), tracker:
        step()
    if tracker._rising:
        tracker.snapshot()
    return tracker


def _categories(tracker: LiveBytes, step: ModelStep, resident: dict[str, int]
                ) -> dict[str, int]:
    """Bytes live at the peak by category: gradients and optimizer state as found after the
    step, the rest of the step's allocations activations and temporaries."""
    params = list(step.model.parameters())
    grads = tracker.uids(p.grad for p in params if p.grad is not None)
    state = tracker.uids(_state_tensors(step.optimizer))
    split = {"gradients": 0, "optimizer_state": 0, "activations": 0}
    for uid, nbytes in tracker.at_peak.items():
        split["gradients" if uid in grads else "optimizer_state" if uid in state
              else "activations"] += nbytes
    return {**resident, **split}


def predict_step(step: ModelStep, device_kind: str = "cuda") -> MemoryPrediction:
    """Predict the peak of a meta-device ModelStep (make_step on a meta model and input).

    The step is traced as measured (gradients and optimizer state released before it); a
    training step with an optimizer is traced once more with the state kept (steady state).
    """
    if device_kind not in DEVICE_KINDS:
        raise GfbenchError(f"memory prediction: device kind {device_kind!r} is not one of "
                           f"{', '.join(DEVICE_KINDS)}")
    if step.precision != "fp32":
        raise GfbenchError(f"memory prediction: precision {step.precision} is not predicted "
                           "yet (autocast has no meta device); use fp32")
    start = time.perf_counter()
    if step.optimizer is not None and device_kind == "cuda":  # torch's default for CUDA
        for group in step.optimizer.param_groups:
            group["foreach"] = True
    resident = {"parameters": unique_bytes(step.model.parameters(), device_kind),
                "buffers": unique_bytes(step.model.buffers(), device_kind),
                "input": unique_bytes([step.example], device_kind)}
    step.release()
    first = _traced(step, device_kind)
    by_category = _categories(first, step, resident)
    steady = sum(resident.values()) + first.peak
    if step.optimizer is not None:
        kept = unique_bytes(_state_tensors(step.optimizer), device_kind)
        step.model.zero_grad(set_to_none=True)
        steady = sum(resident.values()) + kept + _traced(step, device_kind).peak
    step.release()
    return MemoryPrediction(sum(resident.values()), first.peak, by_category, steady,
                            device_kind, time.perf_counter() - start,
                            PREDICT_METHOD.format(kind=device_kind))


def predict_module(model: nn.Module, example: torch.Tensor, mode: str = "infer",
                   optimizer: str | None = None, device_kind: str = "cuda",
                   precision: str = "fp32") -> MemoryPrediction:
    """Predict the measured step of a meta module on a meta input (gfbench's step protocol)."""
    from gfbench.measure.timing import make_step

    return predict_step(make_step(model, example, precision, mode, optimizer), device_kind)


def kind_of(device: str) -> str:
    """The allocator a setting's prediction models: its own device's, and CUDA's for a
    count-only (meta) run, which asks what a GPU will need."""
    return "cpu" if device == "cpu" else "cuda"


def predict_setting(setting: Setting, batch_size: int | None = None,
                    device_kind: str | None = None) -> MemoryPrediction:
    """Predict a sweep setting's measured step (built on meta as counting builds it), at
    ``batch_size`` (default the setting's) for ``device_kind`` (default ``kind_of``)."""
    from gfbench.measure.setting import builder, input_shape
    from gfbench.models.meta import on_meta

    with on_meta():
        model = builder(setting)()
        example = torch.empty(input_shape(setting, batch_size or setting.batch_size))
    return predict_module(model, example, setting.mode, setting.optimizer or None,
                          device_kind or kind_of(setting.device), setting.precision)


# --- the largest batch that fits a budget ---------------------------------------------------

MAX_BATCH = 1 << 20  # the search's ceiling: a setting this small fits any batch worth asking


def largest_batch(fits: Callable[[int], bool], guess: int = 1, limit: int = MAX_BATCH) -> int:
    """The largest batch in 1..limit for which ``fits`` holds (0 when none), exact for a
    monotone ``fits`` (true up to some batch, false above it): gallops from ``guess`` in
    doubling steps, then bisects, so a good guess costs a few probes."""
    guess = min(max(1, guess), limit)
    if fits(guess):
        low, step = guess, 1
        while low + step <= limit and fits(low + step):
            low, step = low + step, step * 2
        high = min(low + step, limit + 1)  # does not fit, or lies beyond the limit
    else:
        high, step = guess, 1
        while high - step >= 1 and not fits(high - step):
            high, step = high - step, step * 2
        low = max(high - step, 0)  # fits, or 0: nothing fits
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return low


@dataclass
class BatchFit:
    """One setting against a memory budget: the largest batch whose predicted need fits it."""

    name: str
    size: str  # "224x224" (models: pixels; mixers: token grid)
    batch_size: int  # the setting's batch
    need_bytes: int  # predicted need at that batch (MemoryPrediction.need_total)
    fits: bool  # need_bytes <= the budget
    max_batch: int  # largest batch that fits (0: not even one)
    pred_peak_at_max: float | None = None  # peak above resident at max_batch (predicted)
    measured_peak_at_max: float | None = None  # the same, measured on the device (checked)
    check: str = ""  # how the check went: "" (not asked), "ok" or the failure's reason
    error: str = ""  # the prediction failed (one line): nothing else in the row holds


def fit_setting(setting: Setting, budget_bytes: int) -> BatchFit:
    """The setting's largest fitting batch: two probes (batch 1 and 2) estimate the affine
    need, then the exact search starts from the estimate."""
    needs: dict[int, int] = {}

    def need(batch: int) -> int:
        if batch not in needs:
            needs[batch] = predict_setting(setting, batch_size=batch).need_total
        return needs[batch]

    slope = max(need(2) - need(1), 1)
    guess = max(1, (budget_bytes - need(1)) // slope + 1)
    best = largest_batch(lambda b: need(b) <= budget_bytes, guess)
    at_batch = need(setting.batch_size)
    peak_at_max = (float(predict_setting(setting, batch_size=best).peak_above_resident)
                   if best else None)
    return BatchFit(setting.name, f"{setting.res_h}x{setting.res_w}", setting.batch_size,
                    at_batch, at_batch <= budget_bytes, best, peak_at_max)


def _pixels(size: str) -> int:
    """'224x320' -> 71680 (the order of sizes)."""
    height, width = size.split("x")
    return int(height) * int(width)


@dataclass
class MemoryFit:
    """--fit-memory: every setting against one budget, as the run's rows record it (the
    batches it names were predicted, not run; ``memory_fit``)."""

    budget: str  # as the user gave it, a device kind's nominal capacity said so
    budget_bytes: int
    fits: list[BatchFit]

    def smallest_unfit(self) -> dict[str, str]:
        """Per name, the smallest size asked for that does not fit at its batch."""
        first: dict[str, str] = {}
        for fit in sorted(self.fits, key=lambda f: _pixels(f.size)):
            if not fit.fits and fit.name not in first:
                first[fit.name] = fit.size
        return first

    def as_json(self) -> dict:
        """What --json prints under "fit_memory"."""
        return {"budget": self.budget, "budget_bytes": self.budget_bytes,
                "fits": [dataclasses.asdict(f) for f in self.fits],
                "smallest_unfit": self.smallest_unfit()}


FIT_FAILED = "memory fit failed: "  # how a count step's note names a failed search


def fit_from_row(row: ComplexityRow) -> BatchFit:
    """The fit the count step recorded in a row, or one saying in one line why there is none
    (the search failed, or the count step failed before it)."""
    height, width = row.sides()
    failed = [n[len(FIT_FAILED):] for n in row.error.split("; ") if n.startswith(FIT_FAILED)]
    if row.fit_max_batch is None or row.fit_need_bytes is None or row.fit_budget_bytes is None:
        return BatchFit(row.name, f"{height}x{width}", row.batch_size, 0, False, 0,
                        error=(failed or [row.error or "no fit recorded in the row"])[0])
    return BatchFit(row.name, f"{height}x{width}", row.batch_size, int(row.fit_need_bytes),
                    row.fit_need_bytes <= row.fit_budget_bytes, row.fit_max_batch,
                    row.fit_peak_at_max_bytes)


def memory_fit(rows: Iterable[ComplexityRow], budget_bytes: int, budget: str) -> MemoryFit:
    """--fit-memory's answer read from the run's rows (one per name and size, the first of a
    batch sweep's), so the terminal and --json say what the results file holds."""
    seen: dict[tuple, BatchFit] = {}
    for row in rows:
        seen.setdefault((row.name, *row.sides()), fit_from_row(row))
    return MemoryFit(budget, budget_bytes, list(seen.values()))


def check_on_device(fit: MemoryFit, plan: SweepPlan) -> None:
    """Measure each found batch on the plan's device as the sweep measures memory (a fresh
    child per setting) and record it beside the prediction."""
    from gfbench.measure.sweep import SettingRunner

    runner = SettingRunner(True, torch.get_num_threads())
    options = dataclasses.replace(plan.options, metrics=frozenset({"memory"}), predict=False)
    settings = {(s.name, f"{s.res_h}x{s.res_w}"): s for s in plan.settings}
    for row in fit.fits:
        if row.max_batch < 1 or row.error:
            continue
        setting = dataclasses.replace(settings[(row.name, row.size)], batch_size=row.max_batch)
        measured = runner(setting, options)
        row.measured_peak_at_max = measured.peak_mem_bytes
        row.check = "ok" if measured.status == "ok" else measured.status + ": " + measured.error
