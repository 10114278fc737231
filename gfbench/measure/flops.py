"""Count FLOPs (multiply-adds, gfbench's convention) with two engines that share one rule table.

* ``engine="torch"``: torch's ``FlopCounterMode`` on the **meta device**. The model is built
  (or moved) there, so no memory is allocated and nothing is computed: DeiT-S at 2048x2048
  counts in a fraction of a second although its attention matrices would need tens of GB.
* ``engine="fvcore"``: fvcore's ``FlopCountAnalysis``, which traces the model with real
  tensors (it cannot trace timm's models on meta): use it where the model fits in memory.
  A model it builds gets zeros instead of random weights (values never change a count,
  and random initialisation of a large model takes seconds).

Both use ``gfbench.measure.handles`` (FFT, complex product, SDPA, pooling, normalisation),
report what stayed uncounted, and never print. They agree exactly on gfbench's models and
mixers; one known difference: a global average pool written as ``AdaptiveAvgPool2d(1)``
is one FLOP per input element to fvcore but a (free) mean to the dispatcher torch sees.

>>> from gfbench.layers import build_mixer
>>> count_flops(lambda: build_mixer("spatial_mlp", 384, 14), (1, 14, 14, 384)).total
14751744
"""

from __future__ import annotations

import copy
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from gfbench.measure.handles import fvcore_handles, torch_mapping

ENGINES = ("torch", "fvcore")
ModelOrBuilder = nn.Module | Callable[[], nn.Module]

# Ops that move, view, copy or create data: no arithmetic, so not "uncounted" either.
_DATA_MOVEMENT = frozenset({
    "_to_copy", "_unsafe_view", "alias", "cat", "clone", "constant_pad_nd", "contiguous",
    "copy_", "detach", "empty", "empty_like", "empty_strided", "fill_", "full", "full_like",
    "index", "index_select", "lift_fresh", "new_empty", "new_empty_strided", "new_zeros",
    "new_ones", "ones", "ones_like", "rand", "randn", "repeat", "roll", "stack", "zero_",
    "zeros", "zeros_like", "arange", "gather", "masked_fill", "scalar_tensor",
})

# Traced ops fvcore would list as unsupported although they only reinterpret data.
_FVCORE_FREE = ("aten::view_as_complex", "aten::view_as_real", "aten::real", "aten::imag")


@dataclass(frozen=True)
class FlopCount:
    """FLOPs (multiply-adds) of one forward pass, by operator, and what no rule counted."""

    engine: str
    total: int
    by_operator: dict[str, int]
    uncounted: dict[str, int]  # op name -> calls that contributed nothing

    def uncounted_summary(self) -> str:
        """'op:calls;op:calls' (most frequent first), the form results rows store."""
        return format_uncounted(self.uncounted)


def format_uncounted(calls: Mapping[str, int]) -> str:
    """Uncounted op calls as 'op:calls;op:calls', most frequent first (rows store this form)."""
    return ";".join(f"{op}:{n}" for op, n in sorted(calls.items(), key=lambda kv: (-kv[1], kv[0]))
                    if n)


class UncountedOps(TorchDispatchMode):
    """Records every arithmetic op that the mapping leaves at zero (element-wise, softmax...)."""

    def __init__(self, mapping: dict[Any, Callable[..., int]]):
        super().__init__()
        self.mapping = mapping
        self.calls: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        packet = func._overloadpacket
        name = packet.__name__
        if packet in self.mapping:
            if self.mapping[packet](*args, out_val=out, **kwargs) == 0:
                self.record(name)
        elif not (getattr(func, "is_view", False) or name in _DATA_MOVEMENT):
            self.record(name)
        return out

    def record(self, name: str) -> None:
        """Note one uncounted call (a subclass may also note where it ran)."""
        self.calls[name] += 1


def _on_meta(model_or_builder: ModelOrBuilder) -> nn.Module:
    """The model on the meta device: built there, or a copy moved there."""
    if isinstance(model_or_builder, nn.Module):
        if all(p.is_meta for p in model_or_builder.parameters()):
            return model_or_builder
        return copy.deepcopy(model_or_builder).to("meta")
    with torch.device("meta"):
        return model_or_builder()


