"""MIXERS: every token mixer by name, with its builder and its analytic FLOPs and parameters.

Every mixer maps (B, H, W, D) tokens to (B, H, W, D). The formulas are per image, in
gfbench's convention (one multiply-add = one FLOP; see gfbench.defaults.FLOP_CONVENTION)
and count exactly what gfbench's counter counts, so a measured number can be checked
against theory. The paper column restates the GFNet paper's complexity table.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from gfbench.errors import UnknownNameError
from gfbench.layers.attention import Attention
from gfbench.layers.global_filter import GlobalFilter, fft_flops
from gfbench.layers.simple_mixers import (
    DepthwiseConv,
    FourierMixing,
    IdentityMixer,
    Pooling,
    SpatialMLP,
)


@dataclass(frozen=True)
class MixerSpec:
    """A token mixer: how to build it and what it should cost, per image."""

    name: str
    build: Callable[..., nn.Module]  # (dim, height, width, **options) -> module
    flops: Callable[..., int]  # (dim, height, width, **options) -> multiply-adds per image
    params: Callable[..., int]  # (dim, height, width, **options) -> parameter count
    flops_formula: str  # human-readable, as printed by `gfbench list`
    params_formula: str
    paper: str  # the GFNet paper's complexity entry


def default_heads(dim: int) -> int:
    """Heads of width 64 as in DeiT, at least one, dividing dim."""
    heads = max(1, dim // 64)
    while dim % heads:
        heads -= 1
    return heads


def _attention_flops(dim: int, height: int, width: int, **_: object) -> int:
    """qkv and proj Linears (4 N D^2) plus QK^T and AV (2 N^2 D)."""
    tokens = height * width
    return 4 * tokens * dim * dim + 2 * tokens * tokens * dim


def _build_attention(fused: bool) -> Callable[..., nn.Module]:
    """A builder of fused or explicit attention with DeiT's head width by default."""

    def build(dim: int, height: int, width: int, num_heads: int | None = None,
              **_: object) -> nn.Module:
        return Attention(dim, num_heads or default_heads(dim), fused=fused)

    return build


MIXERS: dict[str, MixerSpec] = {
    spec.name: spec
    for spec in (
        MixerSpec(
            name="global_filter",
            build=lambda dim, height, width, impl="reference", **_: GlobalFilter(
                dim, height, width, impl=impl),
            flops=lambda dim, height, width, **_: (
                2 * fft_flops((height, width, dim), (0, 1)) + height * (width // 2 + 1) * dim),
            params=lambda dim, height, width, **_: 2 * height * (width // 2 + 1) * dim,
            flops_formula="2*HWD*ceil(log2 HW) + H(W/2+1)D",
            params_formula="2*H(W/2+1)D",
            paper="O(HWD ceil(log2 HW) + HWD) / HWD",
        ),
        MixerSpec(
            name="attention",
            build=_build_attention(fused=True),
            flops=_attention_flops,
            params=lambda dim, height, width, **_: 4 * dim * dim + 4 * dim,
            flops_formula="4ND^2 + 2N^2D (N = HW, fused SDPA)",
            params_formula="4D^2 + 4D",
            paper="O(HWD^2 + H^2W^2D) / 4D^2",
        ),
        MixerSpec(
            name="attention_explicit",
            build=_build_attention(fused=False),
            flops=_attention_flops,
            params=lambda dim, height, width, **_: 4 * dim * dim + 4 * dim,
            flops_formula="4ND^2 + 2N^2D (N = HW, softmax(QK^T)V)",
            params_formula="4D^2 + 4D",
            paper="O(HWD^2 + H^2W^2D) / 4D^2",
        ),
        MixerSpec(
            name="spatial_mlp",
            build=lambda dim, height, width, **_: SpatialMLP(dim, height, width),
            flops=lambda dim, height, width, **_: (height * width) ** 2 * dim,
            params=lambda dim, height, width, **_: (height * width) ** 2 + height * width,
            flops_formula="N^2 D",
            params_formula="N^2 + N",
            paper="O(H^2W^2D) / H^2W^2",
        ),
        MixerSpec(
            name="dwconv",
            build=lambda dim, height, width, kernel_size=3, **_: DepthwiseConv(dim, kernel_size),
            flops=lambda dim, height, width, kernel_size=3, **_: kernel_size**2 * height * width
            * dim,
            params=lambda dim, height, width, kernel_size=3, **_: kernel_size**2 * dim + dim,
            flops_formula="k^2 HWD (k = 3 by default)",
            params_formula="k^2 D + D",
            paper="O(k^2 HWD) / k^2 D",
        ),
        MixerSpec(
            name="pooling",
            build=lambda dim, height, width, pool_size=3, **_: Pooling(pool_size),
            flops=lambda dim, height, width, pool_size=3, **_: pool_size**2 * height * width * dim,
            params=lambda dim, height, width, **_: 0,
            flops_formula="k^2 HWD (k = 3 by default)",
            params_formula="0",
            paper="(not in the table; PoolFormer)",
        ),
        MixerSpec(
            name="fourier",
            build=lambda dim, height, width, **_: FourierMixing(),
            flops=lambda dim, height, width, **_: fft_flops((height * width, dim), (0, 1)),
            params=lambda dim, height, width, **_: 0,
            flops_formula="ND ceil(log2 ND) (FFT over tokens and channels)",
            params_formula="0",
            paper="(not in the table; FNet)",
        ),
        MixerSpec(
            name="identity",
            build=lambda dim, height, width, **_: IdentityMixer(),
            flops=lambda dim, height, width, **_: 0,
            params=lambda dim, height, width, **_: 0,
            flops_formula="0",
            params_formula="0",
            paper="(baseline)",
        ),
    )
}


def get_mixer(name: str) -> MixerSpec:
    """The spec of a mixer by name; UnknownNameError naming the closest ones otherwise."""
    key = name.strip().lower().replace("-", "_")
    if key in MIXERS:
        return MIXERS[key]
    close = difflib.get_close_matches(key, MIXERS, n=3, cutoff=0.5)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise UnknownNameError(
        f"unknown mixer {name!r}{hint}; known mixers: {', '.join(MIXERS)}"
    )


def build_mixer(name: str, dim: int, height: int, width: int | None = None,
                **options: object) -> nn.Module:
    """Build a mixer by name for an H x W grid of dim-wide tokens."""
    return get_mixer(name).build(dim, height, height if width is None else width, **options)


def mixer_catalogue() -> list[dict]:
    """Each mixer's name, FLOP and parameter formulas and the GFNet paper's figures: the
    mixers half of `gfbench list`."""
    return [{"name": s.name, "flops_formula": s.flops_formula,
             "params_formula": s.params_formula, "paper": s.paper} for s in MIXERS.values()]
