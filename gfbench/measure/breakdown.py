"""Where a model's FLOPs and parameters go: per module at a chosen depth, grouped by role.

Both counting engines report per-module counts: torch's ``FlopCounterMode`` (on the meta
device) by the module hierarchy it tracks, fvcore's ``FlopCountAnalysis`` by ``by_module``.
Both are *inclusive* (a module's count holds its children's), so each module's *own* part is
its count minus that of its nearest counted descendants; the own parts add up to the engine's
model total exactly. Ops that no rule counts are kept per module the same way.

Every module gets one role, decided once for the subtree it heads (descendants inherit it):

* token mixer, channel MLP, norm, embedding, head: by the module's type (a registry, walked
  along the class hierarchy), then by its class name (``WindowAttention``, ``ConvMlp``...),
  then by its attribute name (``attn``, ``mlp``, ``norm1``, ``head``, ``patch_embed``...);
  the attribute names ``linear_tokens`` and ``mlp_tokens`` come first, because ResMLP and
  MLP-Mixer mix tokens with the very layers (Linear, Mlp) that mix channels elsewhere;
* "other": what a module that plays none of these roles does itself (residual adds,
  layer-scale products, a block's own parameters). Parameters a model holds at its top level
  go by name: ``pos_embed`` and ``cls_token`` are embedding.

A breakdown at depth D lists the modules D attribute names below the model (depth 0: the
whole model; 1: ``blocks``, ``head``...; 3: ``blocks.0.attn``...), one row per (module,
role) it contains, plus the *own* part of any shallower module that does something itself
(``(model)`` own: the position embedding). Rows that hold nothing (no FLOPs, no parameters,
no uncounted op) are left out.

>>> rows = breakdown_setting("deit-s", (224, 224), depth=0, engine="torch")
>>> {r.group: r.flops for r in rows}["token_mixer"]  # 12 * (N*D*3D + N*D*D + 2*N^2*D), N = 197
1752007680
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.utils.module_tracker import ModuleTracker

from gfbench.errors import GfbenchError, first_line
from gfbench.measure.flops import (
    UncountedOps,
    format_uncounted,
    fvcore_analysis,
    torch_counter_pass,
)
from gfbench.measure.handles import torch_mapping
from gfbench.measure.quality import load_average
from gfbench.results import (
    DEFAULT_OUT,
    BreakdownRow,
    check_output_folder,
    collect_provenance,
    new_run,
)
from gfbench.results.schema import BREAKDOWN_GROUPS

GROUPS = BREAKDOWN_GROUPS
ENGINES = ("torch", "fvcore")
ENGINE_CHOICES = (*ENGINES, "both")
MODEL_LABEL = "(model)"  # how a row names the model itself (its path is the empty string)
DEFAULT_MODELS = ("gfnet", "deit", "resmlp")
DEFAULT_RESOLUTIONS = ("224", "384", "512")
DEFAULT_DEPTH = 1

# --- roles -----------------------------------------------------------------------------------

# Attribute names that decide before the type: the same Linear / Mlp mixes tokens here.
ROLE_NAMES = {"linear_tokens": "token_mixer", "mlp_tokens": "token_mixer",
              "mlp_channels": "channel_mlp"}

# Class-name patterns for the many model-specific classes of timm (first match wins; "Head"
# first, so NormMlpClassifierHead is a head, not a norm or an MLP).
CLASS_PATTERNS = (
    (re.compile(r"Head|AttentionPool"), "head"),
    (re.compile(r"PatchEmbed|Stem|PatchMerging"), "embedding"),
    (re.compile(r"Attention|Attn|TokenMixer|GlobalFilter"), "token_mixer"),
    (re.compile(r"Mlp|FeedForward|Ffn|SwiGLU"), "channel_mlp"),
    (re.compile(r"^(?!Conv).*Norm(Act)?(\dd)?(Fp32)?$"), "norm"),  # not ConvNormAct blocks
)

# Attribute names, the last resort (norm1, attn2... by the name without the number).
# Judgement calls: a depthwise convolution (conv_dw: ConvNeXt, EfficientNet) mixes tokens;
# downsampling between stages re-embeds them.
ATTRIBUTE_NAMES = {
    "attn": "token_mixer", "token_mixer": "token_mixer", "mixer": "token_mixer",
    "filter": "token_mixer", "conv_dw": "token_mixer",
    "mlp": "channel_mlp", "ffn": "channel_mlp", "channel_mlp": "channel_mlp",
    "norm": "norm", "fc_norm": "norm", "norm_pre": "norm", "bn": "norm",
    "patch_embed": "embedding", "stem": "embedding", "conv_stem": "embedding",
    "downsample": "embedding",
    "pos_embed": "embedding",
    "head": "head", "head_dist": "head", "fc": "head", "classifier": "head",
    "last_linear": "head",
}
_NUMBERED = re.compile(r"^(norm|bn|attn|mlp)\d+$")

# Parameters a module of no role holds itself (a ViT's position embedding and class token).
PARAMETER_NAMES = {"pos_embed": "embedding", "cls_token": "embedding",
                   "dist_token": "embedding", "reg_token": "embedding",
                   "absolute_pos_embed": "embedding", "pos_embed_cls": "embedding"}


@functools.lru_cache(maxsize=1)
def type_groups() -> dict[type, str]:
    """The type registry: gfbench's mixers, torch's norms, timm's blocks, by role."""
    import timm.layers as tl
    from timm.models import mlp_mixer, swin_transformer

    from gfbench.layers import simple_mixers
    from gfbench.layers.attention import Attention
    from gfbench.layers.global_filter import GlobalFilter
    from gfbench.models import gfnet

    token_mixers = (GlobalFilter, Attention, simple_mixers.SpatialMLP, simple_mixers.Pooling,
                    simple_mixers.DepthwiseConv, simple_mixers.FourierMixing,
                    simple_mixers.IdentityMixer, tl.Attention, swin_transformer.WindowAttention,
                    mlp_mixer.SpatialGatingUnit)
    channel_mlps = (tl.Mlp, tl.GluMlp, tl.SwiGLU, tl.GatedMlp, tl.ConvMlp)
    norms = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._NormBase, nn.RMSNorm,
             tl.RmsNorm, mlp_mixer.Affine)
    embeddings = (tl.PatchEmbed, mlp_mixer.PatchEmbed, gfnet.PatchEmbed, gfnet.Downsample,
                  swin_transformer.PatchMerging)
    heads = (tl.ClassifierHead, tl.NormMlpClassifierHead)
    return {kind: group for group, kinds in (
        ("token_mixer", token_mixers), ("channel_mlp", channel_mlps), ("norm", norms),
        ("embedding", embeddings), ("head", heads)) for kind in kinds}


