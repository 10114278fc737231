"""Bytes moved per op, against hand counts: every kernel reads its inputs and writes its outputs
once (4 bytes a float32 element, 8 a complex64 one), views move nothing, fused attention
never writes its scores, and the per-module bytes add up to the traced total."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gfbench.layers.global_filter import GlobalFilter
from gfbench.measure.flops import count_flops
from gfbench.measure.traffic import ByteTrace, op_bytes, tensor_bytes

F32, C64 = 4, 8  # bytes per float32 and per complex64 element


def traced(run, training: bool = False) -> dict[str, int]:
    """op -> bytes of everything ``run`` dispatches, all under one key (no modules)."""
    with ByteTrace(lambda: "", training) as trace:
        run()
    return dict(trace.by_module.get("", {}))


def meta(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A meta tensor (nothing allocated)."""
    return torch.empty(*shape, dtype=dtype, device="meta")


def test_tensor_bytes_counts_complex_elements_in_full():
    assert tensor_bytes(meta(3, 5)) == 15 * F32
    assert tensor_bytes(meta(3, 5, dtype=torch.complex64)) == 15 * C64
    assert tensor_bytes(meta(3, 5, dtype=torch.bfloat16)) == 15 * 2


@pytest.mark.parametrize("bias", [True, False])
def test_linear_reads_input_weight_and_bias_and_writes_its_output(bias):
    batch, n_in, n_out = 5, 8, 3
    # x (5x8) and the weight (3x8) read, the bias (3) read, the output (5x3) written
    hand = (batch * n_in + n_out * n_in + (n_out if bias else 0) + batch * n_out) * F32
    counted = count_flops(nn.Linear(n_in, n_out, bias=bias), (batch, n_in))
    assert counted.bytes_total == hand == (328 if bias else 316)
    assert counted.bytes_by_operator == {"addmm" if bias else "mm": hand}  # t() is a view


def test_linear_reads_its_weight_once_per_batch_so_bytes_per_image_fall():
    n_in, n_out = 64, 32
    weight = (n_in * n_out + n_out) * F32
    per_image = {batch: count_flops(nn.Linear(n_in, n_out), (batch, n_in)).bytes_total / batch
                 for batch in (1, 8, 64)}
    for batch, value in per_image.items():  # W/B + (input + output) per image
        assert value == weight / batch + (n_in + n_out) * F32
    assert per_image[1] > per_image[8] > per_image[64]


def test_a_copy_only_a_batch_needs_is_counted_at_that_batch():
    from gfbench.layers import build_mixer

    side, dim = 14, 384
    tokens = side * side * dim * 4  # one image's float32 tokens
    per_image = {batch: count_flops(lambda: build_mixer("spatial_mlp", dim, side),
                                    (batch, side, side, dim)).bytes_by_operator
                 for batch in (1, 8)}
    # (B, N, D) -> (B, D, N) for the token Linear: a view at batch 1, a copy (clone) above
    assert "clone" not in per_image[1]
    assert per_image[8]["clone"] == 8 * 2 * tokens  # read and written once per image


def test_conv2d_reads_input_weight_bias_and_writes_output():
    # x 2x3x5x5, weight 4x3x3x3, bias 4 read; 2x4x3x3 written
    hand = (2 * 3 * 25 + 4 * 3 * 9 + 4 + 2 * 4 * 3 * 3) * F32
    counted = count_flops(nn.Conv2d(3, 4, 3), (2, 3, 5, 5))
    assert counted.bytes_by_operator == {"convolution": hand}
    assert hand == 1336


def test_layer_norm_reads_x_and_affine_and_writes_output_mean_and_rstd():
    # x (2,4,8) + weight and bias (8 each) read; y (2,4,8), mean and rstd (2,4,1) written
    hand = (64 + 8 + 8 + 64 + 8 + 8) * F32
    counted = count_flops(nn.LayerNorm(8), (2, 4, 8))
    assert counted.bytes_by_operator == {"native_layer_norm": hand} and hand == 640


