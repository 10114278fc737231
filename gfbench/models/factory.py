"""One registry for every model: gfbench's short names, GFNet's variants and any timm model,
built at any valid resolution."""

from __future__ import annotations

import contextlib
import copy
import difflib
import functools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import timm
import torch
from torch import nn

from gfbench.errors import ResolutionError, UnknownNameError, first_line
from gfbench.models import gfnet as _gfnet  # noqa: F401  (importing it registers gfnet_* in timm)
from gfbench.models.meta import on_meta

Resolution = tuple[int, int]


@dataclass(frozen=True)
class ModelEntry:
    """A model gfbench names itself: its timm name, family and the stride its input must tile by."""

    name: str
    timm_name: str
    family: str
    stride: int


def _entries() -> dict[str, ModelEntry]:
    """gfbench's own names, in the order `gfbench list` shows them."""
    rows = [(f"gfnet-{v}", f"gfnet_{v}", "GFNet", 16) for v in ("ti", "xs", "s", "b")]
    rows += [(f"gfnet-h-{v}", f"gfnet_h_{v}", "GFNet-H", 32) for v in ("ti", "s", "b")]
    rows += [(f"deit-{v}", f"deit_{w}_patch16_224", "DeiT", 16)
             for v, w in (("ti", "tiny"), ("s", "small"), ("b", "base"))]
    rows += [(f"resmlp-{d}", f"resmlp_{d}_224", "ResMLP", 16) for d in (12, 24, 36)]
    return {name: ModelEntry(name, timm_name, family, stride)
            for name, timm_name, family, stride in rows}


ENTRIES = _entries()
SHORT_NAMES = {"gfnet": "gfnet-xs", "deit": "deit-s", "resmlp": "resmlp-12"}
_BY_TIMM_NAME = {e.timm_name: e for e in ENTRIES.values()}


@functools.lru_cache(maxsize=1)
def _timm_names() -> frozenset[str]:
    """Every architecture name timm knows (gfnet_* included once gfbench is imported)."""
    return frozenset(timm.list_models())


def canonical_name(name: str) -> str:
    """gfbench's display name for a model ('gfnet' -> 'gfnet-xs'), or the timm name as given."""
    key = name.strip().lower()
    key = SHORT_NAMES.get(key, key)
    if key in ENTRIES:
        return key
    underscored = key.replace("-", "_")
    if underscored in _BY_TIMM_NAME:
        return _BY_TIMM_NAME[underscored].name
    arch = name.strip().split(".")[0]
    if arch in _timm_names():
        return name.strip()
    close = difflib.get_close_matches(key, [*SHORT_NAMES, *ENTRIES], n=3, cutoff=0.6)
    close += difflib.get_close_matches(underscored, _timm_names(), n=3 - len(close) or 1,
                                       cutoff=0.75)
    hint = f" Did you mean {', '.join(dict.fromkeys(close))}?" if close else ""
    raise UnknownNameError(
        f"unknown model {name!r}.{hint} Known: {', '.join([*SHORT_NAMES, *ENTRIES])}, "
        "or any timm model name (see timm.list_models())"
    )


def timm_name(name: str) -> str:
    """The timm architecture name behind a gfbench or timm model name."""
    canonical = canonical_name(name)
    return ENTRIES[canonical].timm_name if canonical in ENTRIES else canonical


def parse_resolution(value: int | str | Sequence[int]) -> Resolution:
    """'224' or 224 -> (224, 224); '384x512' -> (384, 512); ResolutionError otherwise."""
    if isinstance(value, int):
        height = width = value
    elif isinstance(value, str):
        match = re.fullmatch(r"\s*(-?\d+)\s*(?:[xX×]\s*(-?\d+)\s*)?", value)
        if not match:
            raise ResolutionError(
                f"resolution {value!r} is not a number or HxW (examples: 224, 384x512)")
        height = int(match.group(1))
        width = int(match.group(2)) if match.group(2) else height
    else:
        height, width = (int(v) for v in value)
    if height <= 0 or width <= 0:
        raise ResolutionError(f"resolution {height}x{width} must be positive")
    return height, width


