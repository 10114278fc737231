"""Failure classes: every CUDA allocation failure is "oom", sticky CUDA errors are "poisoned".

The messages are the ones torch builds (see gfbench.measure.faults for the source files);
each is raised from inside a module's forward, as a real kernel or library call would, and
classified from what the step raised (wrapped or not).
"""

import pytest
import torch
from torch import nn

from gfbench.measure.faults import (
    FAILURES,
    classify_failure,
    cuda_context_alive,
    is_out_of_memory,
    needs_restart,
)
from gfbench.measure.timing import make_step

ASYNC = ("\nCUDA kernel errors might be asynchronously reported at some other API call, so the "
         "stacktrace below might be incorrect.\nFor debugging consider passing "
         "CUDA_LAUNCH_BLOCKING=1\nCompile with `TORCH_USE_CUDA_DSA` to enable device-side "
         "assertions.\n")

CASES = [
    ("allocator", torch.OutOfMemoryError(
        "CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total capacity of 139.81 "
        "GiB of which 1.2 GiB is free."), "oom"),
    ("cufft plan", RuntimeError("cuFFT error: CUFFT_ALLOC_FAILED"), "oom"),
    ("cublas handle alloc", RuntimeError(
        "CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"), "oom"),
    ("cublas handle init", RuntimeError(
        "CUDA error: CUBLAS_STATUS_NOT_INITIALIZED when calling `cublasCreate(handle)`"), "oom"),
    ("cublaslt handle init", RuntimeError(
        "CUDA error: CUBLAS_STATUS_NOT_INITIALIZED when calling `cublasLtCreate(handle)`"), "oom"),
    ("cudnn alloc", RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"), "oom"),
    ("cudnn init", RuntimeError("cuDNN error: CUDNN_STATUS_NOT_INITIALIZED"), "oom"),
    ("cuda runtime", torch.AcceleratorError("CUDA error: out of memory" + ASYNC), "oom"),
    ("triton launch", RuntimeError("Triton Error [CUDA]: out of memory"), "oom"),
    ("cpu allocator", RuntimeError(
        "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough memory: "
        "you tried to allocate 1099511627776 bytes."), "oom"),
    ("cpu allocator 2", RuntimeError(
        "DefaultCPUAllocator: can't allocate memory: you tried to allocate 9 bytes. Error "
        "code 12 (Cannot allocate memory)"), "oom"),
    ("python", MemoryError(), "oom"),
    ("illegal address", torch.AcceleratorError(
        "CUDA error: an illegal memory access was encountered" + ASYNC), "poisoned"),
    ("device assert", torch.AcceleratorError(
        "CUDA error: device-side assert triggered" + ASYNC), "poisoned"),
    ("launch failure", torch.AcceleratorError(
        "CUDA error: unspecified launch failure" + ASYNC), "poisoned"),
    ("misaligned", torch.AcceleratorError("CUDA error: misaligned address" + ASYNC),
     "poisoned"),
    ("triton illegal address", RuntimeError(
        "Triton Error [CUDA]: an illegal memory access was encountered"), "poisoned"),
    ("cublas after a sticky error", RuntimeError(
        "CUDA error: an illegal memory access was encountered when calling "
        "`cublasSgemm( handle, opa, opb, m, n, k, &alpha, a, lda, b, ldb, &beta, c, ldc)`"),
     "poisoned"),
    ("shape", RuntimeError("mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)"), "error"),
    ("cufft other", RuntimeError("cuFFT error: CUFFT_INVALID_SIZE"), "error"),
    ("not an allocation", ValueError("out of memory"), "error"),
    ("cublas not initialised elsewhere", RuntimeError(
        "CUDA error: CUBLAS_STATUS_NOT_INITIALIZED when calling `cublasSetStream(handle, s)`"),
     "error"),
]


class Faulty(nn.Module):
    """A module whose forward raises the given exception, as a failing kernel would."""

    def __init__(self, exc: BaseException):
        super().__init__()
        self.linear = nn.Linear(4, 4)
        self.exc = exc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.linear(x)
        raise self.exc


@pytest.mark.parametrize(("exc", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
@pytest.mark.parametrize("mode", ["infer", "train"])
def test_a_step_that_raises_is_classified(exc, expected, mode):
    step = make_step(Faulty(exc), torch.randn(2, 4), mode=mode)
    with pytest.raises(BaseException) as caught:
        step()
    assert classify_failure(caught.value) == expected
    assert is_out_of_memory(caught.value) is (expected == "oom")


def test_a_wrapped_failure_is_classified_by_its_cause():
    try:
        try:
            raise RuntimeError("cuFFT error: CUFFT_ALLOC_FAILED")
        except RuntimeError as inner:
            raise RuntimeError("backend compiler failed: see the cause") from inner
    except RuntimeError as outer:
        assert classify_failure(outer) == "oom"


def test_an_unknown_cuda_error_is_poisoned_only_when_the_context_stays_broken():
    exc = torch.AcceleratorError("CUDA error: some error text no table knows" + ASYNC)
    assert classify_failure(exc) == "error"
    assert classify_failure(exc, context_alive=lambda: True) == "error"
    assert classify_failure(exc, context_alive=lambda: False) == "poisoned"
    # a plain error never probes the device
    assert classify_failure(RuntimeError("bad shape"), context_alive=lambda: 1 / 0) == "error"


def test_only_a_poisoned_process_needs_a_restart():
    assert [needs_restart(kind) for kind in FAILURES] == [False, True, False]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_without_cuda_the_probe_reports_no_working_context():
    assert cuda_context_alive("cuda") is False


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_healthy_cuda_context_is_alive():
    assert cuda_context_alive("cuda") is True
