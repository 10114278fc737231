"""Count FLOPs (multiply-adds, gfbench's convention) with two engines that share one rule table.

* ``engine="torch"``: torch's ``FlopCounterMode`` on the **meta device**. The model is built
  (or moved) there, so no memory is allocated and nothing is computed: DeiT-S at 2048x2048
  counts in a fraction of a second although its attention matrices would need tens of GB.
* ``engine="fvcore"``: fvcore's ``FlopCountAnalysis``, which traces the model with real
  tensors (it cannot trace timm's models on meta): use it where the model fits in memory.
  A model it builds is built on meta and given zeroed CPU storage
  (``gfbench.models.meta.materialise``) instead of random weights: values never change a
  count, and random initialisation of a large model takes seconds.

Both use ``gfbench.measure.handles`` (FFT, complex product, SDPA, pooling, normalisation),
report what stayed uncounted, and never print. They agree exactly on gfbench's models and
mixers; one known difference: a global average pool written as ``AdaptiveAvgPool2d(1)``
is one FLOP per input element to fvcore but a (free) mean to the dispatcher torch sees.

Each engine traces once into one ``FlopCount``: every module's *own* FLOPs by operator (the
engines' per-module counts are inclusive, so a module's own part is its count minus that of
its nearest counted descendants) and its own uncounted calls. The total, the per-operator
and the per-module views are sums of that one table, so they add up to each other exactly;
`gfbench complexity` reads the total, `gfbench breakdown` the modules. The torch engine also
records the bytes every op reads and writes in the same trace (``gfbench.measure.traffic``),
each op under the innermost module running it (that module's own part, as for uncounted
calls), so per-module bytes add up to the total too; fvcore's trace gives no bytes (None).

A training count (``train=True``, torch engine) also runs autograd's backward on meta inside
the same counter, so the backward ops autograd really runs are counted by the same rules
(a frozen weight's gradient and the images' gradient are never computed, hence never
counted), into tables of their own (``backward_flops``) beside the forward's.

>>> from gfbench.layers import build_mixer
>>> count_flops(lambda: build_mixer("spatial_mlp", 384, 14), (1, 14, 14, 384)).total
14751744
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode
from torch.utils.module_tracker import ModuleTracker

from gfbench.measure.handles import fvcore_handles, torch_mapping
from gfbench.measure.traffic import ByteTrace

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
    """One pass counted once: each module's own FLOPs (multiply-adds) and uncounted calls by
    operator, so the total, per-operator and per-module views always agree. A training count
    keeps the backward pass in tables of its own, so the forward stays readable alone."""

    engine: str
    module_flops: dict[str, dict[str, int]]  # module path ("" = the model) -> op -> own FLOPs
    module_uncounted: dict[str, dict[str, int]]  # module path -> op -> own calls worth zero
    backward_flops: dict[str, dict[str, int]] = field(default_factory=dict)  # train: as above
    backward_uncounted: dict[str, dict[str, int]] = field(default_factory=dict)
    # module path -> op -> bytes its own ops read and write (gfbench.measure.traffic);
    # None where the engine records no bytes (fvcore)
    module_bytes: dict[str, dict[str, int]] | None = None
    backward_bytes: dict[str, dict[str, int]] = field(default_factory=dict)  # train

    @property
    def forward_total(self) -> int:
        """FLOPs of the forward pass."""
        return sum(sum(ops.values()) for ops in self.module_flops.values())

    @property
    def backward_total(self) -> int:
        """FLOPs of the backward pass (0 for an inference count)."""
        return sum(sum(ops.values()) for ops in self.backward_flops.values())

    @property
    def total(self) -> int:
        """FLOPs of everything counted: the forward pass, plus the backward in training."""
        return self.forward_total + self.backward_total

    @property
    def by_operator(self) -> dict[str, int]:
        """op -> FLOPs over the whole model, both passes (ops that counted nothing left out)."""
        return _summed([*self.module_flops.values(), *self.backward_flops.values()])

    @property
    def by_module(self) -> dict[str, int]:
        """module path -> the FLOPs it does itself, both passes, not its children's (adds up
        to the total)."""
        return _summed({path: sum(ops.values())} for path, ops in
                       [*self.module_flops.items(), *self.backward_flops.items()])

    @property
    def uncounted(self) -> dict[str, int]:
        """op -> calls over the whole model that no rule counted (element-wise, softmax...)."""
        return _summed([*self.module_uncounted.values(), *self.backward_uncounted.values()])

    @property
    def bytes_total(self) -> int | None:
        """Bytes everything counted reads and writes: the forward pass, plus the backward in
        training (None: the engine records no bytes)."""
        by_module = self.bytes_by_module
        return None if by_module is None else sum(by_module.values())

    @property
    def forward_bytes_total(self) -> int | None:
        """Bytes of the forward pass alone (None: the engine records no bytes)."""
        if self.module_bytes is None:
            return None
        return sum(sum(ops.values()) for ops in self.module_bytes.values())

    @property
    def bytes_by_operator(self) -> dict[str, int] | None:
        """op -> bytes over the whole model, both passes (None: the engine records none)."""
        if self.module_bytes is None:
            return None
        return _summed([*self.module_bytes.values(), *self.backward_bytes.values()])

    @property
    def bytes_by_module(self) -> dict[str, int] | None:
        """module path -> the bytes its own ops move in both passes (adds up to
        ``bytes_total``)."""
        if self.module_bytes is None:
            return None
        moved = _summed([{path: sum(ops.values())} for path, ops in
                         [*self.module_bytes.items(), *self.backward_bytes.items()]])
        return moved

    def uncounted_summary(self) -> str:
        """'op:calls;op:calls' (most frequent first), the form results rows store."""
        return format_uncounted(self.uncounted)


def _summed(tables: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """The tables added up key by key, zeros left out."""
    total: Counter[str] = Counter()
    for table in tables:
        total.update(table)
    return {key: n for key, n in total.items() if n}


def format_uncounted(calls: Mapping[str, int]) -> str:
    """Uncounted op calls as 'op:calls;op:calls', most frequent first (rows store this form)."""
    return ";".join(f"{op}:{n}" for op, n in sorted(calls.items(), key=lambda kv: (-kv[1], kv[0]))
                    if n)


# --- module paths and own parts --------------------------------------------------------------


def parent_path(path: str) -> str | None:
    """'blocks.0.attn' -> 'blocks.0'; 'head' -> '' (the model); '' -> None."""
    if not path:
        return None
    return path.rsplit(".", 1)[0] if "." in path else ""


def nearest_known(path: str, known: Iterable[str] | Mapping[str, object]) -> str:
    """The path itself if known, else its nearest known ancestor (the model at worst)."""
    current: str | None = path
    while current is not None and current not in known:
        current = parent_path(current)
    return current or ""


def own_parts(inclusive: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, int]]:
    """Each module's own counts: its inclusive counts minus its nearest counted descendants'
    (zeros and modules left with nothing of their own left out)."""
    own = {path: Counter(counts) for path, counts in inclusive.items()}
    own.setdefault("", Counter())
    for path, counts in inclusive.items():
        if path:
            own[nearest_known(parent_path(path) or "", inclusive)].subtract(counts)
    return {path: table for path, counts in own.items()
            if (table := {k: v for k, v in counts.items() if v})}


def _tracked_path(qualified: str) -> str:
    """ModuleTracker's 'VisionTransformer.blocks.0.attn' (or 'Global') -> 'blocks.0.attn'."""
    return qualified.split(".", 1)[1] if "." in qualified else ""