def _patch_stride(model: nn.Module) -> int | None:
    """The patch size of a token model whose patches must tile the image (ViT, MLP-Mixer...);
    None for overlapping patch embeddings (PVT v2: 7x7 kernels at stride 4) and CNNs."""
    patch_embed = getattr(model, "patch_embed", None) or getattr(model, "stem", None)
    patch = getattr(patch_embed, "patch_size", None)
    if patch is None:
        return None
    proj = getattr(patch_embed, "proj", None)
    if isinstance(proj, nn.Conv2d) and proj.kernel_size != proj.stride:
        return None  # overlapping patches: any size the convolutions take
    return int(patch[0] if isinstance(patch, (tuple, list)) else patch)


def _crops_remainders(model: nn.Module, patch: int) -> bool:
    """Whether the model was published at a size its patch does not tile (e.g. SigLIP
    so400m/14 at 384): its patch embedding drops the remainder, so any size >= a patch runs."""
    size = (getattr(model, "pretrained_cfg", None) or {}).get("input_size")
    return bool(size and any(side % patch for side in size[-2:]))


def _check_timm_resolution(name: str, model: nn.Module, img_size: Resolution) -> None:
    """Token models must tile by their patch (unless published at a size that does not);
    convolutional nets need at least their stride."""
    patch = _patch_stride(model)
    if patch is not None:
        if not (_crops_remainders(model, patch) and min(img_size) >= patch):
            check_resolution(name, img_size, patch)
        return
    info = getattr(model, "feature_info", None)
    reduction = int(info[-1]["reduction"]) if info else 1
    if min(img_size) < reduction:
        raise ResolutionError(f"{name} cannot run at {img_size[0]}x{img_size[1]}: each side "
                              f"must be at least its total stride {reduction}")


def check_resolution(name: str, img_size: Resolution, stride: int) -> None:
    """ResolutionError unless both sides are positive multiples of the model's stride."""
    height, width = img_size
    if height < stride or width < stride or height % stride or width % stride:
        allowed = ", ".join(str(stride * k) for k in (7, 14, 24, 32))
        raise ResolutionError(
            f"{name} cannot run at {height}x{width}: each side must be a positive multiple of "
            f"{stride} (e.g. {allowed}, ...)"
        )


def create_model(name: str, img_size: int | str | Sequence[int] | None = None,
                 num_classes: int | None = None, impl: str = "reference", **kwargs) -> nn.Module:
    """Build any gfbench or timm model (random weights) at any valid resolution.

    ``num_classes`` None keeps the model's own timm default (0 for headless models such as
    the SigLIP ViTs); an int overrides it. ``impl`` picks the global-filter implementation
    for GFNet models and is ignored by others.
    """
    canonical = canonical_name(name)
    arch = timm_name(canonical)
    size = None if img_size is None else parse_resolution(img_size)
    entry = ENTRIES.get(canonical)
    if entry is not None and size is not None:
        check_resolution(canonical, size, entry.stride)
    if arch.startswith("gfnet_"):
        kwargs["impl"] = impl
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    if size is not None:
        kwargs["img_size"] = size
    try:
        model = timm.create_model(arch, **kwargs)
    except TypeError as exc:
        if "img_size" not in str(exc) or size is None:
            raise
        kwargs.pop("img_size")  # a convolutional net: any input size goes
        model = timm.create_model(arch, **kwargs)
    except (AssertionError, ValueError, RuntimeError) as exc:
        if size is None:
            raise
        raise ResolutionError(
            f"timm cannot build {canonical} at {size[0]}x{size[1]}: "
            f"{first_line(exc, with_type=False)}") from None
    if entry is None and size is not None:
        _check_timm_resolution(canonical, model, size)
    # (ignores: torch annotates Module.__setattr__ for Tensor/Module values; any value works)
    model.gfbench_name = canonical  # type: ignore[assignment]
    # the size asked for (None: timm's default), for token_grid
    model.gfbench_img_size = size  # type: ignore[assignment]
    return model


def check_forward(model: nn.Module, img_size: int | str | Sequence[int]) -> None:
    """ResolutionError (one line) when the model cannot run a (1, 3, H, W) image: some
    models build at any size and only fail in the forward (Swin's windows, LeViT's grids).
    Runs on a meta copy: no memory, a fraction of a second."""
    height, width = parse_resolution(img_size)
    meta = model if all(p.is_meta for p in model.parameters()) else copy.deepcopy(model).to("meta")
    try:
        with torch.no_grad():
            meta.eval()(torch.empty(1, 3, height, width, device="meta"))
    except Exception as exc:  # any failure of a forward at this size is the size's fault
        name = getattr(model, "gfbench_name", type(model).__name__)
        raise ResolutionError(
            f"{name} cannot run at {height}x{width}: {first_line(exc, with_type=False)}") from None


