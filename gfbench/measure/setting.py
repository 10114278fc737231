"""One setting measured: counted on the meta device, then (when asked) timed and its memory
measured on the device. Running out of memory is a result (status "oom", counts kept), any
other failure a row with status "error" and a one-line reason.

Three separate steps, each taking and returning plain (picklable) data, so the sweep can run
each in a fresh child process of its own (``gfbench.measure.worker``): ``count_setting``
(FLOPs, parameters, tokens), ``time_setting`` (latency, and on CUDA the allocator's peak) and
``cpu_memory_setting`` (the peak resident set, in a child whose allocator is set up for it).
No step inherits anything from another, so a timed number is the same inside a sweep as alone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from gfbench.errors import GfbenchError, first_line
from gfbench.layers import build_mixer
from gfbench.measure.compile import WatchedCompile
from gfbench.measure.faults import classify_on_device
from gfbench.measure.flops import FlopCount, count_flops, count_params
from gfbench.measure.memory import (
    CUDA_METHOD,
    MemoryResult,
    cuda_peak_bytes,
    is_out_of_memory,
    measure_step_peak,
)
from gfbench.measure.quality import available_cores, free_cores, load_average
from gfbench.measure.timing import make_step, summarize, time_step
from gfbench.results import ComplexityRow, row_key

METRICS = ("flops", "params", "latency", "memory")
DEVICE_METRICS = frozenset({"latency", "memory"})
DEFAULT_FVCORE_MAX_FLOPS = 20e9  # cross-check with fvcore (real tensors) up to this size
DISAGREEMENT = 0.01  # engines further apart than this: fvcore left ops out, keep torch's



@dataclass(frozen=True)
class Setting:
    """One thing to measure: a model at a resolution, or a bare mixer on a token grid."""

    subject: str  # "model" | "mixer"
    name: str
    res_h: int  # image side for models, token-grid side for mixers
    res_w: int
    batch_size: int
    precision: str
    mode: str
    device: str  # "cpu", "cuda:0", or "meta" when nothing runs on a device
    dim: int | None = None  # mixers only
    impl: str = "reference"  # the global filter that runs: "reference" or "fast"
    num_classes: int | None = None  # models only: None keeps the model's own default
    optimizer: str = ""  # train mode: the optimizer whose update is part of the step
    reparam: bool = False  # models only: fused to the deploy form before measuring

    def row(self) -> ComplexityRow:
        """An empty row of this setting (its key is the resume key): a model's sides are its
        input pixels (res_h/res_w), a mixer's its token grid (grid_h/grid_w)."""
        mixer = self.subject == "mixer"
        return ComplexityRow(subject=self.subject, name=self.name,
                             res_h=None if mixer else self.res_h,
                             res_w=None if mixer else self.res_w,
                             grid_h=self.res_h if mixer else None,
                             grid_w=self.res_w if mixer else None, tokens=None,
                             batch_size=self.batch_size, precision=self.precision,
                             mode=self.mode, device=self.device, dim=self.dim, impl=self.impl,
                             num_classes=self.num_classes, optimizer=self.optimizer,
                             reparam=self.reparam)

    def key(self) -> tuple:
        """The results-file key of this setting."""
        return row_key(self.row())

    @property
    def label(self) -> str:
        """'deit-s 224x224' (progress lines and messages)."""
        return f"{self.name} {self.res_h}x{self.res_w}"

    @property
    def mixer_dim(self) -> int:
        """A mixer's channel count (plan_complexity gives every mixer setting one)."""
        if self.dim is None:
            raise ValueError(f"mixer setting {self.label} has no dim")
        return self.dim