def torch_counter_pass(model_or_builder: ModelOrBuilder, input_shape: Sequence[int],
                       recorder: UncountedOps | None = None,
                       ) -> tuple[FlopCounterMode, UncountedOps]:
    """One meta-device forward under FlopCounterMode (gfbench's mapping) and an uncounted-op
    recorder; both are returned for reading (totals, per-module counts, uncounted calls)."""
    model = _on_meta(model_or_builder).eval()
    example = torch.empty(*input_shape, device="meta")
    recorder = recorder if recorder is not None else UncountedOps(torch_mapping())
    counter = FlopCounterMode(display=False, custom_mapping=recorder.mapping)
    # autograd stays on: FlopCounterMode's module tracker fails under no_grad on some heads
    # (timm's attention pooling), and on meta tensors the graph costs nothing
    with counter, recorder:
        model(example)
    return counter, recorder


def _count_torch(model_or_builder: ModelOrBuilder, input_shape: Sequence[int]) -> FlopCount:
    """FlopCounterMode with gfbench's mapping, on meta tensors."""
    counter, recorder = torch_counter_pass(model_or_builder, input_shape)
    by_op = {packet.__name__: int(n) for packet, n in counter.get_flop_counts()
             .get("Global", {}).items() if n}
    return FlopCount("torch", sum(by_op.values()), by_op, dict(recorder.calls))


class _ZeroInit(TorchFunctionMode):
    """Turns in-place initialisation of parameters into zero_(): counting needs real tensors,
    not their values, and random init of a large model costs seconds."""

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        name = getattr(func, "__name__", "")
        if (name.endswith("_") and not name.endswith("__") and args
                and isinstance(args[0], nn.Parameter)):
            with torch.no_grad():
                return args[0].zero_()
        return func(*args, **(kwargs or {}))


def _build_for_tracing(model_or_builder: ModelOrBuilder) -> nn.Module:
    """The module itself, or one built on the CPU with zeroed parameters."""
    if isinstance(model_or_builder, nn.Module):
        return model_or_builder
    with _ZeroInit():
        return model_or_builder()


def fvcore_analysis(model_or_builder: ModelOrBuilder, input_shape: Sequence[int]) -> Any:
    """fvcore's FlopCountAnalysis with gfbench's handles, already run on real tensors (CPU
    when built here), so its total, by_operator, by_module and unsupported_ops views are ready."""
    with warnings.catch_warnings():  # importing fvcore warns about torch.jit.script
        warnings.simplefilter("ignore")
        from fvcore.nn import FlopCountAnalysis

    model = _build_for_tracing(model_or_builder)
    model = model.eval()
    device = next(iter(model.parameters()), torch.empty(0)).device
    example = torch.zeros(*input_shape, device=device)
    analysis = (FlopCountAnalysis(model, (example,))
                .set_op_handle(**fvcore_handles(), **dict.fromkeys(_FVCORE_FREE))
                .unsupported_ops_warnings(False).uncalled_modules_warnings(False)
                .tracer_warnings("none"))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analysis.total()  # traces once; fvcore keeps the statistics
    return analysis


def _count_fvcore(model_or_builder: ModelOrBuilder, input_shape: Sequence[int]) -> FlopCount:
    """fvcore's jit-traced count with gfbench's handles, on real tensors (CPU when built here)."""
    analysis = fvcore_analysis(model_or_builder, input_shape)
    by_op = {op: int(n) for op, n in analysis.by_operator().items() if n}
    uncounted = {op.removeprefix("aten::"): int(n) for op, n in analysis.unsupported_ops().items()}
    return FlopCount("fvcore", sum(by_op.values()), by_op, uncounted)


def count_flops(model_or_builder: ModelOrBuilder, input_shape: Sequence[int],
                engine: str = "torch") -> FlopCount:
    """FLOPs of one forward pass at ``input_shape`` (batch included: use 1 for per-image).

    ``model_or_builder`` is a module or a zero-argument function that builds one; give a
    builder to the torch engine so the model is created on the meta device directly.
    """
    if engine == "torch":
        return _count_torch(model_or_builder, input_shape)
    if engine == "fvcore":
        return _count_fvcore(model_or_builder, input_shape)
    raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")


def count_params(model: nn.Module) -> int:
    """Number of parameters (works on the meta device)."""
    return sum(p.numel() for p in model.parameters())
