"""Peak memory: measured in an isolated child on the CPU, by the allocator on CUDA; OOM known."""

import os
import sys
from pathlib import Path

import pytest
import torch

from gfbench.measure.memory import (
    CPU_METHOD,
    CpuMemoryWorker,
    cpu_peak_in_child,
    cuda_peak_bytes,
    is_out_of_memory,
    measure_step_peak,
    rss_peak_bytes,
)

HERE = str(Path(__file__).parent)
RESETTABLE = rss_peak_bytes(lambda: None) is not None


@pytest.fixture
def child_path(monkeypatch):
    """Let the child import this folder's step factories."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [HERE, os.environ.get(
        "PYTHONPATH")])))


@pytest.mark.skipif(not RESETTABLE, reason="the kernel here cannot reset the peak RSS")
def test_peak_rss_sees_an_allocation_even_where_freed_memory_could_hide_it():
    # this long-lived test process has freed plenty: the heap is trimmed before measuring
    for _ in range(3):
        torch.ones(200 * 2**20 // 4).add_(1)

    def step():
        torch.ones(96 * 2**20 // 4).add_(1)

    assert 90 * 2**20 <= rss_peak_bytes(step) <= 200 * 2**20


@pytest.mark.skipif(not RESETTABLE, reason="the kernel here cannot reset the peak RSS")
def test_one_worker_measures_steps_in_turn_and_survives_an_oom_kill(child_path):
    with CpuMemoryWorker(threads=1) as worker:
        first = worker.measure("child_steps:allocate_step", {"mib": 64})
        killed = worker.measure("child_steps:killed_step", {})
        after = worker.measure("child_steps:allocate_step", {"mib": 16})
    assert first.status == "ok" and first.method == CPU_METHOD, (first, killed, after)
    assert 60 * 2**20 <= first.peak_bytes <= 120 * 2**20
    assert killed.status == "oom" and killed.peak_bytes is None, killed
    assert after.status == "ok" and 14 * 2**20 <= after.peak_bytes <= 60 * 2**20, after


def test_a_child_that_cannot_start_is_an_error(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/nonexistent")
    monkeypatch.setattr(sys, "executable", "/bin/false")
    result = cpu_peak_in_child("child_steps:allocate_step", {"mib": 1}, threads=1)
    assert result.status == "error" and result.peak_bytes is None


def test_allocator_failure_in_the_step_is_out_of_memory():
    result = measure_step_peak("child_steps:failing_step", {})
    assert result.status == "oom" and "DefaultCPUAllocator" in result.error


def test_broken_factory_is_an_error_not_a_number():
    result = measure_step_peak("child_steps:no_such_factory", {})
    assert result.status == "error" and result.peak_bytes is None


@pytest.mark.parametrize(("exc", "expected"), [
    (torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
    (RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 9 bytes"),
     True),
    (RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough "
                  "memory: you tried to allocate 9 bytes."), True),
    (MemoryError(), True),
    (RuntimeError("mat1 and mat2 shapes cannot be multiplied"), False),
    (ValueError("out of memory"), False),
])
def test_out_of_memory_is_recognised(exc, expected):
    assert is_out_of_memory(exc) is expected


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_peak_is_above_the_resident_tensors():
    resident = torch.ones(64 * 2**20 // 4, device="cuda")

    def step():
        (resident * 2).sum()

    peak = cuda_peak_bytes(step, "cuda")
    assert 64 * 2**20 <= peak < 80 * 2**20
