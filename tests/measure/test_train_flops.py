"""Training FLOPs (count_flops train=True): the backward pass autograd really runs on meta,
checked against hand counts of each layer's gradients."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import sdpa_backward_flop_count

from gfbench.layers.global_filter import GlobalFilter
from gfbench.measure.flops import count_flops


def _train(module: nn.Module, shape: tuple[int, ...], input_grad: bool = True):
    return count_flops(module, shape, train=True, input_grad=input_grad)


class _Fn(nn.Module):
    """A function as a module (the counters take modules)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


# --- Linear: B*in*out forward; each gradient computed costs that again ------------------------

B, IN, OUT = 5, 32, 24


@pytest.mark.parametrize(("frozen", "input_grad", "gradients"), [
    (False, True, 2),  # weight and input gradients
    (True, True, 1),  # frozen weight: the input gradient alone
    (False, False, 1),  # first layer: the weight gradient alone
])
def test_linear_backward_counts_the_gradients_autograd_computes(frozen, input_grad, gradients):
    linear = nn.Linear(IN, OUT, bias=False).requires_grad_(not frozen)
    counted = _train(linear, (B, IN), input_grad)
    forward = B * IN * OUT
    assert counted.forward_total == forward
    assert counted.backward_total == gradients * forward
    assert counted.total == (1 + gradients) * forward
    assert counted.backward_flops == {"": {"mm": gradients * forward}}


def test_a_frozen_model_with_an_input_that_needs_no_gradient_has_no_backward():
    linear = nn.Linear(IN, OUT).requires_grad_(False)
    counted = _train(linear, (B, IN), input_grad=False)
    assert counted.forward_total == B * IN * OUT and counted.backward_total == 0


def test_inference_counts_have_no_backward():
    counted = count_flops(nn.Linear(IN, OUT), (B, IN))
    assert counted.backward_total == 0 and counted.total == counted.forward_total


def test_both_engines_count_a_training_forward_in_train_mode():
    shape = (2, 8, 5, 5)
    elements = 2 * 8 * 5 * 5
    by_torch = count_flops(nn.BatchNorm2d(8), shape, train=True, input_grad=True)
    by_fvcore = count_flops(nn.BatchNorm2d(8), shape, engine="fvcore", train=True)
    assert by_torch.forward_total == by_fvcore.total == 5 * elements  # fvcore: training BN
    assert count_flops(nn.BatchNorm2d(8), shape).total == 2 * elements  # eval BN
    assert by_fvcore.backward_total == 0  # fvcore traces the forward alone
    assert by_torch.backward_total == 0  # BatchNorm's backward stays uncounted, listed
    assert by_torch.uncounted["native_batch_norm_backward"] == 1


# --- Conv2d: B*Cout*(Cin/groups)*k*k*Ho*Wo forward; again per gradient ------------------------


@pytest.mark.parametrize(("frozen", "input_grad", "gradients"), [
    (False, True, 2), (True, True, 1), (False, False, 1)])