# --- engine "torch": FlopCounterMode on the meta device ----------------------------------------


class UncountedOps(TorchDispatchMode):
    """Records every arithmetic op that the mapping leaves at zero (element-wise, softmax...),
    under the innermost module the tracker sees running it. With ``follow_autograd`` (the
    backward pass) it first points the tracker at the modules whose forward made the
    autograd node now running (``_TrainingTrace`` tagged them), for the counter too."""

    def __init__(self, mapping: dict[Any, Callable[..., int]], tracker: ModuleTracker):
        super().__init__()
        self.mapping = mapping
        self.tracker = tracker
        self.by_module: dict[str, Counter[str]] = {}  # tracker's module name -> op -> calls
        self.follow_autograd = False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        if self.follow_autograd:
            node = torch._C._current_autograd_node()
            tags = getattr(node, "metadata", {})  # (torch's stubs call it a method)
            self.tracker.parents = set(tags.get(_MODULES, {"Global"}))
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
        """Note one uncounted call under the innermost module running it."""
        self.by_module.setdefault(innermost(self.tracker), Counter())[name] += 1


def innermost(tracker: ModuleTracker) -> str:
    """The tracker's name of the innermost module running now ('Global' outside them all)."""
    return max(tracker.parents, key=lambda q: (q != "Global", q.count(".")))


