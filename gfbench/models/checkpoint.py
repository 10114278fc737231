"""Checkpoints a user can trust: safe loading, architecture inference, resizing, clear errors."""

from __future__ import annotations

import math
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from gfbench.errors import CheckpointError, first_line
from gfbench.models.factory import canonical_name, create_model, timm_name
from gfbench.models.gfnet import GFNet, GFNetPyramid, resize_state_dict
from gfbench.models.meta import on_meta

WRAPPER_KEYS = ("model", "state_dict", "model_ema", "state_dict_ema", "module")


@dataclass(frozen=True)
class Architecture:
    """What a state dict says about the model it came from."""

    name: str
    img_size: tuple[int, int]
    num_classes: int


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file, loaded with weights_only=True (no pickled code runs)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            raise CheckpointError(
                f"{path}: refused, the file holds pickled Python objects beyond tensors and "
                "weights_only loading will not execute them (re-save it as a plain state dict)"
            ) from None
        raise CheckpointError(f"{path}: not a PyTorch checkpoint "
                              f"({first_line(exc, 120, with_type=False)})") from None
    except Exception as exc:  # any other failure of the reader: truncated, foreign format
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint (truncated or another format: "
            f"{first_line(exc, 120, with_type=False)})"
        ) from None
    return unwrap_state_dict(obj, path)


