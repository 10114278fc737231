"""GFNet family: exact parameter counts, release key/shape layout, forward semantics, resizing."""

import math

import pytest
import timm
import torch
from torch import nn

import gfbench
from gfbench.models.gfnet import GFBlock, resize_filter, resize_pos_embed

# Exact counts of the release architecture at 224 (raoyongming/GFNet's model definitions).
RELEASE_PARAMS = {
    "gfnet-ti": 7_511_784, "gfnet-xs": 15_985_768, "gfnet-s": 24_869_608,
    "gfnet-b": 43_120_616, "gfnet-h-ti": 15_085_096, "gfnet-h-s": 32_162_632,
    "gfnet-h-b": 53_744_200,
}
FLAT = {"gfnet-ti": (256, 12), "gfnet-xs": (384, 12), "gfnet-s": (384, 19), "gfnet-b": (512, 19)}
PYRAMID = {
    "gfnet-h-ti": ((64, 128, 256, 512), (3, 3, 10, 3)),
    "gfnet-h-s": ((96, 192, 384, 768), (3, 3, 10, 3)),
    "gfnet-h-b": ((96, 192, 384, 768), (3, 3, 27, 3)),
}


def meta_model(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return gfbench.create_model(name, **kwargs)


def block_shapes(prefix: str, dim: int, side: int, gamma: bool) -> dict[str, tuple]:
    shapes = {
        f"{prefix}.norm1.weight": (dim,), f"{prefix}.norm1.bias": (dim,),
        f"{prefix}.filter.complex_weight": (side, side // 2 + 1, dim, 2),
        f"{prefix}.norm2.weight": (dim,), f"{prefix}.norm2.bias": (dim,),
        f"{prefix}.mlp.fc1.weight": (4 * dim, dim), f"{prefix}.mlp.fc1.bias": (4 * dim,),
        f"{prefix}.mlp.fc2.weight": (dim, 4 * dim), f"{prefix}.mlp.fc2.bias": (dim,),
    }
    if gamma:
        shapes[f"{prefix}.gamma"] = (dim,)
    return shapes


def release_layout(name: str) -> dict[str, tuple]:
    """The key -> shape table of a released checkpoint, written from the documented format."""
    if name in FLAT:
        dim, depth = FLAT[name]
        shapes = {"patch_embed.proj.weight": (dim, 3, 16, 16), "patch_embed.proj.bias": (dim,),
                  "pos_embed": (1, 196, dim)}
        for i in range(depth):
            shapes |= block_shapes(f"blocks.{i}", dim, 14, gamma=False)
        last = dim
    else:
        dims, depths = PYRAMID[name]
        shapes = {"patch_embed.0.proj.weight": (dims[0], 3, 4, 4),
                  "patch_embed.0.proj.bias": (dims[0],), "pos_embed": (1, 56 * 56, dims[0])}
        for i in range(1, 4):
            shapes[f"patch_embed.{i}.proj.weight"] = (dims[i], dims[i - 1], 2, 2)
            shapes[f"patch_embed.{i}.proj.bias"] = (dims[i],)
        for stage, depth in enumerate(depths):
            for j in range(depth):
                shapes |= block_shapes(f"blocks.{stage}.{j}", dims[stage], 56 >> stage, True)
        last = dims[-1]
    shapes |= {"norm.weight": (last,), "norm.bias": (last,), "head.weight": (1000, last),
               "head.bias": (1000,)}
    return shapes


@pytest.mark.parametrize("name", RELEASE_PARAMS)
def test_parameter_count_equals_release(name):
    model = meta_model(name)
    assert sum(p.numel() for p in model.parameters()) == RELEASE_PARAMS[name]


@pytest.mark.parametrize("name", RELEASE_PARAMS)
def test_state_dict_keys_and_shapes_match_release(name):
    got = {k: tuple(v.shape) for k, v in meta_model(name).state_dict().items()}
    assert got == release_layout(name)


@pytest.mark.parametrize("name", ["gfnet-h-ti", "gfnet-h-s", "gfnet-h-b"])
def test_layer_scale_init_values(name):
    expected = {"gfnet-h-ti": 1e-3, "gfnet-h-s": 1e-5, "gfnet-h-b": 1e-6}[name]
    gamma = gfbench.create_model(name).blocks[0][0].gamma
    assert torch.allclose(gamma, torch.full_like(gamma, expected))


def test_registered_in_timm():
    model = timm.create_model("gfnet_xs", img_size=384)
    assert model.grid == (24, 24)
    assert model.blocks[0].filter.complex_weight.shape == (24, 13, 384, 2)


def release_block(block: GFBlock, tokens: torch.Tensor, side: int) -> torch.Tensor:
    """The released block written out on (B, N, C) tokens, independently of gfbench's code."""
    batch, count, dim = tokens.shape
    y = nn.functional.layer_norm(tokens, (dim,), block.norm1.weight, block.norm1.bias, 1e-6)
    y = y.view(batch, side, side, dim).to(torch.float32)
    y = torch.fft.rfft2(y, dim=(1, 2), norm="ortho")
    y = y * torch.view_as_complex(block.filter.complex_weight)
    y = torch.fft.irfft2(y, s=(side, side), dim=(1, 2), norm="ortho").reshape(batch, count, dim)
    y = nn.functional.layer_norm(y, (dim,), block.norm2.weight, block.norm2.bias, 1e-6)
    y = block.mlp.fc2(nn.functional.gelu(block.mlp.fc1(y)))
    if block.gamma is not None:
        y = block.gamma * y
    return tokens + y  # ONE residual around filter and MLP


def test_flat_forward_equals_release_semantics():
    torch.manual_seed(0)
    model = gfbench.create_model("gfnet-ti", img_size=64, num_classes=10).eval()
    for p in model.parameters():  # non-trivial values everywhere
        nn.init.normal_(p, std=0.05)
    image = torch.randn(2, 3, 64, 64)
    tokens = model.patch_embed.proj(image).flatten(2).transpose(1, 2) + model.pos_embed
    for block in model.blocks:
        tokens = release_block(block, tokens, 4)
    tokens = nn.functional.layer_norm(tokens, (256,), model.norm.weight, model.norm.bias, 1e-6)
    expected = model.head(tokens.mean(1))
    with torch.no_grad():
        assert torch.allclose(model(image), expected, atol=1e-5, rtol=1e-4)


def test_single_residual_branch():
    """x + mlp(norm2(filter(norm1 x))); two residuals (x + f, then + mlp) give another value."""
    torch.manual_seed(0)
    block = GFBlock(8, (4, 4)).eval()
    for p in block.parameters():
        nn.init.normal_(p, std=0.5)
    x = torch.randn(2, 4, 4, 8)
    with torch.no_grad():
        got = block(x)
        filtered = block.filter(block.norm1(x))
        single = x + block.mlp(block.norm2(filtered))
        mid = x + filtered
        double = mid + block.mlp(block.norm2(mid))
    assert torch.allclose(got, single, atol=1e-6)
    assert not torch.allclose(got, double, atol=1e-3)


def test_filter_fft_runs_in_float32_under_bf16_input():
    block = GFBlock(8, (4, 4))
    out = block.filter(torch.randn(1, 4, 4, 8, dtype=torch.bfloat16))
    assert out.dtype == torch.float32


def test_pyramid_stage_grids_scale_with_resolution():
    model = meta_model("gfnet-h-ti", img_size=384)
    sides = [stage[0].filter.complex_weight.shape[0] for stage in model.blocks]
    assert sides == [96, 48, 24, 12]


def test_non_square_resolution_builds_and_runs():
    model = gfbench.create_model("gfnet-ti", img_size="64x96", num_classes=5).eval()
    assert model.blocks[0].filter.complex_weight.shape == (4, 4, 256, 2)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 96)).shape == (1, 5)


