"""Where a model's FLOPs and parameters go: per module at a chosen depth, grouped by role.

The counts are the very ``FlopCount`` that ``count_flops`` gives `gfbench complexity`: one
trace per engine, split into each module's *own* FLOPs and uncounted calls (its inclusive
count minus its nearest counted descendants'), which add up to the engine's model total
exactly. This module only assigns roles to modules and cuts the own parts at a depth.

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
(``(model)`` own: the position embedding). Rows that hold nothing (no FLOPs, no bytes moved,
no parameters, no uncounted op) are left out. The torch engine's rows also carry the bytes
their modules' ops read and write (``gfbench.measure.traffic``), which add up to the model's
bytes like the FLOPs; fvcore's rows have none.

>>> rows = breakdown_setting("deit-s", (224, 224), depth=0, engine="torch")
>>> {r.group: r.flops for r in rows}["token_mixer"]  # 12 * (N*D*3D + N*D*D + 2*N^2*D), N = 197
1752007680
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from torch import nn

from gfbench.defaults import BYTES_CONVENTION, DEFAULT_OUT, FLOP_CONVENTION
from gfbench.errors import GfbenchError, RunInterrupted, first_line
from gfbench.measure.flops import ENGINES, FlopCount, count_flops, format_uncounted, parent_path
from gfbench.measure.quality import load_average
from gfbench.results import (
    BreakdownRow,
    check_output_folder,
    collect_provenance,
    new_run,
)
from gfbench.results.schema import BREAKDOWN_GROUPS

GROUPS = BREAKDOWN_GROUPS
ENGINE_CHOICES = (*ENGINES, "both")
MODEL_LABEL = "(model)"  # how a row names the model itself (its path is the empty string)
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
    bytes: int = 0
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


def breakdown_parts(model: nn.Module, counts: FlopCount, depth: int
                    ) -> dict[tuple[str, bool, str], _Part]:
    """(row module path, own only, role) -> its FLOPs, bytes moved, parameters and uncounted
    calls."""
    groups = assign_groups(model)
    params = _own_parameters(model)
    parents = {parent_path(p) for p in groups if p}
    parts: dict[tuple[str, bool, str], _Part] = {}
    for path in groups:
        row_path, own = cut(path, depth, path in parents)
        group = groups[path] or "other"
        flops = counts.module_flops.get(path, {})
        uncounted = counts.module_uncounted.get(path, {})
        moved = (counts.module_bytes or {}).get(path, {})
        if flops or uncounted or moved:
            part = parts.setdefault((row_path, own, group), _Part())
            part.flops += sum(flops.values())
            part.bytes += sum(moved.values())
            part.uncounted.update(uncounted)
        for name, numel in params.get(path, []):
            role = groups[path] or PARAMETER_NAMES.get(name, "other")
            parts.setdefault((row_path, own, role), _Part()).params += numel
    return parts


def breakdown_rows(name: str, size: tuple[int, int], model: nn.Module, counts: FlopCount,
                   depth: int, tokens: int | None, reparam: bool = False,
                   batch: int = 1) -> list[BreakdownRow]:
    """The rows of one (model, resolution, engine): module order, roles in GROUPS order
    (``reparam``: the model is in its deploy form, which the rows record; ``batch``: what
    ``counts`` was traced at, the rows hold per-image values, bytes rounded to a whole one)."""
    parts = breakdown_parts(model, counts, depth)
    total = counts.total // batch
    total_params = sum(part.params for part in parts.values())
    order = {path: i for i, (path, _) in enumerate(model.named_modules())}
    rows = []
    for (path, own, group), part in sorted(parts.items(), key=lambda kv: (
            order.get(kv[0][0], len(order)), GROUPS.index(kv[0][2]))):
        if not (part.flops or part.params or part.uncounted or part.bytes):
            continue
        rows.append(BreakdownRow(
            name=name, res_h=size[0], res_w=size[1], tokens=tokens, engine=counts.engine,
            depth=depth, module=path or MODEL_LABEL, own=own, group=group,
            flops=part.flops // batch, params=part.params,
            flops_share=part.flops / batch / total if total else None,
            params_share=part.params / total_params if total_params else None,
            bytes=None if counts.module_bytes is None else round(part.bytes / batch),
            model_flops=total, model_params=total_params,
            uncounted_ops=format_uncounted(part.uncounted), reparam=reparam,
            batch_size=batch))
    return rows


def _tokens(model: nn.Module) -> int | None:
    """Tokens the first token mixer sees (a CNN: its stem's grid); None where none is seen."""
    from gfbench.models import token_grid

    grid = token_grid(model)
    return None if grid is None else grid[0] * grid[1]


def _builder(name: str, size: tuple[int, int], reparam: bool = False
             ) -> Callable[[], nn.Module]:
    """A zero-argument function that builds the model at the size (on the current device),
    fused to its deploy form with ``reparam``."""
    from gfbench.models import create_model
    from gfbench.models.meta import reparameterise

    def build() -> nn.Module:
        model = create_model(name, img_size=size)
        return reparameterise(model) if reparam else model

    return build


def breakdown_setting(name: str, size: tuple[int, int], depth: int,
                      engine: str = "torch", reparam: bool = False,
                      batch: int = 1) -> list[BreakdownRow]:
    """The breakdown rows of one model at one resolution with one engine (``reparam``: in its
    deploy form, as fused by timm's reparameterize_model), counted at ``batch``."""
    from gfbench.models.meta import on_meta

    if engine not in ENGINES:
        raise GfbenchError(f"--engine {engine!r} is not one of {', '.join(ENGINE_CHOICES)}")
    builder = _builder(name, size, reparam)
    with on_meta():
        model = builder()
    check_depth(name, model, depth)
    # the torch engine counts this meta model itself; fvcore traces a CPU copy of its own
    counts = count_flops(model if engine == "torch" else builder, (batch, 3, *size), engine)
    return breakdown_rows(getattr(model, "gfbench_name", name), size, model, counts, depth,
                          _tokens(model), reparam, batch)


# --- planning and running --------------------------------------------------------------------


@dataclass(frozen=True)
class BreakdownRequest:
    """What the user asked for, as typed (before validation)."""

    models: Sequence[str] = ()
    exclude: Sequence[str] = ()
    resolutions: Sequence[str] = ()
    depth: int = DEFAULT_DEPTH
    engine: str = "torch"
    out: Path | None = None
    reparam: bool = False  # fuse re-parameterisable models to their deploy form first
    time: bool = False  # also time every row on the device (gfbench.measure.module_time)
    device: str = "auto"
    batch_size: int | None = None  # None: complexity's default of the device
    warmup: int | None = None
    repeat: int | None = None


@dataclass(frozen=True)
class ModuleTiming:
    """How a timed breakdown times its rows: on which device, at which batch, how often."""

    device: str
    batch: int
    warmup: int
    repeat: int


@dataclass(frozen=True)
class BreakdownPlan:
    """Validated models x resolutions, the depth, the engines, and where the rows go."""

    settings: tuple[tuple[str, tuple[int, int]], ...]
    depth: int
    engines: tuple[str, ...]
    folder: Path
    name: str  # the runs' descriptive name: breakdown-d<depth>-<engine>[-reparam][-<dev>-b<B>]
    reparam: bool = False
    timing: ModuleTiming | None = None  # None: counted only


def plan_breakdown(request: BreakdownRequest, results_dir: Path = DEFAULT_OUT
                   ) -> BreakdownPlan:
    """Validate a request (GfbenchError, one line, on the first problem) before counting."""
    from gfbench.models import check_size_texts, chosen_models, model_sizes

    if request.engine not in ENGINE_CHOICES:
        raise GfbenchError(f"--engine {request.engine!r} is not one of "
                           f"{', '.join(ENGINE_CHOICES)}")
    if request.depth < 0:
        raise GfbenchError(f"--depth {request.depth} must be 0 (the whole model) or more")
    folder = check_output_folder(Path(request.out) if request.out else Path(results_dir))
    check_size_texts(request.resolutions)
    settings = tuple((name, size) for name in chosen_models(request.models, request.exclude)
                     for size in model_sizes(name, request.resolutions))
    from gfbench.models.meta import on_meta

    for name, size in settings:  # every setting must build, at the depth asked: fail now
        with on_meta():
            model = _builder(name, size, request.reparam)()
        check_depth(name, model, request.depth)
    engines = ENGINES if request.engine == "both" else (request.engine,)
    timing = plan_timing(request)
    suffix = "-reparam" if request.reparam else ""
    if timing is not None:
        suffix += f"-{timing.device.split(':')[0]}-b{timing.batch}"
    return BreakdownPlan(settings, request.depth, engines, folder,
                         f"breakdown-d{request.depth}-{request.engine}{suffix}", request.reparam,
                         timing)


def plan_timing(request: BreakdownRequest) -> ModuleTiming | None:
    """The validated timing of a request (None without --time): complexity's defaults of the
    device; GfbenchError (one line) for an option that needs --time or a bad value."""
    if not request.time:
        given = [name for name, value in (("--batch-size", request.batch_size),
                                          ("--warmup", request.warmup),
                                          ("--repeat", request.repeat)) if value is not None]
        given += ["--device"] if request.device != "auto" else []
        if given:
            raise GfbenchError(f"{', '.join(given)}: used only with --time (without it "
                               "breakdown counts on the meta device)")
        return None
    if request.engine != "torch":
        raise GfbenchError(f"--time needs --engine torch (its rows carry the bytes the roofline "
                           f"needs), not {request.engine!r}")
    from gfbench.device import resolve_device
    from gfbench.measure.plan import DEVICE_DEFAULTS

    device = resolve_device(request.device)
    batch, warmup, repeat, _ = DEVICE_DEFAULTS["cuda" if device.startswith("cuda") else "cpu"]
    timing = ModuleTiming(device, request.batch_size or batch,
                          warmup if request.warmup is None else request.warmup,
                          repeat if request.repeat is None else request.repeat)
    if timing.batch < 1 or timing.warmup < 1 or timing.repeat < 1:
        raise GfbenchError(f"--batch-size, --warmup and --repeat must be >= 1, got "
                           f"{timing.batch}, {timing.warmup}, {timing.repeat}")
    return timing


def _failed_row(name: str, size: tuple[int, int], engine: str, depth: int,
                exc: Exception, reparam: bool = False) -> BreakdownRow:
    """The one row of a setting an engine could not count (the run goes on)."""
    message = first_line(exc)
    return BreakdownRow(name=name, res_h=size[0], res_w=size[1], tokens=None, engine=engine,
                        depth=depth, module=MODEL_LABEL, own=False, group="", status="error",
                        error=message, reparam=reparam)


def run_breakdown(plan: BreakdownPlan,
                  on_done: Callable[[str, tuple[int, int], str], None] | None = None,
                  ) -> tuple[list[BreakdownRow], Path]:
    """Count every (model, resolution, engine) of the plan into a new run, writing it after
    each; returns the rows and the run's JSON file. No other run's rows are touched.

    An engine that fails on a setting leaves one row with status "error" and its message.
    """
    timing = plan.timing
    device = timing.device if timing else "cpu" if "fvcore" in plan.engines else "meta"
    provenance = collect_provenance("breakdown", device=device, depth=plan.depth,
                                    engines=list(plan.engines), reparam=plan.reparam,
                                    load_average_at_start=load_average(),
                                    bytes_convention=BYTES_CONVENTION,
                                    timing=dataclasses.asdict(timing) if timing else None)
    with new_run(plan.folder, plan.name, provenance) as writer:
        try:
            if timing:
                from gfbench.measure.module_time import ceilings_in_child

                writer.provenance.extra["ceilings"] = ceilings_in_child(timing.device)
                writer.provenance.extra["module_time"] = {}
            for name, size in plan.settings:
                for engine in plan.engines:
                    try:
                        rows = breakdown_setting(name, size, plan.depth, engine, plan.reparam,
                                                 timing.batch if timing else 1)
                    except GfbenchError:
                        raise
                    except Exception as exc:  # one engine's failure must not lose the others
                        rows = [_failed_row(name, size, engine, plan.depth, exc, plan.reparam)]
                    if timing and rows[0].status == "ok":
                        from gfbench.measure.module_time import time_rows

                        rows += time_rows(rows, plan, writer.provenance)
                    writer.extend(rows)
                    if on_done:
                        on_done(name, size, engine)
        except KeyboardInterrupt:
            raise RunInterrupted(len(writer.rows), writer.json_path, resumable=False) from None
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


# --- the command as one call ---------------------------------------------------------------


class BreakdownProgressCallback(Protocol):
    """What count_breakdown tells a progress display."""

    def begin(self, total: int) -> None:
        """``total`` (model, resolution, engine) settings will be counted."""

    def done(self, name: str, size: tuple[int, int], engine: str) -> None:
        """One setting is counted."""


@dataclass
class BreakdownReport:
    """A finished breakdown: its rows, the per-role totals and the files written."""

    rows: list[BreakdownRow]
    summaries: list[GroupSummary]
    files: list[Path]
    # a timed run's provenance.extra "module_time" (hook overhead per setting) and "ceilings"
    timing: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        """Any setting an engine could not count (the command's exit code is then 1)."""
        return any(r.status == "error" for r in self.rows)

    def as_json(self) -> dict[str, Any]:
        """What --json prints: files, convention, rows and the per-role totals."""
        return {"files": [str(p) for p in self.files], "flop_convention": FLOP_CONVENTION,
                "rows": [dataclasses.asdict(r) for r in self.rows],
                "groups": [{**dataclasses.asdict(s), "mixer_share": s.mixer_share}
                           for s in self.summaries], "timing": self.timing}


def count_breakdown(request: BreakdownRequest,
                    progress: BreakdownProgressCallback | None = None) -> BreakdownReport:
    """`gfbench breakdown` as one call: validate, count every setting into a new run, sum by
    role. GfbenchError (one line) for a bad request; RunInterrupted on Ctrl-C."""
    plan = plan_breakdown(request)
    if progress is not None:
        progress.begin(len(plan.settings) * len(plan.engines))
    rows, json_path = run_breakdown(plan, on_done=progress.done if progress else None)
    extra = json.loads(json_path.read_text())["provenance"]["extra"] if plan.timing else {}
    return BreakdownReport(rows, summarise(rows), [json_path, json_path.with_suffix(".csv")],
                           {k: extra[k] for k in ("module_time", "ceilings") if k in extra})
