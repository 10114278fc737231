"""Peak memory of one step above what was resident before it: measured, or said to be not.

One protocol for every device (``peak_above_resident``): run the step once (lazy
initialisation, plans, workspaces), drop what a step leaves behind (``release``: gradients,
optimizer state), then read the resident memory (model, input) and the peak of the next
step. So a training step's peak includes its gradients (and its optimizer state when an
optimizer is part of the step), never hides them in the baseline. Only the counter differs:

* CUDA (``CudaCounter``): ``memory_allocated`` before, ``max_memory_allocated`` during.
* CPU (``RssCounter``): in a fresh child process of its own (``cpu_peak_in_child``: the
  parent's heap and its out-of-memory risks stay apart) every free heap page is handed back
  to the kernel (``malloc_trim``), the kernel's peak-RSS mark is reset
  (``/proc/self/clear_refs``) and the step's ``VmHWM - VmRSS`` is read. That child's glibc
  serves every block from 128 KiB up with mmap (``mallopt``, set in that child only: it
  slows some models by half, so no timing child ever has it), so freed tensors leave the
  resident set at once; with the trim, no freed memory can hide an allocation. The
  resolution is a page (a step whose tensors are all tiny reads as near zero). Where the
  kernel offers no reset the result is "not measured", never an estimate.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from gfbench.errors import first_line
from gfbench.measure.faults import is_out_of_memory
from gfbench.measure.worker import call_in_child, resolve

CUDA_METHOD = ("cuda: max_memory_allocated during the second step - memory_allocated before "
               "it (gradients and optimizer state released first)")
CPU_METHOD = ("cpu: VmHWM - VmRSS around the second step in a child process (gradients and "
              "optimizer state released, free heap trimmed and peak RSS reset before it; "
              "glibc mmap threshold 128 KiB in that child only)")
MMAP_THRESHOLD = 128 * 1024  # the memory child's allocator: blocks from here up are own mmaps
NOT_MEASURED = "cpu: not measured (peak RSS cannot be reset here)"
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


@dataclass(frozen=True)
class MemoryResult:
    """Peak bytes above the resident set during one step; None with a reason when not measured."""

    peak_bytes: int | None
    method: str
    status: str = "ok"  # ok | oom | not measured | error
    error: str = ""
    ran: dict[str, str] = field(default_factory=dict)  # ModelStep.what_ran() of the step


class PeakCounter(Protocol):
    """How one device reads its memory: the only part of the protocol that differs by device."""

    def reset(self) -> bool:
        """Wait for queued work and reset the peak mark; False when it cannot be reset."""

    def current(self) -> int:
        """Bytes in use now."""

    def peak(self) -> int:
        """Most bytes in use since the reset (after waiting for queued work)."""


class CudaCounter:
    """The caching allocator's counters of one CUDA device (tensors only, not its cache)."""

    def __init__(self, device: torch.device | str):
        self.device = torch.device(device)

    def reset(self) -> bool:
        """Wait for the device and restart its peak statistics."""
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        return True

    def current(self) -> int:
        """Bytes allocated to tensors now."""
        return torch.cuda.memory_allocated(self.device)

    def peak(self) -> int:
        """Most bytes allocated to tensors since the reset."""
        torch.cuda.synchronize(self.device)
        return torch.cuda.max_memory_allocated(self.device)


class RssCounter:
    """This process's resident set from /proc (Linux): VmRSS now, VmHWM since the reset."""

    def reset(self) -> bool:
        """Trim the free heap and reset the peak mark; False where the kernel does not let us."""
        _trim_heap()
        try:
            _CLEAR_REFS.write_text("5")
            return _status_kib("VmHWM") - _status_kib("VmRSS") <= 1024
        except OSError:
            return False

    def current(self) -> int:
        """Resident bytes now."""
        return _status_kib("VmRSS") * 1024

    def peak(self) -> int:
        """Most resident bytes since the reset."""
        return _status_kib("VmHWM") * 1024


def release(step: Callable[[], None]) -> None:
    """Free what a step leaves behind between steps (a training step's gradients, optimizer
    state), so that the next step's peak counts them; plain callables leave nothing."""
    getattr(step, "release", lambda: None)()
    gc.collect()


def peak_above_resident(step: Callable[[], None], counter: PeakCounter) -> int | None:
    """Peak bytes of one step above what is resident before it, on any device.

    The first call warms up (lazy initialisation, FFT plans, library handles); what it left
    behind is released; then the counter is reset, the resident bytes read and the second
    call's peak taken. None when the counter cannot be reset.
    """
    step()
    release(step)
    if not counter.reset():
        return None
    resident = counter.current()
    step()
    peak = counter.peak() - resident
    release(step)
    return peak


def cuda_peak_bytes(step: Callable[[], None], device: torch.device | str) -> int:
    """Peak CUDA memory allocated during one step, above what was allocated before it."""
    peak = peak_above_resident(step, CudaCounter(device))
    assert peak is not None  # CudaCounter.reset always succeeds
    return peak


def _status_kib(field: str) -> int:
    """A VmRSS / VmHWM value of this process in KiB."""
    match = re.search(rf"^{field}:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
    if match is None:
        raise OSError(f"{_STATUS} has no {field}")
    return int(match.group(1))


def _trim_heap() -> None:
    """Give free heap pages back to the kernel (glibc only; elsewhere nothing to do)."""
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def rss_peak_bytes(step: Callable[[], None]) -> int | None:
    """Peak resident set of one step above the resident set before it (this process).

    Returns None when the kernel cannot reset the peak mark (not Linux, or not allowed).
    """
    return peak_above_resident(step, RssCounter())


def measure_step_peak(factory: str, kwargs: dict[str, Any]) -> MemoryResult:
    """Build ``factory(**kwargs) -> step`` and measure its peak RSS above the resident set.

    ``factory`` is "module:function". Failures (out of memory included) become a result.
    """
    step = None
    try:
        step = resolve(factory)(**kwargs)
        peak = rss_peak_bytes(step)
        ran = step.what_ran() if hasattr(step, "what_ran") else {}
    except Exception as exc:  # reported to the parent, which records the row
        status = "oom" if is_out_of_memory(exc) else "error"
        return MemoryResult(None, CPU_METHOD, status, first_line(exc))
    finally:
        step = None
        gc.collect()
    if peak is None:
        return MemoryResult(None, NOT_MEASURED, "not measured", ran=ran)
    return MemoryResult(peak, CPU_METHOD, ran=ran)


def cpu_peak_in_child(factory: str, kwargs: dict[str, Any], threads: int | None = None,
                      timeout_s: float = 900.0) -> MemoryResult:
    """Peak RSS of one ``factory(**kwargs)`` step, measured in a fresh child whose allocator
    hands freed blocks back at once; a child killed by SIGKILL (the kernel's out-of-memory
    killer) makes the result "oom"."""
    result = call_in_child("gfbench.measure.memory:measure_step_peak",
                           {"factory": factory, "kwargs": kwargs}, threads=threads,
                           timeout_s=timeout_s, mmap_threshold=MMAP_THRESHOLD)
    if result.ok:
        return result.value
    return MemoryResult(None, CPU_METHOD, result.failure_status, result.error)