def _by_path(by_tracked: Mapping[str, Mapping[str, int]], paths: Mapping[str, object]
             ) -> dict[str, dict[str, int]]:
    """Tables keyed by the tracker's module names, summed under the model's module paths."""
    tables: dict[str, dict[str, int]] = {}
    for qualified, table in by_tracked.items():
        path = nearest_known(_tracked_path(qualified), paths)
        tables[path] = _summed([tables.get(path, {}), table])
    return tables


def _on_meta(model_or_builder: ModelOrBuilder) -> nn.Module:
    """The model on the meta device: built there (no initialisation), or a copy moved there."""
    if isinstance(model_or_builder, nn.Module):
        if all(p.is_meta for p in model_or_builder.parameters()):
            return model_or_builder
        return copy.deepcopy(model_or_builder).to("meta")
    from gfbench.models.meta import on_meta  # (gfbench.models imports timm: bare mixers don't)

    with on_meta():
        return model_or_builder()


_MODULES = "gfbench_modules"  # autograd node metadata: the tracker's modules that made it


def _tag_graph(node: Any, modules: frozenset[str]) -> None:
    """Tag an autograd node and every untagged node behind it (made by the same call: the
    nodes of earlier calls are tagged already) with the modules running the call."""
    stack = [node]
    while stack:
        current = stack.pop()
        tags = getattr(current, "metadata", None)
        if tags is None or _MODULES in tags:
            continue
        tags[_MODULES] = modules
        stack.extend(following for following, _ in current.next_functions)


class _TrainingTrace(TorchFunctionMode):
    """The forward of a training count: tags each autograd node with the modules running the
    call that made it, so its backward ops count under the same modules (torch's
    ModuleTracker enters and leaves modules in backward by gradient hooks, which misfire
    on modules that return their input, such as nn.Identity, and leave modules entered).

    It also sends scaled_dot_product_attention on meta to the fused CPU kernel's meta
    version: on meta torch picks SDPA's math path (softmax(QK^T)V as bmm's), whose backward
    is the explicit matmul gradients, where every device picks a fused kernel (flash,
    efficient, cudnn or CPU flash) whose backward recomputes the scores. The forward count
    is the same; ``enable_gqa`` calls stay on the math path (the CPU kernel lacks it)."""

    def __init__(self, tracker: ModuleTracker):
        super().__init__()
        self.tracker = tracker

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        out = fused_attention(args, kwargs) if func is F.scaled_dot_product_attention \
            else None
        out = func(*args, **kwargs) if out is None else out
        modules = frozenset(self.tracker.parents)
        for value in tree_flatten(out)[0]:
            if isinstance(value, torch.Tensor) and value.grad_fn is not None:
                _tag_graph(value.grad_fn, modules)
        return out


