"""One registry for every model: gfbench's short names, GFNet's variants and any timm model,
built at any valid resolution."""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

import timm
import torch
from torch import nn

from gfbench.errors import ResolutionError, UnknownNameError
from gfbench.models import gfnet as _gfnet  # noqa: F401  (importing it registers gfnet_* in timm)

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
TRIO = ("gfnet", "deit", "resmlp")
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
    """The patch size of a token model built by timm (ViT, MLP-Mixer, ...), else None."""
    patch_embed = getattr(model, "patch_embed", None) or getattr(model, "stem", None)
    patch = getattr(patch_embed, "patch_size", None)
    if patch is None:
        return None
    return int(patch[0] if isinstance(patch, (tuple, list)) else patch)


def _check_timm_resolution(name: str, model: nn.Module, img_size: Resolution) -> None:
    """Token models must tile by their patch; convolutional nets need at least their stride."""
    patch = _patch_stride(model)
    if patch is not None:
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
                 num_classes: int = 1000, impl: str = "reference", **kwargs) -> nn.Module:
    """Build any gfbench or timm model (random weights) at any valid resolution.

    ``impl`` picks the global-filter implementation for GFNet models and is ignored by others.
    """
    canonical = canonical_name(name)
    arch = timm_name(canonical)
    size = None if img_size is None else parse_resolution(img_size)
    entry = ENTRIES.get(canonical)
    if entry is not None and size is not None:
        check_resolution(canonical, size, entry.stride)
    if arch.startswith("gfnet_"):
        kwargs["impl"] = impl
    if size is not None:
        kwargs["img_size"] = size
    try:
        model = timm.create_model(arch, num_classes=num_classes, **kwargs)
    except TypeError as exc:
        if "img_size" not in str(exc) or size is None:
            raise
        kwargs.pop("img_size")  # a convolutional net: any input size goes
        model = timm.create_model(arch, num_classes=num_classes, **kwargs)
    except (AssertionError, ValueError) as exc:
        raise ResolutionError(f"timm cannot build {canonical} at {size}: {exc}") from None
    if entry is None and size is not None:
        _check_timm_resolution(canonical, model, size)
    model.gfbench_name = canonical
    return model


def token_grid(model: nn.Module) -> Resolution:
    """The grid of tokens the model's first token mixer sees."""
    grid = getattr(model, "grid", None)
    if grid is not None:
        return tuple(grid)
    for attr in ("patch_embed", "stem"):
        grid = getattr(getattr(model, attr, None), "grid_size", None)
        if grid is not None:
            return tuple(grid)
    raise ValueError(f"{type(model).__name__} has no token grid gfbench knows how to read")


def count_params_on_meta(name: str, img_size: int | str | Sequence[int] = 224) -> int:
    """Parameter count of a model built on the meta device (no memory, no init cost)."""
    with torch.device("meta"):
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
