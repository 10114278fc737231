"""What a failed measurement means: out of memory, a poisoned CUDA context, or another error.

``classify_failure(exc)`` returns one of ``FAILURES``:

* ``"oom"``: an allocation failed (the row keeps its counts and is plotted as beyond
  memory). CUDA reports this in several shapes, not only the caching allocator's
  ``torch.OutOfMemoryError``: cuFFT, cuBLAS and cuDNN allocate their own plans, handles and
  workspaces and report failure through their status codes.
* ``"poisoned"``: a sticky CUDA error. The CUDA runtime documents these (illegal address,
  device-side assert, launch failure, misaligned address, illegal instruction, invalid PC,
  hardware stack error) as leaving "the process in an inconsistent state": every later CUDA
  call fails the same way, so the process must be restarted before the next row.
* ``"error"``: anything else; the process can go on.

Message texts, as torch 2.x builds them (pytorch/pytorch):
  c10/cuda/CUDACachingAllocator.cpp     torch.OutOfMemoryError "CUDA out of memory. Tried to
                                        allocate ..."
  c10/cuda/CUDAException.cpp            torch.AcceleratorError "CUDA error: " +
                                        cudaGetErrorString(err) (e.g. "out of memory", "an
                                        illegal memory access was encountered")
  aten/src/ATen/native/cuda/CuFFTUtils.h  "cuFFT error: CUFFT_ALLOC_FAILED"
  aten/src/ATen/cuda/Exceptions.h       TORCH_CUDABLAS_CHECK: "CUDA error: CUBLAS_STATUS_... when
                                        calling `cublasCreate(handle)`"; AT_CUDNN_CHECK:
                                        "cuDNN error: CUDNN_STATUS_..."
  aten/src/ATen/cuda/CublasHandlePool.cpp  createCublasHandle runs cublasCreate, whose
                                        CUBLAS_STATUS_NOT_INITIALIZED means no memory for it
  c10/core/impl/alloc_cpu.cpp           "DefaultCPUAllocator: can't allocate memory" /
                                        "DefaultCPUAllocator: not enough memory"
Triton's launcher reports CUDA driver errors as "Triton Error [CUDA]: <driver message>".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

FAILURES = ("oom", "poisoned", "error")

# Allocation failures, searched in the message of the exception and of everything it wraps.
_OOM_PATTERNS = (
    r"CUDA out of memory",  # the caching allocator (torch.OutOfMemoryError)
    r"CUDA error: out of memory",  # cudaErrorMemoryAllocation through C10_CUDA_CHECK
    r"Triton Error \[CUDA\]: out of memory",
    r"\b(?:CUFFT|CUBLAS_STATUS|CUDNN_STATUS|CUSOLVER_STATUS|CUSPARSE_STATUS)_ALLOC_FAILED\b",
    r"CUBLAS_STATUS_NOT_INITIALIZED when calling `cublas(?:Lt)?Create",  # handle creation
    r"CUDNN_STATUS_NOT_INITIALIZED",  # cudnnCreate could not allocate its handle
    r"DefaultCPUAllocator: (?:can't allocate|not enough memory)",
    r"\bout of memory\b",  # other allocators (MPS, XPU, cuDNN frontend) say it plainly
)
# cudaGetErrorString texts of the errors the CUDA runtime documents as sticky.
_STICKY_TEXTS = (
    "an illegal memory access was encountered",  # cudaErrorIllegalAddress
    "device-side assert triggered",  # cudaErrorAssert
    "unspecified launch failure",  # cudaErrorLaunchFailure
    "misaligned address",  # cudaErrorMisalignedAddress
    "an illegal instruction was encountered",  # cudaErrorIllegalInstruction
    "invalid program counter",  # cudaErrorInvalidPc
    "hardware stack error",  # cudaErrorHardwareStackError
    "operation not supported on global/shared address space",  # cudaErrorInvalidAddressSpace
    "the launch timed out and was terminated",  # cudaErrorLaunchTimeout
    "uncorrectable ECC error encountered",  # cudaErrorECCUncorrectable
)
_OOM = re.compile("|".join(_OOM_PATTERNS))
_STICKY = re.compile("|".join(re.escape(text) for text in _STICKY_TEXTS), re.IGNORECASE)
_CUDA_ERROR = re.compile(r"CUDA error: |Triton Error \[CUDA\]|CUDA driver error")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and those it wraps (torch.compile and Triton re-raise with a cause)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _is_oom(exc: BaseException) -> bool:
    """One exception (not its chain) reports a failed allocation."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    return isinstance(exc, RuntimeError) and _OOM.search(str(exc)) is not None


def classify_failure(exc: BaseException,
                     context_alive: Callable[[], bool] | None = None) -> str:
    """"oom", "poisoned" or "error": what a failure means for the row and for the process.

    A known sticky error is "poisoned" at once. Any other CUDA error is "poisoned" when
    ``context_alive`` (e.g. ``cuda_context_alive`` bound to the device) reports that CUDA
    no longer works, so an error that persists is caught even when its text is new.
    """
    chain = list(_chain(exc))
    if any(_STICKY.search(str(e)) for e in chain):
        return "poisoned"
    if any(_is_oom(e) for e in chain):
        return "oom"
    cuda_error = any(type(e).__name__ == "AcceleratorError" or _CUDA_ERROR.search(str(e))
                     for e in chain)
    if cuda_error and context_alive is not None and not context_alive():
        return "poisoned"
    return "error"


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether an exception means the device (CUDA or CPU allocator) ran out of memory."""
    return classify_failure(exc) == "oom"


def needs_restart(failure: str) -> bool:
    """Whether the process must be replaced before it measures anything else."""
    return failure == "poisoned"


def classify_on_device(exc: BaseException, device: str) -> str:
    """``classify_failure`` with the CUDA probe bound to the device where the step ran."""
    probe = (lambda: cuda_context_alive(device)) if device.startswith("cuda") else None
    return classify_failure(exc, context_alive=probe)


def cuda_context_alive(device: str = "cuda") -> bool:
    """Whether CUDA still works in this process: a tiny kernel and a synchronize succeed."""
    import torch

    try:
        probe = torch.ones(1, device=device)
        probe.add_(1)
        torch.cuda.synchronize(torch.device(device))
        return bool(probe.item() == 2.0)
    except Exception:
        return False