def test_rfft2_and_irfft2_move_the_real_grid_and_the_complex64_half_spectrum():
    x = meta(2, 4, 6, 8)
    real = 2 * 4 * 6 * 8 * F32  # 1536
    half = 2 * 4 * (6 // 2 + 1) * 8 * C64  # 2048: complex64, W//2+1 = 4 columns
    moved = traced(lambda: torch.fft.irfft2(torch.fft.rfft2(x, dim=(1, 2)), s=(4, 6),
                                            dim=(1, 2)))
    assert moved == {"_fft_r2c": real + half, "_fft_c2r": half + real}


def test_global_filter_is_three_kernels_forward_fft_product_inverse_fft():
    batch, height, width, dim = 2, 4, 6, 8
    real = batch * height * width * dim * F32
    spectrum = batch * height * (width // 2 + 1) * dim * C64
    weight = height * (width // 2 + 1) * dim * C64  # viewed as complex: no copy
    counted = count_flops(GlobalFilter(dim, height, width), (batch, height, width, dim))
    assert counted.bytes_by_operator == {
        "_fft_r2c": real + spectrum,  # x read, spectrum written
        "mul": spectrum + weight + spectrum,  # spectrum and filter read, product written
        "_fft_c2r": spectrum + real}  # product read, y written
    assert counted.bytes_total == 12_288


def test_the_fast_filter_on_meta_runs_the_same_three_kernels():
    shape = (2, 4, 6, 8)
    reference = count_flops(GlobalFilter(8, 4, 6), shape)
    fast = count_flops(GlobalFilter(8, 4, 6, impl="fast"), shape)
    assert fast.module_bytes == reference.module_bytes


def test_fused_attention_reads_q_k_v_once_and_writes_o_once():
    q, k, v = (meta(1, 2, 5, 4) for _ in range(3))  # 40 elements each
    assert traced(lambda: F.scaled_dot_product_attention(q, k, v)) == {
        "scaled_dot_product_attention": 4 * 40 * F32}  # Q, K, V read; O written
    mask = meta(5, 5)
    assert traced(lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask)) == {
        "scaled_dot_product_attention": (4 * 40 + 25) * F32}
    # training keeps the logsumexp (batch, heads, Nq) in float32 for the backward pass
    assert traced(lambda: F.scaled_dot_product_attention(q, k, v), training=True) == {
        "scaled_dot_product_attention": (4 * 40 + 1 * 2 * 5) * F32}


def test_explicit_attention_writes_and_reads_the_n_by_n_scores():
    q, k, v = (meta(1, 2, 5, 4) for _ in range(3))
    qkv, scores = 40 * F32, 1 * 2 * 5 * 5 * F32
    moved = traced(lambda: (q @ k.transpose(-2, -1)).softmax(-1) @ v)
    assert moved == {"bmm": (qkv + qkv + scores) + (scores + qkv + qkv),  # QK^T, then AV
                     "_softmax": scores + scores}
    # the scores written and read twice (QK^T, softmax, AV) are what the fused kernel saves
    assert sum(moved.values()) - 4 * qkv == 4 * scores


def test_views_move_nothing_and_copies_read_and_write():
    x = meta(2, 3, 4)
    assert traced(lambda: x.view(6, 4).transpose(0, 1).reshape(4, 6).unsqueeze(0)) == {}
    y = meta(2, 3, 4)  # restrided in place: metadata only
    assert traced(lambda: y.unsqueeze_(0).as_strided_((2, 12), (12, 1))) == {}
    assert traced(lambda: x.transpose(1, 2).contiguous()) == {"clone": 2 * 24 * F32}
    assert traced(lambda: torch.cat([x, x])) == {"cat": (24 + 48) * F32}  # x read once


def test_creation_and_in_place_ops():
    x = meta(10)
    assert traced(lambda: torch.empty(10, device="meta")) == {}  # no kernel runs
    assert traced(lambda: torch.zeros(10, device="meta")) == {"zeros": 10 * F32}  # write only
    assert traced(lambda: x.add_(1.0)) == {"add_": 2 * 10 * F32}  # x read, x written once
    assert traced(lambda: x.add_(x)) == {"add_": 2 * 10 * F32}  # the same tensor read once
    y = meta(10)
    assert traced(lambda: x.copy_(y)) == {"copy_": 2 * 10 * F32}  # y read, x written
    assert traced(lambda: x.zero_()) == {"zero_": 10 * F32}


def test_op_bytes_rule_without_tracing():
    x, w = meta(4, 3), meta(3)
    out = meta(4, 3)
    assert op_bytes("mul", False, [x, w], out) == (12 + 3 + 12) * F32
    assert op_bytes("mul", False, [x, x], out) == (12 + 12) * F32  # x * x reads x once
    assert op_bytes("transpose", True, [x, 0, 1], out) == 0
    assert op_bytes("_unsafe_view", False, [x, [12]], out) == 0  # an alias not flagged a view
    assert op_bytes("empty", False, [[4, 3]], out) == 0


def _attributed_total(model: nn.Module, shape: tuple[int, ...]) -> int:
    """The bytes of one forward traced alone, without modules or the FLOP counter."""
    with torch.no_grad():
        return sum(traced(lambda: model(meta(*shape))).values())


@pytest.mark.parametrize("name", ["deit_tiny_patch16_224", "resnet18"])
def test_per_module_bytes_add_up_to_the_total_of_an_independent_trace(name):
    import timm

    with torch.device("meta"):
        model = timm.create_model(name).eval()
    shape = (1, 3, 224, 224)
    counted = count_flops(model, shape)
    assert sum(counted.bytes_by_module.values()) == counted.bytes_total
    assert sum(counted.bytes_by_operator.values()) == counted.bytes_total
    assert counted.bytes_total == _attributed_total(model, shape)
    assert set(counted.bytes_by_module) <= set(dict(model.named_modules()))
    weights = sum(tensor_bytes(p) for p in model.parameters())
    assert counted.bytes_total > weights  # every weight is read at least once
    if name.startswith("deit"):  # 12 fused attentions: Q, K, V, O of 3 heads x 197 x 64
        assert counted.bytes_by_operator["scaled_dot_product_attention"] == \
            12 * 4 * 3 * 197 * 64 * F32
        assert counted.bytes_by_module["blocks.0.attn"] == (
            counted.module_bytes["blocks.0.attn"]["scaled_dot_product_attention"]
            + counted.module_bytes["blocks.0.attn"]["clone"])  # its own ops: SDPA, a copy
    else:  # conv1: 3x224x224 in, 64x7x7x3 weight, 64x112x112 out; bn1 is its own module
        assert counted.module_bytes["conv1"] == {
            "convolution": (3 * 224 * 224 + 64 * 3 * 49 + 64 * 112 * 112) * F32}


def test_fvcore_records_no_bytes():
    counted = count_flops(nn.Linear(4, 2), (1, 4), engine="fvcore")
    assert counted.module_bytes is None and counted.bytes_total is None
    assert counted.bytes_by_module is None and counted.bytes_by_operator is None


@pytest.mark.parametrize("input_grad", [True, False])
def test_a_training_count_adds_the_backward_kernels_bytes(input_grad):
    batch, n_in, n_out = 5, 8, 3
    x, w, y = batch * n_in * F32, n_out * n_in * F32, batch * n_out * F32
    forward = x + w + y  # the forward mm, as in inference
    seed = y  # the gradient of ones backward starts from (out.sum()'s), written once
    weight_grad = y + x + w  # dW = dY^T X: dY and X read, dW written
    input_grad_mm = y + w + x  # dX = dY W: dY and W read, dX written
    counted = count_flops(nn.Linear(n_in, n_out, bias=False), (batch, n_in), train=True,
                          input_grad=input_grad)
    assert counted.forward_bytes_total == forward
    assert counted.bytes_total == forward + seed + weight_grad + (input_grad_mm if input_grad
                                                                  else 0)
    assert sum(counted.bytes_by_module.values()) == counted.bytes_total
