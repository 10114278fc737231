"""One setting measured: counted on the meta device, then (when asked) timed and its memory
measured on the device. Running out of memory is a result (status "oom", counts kept), any
other failure a row with status "error" and a one-line reason.

Everything here takes and returns plain data, so the sweep can run it in its own process or
in a worker child (``measure_in_worker``) where a crash only costs that setting.
"""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from gfbench.errors import GfbenchError
from gfbench.layers import build_mixer
from gfbench.measure.compile import WatchedCompile
from gfbench.measure.faults import classify_on_device, needs_restart
from gfbench.measure.flops import count_flops, count_params
from gfbench.measure.memory import (
    CPU_METHOD,
    CUDA_METHOD,
    NOT_MEASURED,
    CpuMemoryWorker,
    MemoryResult,
    cuda_peak_bytes,
    is_out_of_memory,
    rss_peak_bytes,
)
from gfbench.measure.timing import make_step, time_step
from gfbench.measure.worker import in_worker, restart_after
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
                             num_classes=self.num_classes, optimizer=self.optimizer)

    def key(self) -> tuple:
        """The results-file key of this setting."""
        return row_key(self.row())

    @property
    def label(self) -> str:
        """'deit-s 224x224' (progress lines and messages)."""
        return f"{self.name} {self.res_h}x{self.res_w}"


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
    return (batch_size, setting.res_h, setting.res_w, setting.dim)


def builder(setting: Setting) -> Callable[[], nn.Module]:
    """A zero-argument function that builds the setting's module (on the current device)."""
    if setting.subject == "model":
        from gfbench.models import create_model

        extra = {} if setting.num_classes is None else {"num_classes": setting.num_classes}
        return lambda: create_model(setting.name, img_size=(setting.res_h, setting.res_w),
                                    impl=setting.impl, **extra)
    return lambda: build_mixer(setting.name, setting.dim, setting.res_h, setting.res_w,
                               impl=setting.impl)


def build_step(subject: str, name: str, res_h: int, res_w: int, batch_size: int,
               precision: str, mode: str, device: str, dim: int | None = None,
               impl: str = "reference", num_classes: int | None = None, compile: bool = False,
               channels_last: bool = False, optimizer: str = ""):
    """Build the module and its input on the device and return one measurable step.

    Module-level with JSON-friendly arguments so that a child process can call it too.
    """
    setting = Setting(subject, name, res_h, res_w, batch_size, precision, mode, device, dim,
                      impl, num_classes)
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


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (rows hold one line)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200] if text else ''}"


def note(row: ComplexityRow, message: str) -> None:
    """Add one message to the row's error column (messages are joined by '; ')."""
    row.error = "; ".join(filter(None, [row.error, message]))


def _tokens(grid: tuple[int, int] | None) -> int | None:
    """h*w of a token grid; None for a network without one."""
    return None if grid is None else grid[0] * grid[1]


def _cross_check(row: ComplexityRow, fvcore_flops: float) -> None:
    """Take fvcore's count where it agrees with the torch engine within 1% (or where that one
    failed); otherwise keep the torch engine's, which applies every rule, and say how far
    fvcore is off (it has no handle for some ops, e.g. aten::lstm)."""
    torch_flops = row.flops_torch
    if torch_flops is None or abs(fvcore_flops - torch_flops) <= DISAGREEMENT * torch_flops:
        row.flops, row.flops_engine = fvcore_flops, "fvcore"
        return
    note(row, f"fvcore counts {fvcore_flops:.4g} ({fvcore_flops / torch_flops - 1:+.1%}): "
              "kept the torch engine's count")


def _count(setting: Setting, options: SweepOptions, row: ComplexityRow) -> None:
    """FLOPs (both engines where fvcore fits), parameters and tokens, from the meta device.

    The token grid is recorded during the torch engine's forward (no forward of its own);
    without a FLOP count it is read on its own. A FLOP count that no engine could make is an
    error row.
    """
    from gfbench.models import record_token_grid, token_grid

    build = builder(setting)
    with torch.device("meta"):
        meta_model = build()
    row.params = count_params(meta_model)
    grid_seen = None
    shape = input_shape(setting, 1)
    if "flops" in options.metrics:
        try:
            with record_token_grid(meta_model) as grid_seen:
                counted = count_flops(meta_model, shape, engine="torch")
            row.flops = row.flops_torch = float(counted.total)
            row.flops_engine = "torch-meta"
            row.uncounted_ops = counted.uncounted_summary()
        except Exception as exc:  # one engine's failure must not lose the row
            note(row, f"torch counter failed: {first_line(exc)}")
    if setting.subject == "mixer":
        row.tokens = setting.res_h * setting.res_w
    elif grid_seen is not None and grid_seen.grid is not None:
        row.tokens = _tokens(grid_seen.grid)
    else:
        row.tokens = _tokens(token_grid(meta_model, shape))
    del meta_model
    if "flops" not in options.metrics:
        return
    if row.flops_torch is None or row.flops_torch <= options.fvcore_max_flops:
        try:
            _cross_check(row, float(count_flops(build, shape, engine="fvcore").total))
        except Exception as exc:
            note(row, "fvcore cross-check ran out of memory" if is_out_of_memory(exc)
                 else f"fvcore failed: {first_line(exc)}")
    if row.flops is None:
        row.status = "error"