def module_group(attribute: str, module: nn.Module) -> str | None:
    """The role a module heads (None: it plays none, its children are looked at instead)."""
    if attribute in ROLE_NAMES:
        return ROLE_NAMES[attribute]
    if (registered := _registered(module)) is not None:
        return registered
    class_name = type(module).__name__
    for pattern, group in CLASS_PATTERNS:
        if pattern.search(class_name):
            return group
    numbered = _NUMBERED.match(attribute)
    return ATTRIBUTE_NAMES.get(numbered.group(1) if numbered else attribute)


def _registered(module: nn.Module) -> str | None:
    """The module's role in the type registry (along its class hierarchy), if any."""
    registry = type_groups()
    return next((registry[k] for k in type(module).__mro__ if k in registry), None)


def parent_path(path: str) -> str | None:
    """'blocks.0.attn' -> 'blocks.0'; 'head' -> '' (the model); '' -> None."""
    if not path:
        return None
    return path.rsplit(".", 1)[0] if "." in path else ""


def assign_groups(model: nn.Module) -> dict[str, str | None]:
    """Every module path's role: the nearest ancestor's that has one, else its own; a token
    mixer type nested in another role stays a token mixer (gMLP's gating unit in its MLP)."""
    groups: dict[str, str | None] = {"": None}  # the model itself plays no single role
    for path, module in model.named_modules():
        if not path:
            continue
        inherited = groups[parent_path(path) or ""]
        if inherited is None:
            groups[path] = module_group(path.rsplit(".", 1)[-1], module)
        elif inherited != "token_mixer" and _registered(module) == "token_mixer":
            groups[path] = "token_mixer"
        else:
            groups[path] = inherited
    return groups


def module_depth(model: nn.Module) -> tuple[int, str]:
    """The deepest module's depth (attribute names below the model) and its path."""
    deepest = max((p for p, _ in model.named_modules()), key=lambda p: p.count(".") + bool(p))
    return (deepest.count(".") + 1 if deepest else 0), deepest


def check_depth(name: str, model: nn.Module, depth: int) -> None:
    """GfbenchError (one line) unless the model has modules ``depth`` names below it."""
    deepest, path = module_depth(model)
    if not 0 <= depth <= deepest:
        raise GfbenchError(
            f"--depth {depth} does not exist in {name}: its modules go from 0 (the whole model) "
            f"to {deepest} (e.g. {path or MODEL_LABEL}); allowed: 0 to {deepest}")