@dataclass(frozen=True)
class SweepOptions:
    """How to measure: which metrics, and the timing protocol."""

    metrics: frozenset[str] = frozenset(METRICS)
    warmup: int = 10
    repeat: int = 50
    compile: bool = False
    channels_last: bool = False
    fvcore_max_flops: float = DEFAULT_FVCORE_MAX_FLOPS
    optimizer: str = ""  # "", "sgd" or "adamw" (train mode only)
    warmup_s: float | None = None  # None: timing.DEFAULT_WARMUP_S of the device type
    flush_l2: bool = False
    processes: int = 1  # fresh processes the timed calls are spread over (isolated sweeps)
    predict: bool = False  # predicted peak memory in the count step (gfbench.measure.predict)
    fit_budget_bytes: int | None = None  # --fit-memory: the largest fitting batch, per row
    fit_budget: str = ""  # that budget as the user gave it (options.MemoryBudget.label)

    def to_json(self) -> dict:
        """The options as JSON (for a worker child)."""
        return {**dataclasses.asdict(self), "metrics": sorted(self.metrics)}

    @classmethod
    def from_json(cls, data: dict) -> SweepOptions:
        """Options sent by ``to_json``."""
        return cls(**{**data, "metrics": frozenset(data["metrics"])})


# --- building what is measured ---------------------------------------------------------------


def input_shape(setting: Setting, batch_size: int) -> tuple[int, ...]:
    """(B, 3, H, W) images for a model, (B, H, W, D) tokens for a mixer."""
    if setting.subject == "model":
        return (batch_size, 3, setting.res_h, setting.res_w)
    return (batch_size, setting.res_h, setting.res_w, setting.mixer_dim)


def builder(setting: Setting) -> Callable[[], nn.Module]:
    """A zero-argument function that builds the setting's module (on the current device), in
    its deploy form when the setting asks for it."""
    if setting.subject == "model":
        from gfbench.models import create_model
        from gfbench.models.meta import reparameterise

        extra = {} if setting.num_classes is None else {"num_classes": setting.num_classes}

        def build() -> nn.Module:
            model = create_model(setting.name, img_size=(setting.res_h, setting.res_w),
                                 impl=setting.impl, **extra)
            return reparameterise(model) if setting.reparam else model

        return build
    return lambda: build_mixer(setting.name, setting.mixer_dim, setting.res_h, setting.res_w,
                               impl=setting.impl)


