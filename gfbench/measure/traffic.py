"""Bytes moved by one forward pass: what every kernel reads and writes, traced with the FLOPs.

FLOPs alone do not predict speed: an op whose bytes outweigh its arithmetic waits on memory,
and the ratio of the two (arithmetic intensity, FLOP per byte) places it under the memory or
the compute roof of the roofline model (Williams, Waterman & Patterson, "Roofline: an
insightful visual performance model for multicore architectures", CACM 52(4), 2009).

The convention (summed up in ``gfbench.defaults.BYTES_CONVENTION``), applied to the aten ops
the dispatcher runs in the very trace that counts the FLOPs (``gfbench.measure.flops``, meta
device, one forward pass):

* every op that runs a kernel reads each of its tensor inputs once and writes each of its
  outputs once, at their dtype (elements * element size; a complex element counts both
  parts), weights and buffers included: each op is its own kernel, nothing is fused. A tensor
  passed twice (``x * x``) is read once. Element-wise ops, softmax, activations and residual
  adds move bytes although they count no FLOPs, so bytes cover more ops than FLOPs do;
* views and aliases (``view``, ``transpose``, ``expand``, ``_unsafe_view``, ``detach``,
  and in-place restrides such as ``as_strided_``) move nothing; copies (``clone``,
  ``contiguous``, ``cat``, ``_to_copy``) read and write; ``copy_``, ``fill_`` and ``zero_``
  only write their destination; creation ops write their output (``zeros``, ``arange``...)
  or nothing (``empty``: no kernel);
* an in-place op (``add_``) reads its inputs, its destination included, and writes the
  destination once;
* one exception, fused in practice: ``F.scaled_dot_product_attention`` runs one kernel (flash,
  memory-efficient, cuDNN, or the CPU flash kernel) that reads Q, K, V (and a mask) and writes
  O once, the N x N scores never reaching memory; the logsumexp it keeps for the backward pass
  is written only when the module traced is training. On the meta device torch lowers it to
  its math path (two bmm and a softmax), so the call is seen at the function level and the
  ops inside it are not counted again. GFNet's global filter, as released, is three kernels
  on the meta device too: ``_fft_r2c`` (rfft2), the complex ``mul``, ``_fft_c2r`` (irfft2).

What it ignores: caches (a weight read by every image of a batch, or a tensor reused by the
next op, is counted each time a kernel reads it from the program's point of view, not from
DRAM's), fusion by compilers (``torch.compile``, cuDNN's fused epilogues), the allocator, and
index ops reading only what they gather (``index_select`` counts its whole source).

The count follows the dtypes of the trace: float32 on the meta device. Autocast does not apply
to meta tensors, so fp16/bf16 rows (autocast casts matmul inputs to 2-byte copies) are not
counted: gfbench leaves their bytes empty rather than guess.

>>> import torch
>>> tensor_bytes(torch.empty(2, 3, dtype=torch.complex64, device="meta"))
48
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

# Aliasing ops the dispatcher does not flag as views (func.is_view is False for these).
VIEWS = frozenset({"_unsafe_view", "alias", "detach", "lift_fresh", "_reshape_alias"})
# Ops that only allocate: no kernel, no bytes.
ALLOCATIONS = frozenset({"empty", "empty_like", "empty_strided", "new_empty",
                         "new_empty_strided"})
# Ops that write their output (or destination) without reading a tensor input's values.
WRITE_ONLY = frozenset({"copy_", "fill_", "zero_", "zeros", "zeros_like", "ones", "ones_like",
                        "full", "full_like", "new_zeros", "new_ones", "new_full", "arange",
                        "rand", "randn", "rand_like", "randn_like", "scalar_tensor"})

ModuleKey = Callable[[], str]  # which module an op runs under, asked at the op


def tensor_bytes(tensor: torch.Tensor) -> int:
    """Bytes of a tensor's elements at its dtype (complex counts both parts)."""
    return tensor.numel() * tensor.element_size()