# --- per-module counts from the engines ------------------------------------------------------


@dataclass
class ModuleCounts:
    """One engine's counts split into each module's own part (path -> op -> count)."""

    engine: str
    total: int
    flops: dict[str, Counter] = field(default_factory=dict)
    uncounted: dict[str, Counter] = field(default_factory=dict)


def nearest_known(path: str, known: Iterable[str] | Mapping[str, object]) -> str:
    """The path itself if known, else its nearest known ancestor (the model at worst)."""
    current: str | None = path
    while current is not None and current not in known:
        current = parent_path(current)
    return current or ""


def own_parts(inclusive: Mapping[str, Counter]) -> dict[str, Counter]:
    """Each module's own counts: its inclusive counts minus its nearest counted descendants'."""
    own = {path: Counter(counts) for path, counts in inclusive.items()}
    own.setdefault("", Counter())
    for path, counts in inclusive.items():
        if path:
            own[nearest_known(parent_path(path) or "", inclusive)].subtract(counts)
    return {path: Counter({k: v for k, v in counts.items() if v}) for path, counts in own.items()}


class _UncountedByModule(UncountedOps):
    """Uncounted calls, each also noted under the innermost module running it."""

    def __init__(self, mapping: dict):
        super().__init__(mapping)
        self.tracker = ModuleTracker()
        self.by_module: dict[str, Counter] = {}

    def __enter__(self):  # noqa: ANN204
        self.tracker.__enter__()
        return super().__enter__()

    def __exit__(self, *exc: object) -> None:
        try:
            super().__exit__(*exc)
        finally:
            self.tracker.__exit__()

    def record(self, name: str) -> None:
        super().record(name)
        innermost = max(self.tracker.parents, key=lambda q: (q != "Global", q.count(".")))
        self.by_module.setdefault(innermost, Counter())[name] += 1


def _tracked_path(qualified: str) -> str:
    """ModuleTracker's 'VisionTransformer.blocks.0.attn' (or 'Global') -> 'blocks.0.attn'."""
    return qualified.split(".", 1)[1] if "." in qualified else ""


def torch_module_counts(meta_model: nn.Module, input_shape: Sequence[int]) -> ModuleCounts:
    """FlopCounterMode's per-module counts on the meta device, as own parts per module path."""
    paths = dict(meta_model.named_modules())
    recorder = _UncountedByModule(torch_mapping())
    counter, _ = torch_counter_pass(meta_model, input_shape, recorder)
    inclusive: dict[str, Counter] = {}
    for qualified, by_op in counter.get_flop_counts().items():
        if qualified != "Global":
            path = nearest_known(_tracked_path(qualified), paths)
            inclusive[path] = Counter({p.__name__: int(n) for p, n in by_op.items() if n})
    flops = own_parts(inclusive)
    total = int(counter.get_total_flops())
    outside = total - sum(inclusive.get("", Counter()).values())  # ops outside the model
    if outside:
        flops[""]["(outside any module)"] += outside
    uncounted: dict[str, Counter] = {}
    for qualified, calls in recorder.by_module.items():
        path = nearest_known(_tracked_path(qualified), paths)
        uncounted.setdefault(path, Counter()).update(calls)
    return ModuleCounts("torch", total, flops, uncounted)


def fvcore_module_counts(builder: Callable[[], nn.Module],
                         input_shape: Sequence[int]) -> ModuleCounts:
    """fvcore's by_module counts (traced on real CPU tensors), as own parts per module path."""
    analysis = fvcore_analysis(builder, input_shape)
    inclusive = {path: Counter({op: int(n) for op, n in by_op.items() if n})
                 for path, by_op in analysis.by_module_and_operator().items()}
    unsupported = {path: Counter({op.removeprefix("aten::"): int(n) for op, n in
                                  analysis.unsupported_ops(path).items()})
                   for path in inclusive}
    return ModuleCounts("fvcore", int(analysis.total()), own_parts(inclusive),
                        own_parts(unsupported))


# --- rows ------------------------------------------------------------------------------------


def cut(path: str, depth: int, has_children: bool) -> tuple[str, bool]:
    """The row a module's own part lands in at ``depth``: (row module path, own part only)."""
    names = path.split(".") if path else []
    if len(names) >= depth:
        return ".".join(names[:depth]), False
    return path, has_children