def native_resolution(name: str) -> Resolution:
    """The (h, w) a model was made for: timm's pretrained_cfg input_size; 224 for gfbench's own."""
    canonical = canonical_name(name)
    if canonical in ENTRIES:
        return 224, 224
    cfg = timm.models.get_pretrained_cfg(canonical)
    if cfg is None:  # an architecture without any pretrained tag: its built default
        with on_meta():
            cfg_dict = cast(dict, timm.create_model(canonical.split(".")[0]).pretrained_cfg)
        input_size = cfg_dict.get("input_size", (3, 224, 224))
    else:
        input_size = cfg.input_size
    return int(input_size[-2]), int(input_size[-1])


@dataclass
class TokenGrid:
    """What ``record_token_grid`` saw during a forward: the first token mixer's (h, w), or None."""

    grid: Resolution | None = None

    @property
    def tokens(self) -> int | None:
        """h * w (class and register tokens excluded), or None where no grid was seen."""
        return None if self.grid is None else self.grid[0] * self.grid[1]


def _attribute_grid(model: nn.Module) -> Resolution | None:
    """The grid a model states itself: GFNet's ``grid``, a patch embedding's ``grid_size``."""
    for owner, attr in ((model, "grid"), (_embedding(model), "grid_size")):
        grid = getattr(owner, attr, None)
        if isinstance(grid, (tuple, list)) and len(grid) == 2 and all(
                isinstance(g, int) and g > 0 for g in grid):
            return int(grid[0]), int(grid[1])
    return None


def _embedding(model: nn.Module) -> nn.Module | None:
    """The module that turns the image into the first mixer's tokens, where the model has one."""
    for attr in ("patch_embed", "patch_embeds", "patch_embed1", "stem"):
        module = getattr(model, attr, None)
        if isinstance(module, (nn.ModuleList, nn.Sequential)) and attr != "stem":
            module = module[0] if len(module) else None  # one embedding per stage: the first
        if attr == "stem" and not hasattr(module, "patch_size"):
            continue  # a convolutional stem is read through feature_info instead
        if isinstance(module, nn.Module):
            return module
    return None


def _first_feature(model: nn.Module) -> tuple[nn.Module | None, int, int] | None:
    """timm's first feature level: its module (None where feature_info names none that is
    reachable, e.g. HRNet's 'stem'), channel count (to find the channel axis) and reduction
    (to read a (B, N, C) output, or to find the level among the convolutions' outputs)."""
    info: Any = getattr(model, "feature_info", None)  # None fails below like a bad one
    try:
        first = info[0] if isinstance(info, list) else info.get_dicts()[0]
        channels, reduction = int(first["num_chs"]), int(first["reduction"])
    except Exception:  # no feature_info, or one without the usual keys
        return None
    try:
        return model.get_submodule(first["module"]) if first["module"] else None, channels, \
            reduction
    except AttributeError:
        return None, channels, reduction


def _spatial_grid(output: object, channels: int | None) -> Resolution | None:
    """(h, w) of an NCHW or NHWC feature map (the channel count tells which), else None."""
    if not isinstance(output, torch.Tensor) or output.dim() != 4:
        return None
    _, second, height, last = output.shape
    if channels is None or second == channels:
        return int(height), int(last)
    if last == channels:
        return int(output.shape[1]), int(output.shape[2])
    return None


