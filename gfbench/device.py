"""One home for devices and precisions: which device a command runs on, and how it is named.

Every command (complexity, robustness) resolves ``--device`` here, with the same rules:
``auto`` is the first GPU when there is one, else the CPU; under torchrun each rank takes the
GPU of its local rank; an index that does not exist is refused in one line.
"""

from __future__ import annotations

import contextlib
import re

import torch

from gfbench.errors import GfbenchError

# Autocast dtypes by precision name; fp32 runs without autocast.
PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "fp16": torch.float16,
                                             "bf16": torch.bfloat16}


def resolve_device(device: str, local_rank: int | None = None) -> str:
    """'auto' -> 'cuda:0' (or 'cuda:<local_rank>' under torchrun) when a GPU is present, else
    'cpu'; checks that cuda:i exists. Returns a torch device string."""
    text = device.strip().lower()
    if text == "auto":
        text = "cuda" if torch.cuda.is_available() else "cpu"
    if text == "cpu":
        return "cpu"
    match = re.fullmatch(r"cuda(?::(\d+))?", text)
    if match is None:
        raise GfbenchError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:<index>")
    if not torch.cuda.is_available():
        raise GfbenchError(f"--device {device}: no CUDA device is available here (use cpu)")
    index = int(match.group(1) or 0) if local_rank is None else local_rank
    if index >= torch.cuda.device_count():
        raise GfbenchError(f"--device {device}: only {torch.cuda.device_count()} CUDA "
                           f"device(s) here (cuda:0..cuda:{torch.cuda.device_count() - 1})")
    return f"cuda:{index}"


def use_device(device: str, local_rank: int | None = None) -> torch.device:
    """resolve_device's choice as a torch.device, made the current CUDA device (so kernels and
    allocations of code that does not name a device land on it too)."""
    resolved = torch.device(resolve_device(device, local_rank))
    if resolved.type == "cuda":
        torch.cuda.set_device(resolved)
    return resolved


def device_kind(device: str) -> str:
    """The device part of a results file name: 'cpu', 'meta', or the GPU's name as a slug."""
    if device.startswith("cuda"):
        name = torch.cuda.get_device_name(torch.device(device))
        return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return device


def autocast(device: torch.device | str, precision: str) -> contextlib.AbstractContextManager:
    """Autocast to fp16/bf16 on the device, or nothing for fp32."""
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)