@dataclass
class _Part:
    """What one (row module, own-only, role) holds."""

    flops: int = 0
    params: int = 0
    uncounted: Counter = field(default_factory=Counter)


def _own_parameters(model: nn.Module) -> dict[str, list[tuple[str, int]]]:
    """path -> (parameter name, elements) it holds itself; a shared parameter counted once."""
    seen: set[int] = set()
    held: dict[str, list[tuple[str, int]]] = {}
    for path, module in model.named_modules():
        for name, param in module.named_parameters(recurse=False):
            if id(param) not in seen:
                seen.add(id(param))
                held.setdefault(path, []).append((name, param.numel()))
    return held


def breakdown_parts(model: nn.Module, counts: ModuleCounts, depth: int
                    ) -> dict[tuple[str, bool, str], _Part]:
    """(row module path, own only, role) -> its FLOPs, parameters and uncounted calls."""
    groups = assign_groups(model)
    params = _own_parameters(model)
    parents = {parent_path(p) for p in groups if p}
    parts: dict[tuple[str, bool, str], _Part] = {}
    for path in groups:
        row_path, own = cut(path, depth, path in parents)
        group = groups[path] or "other"
        flops = counts.flops.get(path, Counter())
        uncounted = counts.uncounted.get(path, Counter())
        if flops or uncounted:
            part = parts.setdefault((row_path, own, group), _Part())
            part.flops += sum(flops.values())
            part.uncounted.update(uncounted)
        for name, numel in params.get(path, []):
            role = groups[path] or PARAMETER_NAMES.get(name, "other")
            parts.setdefault((row_path, own, role), _Part()).params += numel
    return parts


def breakdown_rows(name: str, size: tuple[int, int], model: nn.Module, counts: ModuleCounts,
                   depth: int, tokens: int | None) -> list[BreakdownRow]:
    """The rows of one (model, resolution, engine): module order, roles in GROUPS order."""
    parts = breakdown_parts(model, counts, depth)
    total_params = sum(part.params for part in parts.values())
    order = {path: i for i, (path, _) in enumerate(model.named_modules())}
    rows = []
    for (path, own, group), part in sorted(parts.items(), key=lambda kv: (
            order.get(kv[0][0], len(order)), GROUPS.index(kv[0][2]))):
        if not (part.flops or part.params or part.uncounted):
            continue
        rows.append(BreakdownRow(
            name=name, res_h=size[0], res_w=size[1], tokens=tokens, engine=counts.engine,
            depth=depth, module=path or MODEL_LABEL, own=own, group=group, flops=part.flops,
            params=part.params, flops_share=part.flops / counts.total if counts.total else None,
            params_share=part.params / total_params if total_params else None,
            model_flops=counts.total, model_params=total_params,
            uncounted_ops=format_uncounted(part.uncounted)))
    return rows


def _tokens(model: nn.Module) -> int | None:
    """Tokens the first token mixer sees (a CNN: its stem's grid); None where none is seen."""
    from gfbench.models import token_grid

    grid = token_grid(model)
    return None if grid is None else grid[0] * grid[1]


def _builder(name: str, size: tuple[int, int]) -> Callable[[], nn.Module]:
    """A zero-argument function that builds the model at the size (on the current device)."""
    from gfbench.models import create_model

    return lambda: create_model(name, img_size=size)


def breakdown_setting(name: str, size: tuple[int, int], depth: int,
                      engine: str = "torch") -> list[BreakdownRow]:
    """The breakdown rows of one model at one resolution with one engine."""
    if engine not in ENGINES:
        raise GfbenchError(f"--engine {engine!r} is not one of {', '.join(ENGINE_CHOICES)}")
    builder = _builder(name, size)
    with torch.device("meta"):
        model = builder()
    check_depth(name, model, depth)
    shape = (1, 3, *size)
    counts = (torch_module_counts(model, shape) if engine == "torch"
              else fvcore_module_counts(builder, shape))
    return breakdown_rows(getattr(model, "gfbench_name", name), size, model, counts, depth,
                          _tokens(model))


# --- planning and running --------------------------------------------------------------------


@dataclass(frozen=True)
class BreakdownRequest:
    """What the user asked for, as typed (before validation)."""

    models: Sequence[str] = ()
    resolutions: Sequence[str] = ()
    depth: int = DEFAULT_DEPTH
    engine: str = "torch"
    out: Path | None = None


@dataclass(frozen=True)
class BreakdownPlan:
    """Validated models x resolutions, the depth, the engines, and where the rows go."""

    settings: tuple[tuple[str, tuple[int, int]], ...]
    depth: int
    engines: tuple[str, ...]
    folder: Path
    name: str  # the runs' descriptive name: breakdown-d<depth>-<engine>