def _sequence_grid(output: object, image: Resolution | None, reduction: int) -> Resolution | None:
    """(h, w) of a (B, N, C) token sequence when N is exactly the image over the reduction."""
    if not isinstance(output, torch.Tensor) or output.dim() != 3 or image is None:
        return None
    grid = (image[0] // reduction, image[1] // reduction)
    return grid if grid[0] * grid[1] == output.shape[1] else None


def _grid_hooks(model: nn.Module, holder: TokenGrid) -> list:
    """Forward hooks that fill ``holder``: the last Conv2d output inside the patch embedding
    (or its stated grid_size), else the output of timm's first feature level."""
    embedding = _embedding(model)
    if embedding is not None:
        convs = [m for m in embedding.modules() if isinstance(m, nn.Conv2d)]

        def on_conv(_module: nn.Module, _inputs: tuple, output: object) -> None:
            holder.grid = _spatial_grid(output, None) or holder.grid

        def on_embed(_module: nn.Module, _inputs: tuple, _output: object) -> None:
            stated = getattr(embedding, "grid_size", None)
            if holder.grid is None and isinstance(stated, (tuple, list)) and len(stated) == 2:
                holder.grid = int(stated[0]), int(stated[1])

        return [*(m.register_forward_hook(on_conv) for m in convs),
                embedding.register_forward_hook(on_embed)]
    first = _first_feature(model)
    if first is None:
        return []
    module, channels, reduction = first
    image: list[Resolution] = []

    def on_input(_module: nn.Module, inputs: tuple) -> None:
        if inputs and isinstance(inputs[0], torch.Tensor) and inputs[0].dim() == 4:
            image.append((int(inputs[0].shape[-2]), int(inputs[0].shape[-1])))

    def on_feature(_module: nn.Module, _inputs: tuple, output: object) -> None:
        if holder.grid is None:  # a module called again later (shared stages) keeps the first
            holder.grid = _spatial_grid(output, channels) or _sequence_grid(
                output, image[0] if image else None, reduction)

    def on_level_conv(_module: nn.Module, _inputs: tuple, output: object) -> None:
        grid = _spatial_grid(output, channels)
        if holder.grid is None and grid and image and all(
                -(-side // reduction) == g for side, g in zip(image[0], grid, strict=True)):
            holder.grid = grid  # the first convolution at the level's channels and reduction

    targets = [module] if module is not None else \
        [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    hook = on_feature if module is not None else on_level_conv
    return [model.register_forward_pre_hook(on_input),
            *(m.register_forward_hook(hook) for m in targets)]


@contextlib.contextmanager
def record_token_grid(model: nn.Module) -> Iterator[TokenGrid]:
    """Fill a TokenGrid during whatever forward runs inside (e.g. the FLOP count's meta forward).

    Definition: the (h, w) grid of the first token mixer, class and register tokens excluded:
    the output grid of the patch embedding (its last convolution: ViT, DeiT, ResMLP, GFNet,
    Swin, PVT, Twins, CoaT, XCiT, VOLO, Hiera...); otherwise the output grid of timm's first
    feature level (the stem of a convolutional net, the first stage of a MetaFormer or LeViT).
    None when none of these is seen (e.g. TNT).
    Costs a few forward hooks and nothing else; the hooks are removed on exit.
    """
    holder = TokenGrid()
    handles = _grid_hooks(model, holder)
    try:
        yield holder
    finally:
        for handle in handles:
            handle.remove()


def token_grid(model: nn.Module, input_shape: Sequence[int] | None = None) -> Resolution | None:
    """The (h, w) grid of the first token mixer (see ``record_token_grid``), or None.

    Read from the model's attributes when it states its grid; otherwise one forward of a
    meta copy at ``input_shape`` (default: the size ``create_model`` was given, else the
    model's pretrained_cfg input size) with hooks. Never raises for a model that builds.
    """
    if input_shape is None:
        stated = _attribute_grid(model)
        if stated is not None:
            return stated
        cfg = getattr(model, "pretrained_cfg", None) or {}
        size = getattr(model, "gfbench_img_size", None)
        input_shape = (1, 3, *size) if size else (1, *cfg.get("input_size", (3, 224, 224)))
    meta = model if all(p.is_meta for p in model.parameters()) else copy.deepcopy(model).to("meta")
    with record_token_grid(meta) as holder, contextlib.suppress(Exception), torch.no_grad():
        meta.eval()(torch.empty(*input_shape, device="meta"))  # a failure keeps what was seen
    return holder.grid


def count_params_on_meta(name: str, img_size: int | str | Sequence[int] = 224) -> int:
    """Parameter count of a model built on the meta device (no memory, no init cost)."""
    with on_meta():
        model = create_model(name, img_size=img_size)
    return sum(p.numel() for p in model.parameters())


def model_catalogue() -> list[dict]:
    """gfbench's named models with family, timm name and parameters counted at 224."""
    return [
        {"name": e.name, "family": e.family, "timm_name": e.timm_name,
         "params": count_params_on_meta(e.name), "native_res": 224,
         "alias": next((s for s, t in SHORT_NAMES.items() if t == e.name), "")}
        for e in ENTRIES.values()
    ]