def fused_attention(args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
    """SDPA by the fused CPU kernel on 4-D meta tensors (what a device runs, where meta would
    take the math path); None where it does not apply. The FLOP and memory traces share it."""
    q, k, v, *rest = args
    if kwargs.get("enable_gqa") or not all(t.is_meta and t.dim() == 4 for t in (q, k, v)):
        return None
    options = {**dict(zip(("attn_mask", "dropout_p", "is_causal"), rest, strict=False)),
               **kwargs}
    kernel = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    return kernel(q, k, v, options.get("dropout_p", 0.0), options.get("is_causal", False),
                  attn_mask=options.get("attn_mask"), scale=options.get("scale"))[0]


def _backward_from_outputs(output: Any) -> None:
    """Backward from every floating output that needs a gradient, with a gradient of ones:
    the gradients of ``output.sum()`` (a tuple's parts summed too) without running that sum,
    so the loss adds nothing (a loss is element-wise or a softmax: not counted)."""
    leaves = [t for t in tree_flatten(output)[0]
              if isinstance(t, torch.Tensor) and t.is_floating_point() and t.requires_grad]
    torch.autograd.backward(leaves, [torch.ones_like(t) for t in leaves])


def _module_tables(flops: Mapping[str, Mapping[Any, int]],
                   uncounted: Mapping[str, Mapping[str, int]], paths: Mapping[str, object]
                   ) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    """The counter's inclusive counts (keyed by the tracker's names) and the recorder's calls
    as own FLOPs and own uncounted calls per module path."""
    counts = {qualified: {packet.__name__: int(n) for packet, n in by_op.items() if n}
              for qualified, by_op in flops.items()}
    inclusive = {nearest_known(_tracked_path(q), paths): by_op for q, by_op in counts.items()
                 if q != "Global"}
    inclusive[""] = counts.get("Global", {})  # the model's own part: also ops outside modules
    own_uncounted: dict[str, dict[str, int]] = {}
    for qualified, calls in uncounted.items():
        path = nearest_known(_tracked_path(qualified), paths)
        own_uncounted[path] = _summed([own_uncounted.get(path, {}), calls])
    return own_parts(inclusive), own_uncounted


def _minus(after: Mapping[str, Mapping[Any, int]], before: Mapping[str, Mapping[Any, int]]
           ) -> dict[str, dict[Any, int]]:
    """What each module's counts grew by between two snapshots (the backward pass)."""
    return {name: grown for name, ops in after.items()
            if (grown := {op: n - before.get(name, {}).get(op, 0) for op, n in ops.items()
                          if n != before.get(name, {}).get(op, 0)})}


def _count_torch(model_or_builder: ModelOrBuilder, input_shape: Sequence[int],
                 train: bool = False, input_grad: bool = False) -> FlopCount:
    """One meta-device forward (in training, then its backward) under FlopCounterMode
    (gfbench's mapping) and an uncounted-op recorder, both attributing to modules by the
    counter's own module tracker (in the backward, set to the modules whose forward made the
    autograd node running); the backward is what the counts grew by after the forward."""
    model = _on_meta(model_or_builder).train(train)
    paths = dict(model.named_modules())
    example = torch.empty(*input_shape, device="meta", requires_grad=input_grad)
    mapping = torch_mapping()
    counter = FlopCounterMode(display=False, custom_mapping=mapping)
    recorder = UncountedOps(mapping, counter.mod_tracker)  # the modules FLOPs are counted under
    traffic = ByteTrace(lambda: innermost(counter.mod_tracker), training=model.training)
    # autograd stays on: FlopCounterMode's module tracker fails under no_grad on some heads
    # (timm's attention pooling), and on meta tensors the graph costs nothing
    trace = _TrainingTrace(counter.mod_tracker) if train else contextlib.nullcontext()
    with counter, recorder, traffic:
        with trace:
            output = model(example)
        forward = (counter.get_flop_counts(), copy.deepcopy(recorder.by_module),
                   copy.deepcopy(traffic.by_module))
        if train:
            recorder.follow_autograd = True
            _backward_from_outputs(output)
    own, uncounted = _module_tables(*forward[:2], paths)
    moved = _by_path(forward[2], paths)
    if not train:
        return FlopCount("torch", own, uncounted, module_bytes=moved)
    backward = _module_tables(_minus(counter.get_flop_counts(), forward[0]),
                              _minus(recorder.by_module, forward[1]), paths)
    return FlopCount("torch", own, uncounted, *backward, module_bytes=moved,
                     backward_bytes=_by_path(_minus(traffic.by_module, forward[2]), paths))


# --- engine "fvcore": FlopCountAnalysis on real tensors ----------------------------------------


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


def _built_for_tracing(builder: Callable[[], nn.Module], on_cpu: bool) -> nn.Module:
    """The builder's module on real CPU tensors without random initialisation: built on meta
    and materialised (zeroed storage, timm's computed buffers recomputed), or with
    ``on_cpu`` built on the CPU with its parameters' initialisation turned into zeros."""
    from gfbench.models.meta import materialise, on_meta

    if on_cpu:
        with _ZeroInit():
            return builder()
    with on_meta():
        model = builder()
    return materialise(model)


def _count_fvcore(model_or_builder: ModelOrBuilder, input_shape: Sequence[int],
                  train: bool = False) -> FlopCount:
    """fvcore's count of a module (a meta one is materialised first) or of a builder's module,
    built on meta and materialised; where that one cannot be traced (a buffer whose values
    matter that timm cannot recompute), built again on the CPU with zeroed parameters."""
    from gfbench.models.meta import is_meta, materialise

    if isinstance(model_or_builder, nn.Module):
        model = model_or_builder
        return _trace_fvcore(materialise(model) if is_meta(model) else model, input_shape, train)
    try:
        return _trace_fvcore(_built_for_tracing(model_or_builder, on_cpu=False), input_shape,
                             train)
    except Exception:  # the CPU build is the reference: its failure is the error
        return _trace_fvcore(_built_for_tracing(model_or_builder, on_cpu=True), input_shape,
                             train)


def _trace_fvcore(model: nn.Module, input_shape: Sequence[int], train: bool = False
                  ) -> FlopCount:
    """fvcore's FlopCountAnalysis with gfbench's handles, traced once on the model's real
    tensors; its inclusive by-module counts and unsupported ops taken apart into own parts."""
    with warnings.catch_warnings():  # importing fvcore warns about torch.jit.script
        warnings.simplefilter("ignore")
        from fvcore.nn import FlopCountAnalysis

    model = model.train(train)  # train: BatchNorm counted as training BatchNorm
    device = next(iter(model.parameters()), torch.empty(0)).device
    example = torch.zeros(*input_shape, device=device)
    analysis = (FlopCountAnalysis(model, (example,))
                .set_op_handle(**fvcore_handles(), **dict.fromkeys(_FVCORE_FREE))
                .unsupported_ops_warnings(False).uncalled_modules_warnings(False)
                .tracer_warnings("none"))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inclusive = {path: {op: int(n) for op, n in by_op.items() if n}
                     for path, by_op in analysis.by_module_and_operator().items()}
    unsupported = {path: {op.removeprefix("aten::"): int(n)
                          for op, n in analysis.unsupported_ops(path).items()}
                   for path in inclusive}
    return FlopCount("fvcore", own_parts(inclusive), own_parts(unsupported))


def count_flops(model_or_builder: ModelOrBuilder, input_shape: Sequence[int],
                engine: str = "torch", train: bool = False,
                input_grad: bool = False) -> FlopCount:
    """FLOPs of one forward pass at ``input_shape`` (batch included: use 1 for per-image),
    traced once: complexity reads its total, breakdown its per-module tables.

    ``model_or_builder`` is a module or a zero-argument function that builds one; give a
    builder to the torch engine so the model is created on the meta device directly.
    ``train`` counts a training step's passes: the forward in train mode, then (torch engine;
    fvcore traces the forward alone) the backward autograd really runs from the outputs
    (``backward_flops``): a frozen parameter (requires_grad False) gets no gradient and costs
    nothing, nor does the input's gradient unless ``input_grad`` (a bare layer standing inside
    a network). The optimizer's update is element-wise: not counted.
    """
    if engine == "torch":
        return _count_torch(model_or_builder, input_shape, train, input_grad)
    if engine == "fvcore":
        return _count_fvcore(model_or_builder, input_shape, train)
    raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")


def count_params(model: nn.Module) -> int:
    """Number of parameters (works on the meta device)."""
    return sum(p.numel() for p in model.parameters())
