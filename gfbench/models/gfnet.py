"""GFNet: Global Filter Networks for Image Classification (Rao et al., NeurIPS 2021).

arXiv 2107.00645. A re-implementation of the released architecture: state-dict names and
shapes match the authors' checkpoints, and the forward pass computes the same function
(one residual branch per block around filter and MLP; the FFT in float32).

Tokens are kept on their grid as (B, H, W, D) between layers, which is the layout the
global filter works in; LayerNorm and the MLP act on the last axis either way.

Variants are registered in timm: ``timm.create_model("gfnet_xs", img_size=384)`` works once
``gfbench`` is imported.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from typing import TypeVar

import torch
import torch.nn.functional as F
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import DropPath, Mlp, to_2tuple, trunc_normal_
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

from gfbench.layers.global_filter import GlobalFilter

__all__ = ["GFNet", "GFNetPyramid", "resize_state_dict"]

LayerNorm = partial(nn.LayerNorm, eps=1e-6)


# --- blocks -------------------------------------------------------------------------------


class GFBlock(nn.Module):
    """One residual branch around filter and MLP: x + gamma * mlp(norm2(filter(norm1(x))))."""

    def __init__(self, dim: int, grid: tuple[int, int], mlp_ratio: float = 4.0,
                 drop_path: float = 0.0, init_values: float | None = None,
                 impl: str = "reference"):
        super().__init__()
        self.norm1 = LayerNorm(dim)
        self.filter = GlobalFilter(dim, grid[0], grid[1], impl=impl)
        self.norm2 = LayerNorm(dim)
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio), act_layer=nn.GELU)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        if init_values is not None:
            self.gamma: nn.Parameter | None = nn.Parameter(init_values * torch.ones(dim))
        else:
            self.gamma = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.mlp(self.norm2(self.filter(self.norm1(x))))
        if self.gamma is not None:
            y = self.gamma * y
        return x + self.drop_path(y)


class PatchEmbed(nn.Module):
    """Non-overlapping patches by a strided convolution, returned on their grid (B, H, W, D)."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)


class Downsample(nn.Module):
    """The pyramid's 2x2 stride-2 convolution between stages, on (B, H, W, C) tokens."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = nn.Conv2d(dim_in, dim_out, kernel_size=2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


# --- models -------------------------------------------------------------------------------


def _drop_path_rates(rate: float, depth: int) -> list[float]:
    """Stochastic depth rising linearly to ``rate`` (plain floats: works on the meta device)."""
    return [rate * i / max(depth - 1, 1) for i in range(depth)]


def _check_grid(img_size: tuple[int, int], stride: int, name: str) -> tuple[int, int]:
    """Token grid of an image, or ValueError when the image does not tile by the stride."""
    height, width = img_size
    if height <= 0 or width <= 0 or height % stride or width % stride:
        raise ValueError(f"{name} needs height and width that are positive multiples of "
                         f"{stride}, got {height}x{width}")
    return height // stride, width // stride


class GFNet(nn.Module):
    """Flat (isotropic) GFNet: patch embedding, position embedding, global-filter blocks."""

    def __init__(self, img_size: int | Sequence[int] = 224, patch_size: int = 16,
                 in_chans: int = 3, num_classes: int = 1000, embed_dim: int = 384,
                 depth: int = 12, mlp_ratio: float = 4.0, drop_rate: float = 0.0,
                 drop_path_rate: float = 0.0, impl: str = "reference"):
        super().__init__()
        self.img_size = to_2tuple(img_size)
        self.grid = _check_grid(self.img_size, patch_size, "GFNet")
        self.num_classes = num_classes
        self.num_features = self.embed_dim = embed_dim
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid[0] * self.grid[1], embed_dim))
        self.pos_drop = nn.Dropout(drop_rate)
        rates = _drop_path_rates(drop_path_rate, depth)
        self.blocks = nn.ModuleList([
            GFBlock(embed_dim, self.grid, mlp_ratio, rates[i], impl=impl) for i in range(depth)
        ])
        self.norm = LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        trunc_normal_(self.pos_embed, std=0.02)
        self.apply(_init_weights)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        x = self.pos_drop(x + self.pos_embed.reshape(1, *self.grid, self.embed_dim))
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x.mean(dim=(1, 2)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class GFNetPyramid(nn.Module):
    """Hierarchical GFNet-H: four stages (strides 4, 8, 16, 32) with layer scale in every block."""

    def __init__(self, img_size: int | Sequence[int] = 224, in_chans: int = 3,
                 num_classes: int = 1000, embed_dims: Sequence[int] = (64, 128, 256, 512),
                 depths: Sequence[int] = (3, 3, 10, 3), mlp_ratio: float = 4.0,
                 drop_rate: float = 0.0, drop_path_rate: float = 0.0,
                 init_values: float = 1e-3, impl: str = "reference"):
        super().__init__()
        self.img_size = to_2tuple(img_size)
        _check_grid(self.img_size, 32, "GFNet-H")
        self.grid = (self.img_size[0] // 4, self.img_size[1] // 4)
        self.num_classes = num_classes
        self.num_features = embed_dims[-1]
        self.embed_dims = tuple(embed_dims)
        self.patch_embed = nn.ModuleList(
            [PatchEmbed(4, in_chans, embed_dims[0])]
            + [Downsample(embed_dims[i], embed_dims[i + 1]) for i in range(3)]
        )
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid[0] * self.grid[1], embed_dims[0]))
        self.pos_drop = nn.Dropout(drop_rate)
        rates = _drop_path_rates(drop_path_rate, sum(depths))
        stages, start = [], 0
        for i, depth in enumerate(depths):
            grid = (self.grid[0] >> i, self.grid[1] >> i)
            stages.append(nn.Sequential(*[
                GFBlock(embed_dims[i], grid, mlp_ratio, rates[start + j], init_values, impl)
                for j in range(depth)
            ]))
            start += depth
        self.blocks = nn.ModuleList(stages)
        self.norm = LayerNorm(embed_dims[-1])
        self.head = nn.Linear(embed_dims[-1], num_classes) if num_classes > 0 else nn.Identity()
        trunc_normal_(self.pos_embed, std=0.02)
        self.apply(_init_weights)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        for i, (embed, stage) in enumerate(zip(self.patch_embed, self.blocks, strict=True)):
            x = embed(x)
            if i == 0:
                x = self.pos_drop(x + self.pos_embed.reshape(1, *self.grid, self.embed_dims[0]))
            x = stage(x)
        return self.norm(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x.mean(dim=(1, 2)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


# --- weight init --------------------------------------------------------------------------


def _init_weights(module: nn.Module) -> None:
    """The release's init: truncated-normal Linear weights (std .02), zero biases, unit norms."""
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


