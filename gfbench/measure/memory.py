"""Peak memory of one step above what was resident before it: measured, or said to be not.

* CUDA: ``max_memory_allocated`` during one step minus ``memory_allocated`` before it (model,
  input and, in training, nothing else: gradients are freed before each step).
* CPU: in an isolated child process that builds the step, runs it once, resets the kernel's
  peak-RSS mark (``/proc/self/clear_refs``), runs it again and reads ``VmHWM - VmRSS``. glibc
  is told to serve every block from 128 KiB up with mmap, so freed tensors leave the resident
  set at once and cannot hide a later allocation (so the resolution is about 128 KiB: a step
  whose tensors are all smaller reads as near zero). Where the kernel offers no such reset
  the result is "not measured", never an estimate.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

CUDA_METHOD = "cuda: max_memory_allocated during the step - memory_allocated before it"
CPU_METHOD = ("cpu: VmHWM - VmRSS around the second step in an isolated child process "
              "(peak RSS reset via clear_refs; glibc mmap threshold 128 KiB)")
_CHILD_ENV = {"MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


@dataclass(frozen=True)
class MemoryResult:
    """Peak bytes above the resident set during one step; None with a reason when not measured."""

    peak_bytes: int | None
    method: str
    status: str = "ok"  # ok | oom | not measured | error
    error: str = ""


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether an exception means the device (CUDA or CPU allocator) ran out of memory."""
    if isinstance(exc, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and any(
        marker in text for marker in ("out of memory", "not enough memory",
                                      "DefaultCPUAllocator: can't allocate"))


def cuda_peak_bytes(step: Callable[[], None], device: torch.device | str) -> int:
    """Peak CUDA memory allocated during one step, above what was allocated before it."""
    device = torch.device(device)
    gc.collect()
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    resident = torch.cuda.memory_allocated(device)
    step()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - resident


def _status_kib(field: str) -> int:
    """A VmRSS / VmHWM value of this process in KiB."""
    match = re.search(rf"^{field}:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
    if match is None:
        raise OSError(f"{_STATUS} has no {field}")
    return int(match.group(1))


def rss_peak_bytes(step: Callable[[], None]) -> int | None:
    """Peak resident set during one step above the resident set before it (this process).

    Returns None when the kernel cannot reset the peak mark (not Linux, or not allowed).
    """
    gc.collect()
    try:
        _CLEAR_REFS.write_text("5")
        resident = _status_kib("VmRSS")
        if _status_kib("VmHWM") - resident > 1024:
            return None  # the reset did not take
    except OSError:
        return None
    step()
    return (_status_kib("VmHWM") - resident) * 1024


def cpu_peak_in_child(factory: str, kwargs: dict[str, Any], threads: int,
                      timeout_s: float = 600.0) -> MemoryResult:
    """Run ``factory(**kwargs) -> step`` in a fresh Python process and measure one step there.

    ``factory`` is "module:function"; kwargs must be JSON-serialisable. A child killed by
    the kernel (SIGKILL, the OOM killer's signal) is reported as out of memory.
    """
    request = json.dumps({"factory": factory, "kwargs": kwargs, "threads": threads})
    try:
        done = subprocess.run([sys.executable, "-m", "gfbench.measure.memory"], input=request,
                              capture_output=True, text=True, timeout=timeout_s,
                              env={**os.environ, **_CHILD_ENV}, check=False)
    except subprocess.TimeoutExpired:
        return MemoryResult(None, CPU_METHOD, "error", f"child timed out after {timeout_s:.0f} s")
    if done.returncode == -9:
        return MemoryResult(None, CPU_METHOD, "oom", "child killed by SIGKILL (out of memory)")
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return MemoryResult(None, CPU_METHOD, "error", f"child failed: {tail}")
    return MemoryResult(**json.loads(lines[-1]))


def measure_step_peak(factory: str, kwargs: dict[str, Any]) -> MemoryResult:
    """Build ``factory(**kwargs) -> step``, run it once, then measure the next call's peak RSS.

    The child side of cpu_peak_in_child; failures (out of memory included) become a result.
    """
    import importlib

    module_name, function_name = factory.split(":")
    try:
        step = getattr(importlib.import_module(module_name), function_name)(**kwargs)
        step()
        peak = rss_peak_bytes(step)
    except Exception as exc:  # reported to the parent, which records the row
        status = "oom" if is_out_of_memory(exc) else "error"
        return MemoryResult(None, CPU_METHOD, status,
                            f"{type(exc).__name__}: {str(exc).strip()[:200]}")
    if peak is None:
        return MemoryResult(None, "cpu: not measured (peak RSS cannot be reset here)",
                            "not measured")
    return MemoryResult(peak, CPU_METHOD)


def _child_main() -> None:
    """Entry point of the child process: request on stdin, one JSON line on stdout."""
    request = json.loads(sys.stdin.read())
    torch.set_num_threads(int(request["threads"]))
    result = measure_step_peak(request["factory"], request["kwargs"])
    print(json.dumps(dataclasses.asdict(result)))


if __name__ == "__main__":
    _child_main()
