"""Step factories the memory tests hand to a child process (importable by module name)."""

import os
import signal

import torch


def allocate_step(mib: int):
    """A step that briefly holds a tensor of ``mib`` MiB (written, so it is resident)."""

    def step() -> None:
        block = torch.ones(mib * 2**20 // 4)
        block.add_(1)

    return step


def killed_step():
    """A step whose process is killed as the OOM killer would (SIGKILL)."""

    def step() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    return step


def failing_step():
    """A step that raises the CPU allocator's out-of-memory error."""

    def step() -> None:
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't "
                           "allocate memory: you tried to allocate 1099511627776 bytes.")

    return step


def measure_or_fail(setting, options):
    """The worker's measurement, except for mixers named in the fault table below.

    attention: the child dies by SIGSEGV (a crash in native code); identity: the error poisons
    the process (the child must be replaced); spatial_mlp: the child is killed by SIGKILL.
    """
    from gfbench.measure.setting import measure_in_worker
    from gfbench.measure.worker import restart_after

    if setting["name"] == "attention" and options["metrics"] != ["flops", "params"]:
        os.kill(os.getpid(), signal.SIGSEGV)
    if setting["name"] == "spatial_mlp" and options["metrics"] != ["flops", "params"]:
        os.kill(os.getpid(), signal.SIGKILL)
    record = measure_in_worker(setting, options)
    if setting["name"] == "identity":
        record.update(status="error", error="RuntimeError: CUDA error: an illegal memory access")
        return restart_after(record)
    return record