def test_resize_filter_same_size_is_identity_and_keeps_corners():
    weight = torch.randn(14, 8, 6, 2)
    assert torch.equal(resize_filter(weight, (14, 8)), weight)
    bigger = resize_filter(weight, (24, 13))
    assert bigger.shape == (24, 13, 6, 2)
    # align_corners=True: the four corners of the grid are sampled exactly
    for i, j in ((0, 0), (0, -1), (-1, 0), (-1, -1)):
        assert torch.allclose(bigger[i, j], weight[i, j], atol=1e-5)


def test_resize_pos_embed_is_bicubic_on_the_square_grid():
    pos = torch.randn(1, 16, 3)
    assert torch.equal(resize_pos_embed(pos, (4, 4)), pos)
    out = resize_pos_embed(pos, (8, 8))
    grid = pos.reshape(1, 4, 4, 3).permute(0, 3, 1, 2)
    expected = nn.functional.interpolate(grid, size=(8, 8), mode="bicubic", align_corners=False)
    assert torch.allclose(out, expected.permute(0, 2, 3, 1).reshape(1, 64, 3))
    assert math.isclose(out.shape[1], 64)


def test_the_readmes_registration_snippet_runs_in_a_fresh_interpreter():
    import subprocess
    import sys

    snippet = ("import sys, gfbench; assert 'timm' not in sys.modules; "
               "import gfbench.models, timm; "
               "print(timm.create_model('gfnet_xs', img_size=384).grid)")
    done = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-1000:]
    assert done.stdout.strip() == "(24, 24)"