def build_step(subject: str, name: str, res_h: int, res_w: int, batch_size: int,
               precision: str, mode: str, device: str, dim: int | None = None,
               impl: str = "reference", num_classes: int | None = None, compile: bool = False,
               channels_last: bool = False, optimizer: str = "", reparam: bool = False):
    """Build the module and its input on the device and return one measurable step.

    Module-level with JSON-friendly arguments so that a child process can call it too.
    """
    setting = Setting(subject, name, res_h, res_w, batch_size, precision, mode, device, dim,
                      impl, num_classes, reparam=reparam)
    with torch.device(device):
        model = builder(setting)()
    example = torch.randn(*input_shape(setting, batch_size), device=device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        example = example.contiguous(memory_format=torch.channels_last)
    if compile:
        model = WatchedCompile(model)  # a reset compiler per setting; reports what ran
    return make_step(model, example, precision, mode, optimizer or None)


# --- measuring one setting -------------------------------------------------------------------


def note(row: ComplexityRow, message: str) -> None:
    """Add one message to the row's error column (messages are joined by '; ')."""
    row.error = "; ".join(filter(None, [row.error, message]))


def _tokens(grid: tuple[int, int] | None) -> int | None:
    """h*w of a token grid; None for a network without one."""
    return None if grid is None else grid[0] * grid[1]


def _cross_check(row: ComplexityRow, fvcore_flops: float) -> None:
    """Take fvcore's forward count where it agrees with the torch engine's forward within 1%
    (or where that one failed); otherwise keep the torch engine's, which applies every rule,
    and say how far fvcore is off (it has no handle for some ops, e.g. aten::lstm). fvcore
    traces the forward only: a training row adds the torch engine's backward to it."""
    torch_forward = row.fwd_flops
    if torch_forward is not None and \
            abs(fvcore_flops - torch_forward) > DISAGREEMENT * torch_forward:
        forward = " for the forward" if row.mode == "train" else ""
        note(row, f"fvcore counts {fvcore_flops:.4g} ({fvcore_flops / torch_forward - 1:+.1%})"
                  f"{forward}: kept the torch engine's count")
        return
    row.fwd_flops = fvcore_flops
    if row.flops_torch is not None and torch_forward is not None:  # + its backward (train)
        row.flops = fvcore_flops + row.flops_torch - torch_forward
    elif row.mode != "train":
        row.flops = fvcore_flops
    else:  # a training count without the torch engine has no backward pass: flops unknown
        return
    row.flops_engine = "fvcore"


def _count(setting: Setting, options: SweepOptions, row: ComplexityRow) -> None:
    """FLOPs (both engines where fvcore fits), bytes moved (the torch engine's trace, see
    ``bytes_per_image``), parameters and tokens, from the meta device (built there without
    initialising weights; fvcore traces zeroed CPU storage, see gfbench.models.meta).

    The token grid is recorded during the torch engine's forward (no forward of its own);
    without a FLOP count it is read on its own. A FLOP count that no engine could make is an
    error row. In train mode ``flops`` adds the backward pass (torch engine only) to
    ``fwd_flops``; a bare mixer's input needs a gradient there, as a layer inside a network
    (a model's images do not: its first layer computes no input gradient).
    """
    from gfbench.models import record_token_grid, token_grid
    from gfbench.models.meta import on_meta

    build = builder(setting)
    with on_meta():
        meta_model = build()
    row.params = count_params(meta_model)
    grid_seen = None
    shape = input_shape(setting, 1)
    if "flops" in options.metrics:
        try:
            with record_token_grid(meta_model) as grid_seen:
                counted = count_flops(meta_model, shape, engine="torch",
                                      train=setting.mode == "train",
                                      input_grad=setting.subject == "mixer")
            row.flops = row.flops_torch = float(counted.total)
            row.fwd_flops = float(counted.forward_total)
            row.flops_engine = "torch-meta"
            row.uncounted_ops = counted.uncounted_summary()
        except Exception as exc:  # one engine's failure must not lose the row
            note(row, f"torch counter failed: {first_line(exc)}")
        else:
            _set_bytes(setting, meta_model, counted, row)
    if setting.subject == "mixer":
        row.tokens = setting.res_h * setting.res_w
    elif grid_seen is not None and grid_seen.grid is not None:
        row.tokens = _tokens(grid_seen.grid)
    else:
        row.tokens = _tokens(token_grid(meta_model, shape))
    del meta_model
    if options.predict:
        _predict(setting, row)
    if options.fit_budget_bytes is not None:
        _fit(setting, options.fit_budget_bytes, options.fit_budget, row)
    if "flops" not in options.metrics:
        return
    if row.fwd_flops is None or row.fwd_flops <= options.fvcore_max_flops:
        try:
            _cross_check(row, float(count_flops(build, shape, engine="fvcore",
                                                train=setting.mode == "train").total))
        except Exception as exc:
            note(row, "fvcore cross-check ran out of memory" if is_out_of_memory(exc)
                 else f"fvcore failed: {first_line(exc)}")
    if row.flops is None:
        row.status = "error"


def bytes_per_image(setting: Setting, model: nn.Module, batch1: FlopCount) -> float | None:
    """Bytes one pass moves at the setting's batch, per image (in train mode forward +
    backward, like ``flops``; weights are read once
    per batch, so it usually falls with the batch): the batch-1 trace, or a trace at the batch
    (on meta, free; it also holds the copies only a batch needs). fp32 only: autocast does
    not reach meta tensors, so None otherwise."""
    if setting.precision != "fp32":
        return None
    counted = batch1 if setting.batch_size == 1 else count_flops(
        model, input_shape(setting, setting.batch_size), engine="torch",
        train=setting.mode == "train", input_grad=setting.subject == "mixer")
    total = counted.bytes_total
    return None if total is None else total / setting.batch_size


def _set_bytes(setting: Setting, model: nn.Module, batch1: FlopCount, row: ComplexityRow
               ) -> None:
    """The row's bytes per image; a trace that fails leaves them empty and says why."""
    try:
        row.bytes = bytes_per_image(setting, model, batch1)
    except Exception as exc:
        note(row, f"bytes at batch {setting.batch_size} not counted: {first_line(exc)}")


def _predict(setting: Setting, row: ComplexityRow) -> None:
    """The row's predicted peak memory (meta-device trace); a step that cannot be traced is
    a note, and the counts stay."""
    from gfbench.measure.predict import predict_setting

    try:
        predicted = predict_setting(setting)
        row.pred_mem_bytes = float(predicted.peak_above_resident)
        row.pred_need_bytes = float(predicted.need_total)
    except Exception as exc:  # a prediction is never worth the row
        note(row, f"memory prediction failed: {first_line(exc, with_type=False)}")


def _fit(setting: Setting, budget_bytes: int, budget: str, row: ComplexityRow) -> None:
    """--fit-memory's search recorded in the row, so the results file holds the answer; a
    search that fails leaves the batch empty and a note, and the counts stay."""
    from gfbench.measure.predict import FIT_FAILED, fit_setting

    row.fit_budget, row.fit_budget_bytes = budget, budget_bytes
    try:
        fit = fit_setting(setting, budget_bytes)
    except Exception as exc:  # a fit is never worth the row
        note(row, FIT_FAILED + first_line(exc, with_type=False))
        return
    row.fit_max_batch, row.fit_need_bytes = fit.max_batch, float(fit.need_bytes)
    row.fit_peak_at_max_bytes = fit.pred_peak_at_max


def _fail(row: ComplexityRow, exc: Exception, device: str) -> None:
    """Record a failure in the row: its class (oom, poisoned, error), status and reason."""
    if isinstance(exc, GfbenchError):  # e.g. a resolution this model cannot take
        row.status = "error"
        note(row, str(exc))
        return
    row.failure = classify_on_device(exc, device)
    row.status = "oom" if row.failure == "oom" else "error"
    note(row, first_line(exc))


@contextlib.contextmanager
def counting_threads() -> Iterator[int]:
    """Torch's CPU threads lowered, while counting, to the cores other work leaves free (one at
    least): fvcore traces a single image, and oversubscribed threads spin (on a 2-core machine
    at load 4, two threads traced DeiT-S four times slower than one). No count depends on
    the threads; the previous number is restored afterwards."""
    before = torch.get_num_threads()
    load = load_average()
    free = free_cores(load[0], available_cores()) if load else before
    torch.set_num_threads(max(1, min(before, free)))
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def count_setting(setting: Setting, options: SweepOptions) -> ComplexityRow:
    """The setting's row with its counts (meta device: nothing allocated). A model that cannot
    be built has no ``params`` and an error; nothing is measured on the device for it then."""
    row = setting.row()
    try:
        with counting_threads():
            _count(setting, options, row)
    except Exception as exc:  # recorded, and the sweep goes on
        _fail(row, exc, "meta")
    return row


def _step_kwargs(setting: Setting, options: SweepOptions) -> dict:
    """build_step's arguments for a setting."""
    return {**dataclasses.asdict(setting), "compile": options.compile,
            "channels_last": options.channels_last, "optimizer": options.optimizer}


def release(device: str) -> None:
    """Free what a failed or finished measurement left behind."""
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


# The row fields the device steps fill in (everything else comes from counting).
DEVICE_FIELDS = ("latency_ms_p10", "latency_ms_p50", "latency_ms_p90", "throughput_ips",
                 "first_call_ms", "warmup", "repeat", "warmup_calls", "flushed_bytes",
                 "threads", "compile", "channels_last", "optimizer", "impl_used",
                 "compile_status", "peak_mem_bytes", "mem_method", "processes")


@dataclass(frozen=True)
class TimedRow:
    """What one timing process gave: its device row and every timed call (for pooling)."""

    row: ComplexityRow
    times_ms: tuple[float, ...] = ()


def _timed_fields(setting: Setting, options: SweepOptions, row: ComplexityRow
                  ) -> tuple[float, ...]:
    """Build the step, time it, and on CUDA read its peak with the same step afterwards (the
    first call is really the first; reading the allocator's counters changes no timing).
    Returns every timed call in ms."""
    metrics = options.metrics
    step = build_step(**_step_kwargs(setting, options))
    times: tuple[float, ...] = ()
    try:
        if "latency" in metrics:
            stats = time_step(step, setting.device, options.warmup, options.repeat,
                              warmup_s=options.warmup_s, flush_l2=options.flush_l2)
            times = stats.times_ms
            row.first_call_ms, row.warmup = stats.first_call_ms, options.warmup
            row.warmup_calls, row.flushed_bytes = stats.warmup_calls, stats.flushed_bytes
            _set_latency(row, times, setting.batch_size, processes=1)
        if "memory" in metrics and setting.device.startswith("cuda"):
            row.peak_mem_bytes = float(cuda_peak_bytes(step, setting.device))
            row.mem_method = CUDA_METHOD
        _record_ran(row, step.what_ran())
    finally:
        del step
    return times


def _set_latency(row: ComplexityRow, times_ms: Sequence[float], batch_size: int,
                 processes: int) -> None:
    """Percentiles, throughput and sample counts of a row from its timed calls."""
    row.latency_ms_p10, row.latency_ms_p50, row.latency_ms_p90 = summarize(times_ms)
    row.throughput_ips = batch_size * 1000.0 / row.latency_ms_p50
    row.repeat, row.processes = len(times_ms), processes


def time_setting(setting: Setting, options: SweepOptions) -> TimedRow:
    """Latency of one setting on its device (and on CUDA its peak memory): a row holding only
    what the device gave, its status and failure class, and every timed call. Run it in a
    fresh process: the number then depends on nothing that ran before."""
    row = setting.row()
    row.compile, row.channels_last = options.compile, options.channels_last
    row.optimizer = options.optimizer
    row.threads = torch.get_num_threads()
    times: tuple[float, ...] = ()
    try:
        times = _timed_fields(setting, options, row)
    except Exception as exc:
        _fail(row, exc, setting.device)
    if row.failure != "poisoned":  # a poisoned context fails every CUDA call, cleanup too
        release(setting.device)
    return TimedRow(row, times)


def pool_timings(parts: Sequence[TimedRow], batch_size: int) -> ComplexityRow:
    """One device row from the timing processes of a setting: percentiles over every call of
    every process, so p10-p90 also spans the differences between processes (heap and page
    placement move a CPU timing by several percent from one process to the next); the first
    process's first call, warm-up and memory. The first failure, if any, is the row."""
    failed = next((part.row for part in parts if part.row.status != "ok"), None)
    if failed is not None:
        return failed
    row = dataclasses.replace(parts[0].row)
    times = [t for part in parts for t in part.times_ms]
    if times:
        _set_latency(row, times, batch_size, processes=len(parts))
    return row


def repeat_shares(repeat: int, processes: int) -> list[int]:
    """Timed calls per process: ``repeat`` spread as evenly as it goes (10 over 3: 4, 3, 3)."""
    count = max(1, min(processes, repeat))
    return [repeat // count + (1 if i < repeat % count else 0) for i in range(count)]


def cpu_memory_setting(setting: Setting, options: SweepOptions) -> MemoryResult:
    """Peak resident memory of one CPU step above what is resident before it. Only meaningful
    in a child whose allocator hands freed blocks back (``MEMORY_MMAP_THRESHOLD``)."""
    return measure_step_peak("gfbench.measure.setting:build_step", _step_kwargs(setting, options))


def merge_device(row: ComplexityRow, device_row: ComplexityRow) -> None:
    """Copy what the device step gave into the counted row; a failure's status and reason too
    (counts stay)."""
    for name in DEVICE_FIELDS:
        value = getattr(device_row, name)
        if value not in (None, ""):
            setattr(row, name, value)
    if device_row.status != "ok":
        row.status, row.failure = device_row.status, device_row.failure
    note(row, device_row.error)


def merge_memory(row: ComplexityRow, memory: MemoryResult) -> None:
    """Copy a CPU memory measurement into the row; running out of memory is the row's status."""
    row.peak_mem_bytes, row.mem_method = memory.peak_bytes, memory.method
    _record_ran(row, memory.ran)
    if memory.status in ("oom", "error"):
        row.status = row.failure = memory.status
        note(row, memory.error)


def _record_ran(row: ComplexityRow, ran: dict[str, str]) -> None:
    """Copy what the measured step ran (ModelStep.what_ran) into the row."""
    row.impl_used = ran.get("impl_used", row.impl_used)
    row.compile_status = ran.get("compile_status", row.compile_status)
