"""Latency of one step (forward, or forward + backward), measured after warm-up.

On CUDA every repetition is bracketed by CUDA events (GPU time, no host overhead in the
number); on the CPU by ``time.perf_counter_ns`` (monotonic). The first call is timed on its
own (it holds compilation, cuDNN tuning and lazy initialisation) and never enters the
statistics: medians and 10th/90th percentiles come from the ``repeat`` calls after ``warmup``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "fp16": torch.float16,
                                             "bf16": torch.bfloat16}
MODES = ("infer", "train")

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

    def throughput(self, batch_size: int) -> float:
        """Images (or token grids) per second at the median latency."""
        return batch_size * 1000.0 / self.p50_ms


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Autocast to fp16/bf16, or nothing for fp32."""
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def make_step(model: nn.Module, example: torch.Tensor, precision: str = "fp32",
              mode: str = "infer") -> Step:
    """One inference forward (no autograd), or one training forward + backward.

    A training step starts with the gradients set to None, so each step allocates (and the
    memory measurement sees) its own gradients, as a real training step would.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {tuple(PRECISIONS)}, got {precision!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    model.train(mode == "train")

    def infer() -> None:
        with torch.no_grad(), _autocast(example.device, precision):
            model(example)

    def train() -> None:
        model.zero_grad(set_to_none=True)
        with _autocast(example.device, precision):
            out = model(example)
        out.float().sum().backward()

    return infer if mode == "infer" else train


def _synchronize(device: torch.device) -> None:
    """Wait for queued GPU work (nothing to wait for on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_first_call(step: Step, device: torch.device) -> float:
    """Wall time of the first call in ms (compilation and lazy init included)."""
    _synchronize(device)
    start = time.perf_counter_ns()
    step()
    _synchronize(device)
    return (time.perf_counter_ns() - start) / 1e6


def _cuda_event_times(step: Step, device: torch.device, repeat: int) -> list[float]:
    """GPU time of each call in ms, from a pair of CUDA events around it."""
    with torch.cuda.device(device):
        pairs = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
                 for _ in range(repeat)]
        for start, end in pairs:
            start.record()
            step()
            end.record()
        torch.cuda.synchronize(device)
        return [start.elapsed_time(end) for start, end in pairs]


def _wall_times(step: Step, repeat: int) -> list[float]:
    """Wall time of each call in ms from the monotonic clock."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        step()
        times.append((time.perf_counter_ns() - start) / 1e6)
    return times


def summarize(times_ms: Sequence[float]) -> tuple[float, float, float]:
    """10th, 50th and 90th percentiles (linear interpolation)."""
    p10, p50, p90 = np.percentile(np.asarray(times_ms, dtype=float), [10, 50, 90])
    return float(p10), float(p50), float(p90)


def time_step(step: Step, device: torch.device | str, warmup: int = 10,
              repeat: int = 50) -> TimingStats:
    """Latency percentiles of ``step`` over ``repeat`` calls after ``warmup`` calls (>= 1)."""
    device = torch.device(device)
    if warmup < 1 or repeat < 1:
        raise ValueError(f"warmup and repeat must be >= 1 (the first call is never timed), "
                         f"got warmup={warmup}, repeat={repeat}")
    first = _time_first_call(step, device)
    for _ in range(warmup - 1):
        step()
    _synchronize(device)
    if device.type == "cuda":
        times, method = _cuda_event_times(step, device, repeat), "cuda events"
    else:
        times, method = _wall_times(step, repeat), "perf_counter"
    p10, p50, p90 = summarize(times)
    return TimingStats(p10_ms=p10, p50_ms=p50, p90_ms=p90, first_call_ms=first,
                       samples=len(times), method=method, threads=torch.get_num_threads())
