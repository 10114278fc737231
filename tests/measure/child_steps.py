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


def time_or_fail(setting, options):
    """The timing step, except for mixers named in the fault table below.

    attention: the child dies by SIGSEGV (a crash in native code); identity: the error poisons
    the CUDA context; spatial_mlp: the child is killed by SIGKILL (the OOM killer).
    """
    from gfbench.measure.setting import time_setting

    if setting.name == "attention":
        os.kill(os.getpid(), signal.SIGSEGV)
    if setting.name == "spatial_mlp":
        os.kill(os.getpid(), signal.SIGKILL)
    timed = time_setting(setting, options)
    if setting.name == "identity":
        timed.row.status, timed.row.failure = "error", "poisoned"
        timed.row.error = "RuntimeError: CUDA error: an illegal memory access"
    return timed


def memory_oom(setting, options):
    """A CPU memory step whose child ran out of memory."""
    from gfbench.measure.memory import CPU_METHOD, MemoryResult

    return MemoryResult(None, CPU_METHOD, "oom", "child process killed by SIGKILL")


def environment_and_pid():
    """What a child process sees: its environment and its process id."""
    return dict(os.environ), os.getpid()


def page_faults_of_reuse(mib: int = 8, rounds: int = 20) -> int:
    """Minor page faults while a ``mib`` MiB buffer is allocated, written and freed ``rounds``
    times: few where the allocator reuses freed memory (glibc's default), about
    ``rounds * mib * 256`` where each block is a fresh mmap (a fixed mmap threshold)."""
    import resource

    torch.empty(mib * 2**18).fill_(1.0)  # the first one sets glibc's dynamic threshold
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(rounds):
        torch.empty(mib * 2**18).fill_(1.0)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def linear_step(features: int, batch: int, mode: str, optimizer: str | None = None):
    """A gfbench step of a bias-free ``features x features`` float32 Linear (hand-countable)."""
    from torch import nn

    from gfbench.measure.timing import make_step

    torch.manual_seed(0)
    model = nn.Linear(features, features, bias=False)
    return make_step(model, torch.randn(batch, features), mode=mode, optimizer=optimizer)


def die_by(signum: int):
    """The calling process ends by the signal (a crash, or the OOM killer's SIGKILL)."""
    os.kill(os.getpid(), signum)


def sleep(seconds: float):
    """A call that hangs for ``seconds``."""
    import time

    time.sleep(seconds)


def main_module() -> str:
    """The file of the child's __main__ module (the fork server's, not the caller's script)."""
    import sys

    return sys.modules["__main__"].__file__


def tiny_ceilings(device: str):
    """The real ceilings measurement at tiny sizes (a sweep test's child runs it in ~0.1 s)."""
    from gfbench.measure.ceilings import measure_ceilings

    return measure_ceilings(device, repeat=3, warmup_s=0.0, gemm_n=64, elements=1 << 14)


def failing_ceilings(device: str):
    """A ceilings measurement that fails, as one on a broken device would."""
    raise RuntimeError(f"no ceilings on {device} today")