def unwrap_state_dict(obj: object, path: str | Path = "checkpoint") -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint: bare or under model/state_dict/model_ema, 'module.' stripped."""
    for _ in range(3):
        if isinstance(obj, dict):
            key = next((k for k in WRAPPER_KEYS if isinstance(obj.get(k), dict)), None)
            if key is None:
                break
            obj = obj[key]
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f"{path}: holds no state dict (expected a dict of tensors, "
                              f"bare or under one of {', '.join(WRAPPER_KEYS)})")
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(f"{path}: holds no tensors (keys: {', '.join(list(obj)[:5])}...)")
    if all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module."):]: v for k, v in tensors.items()}
    return tensors


def _square_side(tokens: int) -> int | None:
    """Side of a square token grid, or None when the count is not a square."""
    side = math.isqrt(tokens)
    return side if side * side == tokens else None


def _count_blocks(state_dict: dict[str, torch.Tensor], prefix: str) -> int:
    """Number of distinct block indices under a key prefix like 'blocks.' or 'blocks.2.'."""
    indices = {k[len(prefix):].split(".")[0] for k in state_dict if k.startswith(prefix)}
    return len({i for i in indices if i.isdigit()})


def infer_architecture(state_dict: dict[str, torch.Tensor]) -> Architecture:
    """Recognise GFNet, GFNet-H, DeiT and ResMLP variants (and their resolution) from shapes."""
    head = state_dict.get("head.weight")
    num_classes = int(head.shape[0]) if head is not None else 1000
    candidates: list[tuple[str, int, tuple]] = []  # (name, token side multiplier, signature)
    if "blocks.0.filter.complex_weight" in state_dict:
        dim = state_dict["pos_embed"].shape[-1]
        signature = (dim, _count_blocks(state_dict, "blocks."))
        known: dict[tuple, str] = {(256, 12): "gfnet-ti", (384, 12): "gfnet-xs",
                                   (384, 19): "gfnet-s", (512, 19): "gfnet-b"}
        candidates.append((known.get(signature, ""), 16, signature))
        tokens = state_dict["pos_embed"].shape[1]
    elif "blocks.0.0.filter.complex_weight" in state_dict:
        dims = tuple(int(state_dict[f"patch_embed.{i}.proj.weight"].shape[0]) for i in range(4))
        depths = tuple(_count_blocks(state_dict, f"blocks.{i}.") for i in range(4))
        known = {((64, 128, 256, 512), (3, 3, 10, 3)): "gfnet-h-ti",
                 ((96, 192, 384, 768), (3, 3, 10, 3)): "gfnet-h-s",
                 ((96, 192, 384, 768), (3, 3, 27, 3)): "gfnet-h-b"}
        candidates.append((known.get((dims, depths), ""), 4, (dims, depths)))
        tokens = state_dict["pos_embed"].shape[1]
    elif "cls_token" in state_dict and "blocks.0.attn.qkv.weight" in state_dict:
        dim = state_dict["cls_token"].shape[-1]
        signature = (dim, _count_blocks(state_dict, "blocks."))
        known = {(192, 12): "deit-ti", (384, 12): "deit-s", (768, 12): "deit-b"}
        candidates.append((known.get(signature, ""), 16, signature))
        tokens = state_dict["pos_embed"].shape[1] - 1
    elif "blocks.0.linear_tokens.weight" in state_dict:
        signature = (state_dict["stem.proj.weight"].shape[0], _count_blocks(state_dict, "blocks."))
        known = {(384, 12): "resmlp-12", (384, 24): "resmlp-24", (384, 36): "resmlp-36"}
        candidates.append((known.get(signature, ""), 16, signature))
        tokens = state_dict["blocks.0.linear_tokens.weight"].shape[0]
    else:
        raise CheckpointError(
            "cannot tell the architecture from this state dict (not a GFNet, GFNet-H, DeiT or "
            "ResMLP layout): name it with --model / model=")
    name, multiplier, signature = candidates[0]
    side = _square_side(int(tokens))
    if not name or side is None:
        raise CheckpointError(
            f"the state dict looks like a known family but matches no variant "
            f"(shape signature {signature}, {tokens} tokens): name it with --model / model=")
    return Architecture(name, (side * multiplier, side * multiplier), num_classes)


def _describe_mismatch(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> str:
    """Missing, unexpected and wrongly shaped keys, a few of each, in one readable line."""
    wanted = model.state_dict()
    missing = [k for k in wanted if k not in state_dict]
    unexpected = [k for k in state_dict if k not in wanted]
    shaped = [f"{k} {tuple(state_dict[k].shape)} vs {tuple(wanted[k].shape)}"
              for k in wanted if k in state_dict and state_dict[k].shape != wanted[k].shape]

    def few(items: list[str]) -> str:
        more = f" (+{len(items) - 4} more)" if len(items) > 4 else ""
        return ", ".join(items[:4]) + more

    parts = [f"{label} {len(items)}: {few(items)}"
             for label, items in (("missing", missing), ("unexpected", unexpected),
                                  ("wrong shape", shaped)) if items]
    return "; ".join(parts)


def _filter_for(model: nn.Module, state_dict: dict[str, torch.Tensor]
                ) -> dict[str, torch.Tensor]:
    """Remap a state dict to the model: GFNet's resize rule, or the timm family's own filter."""
    if isinstance(model, (GFNet, GFNetPyramid)):
        return resize_state_dict(state_dict, model)
    family = sys.modules.get(type(model).__module__)
    filter_fn = getattr(family, "checkpoint_filter_fn", None)
    if filter_fn is None:
        return state_dict
    try:
        return filter_fn(state_dict, model)
    except Exception:  # a filter that does not fit this file: load as is, report the mismatch
        return state_dict


def load_checkpoint(path: str | Path, model: str | nn.Module | None = None,
                    img_size: int | str | tuple[int, int] | None = None) -> nn.Module:
    """Load a checkpoint into a model (built by name, given, or inferred), resized when asked.

    ``model=None`` infers the architecture from the state dict; ``img_size=None`` keeps the
    checkpoint's own resolution (or the given module's). Raises CheckpointError in one line.
    """
    state_dict = read_state_dict(path)
    if isinstance(model, nn.Module):
        module = model
    else:
        arch: Architecture | None = None
        if model is None:
            arch = infer_architecture(state_dict)
            name = arch.name
        else:
            name = canonical_name(model)
        if arch is None:
            num_classes = _class_count(state_dict, name)
            size = img_size if img_size is not None else _native_size(state_dict, name)
        else:
            num_classes = arch.num_classes
            size = img_size if img_size is not None else arch.img_size
        module = create_model(name, img_size=size, num_classes=num_classes)
    remapped = _filter_for(module, state_dict)
    mismatch = _describe_mismatch(module, remapped)
    if mismatch:
        label = getattr(module, "gfbench_name", None) or type(module).__name__
        raise CheckpointError(f"{path} does not fit {label}: {mismatch}")
    module.load_state_dict(remapped, strict=True)
    return module.eval()


def _class_count(state_dict: dict[str, torch.Tensor], name: str) -> int:
    """Rows of the classifier the model names in its timm config ('head', 'fc', 'head.fc')."""
    with on_meta():
        probe = create_model(name)
    classifier = getattr(probe, "pretrained_cfg", {}).get("classifier") or "head"
    for prefix in (classifier,) if isinstance(classifier, str) else tuple(classifier):
        weight = state_dict.get(f"{prefix}.weight")
        if weight is not None:
            return int(weight.shape[0])
    return 1000


def _native_size(state_dict: dict[str, torch.Tensor], name: str) -> tuple[int, int] | None:
    """The resolution a state dict was trained at, when its family is one gfbench reads."""
    try:
        arch = infer_architecture(state_dict)
    except CheckpointError:
        return None
    return arch.img_size if timm_name(arch.name) == timm_name(name) else None
