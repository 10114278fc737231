"""timm models of three kinds counted on the meta device against hand counts from their papers'
layer tables: a CNN (ResNet-18), a hierarchical transformer (Swin-T) and a headless ViT
(SigLIP ViT-B/16, whose timm default has no classifier)."""

import pytest
import torch

import gfbench
from gfbench.measure.flops import count_flops, count_params
from gfbench.models import record_token_grid


def conv(k: int, c_in: int, c_out: int, side: int, groups: int = 1) -> int:
    """Multiply-adds of a k x k convolution producing a side x side map."""
    return k * k * c_in * c_out * side * side // groups


def linear(tokens: int, d_in: int, d_out: int) -> int:
    """Multiply-adds of a Linear applied to every token."""
    return tokens * d_in * d_out


def layer_norm(tokens: int, dim: int) -> int:
    """fvcore's LayerNorm count (affine): 5 per element."""
    return 5 * tokens * dim


def batch_norm(channels: int, side: int) -> int:
    """fvcore's inference BatchNorm count (affine): 2 per element."""
    return 2 * channels * side * side


def count(name: str, side: int) -> tuple[int, int, int | None]:
    """(FLOPs, params, tokens) of a timm model built as timm builds it, counted on meta."""
    with torch.device("meta"):
        model = gfbench.create_model(name)
    with record_token_grid(model) as grid:
        flops = count_flops(model, (1, 3, side, side), engine="torch").total
    return flops, count_params(model), grid.tokens


def resnet18_hand_count() -> tuple[int, int]:
    """He et al. 2016, Table 1 (18-layer) at 224: stem 7x7/2, four stages of two basic blocks."""
    flops = conv(7, 3, 64, 112) + batch_norm(64, 112)
    params = 7 * 7 * 3 * 64 + 2 * 64
    c_in = 64
    for c_out, side in ((64, 56), (128, 28), (256, 14), (512, 7)):
        for block in range(2):
            first_in = c_in if block == 0 else c_out
            flops += conv(3, first_in, c_out, side) + conv(3, c_out, c_out, side)
            flops += 2 * batch_norm(c_out, side)
            params += 9 * first_in * c_out + 9 * c_out * c_out + 2 * 2 * c_out
            if block == 0 and first_in != c_out:  # 1x1 stride-2 projection shortcut
                flops += conv(1, first_in, c_out, side) + batch_norm(c_out, side)
                params += first_in * c_out + 2 * c_out
        c_in = c_out
    flops += linear(1, 512, 1000)  # the global average pool is a mean: not counted
    params += 512 * 1000 + 1000
    return flops, params


def test_resnet18_matches_hand_count():
    flops, params, tokens = count("resnet18", 224)
    assert (flops, params) == resnet18_hand_count()
    assert params == 11_689_512  # torchvision's published count for ResNet-18
    assert tokens == 112 * 112  # a CNN's tokens: the stem's output grid


def swin_tiny_hand_count() -> tuple[int, int]:
    """Liu et al. 2021, Swin-T (C=96, depths 2-2-6-2, window 7) at 224, in MACs."""
    flops = conv(4, 3, 96, 56) + layer_norm(56 * 56, 96)  # patch embedding + its norm
    dim, side = 96, 56
    for stage, depth in enumerate((2, 2, 6, 2)):
        tokens = side * side
        if stage > 0:  # patch merging: LayerNorm on 4C, Linear 4C -> 2C (no bias)
            flops += layer_norm(tokens, 4 * dim) + linear(tokens, 4 * dim, 2 * dim)
            dim *= 2
        per_block = (2 * layer_norm(tokens, dim) + linear(tokens, dim, 3 * dim)
                     + 2 * tokens * 49 * dim  # QK^T and AV inside 7x7 windows, all heads
                     + linear(tokens, dim, dim) + 2 * linear(tokens, dim, 4 * dim))
        flops += depth * per_block
        side //= 2
    flops += layer_norm(7 * 7, 768) + linear(1, 768, 1000)  # final norm, mean pool, head
    return flops, 28_288_354


def test_swin_tiny_matches_hand_count():
    flops, params, tokens = count("swin_tiny_patch4_window7_224", 224)
    hand_flops, published_params = swin_tiny_hand_count()
    assert flops == hand_flops
    assert params == published_params  # timm's model card: 28.29M
    assert tokens == 56 * 56  # the first stage's grid


def siglip_base_hand_count() -> tuple[int, int]:
    """ViT-B/16 (Dosovitskiy et al. 2021) as SigLIP uses it: no class token, an attention
    pooling head (one latent query, MLP ratio 4) and no classifier."""
    dim, hidden, tokens = 768, 3072, 196
    block = (2 * layer_norm(tokens, dim) + linear(tokens, dim, 3 * dim)
             + 2 * tokens * tokens * dim + linear(tokens, dim, dim)
             + linear(tokens, dim, hidden) + linear(tokens, hidden, dim))
    pool = (linear(1, dim, dim) + linear(tokens, dim, 2 * dim) + 2 * tokens * dim
            + linear(1, dim, dim) + layer_norm(1, dim) + linear(1, dim, hidden)
            + linear(1, hidden, dim))
    flops = linear(tokens, 16 * 16 * 3, dim) + 12 * block + layer_norm(tokens, dim) + pool
    block_params = (dim * 3 * dim + 3 * dim + dim * dim + dim + dim * hidden + hidden
                    + hidden * dim + dim + 2 * 2 * dim)
    pool_params = (dim + dim * dim + dim + dim * 2 * dim + 2 * dim + dim * dim + dim + 2 * dim
                   + dim * hidden + hidden + hidden * dim + dim)
    params = (16 * 16 * 3 * dim + dim + tokens * dim + 12 * block_params + 2 * dim
              + pool_params)
    return flops, params


def test_headless_siglip_counts_without_a_classifier():
    flops, params, tokens = count("vit_base_patch16_siglip_224", 224)
    assert (flops, params) == siglip_base_hand_count()
    assert tokens == 196


def test_num_classes_overrides_the_default():
    with torch.device("meta"):
        headless = gfbench.create_model("vit_base_patch16_siglip_224")
        with_head = gfbench.create_model("vit_base_patch16_siglip_224", num_classes=1000)
    assert headless.num_classes == 0
    assert count_params(with_head) - count_params(headless) == 768 * 1000 + 1000


@pytest.mark.parametrize("name, native", [
    ("resnet50", (224, 224)), ("test_vit", (160, 160)), ("deit", (224, 224)),
    ("vit_base_patch16_siglip_384", (384, 384)),
])
def test_native_resolution_is_timms_input_size(name, native):
    assert gfbench.models.native_resolution(name) == native


@pytest.mark.parametrize("name", ["resnet18", "swin_tiny_patch4_window7_224",
                                  "vit_base_patch16_siglip_224"])
def test_fvcore_counts_zeroed_storage_as_it_counts_random_weights(name):
    """fvcore's count of the fast path (built on meta, given zeroed CPU storage) equals its
    count of the model built and randomly initialised as timm builds it: counts depend on
    shapes, not values."""
    from gfbench.measure.flops import _built_for_tracing, _trace_fvcore

    def build():
        return gfbench.create_model(name)

    fast = _trace_fvcore(_built_for_tracing(build, on_cpu=False), (1, 3, 224, 224))
    initialised = count_flops(build(), (1, 3, 224, 224), engine="fvcore")
    assert fast.module_flops == initialised.module_flops
    assert fast.module_uncounted == initialised.module_uncounted
