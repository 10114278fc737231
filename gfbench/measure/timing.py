"""Latency of one step (forward, or forward + backward [+ optimizer]), measured after warm-up.

One protocol for both devices, with the device's clock injected: on CUDA every repetition is
bracketed by CUDA events (GPU time, no host overhead in the number); on the CPU by
``time.perf_counter_ns`` (monotonic). The first call is timed on its own (it holds
compilation, cuDNN tuning and lazy initialisation) and never enters the statistics. Warm-up
then runs for at least ``warmup`` calls *and* at least ``warmup_s`` seconds (clocks and
caches settle in time, not in calls: 0.5 s by default on CUDA). Medians and 10th/90th
percentiles come from the ``repeat`` calls after it. With ``flush_l2`` a buffer larger than
the cache is written before every timed call, outside the timed interval, so that a single
layer is timed from memory (cold cache) and its ratio to a bandwidth floor means something.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gfbench.device import PRECISIONS, autocast
from gfbench.errors import GfbenchError

MODES = ("infer", "train")
OPTIMIZERS = ("sgd", "adamw")
DEFAULT_WARMUP_S = {"cuda": 0.5, "cpu": 1.0}  # the minimum warm-up time per device type
_CPU_CACHES = Path("/sys/devices/system/cpu/cpu0/cache")

Step = Callable[[], None]


@dataclass(frozen=True)
class TimingStats:
    """Latency percentiles of one step in ms, and how they were taken."""

    p10_ms: float
    p50_ms: float
    p90_ms: float
    first_call_ms: float
    samples: int
    method: str
    threads: int
    warmup_calls: int = 0  # calls after the first and before the timed ones (count and time)
    flushed_bytes: int = 0  # bytes written before each timed call to evict the cache (0: none)
    times_ms: tuple[float, ...] = ()  # every timed call, in order (pooled across processes)

    def throughput(self, batch_size: int) -> float:
        """Images (or token grids) per second at the median latency."""
        return batch_size * 1000.0 / self.p50_ms


class ModelStep:
    """One step of a model on a fixed input; ``release()`` frees what a step leaves behind.

    Inference: a forward without autograd. Training: gradients set to None, forward,
    backward, and the optimizer's update when there is one (its state is created on the
    first update, as in real training). ``release`` drops the gradients and the optimizer
    state, so a memory measurement taken after it counts them as the step's own.
    """

    def __init__(self, model: nn.Module, example: torch.Tensor, precision: str, mode: str,
                 optimizer: torch.optim.Optimizer | None = None):
        self.model, self.example, self.precision = model, example, precision
        self.mode, self.optimizer = mode, optimizer

    def __call__(self) -> None:
        if self.mode == "infer":
            with torch.no_grad(), autocast(self.example.device, self.precision):
                self.model(self.example)
            return
        self.model.zero_grad(set_to_none=True)
        with autocast(self.example.device, self.precision):
            out = self.model(self.example)
        out.float().sum().backward()
        if self.optimizer is not None:
            self.optimizer.step()

    def release(self) -> None:
        """Set gradients to None and forget the optimizer state (recreated on the next step)."""
        self.model.zero_grad(set_to_none=True)
        if self.optimizer is not None:
            self.optimizer.state.clear()

    def what_ran(self) -> dict[str, str]:
        """The row fields that say what the last step ran: global filter path, compile status."""
        from gfbench.layers.global_filter import filter_impl_used
        from gfbench.measure.compile import compile_status

        return {"impl_used": filter_impl_used(self.model),
                "compile_status": compile_status(self.model)}


def make_optimizer(name: str, model: nn.Module) -> torch.optim.Optimizer:
    """SGD with momentum 0.9 (one buffer per parameter) or AdamW (two), default rates."""
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    if name == "adamw":
        return torch.optim.AdamW(model.parameters())
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")


def make_step(model: nn.Module, example: torch.Tensor, precision: str = "fp32",
              mode: str = "infer", optimizer: str | None = None) -> ModelStep:
    """One inference forward (no autograd), or one training forward + backward (+ update).

    A training step starts with the gradients set to None, so each step allocates its own
    gradients, as a real training step would. ``optimizer`` ("sgd", "adamw") adds the
    update to a training step.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {tuple(PRECISIONS)}, got {precision!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if optimizer and mode != "train":
        raise ValueError(f"an optimizer ({optimizer!r}) needs mode 'train', got {mode!r}")
    model.train(mode == "train")
    return ModelStep(model, example, precision, mode,
                     make_optimizer(optimizer, model) if optimizer else None)


def set_threads(threads: int) -> int:
    """Set torch's intra-op CPU threads; returns the number torch reports (what was set)."""
    if threads < 1:
        raise GfbenchError(f"--threads {threads} must be >= 1")
    torch.set_num_threads(threads)
    return torch.get_num_threads()


# --- clocks: the only device-specific part of the timing protocol ---------------------------


class WallClock:
    """Host time from the monotonic clock (the CPU path)."""

    method = "perf_counter"

    def synchronize(self) -> None:
        """Nothing is queued on the CPU."""

    def now(self) -> float:
        """Seconds, monotonic."""
        return time.perf_counter()

    def time_calls(self, step: Step, repeat: int, before: Step) -> list[float]:
        """ms of each of ``repeat`` calls, ``before()`` run untimed ahead of each."""
        times = []
        for _ in range(repeat):
            before()
            start = time.perf_counter_ns()
            step()
            times.append((time.perf_counter_ns() - start) / 1e6)
        return times


class CudaClock(WallClock):
    """GPU time from a pair of CUDA events around each call; host time for the warm-up."""

    method = "cuda events"

    def __init__(self, device: torch.device):
        self.device = device

    def synchronize(self) -> None:
        """Wait for the device's queued work."""
        torch.cuda.synchronize(self.device)

    def time_calls(self, step: Step, repeat: int, before: Step) -> list[float]:
        """ms of each call between its events; ``before()`` is queued ahead of the start event."""
        with torch.cuda.device(self.device):
            pairs = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
                     for _ in range(repeat)]
            for start, end in pairs:
                before()
                start.record()
                step()
                end.record()
            torch.cuda.synchronize(self.device)
            return [start.elapsed_time(end) for start, end in pairs]