@pytest.mark.parametrize("groups", [1, 6], ids=["dense", "depthwise"])
def test_convolution_backward_counts_each_gradient_once(frozen, input_grad, gradients, groups):
    batch, channels, out_channels, side, k, stride = 2, 6, 12, 9, 3, 2
    conv = nn.Conv2d(channels, out_channels, k, stride=stride, padding=1, groups=groups,
                     bias=False).requires_grad_(not frozen)
    out_side = (side + 2 - k) // stride + 1
    forward = batch * out_channels * (channels // groups) * k * k * out_side**2
    counted = _train(conv, (batch, channels, side, side), input_grad)
    assert counted.forward_total == forward
    assert counted.backward_total == gradients * forward
    assert counted.by_operator["convolution_backward"] == gradients * forward


# --- GFNet's global filter: FFTs both ways, the complex product twice -------------------------


@pytest.mark.parametrize(("frozen", "products"), [(False, 2), (True, 1)])
def test_global_filter_backward_is_one_fft_per_fft_and_one_product_per_gradient(frozen,
                                                                                products):
    batch, height, width, dim = 2, 14, 14, 16
    layer = GlobalFilter(dim, height, width)
    layer.complex_weight.requires_grad_(not frozen)
    fft = batch * height * width * dim * math.ceil(math.log2(height * width))
    product = batch * height * (width // 2 + 1) * dim  # one per complex element
    counted = _train(layer, (batch, height, width, dim))
    assert counted.forward_total == 2 * fft + product  # rfft2, product, irfft2
    # irfft2's backward is a real-to-complex FFT of the gradient, rfft2's a complex FFT of
    # the (zero-extended) spectrum gradient: each one FFT of the grid; the product gives the
    # input's spectrum gradient (g * conj(w)) and, for a trainable filter, the filter's
    assert counted.backward_flops == {"": {"_fft_r2c": fft, "_fft_c2c": fft,
                                           "mul": products * product}}
    assert counted.backward_uncounted[""]["mul_"] == 1  # irfft's x2 of mirrored bins: a scaling


# --- attention: fused (recompute) against explicit (matmul gradients) -------------------------

HEADS, TOKENS, HEAD_DIM = 3, 50, 16


def _heads(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(2, TOKENS, HEADS, HEAD_DIM).transpose(1, 2)


def test_fused_attention_backward_recomputes_the_scores():
    counted = _train(_Fn(lambda x: F.scaled_dot_product_attention(*(_heads(x),) * 3)),
                     (2, TOKENS, HEADS * HEAD_DIM))
    per_head = TOKENS * TOKENS * HEAD_DIM
    assert counted.forward_total == 2 * HEADS * 2 * per_head  # QK^T and AV, 2 images
    # recompute QK^T, then dP = dO V^T, dV = P^T dO, dQ = dS K, dK = dS^T Q
    assert counted.backward_total == 2 * HEADS * 5 * per_head
    shape = (2, HEADS, TOKENS, HEAD_DIM)  # torch's own formula, in 2*m*n*k
    assert counted.backward_total == sdpa_backward_flop_count(shape, shape, shape, shape) // 2


def test_explicit_attention_backward_is_the_matmul_gradients():
    def explicit(x):
        q = _heads(x)
        return (q @ q.transpose(-2, -1)).softmax(-1) @ q

    counted = _train(_Fn(explicit), (2, TOKENS, HEADS * HEAD_DIM))
    per_head = TOKENS * TOKENS * HEAD_DIM
    assert counted.forward_total == 2 * HEADS * 2 * per_head
    # each of the two matmuls gives both its operands a gradient: 4 N^2 D, no recompute
    assert counted.backward_total == 2 * HEADS * 4 * per_head
    assert set(counted.backward_flops[""]) == {"bmm"}
    assert counted.backward_uncounted[""]["_softmax_backward_data"] == 1


# --- a whole timm model ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def deit_tiny():
    import timm

    def build():
        return timm.create_model("deit_tiny_patch16_224")

    return count_flops(build, (1, 3, 224, 224), train=True), count_flops(build,
                                                                       (1, 3, 224, 224))


def test_deit_tiny_backward_is_twice_its_matmuls_and_more_for_attention(deit_tiny):
    train, infer = deit_tiny
    forward = _summed_forward(train)
    assert train.forward_total == infer.total  # dropout is 0: the same ops in train mode
    # every Linear: 2 gradients; fused attention: 5/2 of its forward (recompute); the patch
    # embedding (first layer): its weight gradient only, the image needs none; LayerNorm's
    # backward is left uncounted (listed)
    expected = (2 * forward["addmm"]
                + 5 * forward["_scaled_dot_product_flash_attention_for_cpu"] // 2
                + forward["convolution"])
    assert train.backward_total == expected
    assert 1.9 < train.backward_total / train.forward_total < 2.2
    assert train.uncounted["native_layer_norm_backward"] == 25


def test_deit_tiny_backward_lands_in_the_modules_that_ran_the_forward(deit_tiny):
    train, _ = deit_tiny
    assert sum(train.by_module.values()) == train.total
    assert all(n >= 0 for ops in train.backward_flops.values() for n in ops.values())
    for block in range(12):
        for linear in ("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2"):
            path = f"blocks.{block}.{linear}"
            assert train.backward_flops[path] == {"mm": 2 * train.module_flops[path]["addmm"]}
        attention = train.module_flops[f"blocks.{block}.attn"]
        assert sum(train.backward_flops[f"blocks.{block}.attn"].values()) == \
            5 * sum(attention.values()) // 2
    assert train.backward_flops["patch_embed.proj"] == {
        "convolution_backward": train.module_flops["patch_embed.proj"]["convolution"]}
    assert "" not in train.backward_flops  # nothing left over for the model itself


def _summed_forward(count) -> dict[str, int]:
    """op -> forward FLOPs over the model (the by_operator view of the forward alone)."""
    total: dict[str, int] = {}
    for ops in count.module_flops.values():
        for op, n in ops.items():
            total[op] = total.get(op, 0) + n
    return total