# --- checkpoint filter --------------------------------------------------------------------


def resize_pos_embed(pos_embed: torch.Tensor, new_grid: tuple[int, int]) -> torch.Tensor:
    """The release's rule: reshape (1, N, D) to its square grid, bicubic (align_corners=False)."""
    tokens, dim = pos_embed.shape[1], pos_embed.shape[2]
    side = math.isqrt(tokens)
    if side * side != tokens:
        raise ValueError(f"position embedding of {tokens} tokens is not a square grid")
    if (side, side) == tuple(new_grid):
        return pos_embed
    grid = pos_embed.reshape(1, side, side, dim).permute(0, 3, 1, 2).float()
    grid = F.interpolate(grid, size=new_grid, mode="bicubic", align_corners=False)
    return grid.permute(0, 2, 3, 1).reshape(1, -1, dim).to(pos_embed.dtype)


def resize_filter(weight: torch.Tensor, new_shape: tuple[int, int]) -> torch.Tensor:
    """The release's rule: (h, w, D, 2) as a 2D-channel image, bicubic align_corners=True."""
    height, width, dim, _ = weight.shape
    if (height, width) == tuple(new_shape):
        return weight
    image = weight.permute(2, 3, 0, 1).reshape(1, dim * 2, height, width).float()
    image = F.interpolate(image, size=new_shape, mode="bicubic", align_corners=True)
    return image.reshape(dim, 2, *new_shape).permute(2, 3, 0, 1).to(weight.dtype)


def resize_state_dict(state_dict: dict[str, torch.Tensor], model: GFNet | GFNetPyramid
                      ) -> dict[str, torch.Tensor]:
    """A pure remap of a GFNet state dict to ``model``'s resolution and class count."""
    target = model.state_dict()
    out = {}
    for key, value in state_dict.items():
        wanted = target.get(key)
        if wanted is None or wanted.shape == value.shape:
            out[key] = value
        elif key == "pos_embed":
            out[key] = resize_pos_embed(value, model.grid)
        elif key.endswith("filter.complex_weight"):
            out[key] = resize_filter(value, (wanted.shape[0], wanted.shape[1]))
        elif key.startswith("head."):
            continue  # another class count: keep the model's freshly initialised head
        else:
            out[key] = value  # a real mismatch: load_state_dict reports it
    return out