def _step_kwargs(setting: Setting, options: SweepOptions) -> dict:
    """build_step's arguments for a setting."""
    return {**dataclasses.asdict(setting), "compile": options.compile,
            "channels_last": options.channels_last, "optimizer": options.optimizer}


def release(device: str) -> None:
    """Free what a failed or finished measurement left behind."""
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def _cpu_memory(setting: Setting, options: SweepOptions,
                memory_worker: CpuMemoryWorker | None) -> MemoryResult:
    """Peak CPU memory of one step, measured in the sweep's memory child (a process whose
    allocator was set up for it)."""
    request = ("gfbench.measure.setting:build_step", _step_kwargs(setting, options))
    if memory_worker is None:
        with CpuMemoryWorker(torch.get_num_threads()) as worker:
            return worker.measure(*request)
    return memory_worker.measure(*request)


def _measure_on_device(setting: Setting, options: SweepOptions, row: ComplexityRow,
                       memory_worker: CpuMemoryWorker | None) -> None:
    """Peak memory and latency on the setting's device; OOM becomes the row's status.

    The step is built once for both where this process can read the memory itself (CUDA, or
    a worker child whose allocator was set up for RSS readings): timed first (so the first
    call is really the first), then its peak taken with the same protocol. Only a CPU sweep
    without isolation builds it a second time, in the memory child.
    """
    metrics = options.metrics
    row.compile, row.channels_last = options.compile, options.channels_last
    row.optimizer = options.optimizer
    row.threads = torch.get_num_threads()
    on_cuda = setting.device.startswith("cuda")
    memory_here = "memory" in metrics and (on_cuda or in_worker())
    if "memory" in metrics and not memory_here:
        memory = _cpu_memory(setting, options, memory_worker)
        row.peak_mem_bytes, row.mem_method = memory.peak_bytes, memory.method
        _record_ran(row, memory.ran)
        if memory.status in ("oom", "error"):
            row.status = row.failure = memory.status
            note(row, memory.error)
            return
    if "latency" not in metrics and not memory_here:
        return
    step = None
    try:
        step = build_step(**_step_kwargs(setting, options))
        if "latency" in metrics:
            stats = time_step(step, setting.device, options.warmup, options.repeat,
                              warmup_s=options.warmup_s, flush_l2=options.flush_l2)
            row.latency_ms_p10, row.latency_ms_p50 = stats.p10_ms, stats.p50_ms
            row.latency_ms_p90, row.first_call_ms = stats.p90_ms, stats.first_call_ms
            row.throughput_ips = stats.throughput(setting.batch_size)
            row.warmup, row.repeat = options.warmup, options.repeat
            row.warmup_calls, row.flushed_bytes = stats.warmup_calls, stats.flushed_bytes
        if memory_here and on_cuda:
            row.peak_mem_bytes = float(cuda_peak_bytes(step, setting.device))
            row.mem_method = CUDA_METHOD
        elif memory_here:
            peak = rss_peak_bytes(step)
            row.peak_mem_bytes = None if peak is None else float(peak)
            row.mem_method = CPU_METHOD if peak is not None else NOT_MEASURED
        _record_ran(row, step.what_ran())
    except Exception as exc:
        if classify_on_device(exc, setting.device) != "oom":
            raise
        row.status = row.failure = "oom"
        note(row, first_line(exc))
    finally:
        del step
        release(setting.device)


def _record_ran(row: ComplexityRow, ran: dict[str, str]) -> None:
    """Copy what the measured step ran (ModelStep.what_ran) into the row."""
    row.impl_used = ran.get("impl_used", row.impl_used)
    row.compile_status = ran.get("compile_status", row.compile_status)


def measure_checked(setting: Setting, options: SweepOptions,
                    memory_worker: CpuMemoryWorker | None = None) -> tuple[ComplexityRow, bool]:
    """The row of one setting, and whether its failure poisoned this process.

    Counted on meta, then measured on the device if asked. A failure to build, count or run
    becomes the row's status and one-line error, so the sweep goes on.
    """
    row = setting.row()
    try:
        _count(setting, options, row)
        if options.metrics & DEVICE_METRICS:
            _measure_on_device(setting, options, row, memory_worker)
    except GfbenchError as exc:  # e.g. a resolution this model cannot take: its row says so
        row.status = "error"
        note(row, str(exc))
    except Exception as exc:  # recorded, and the sweep goes on
        row.failure = classify_on_device(exc, setting.device)
        row.status = "oom" if row.failure == "oom" else "error"
        note(row, first_line(exc))
        if needs_restart(row.failure):  # a poisoned context fails every CUDA call, cleanup too
            return row, True
        release(setting.device)
        return row, False
    return row, False


def measure(setting: Setting, options: SweepOptions,
            memory_worker: CpuMemoryWorker | None = None) -> ComplexityRow:
    """The row of one setting (see ``measure_checked``)."""
    return measure_checked(setting, options, memory_worker)[0]


def measure_in_worker(setting: dict, options: dict) -> dict:
    """``measure`` for a worker child: plain data in and out; a poisoning error ends the child
    after it answers, so the next setting runs in a healthy process."""
    row, poisoned = measure_checked(Setting(**setting), SweepOptions.from_json(options))
    record = dataclasses.asdict(row)
    return restart_after(record) if poisoned else record