def distinct_tensors(values: Iterable[Any]) -> list[torch.Tensor]:
    """The tensors among (nested) values, each object once: a tensor passed twice is read once."""
    seen: set[int] = set()
    found = []
    for leaf in tree_leaves(list(values)):
        if isinstance(leaf, torch.Tensor) and id(leaf) not in seen:
            seen.add(id(leaf))
            found.append(leaf)
    return found


def is_view(func: Any) -> bool:
    """Whether an aten op only makes a view: out-of-place (``transpose``) or in place on the
    tensor's metadata (``as_strided_``, ``unsqueeze_``: tagged inplace_view)."""
    return bool(getattr(func, "is_view", False)) or \
        torch.Tag.inplace_view in getattr(func, "tags", ())


def op_bytes(name: str, view: bool, inputs: Sequence[Any], outputs: Any) -> int:
    """Bytes one aten op moves under the convention: tensor inputs read, outputs written once
    (``view``: the dispatcher flags the op as a view)."""
    if view or name in VIEWS or name in ALLOCATIONS:
        return 0
    written = sum(tensor_bytes(t) for t in distinct_tensors([outputs]))
    if name in WRITE_ONLY:
        reads = distinct_tensors(inputs[1:]) if name == "copy_" else []
    else:
        reads = distinct_tensors(inputs)
    return written + sum(tensor_bytes(t) for t in reads)


def fused_attention_bytes(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                          mask: torch.Tensor | None, out: torch.Tensor,
                          logsumexp: bool) -> int:
    """One fused SDPA kernel: Q, K, V (and the mask) read once, O written once, and the
    float32 logsumexp (batch, heads, Nq) the backward pass needs when ``logsumexp``."""
    moved = sum(tensor_bytes(t) for t in distinct_tensors([q, k, v, mask])) + tensor_bytes(out)
    if logsumexp:
        moved += q.shape[:-1].numel() * torch.finfo(torch.float32).bits // 8
    return moved


class _FusedAttention(TorchFunctionMode):
    """Sees F.scaled_dot_product_attention before torch lowers it, counts it as one kernel and
    tells the op recorder to ignore the ops its lowering runs."""

    def __init__(self, trace: ByteTrace):
        super().__init__()
        self.trace = trace

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        if func is not torch.nn.functional.scaled_dot_product_attention \
                or self.trace.inside_fused:
            return func(*args, **kwargs)
        self.trace.inside_fused = True
        try:
            out = func(*args, **kwargs)
        finally:
            self.trace.inside_fused = False
        q, k, v = args[:3]
        mask = kwargs.get("attn_mask", args[3] if len(args) > 3 else None)
        self.trace.record("scaled_dot_product_attention", fused_attention_bytes(
            q, k, v, mask if isinstance(mask, torch.Tensor) else None, out,
            self.trace.training))
        return out


class _OpBytes(TorchDispatchMode):
    """Records the bytes of every aten op that runs outside a fused call."""

    def __init__(self, trace: ByteTrace):
        super().__init__()
        self.trace = trace

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if not self.trace.inside_fused:
            name = func._overloadpacket.__name__
            moved = op_bytes(name, is_view(func), [*args, *kwargs.values()], out)
            if moved:
                self.trace.record(name, moved)
        return out


class ByteTrace:
    """Bytes moved by the ops run while entered, by module (as ``module_key`` names it at each
    op) and operator; enter it inside the FLOP counter so both see the same ops."""

    def __init__(self, module_key: ModuleKey, training: bool = False):
        self.module_key = module_key
        self.training = training  # fused attention keeps its logsumexp for the backward pass
        self.inside_fused = False
        self.by_module: dict[str, Counter[str]] = {}  # module key -> op -> bytes
        self._stack = contextlib.ExitStack()

    def record(self, op: str, moved: int) -> None:
        """Add the bytes of one op to the module running it."""
        self.by_module.setdefault(self.module_key(), Counter())[op] += moved

    def __enter__(self) -> ByteTrace:
        self._stack.enter_context(_FusedAttention(self))
        self._stack.enter_context(_OpBytes(self))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