def clock_for(device: torch.device) -> WallClock:
    """The clock of a device type: CUDA events on CUDA, the monotonic clock elsewhere."""
    return CudaClock(device) if device.type == "cuda" else WallClock()


# --- cache flushing ---------------------------------------------------------------------------


def cache_bytes(device: torch.device | str) -> int:
    """The largest cache between the device and its memory: L2 on CUDA, the last level on CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device).L2_cache_size)
    sizes = [_parse_cache_size(path.read_text())
             for path in sorted(_CPU_CACHES.glob("index*/size"))] if _CPU_CACHES.is_dir() else []
    if not sizes:
        raise GfbenchError(f"flush_l2: the cache size of {device} is unknown here "
                           f"({_CPU_CACHES} is missing); time without flushing")
    return max(sizes)


def _parse_cache_size(text: str) -> int:
    """'32768K' / '1M' / '512' (sysfs) -> bytes."""
    text = text.strip().upper()
    scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
    return int(text.rstrip("KMG")) * scale


def make_flush(device: torch.device | str, nbytes: int | None = None) -> tuple[Step, int]:
    """A function that writes ``nbytes`` (default twice the cache) on the device, and the size.

    Writing a buffer twice the cache size evicts whatever a step left in it.
    """
    device = torch.device(device)
    nbytes = 2 * cache_bytes(device) if nbytes is None else nbytes
    buffer = torch.empty(max(1, nbytes // 4), dtype=torch.float32, device=device)

    def flush() -> None:
        buffer.fill_(1.0)

    return flush, buffer.numel() * 4


# --- the protocol -------------------------------------------------------------------------------


def warm_up(step: Step, clock: WallClock, calls: int, seconds: float) -> int:
    """Run ``step`` until both ``calls`` calls and ``seconds`` seconds are done; returns calls."""
    done = 0
    start = clock.now()
    while done < calls or clock.now() - start < seconds:
        step()
        done += 1
        if done >= calls:
            clock.synchronize()  # queued GPU work counts as time only once it has run
    return done


def summarize(times_ms: Sequence[float]) -> tuple[float, float, float]:
    """10th, 50th and 90th percentiles (linear interpolation)."""
    p10, p50, p90 = np.percentile(np.asarray(times_ms, dtype=float), [10, 50, 90])
    return float(p10), float(p50), float(p90)


def time_step(step: Step, device: torch.device | str, warmup: int = 10,
              repeat: int = 50, *, warmup_s: float | None = None, flush_l2: bool = False,
              clock: WallClock | None = None) -> TimingStats:
    """Latency percentiles of ``step`` over ``repeat`` calls after the warm-up.

    The first call is timed apart; ``warmup`` (>= 1, the first call included) calls and at
    least ``warmup_s`` seconds (default ``DEFAULT_WARMUP_S`` of the device type) of calls
    precede the timed ones. ``flush_l2`` evicts the cache before every timed call.
    ``clock`` replaces the device's clock (tests).
    """
    device = torch.device(device)
    if warmup < 1 or repeat < 1:
        raise ValueError(f"warmup and repeat must be >= 1 (the first call is never timed), "
                         f"got warmup={warmup}, repeat={repeat}")
    clock = clock or clock_for(device)
    seconds = DEFAULT_WARMUP_S.get(device.type, 0.0) if warmup_s is None else warmup_s
    flush, flushed = make_flush(device) if flush_l2 else ((lambda: None), 0)
    clock.synchronize()
    start = time.perf_counter_ns()
    step()
    clock.synchronize()
    first = (time.perf_counter_ns() - start) / 1e6
    warmed = warm_up(step, clock, warmup - 1, seconds)
    clock.synchronize()
    times = clock.time_calls(step, repeat, flush)
    p10, p50, p90 = summarize(times)
    return TimingStats(p10_ms=p10, p50_ms=p50, p90_ms=p90, first_call_ms=first,
                       samples=len(times), method=clock.method, threads=torch.get_num_threads(),
                       warmup_calls=warmed, flushed_bytes=flushed, times_ms=tuple(times))