def plan_breakdown(request: BreakdownRequest, results_dir: Path = DEFAULT_OUT
                   ) -> BreakdownPlan:
    """Validate a request (GfbenchError, one line, on the first problem) before counting."""
    from gfbench.models import canonical_name, create_model, parse_resolution

    if request.engine not in ENGINE_CHOICES:
        raise GfbenchError(f"--engine {request.engine!r} is not one of "
                           f"{', '.join(ENGINE_CHOICES)}")
    if request.depth < 0:
        raise GfbenchError(f"--depth {request.depth} must be 0 (the whole model) or more")
    folder = check_output_folder(Path(request.out) if request.out else Path(results_dir))
    names = list(dict.fromkeys(canonical_name(n) for n in (request.models or DEFAULT_MODELS)))
    sizes = list(dict.fromkeys(parse_resolution(r)
                               for r in (request.resolutions or DEFAULT_RESOLUTIONS)))
    for name in names:  # every setting must build, at the depth asked: fail now, not later
        for size in sizes:
            with torch.device("meta"):
                model = create_model(name, img_size=size)
            check_depth(name, model, request.depth)
    engines = ENGINES if request.engine == "both" else (request.engine,)
    return BreakdownPlan(tuple((n, s) for n in names for s in sizes), request.depth, engines,
                         folder, f"breakdown-d{request.depth}-{request.engine}")


def _failed_row(name: str, size: tuple[int, int], engine: str, depth: int,
                exc: Exception) -> BreakdownRow:
    """The one row of a setting an engine could not count (the run goes on)."""
    message = first_line(exc)
    return BreakdownRow(name=name, res_h=size[0], res_w=size[1], tokens=None, engine=engine,
                        depth=depth, module=MODEL_LABEL, own=False, group="", status="error",
                        error=message)


def run_breakdown(plan: BreakdownPlan,
                  on_done: Callable[[str, tuple[int, int], str], None] | None = None,
                  ) -> tuple[list[BreakdownRow], Path]:
    """Count every (model, resolution, engine) of the plan into a new run, writing it after
    each; returns the rows and the run's JSON file. No other run's rows are touched.

    An engine that fails on a setting leaves one row with status "error" and its message.
    """
    provenance = collect_provenance("breakdown", device="cpu" if "fvcore" in plan.engines
                                    else "meta", depth=plan.depth, engines=list(plan.engines),
                                    load_average_at_start=load_average())
    with new_run(plan.folder, plan.name, provenance) as writer:
        for name, size in plan.settings:
            for engine in plan.engines:
                try:
                    rows = breakdown_setting(name, size, plan.depth, engine)
                except GfbenchError:
                    raise
                except Exception as exc:  # one engine's failure must not lose the other rows
                    rows = [_failed_row(name, size, engine, plan.depth, exc)]
                writer.extend(rows)
                if on_done:
                    on_done(name, size, engine)
        return list(writer.rows), writer.json_path


# --- the summary a table or a script reads -------------------------------------------------


@dataclass(frozen=True)
class GroupSummary:
    """One (model, resolution, engine): FLOPs and parameters per role, and the totals."""

    name: str
    res_h: int
    res_w: int
    tokens: int | None
    engine: str
    flops: dict[str, int]
    params: dict[str, int]
    model_flops: int
    model_params: int

    @property
    def mixer_share(self) -> float | None:
        """The token mixer's share of the model's FLOPs (None for a model counted as zero)."""
        return self.flops["token_mixer"] / self.model_flops if self.model_flops else None


def summarise(rows: Iterable[BreakdownRow]) -> list[GroupSummary]:
    """Per (model, resolution, engine), the rows added up by role (failed settings left out)."""
    grouped: dict[tuple, list[BreakdownRow]] = {}
    for row in rows:
        if row.status == "ok":
            grouped.setdefault((row.name, row.res_h, row.res_w, row.engine), []).append(row)
    summaries = []
    for (name, res_h, res_w, engine), members in grouped.items():
        flops = dict.fromkeys(GROUPS, 0)
        params = dict.fromkeys(GROUPS, 0)
        for row in members:
            flops[row.group] += row.flops or 0
            params[row.group] += row.params or 0
        first = members[0]
        summaries.append(GroupSummary(name, res_h, res_w, first.tokens, engine, flops, params,
                                      first.model_flops or 0, first.model_params or 0))
    return summaries