# --- builders -----------------------------------------------------------------------------

M = TypeVar("M", GFNet, GFNetPyramid)  # the class a registered variant builds


def _create_gfnet(model_cls: type[M], variant: str, pretrained: bool = False, **kwargs) -> M:
    """Build a flat or pyramid GFNet through timm's builder (no weights are downloaded)."""
    return build_model_with_cfg(model_cls, variant, pretrained,
                                pretrained_filter_fn=resize_state_dict, **kwargs)


def _cfg(**kwargs) -> dict:
    """timm's pretrained config: ImageNet mean/std, 224 input, bicubic 0.875 crop."""
    return {
        "url": "", "num_classes": 1000, "input_size": (3, 224, 224), "pool_size": None,
        "crop_pct": 0.875, "interpolation": "bicubic", "fixed_input_size": False,
        "mean": IMAGENET_DEFAULT_MEAN, "std": IMAGENET_DEFAULT_STD,
        "first_conv": "patch_embed.proj", "classifier": "head", "license": "mit",
        "paper_ids": "arXiv:2107.00645", **kwargs,
    }


default_cfgs = generate_default_cfgs({
    "gfnet_ti": _cfg(),
    "gfnet_xs": _cfg(),
    "gfnet_s": _cfg(),
    "gfnet_b": _cfg(),
    "gfnet_h_ti": _cfg(first_conv="patch_embed.0.proj"),
    "gfnet_h_s": _cfg(first_conv="patch_embed.0.proj"),
    "gfnet_h_b": _cfg(first_conv="patch_embed.0.proj"),
})


# --- registered variants ------------------------------------------------------------------


@register_model
def gfnet_ti(pretrained: bool = False, **kwargs) -> GFNet:
    """GFNet-Ti: width 256, depth 12."""
    return _create_gfnet(GFNet, "gfnet_ti", pretrained,
                         **dict(dict(embed_dim=256, depth=12), **kwargs))


@register_model
def gfnet_xs(pretrained: bool = False, **kwargs) -> GFNet:
    """GFNet-XS: width 384, depth 12 (matches DeiT-S and ResMLP-12)."""
    return _create_gfnet(GFNet, "gfnet_xs", pretrained,
                         **dict(dict(embed_dim=384, depth=12), **kwargs))


@register_model
def gfnet_s(pretrained: bool = False, **kwargs) -> GFNet:
    """GFNet-S: width 384, depth 19."""
    return _create_gfnet(GFNet, "gfnet_s", pretrained,
                         **dict(dict(embed_dim=384, depth=19), **kwargs))


@register_model
def gfnet_b(pretrained: bool = False, **kwargs) -> GFNet:
    """GFNet-B: width 512, depth 19."""
    return _create_gfnet(GFNet, "gfnet_b", pretrained,
                         **dict(dict(embed_dim=512, depth=19), **kwargs))


@register_model
def gfnet_h_ti(pretrained: bool = False, **kwargs) -> GFNetPyramid:
    """GFNet-H-Ti: widths 64-512, depths 3/3/10/3, layer scale 1e-3."""
    args = dict(embed_dims=(64, 128, 256, 512), depths=(3, 3, 10, 3), init_values=1e-3)
    return _create_gfnet(GFNetPyramid, "gfnet_h_ti", pretrained, **dict(args, **kwargs))


@register_model
def gfnet_h_s(pretrained: bool = False, **kwargs) -> GFNetPyramid:
    """GFNet-H-S: widths 96-768, depths 3/3/10/3, layer scale 1e-5."""
    args = dict(embed_dims=(96, 192, 384, 768), depths=(3, 3, 10, 3), init_values=1e-5)
    return _create_gfnet(GFNetPyramid, "gfnet_h_s", pretrained, **dict(args, **kwargs))


@register_model
def gfnet_h_b(pretrained: bool = False, **kwargs) -> GFNetPyramid:
    """GFNet-H-B: widths 96-768, depths 3/3/27/3, layer scale 1e-6."""
    args = dict(embed_dims=(96, 192, 384, 768), depths=(3, 3, 27, 3), init_values=1e-6)
    return _create_gfnet(GFNetPyramid, "gfnet_h_b", pretrained, **dict(args, **kwargs))
