"""Each counting rule, in both engines, equals its formula on small hand-built modules."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gfbench.measure.flops import count_flops
from gfbench.measure.handles import (
    RULES,
    attention_flops,
    fft_flops,
    fvcore_handles,
    torch_mapping,
)

ENGINES = ("torch", "fvcore")


class Lambda(nn.Module):
    """Wraps a function of the input (and holds one parameter so engines find a device)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn
        self.anchor = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return self.fn(x)


def _count(fn, shape, engine):
    return count_flops(Lambda(fn), shape, engine=engine)


def test_fft_formula_is_the_gfnet_authors_count():
    # one rfft2 of GFNet-XS's 14 x 14 x 384 feature: H*W*D*ceil(log2(H*W))
    assert fft_flops((1, 14, 14, 384), (1, 2)) == 14 * 14 * 384 * math.ceil(math.log2(196))
    assert fft_flops((2, 5, 7, 3), (1,)) == 2 * 5 * 7 * 3 * 3  # 1D over 5 points: ceil(log2 5)


@pytest.mark.parametrize("engine", ENGINES)
def test_rfft2_and_irfft2_count_on_the_real_grid(engine):
    shape = (2, 14, 14, 8)

    def filter_like(x):
        spectrum = torch.fft.rfft2(x, dim=(1, 2), norm="ortho")
        return torch.fft.irfft2(spectrum, s=(14, 14), dim=(1, 2), norm="ortho")

    counted = _count(filter_like, shape, engine)
    assert counted.total == 2 * fft_flops(shape, (1, 2))


@pytest.mark.parametrize("engine", ENGINES)
def test_inverse_is_counted_on_its_output_grid(engine):
    # an odd output width: the spectrum has 8 columns, the inverse writes 13
    counted = _count(lambda x: torch.fft.irfft2(torch.fft.rfft2(x), s=(10, 13)), (3, 10, 13),
                     engine)
    assert counted.total == 2 * fft_flops((3, 10, 13), (1, 2))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("fn", "expected"), [
    (lambda x: torch.fft.rfft(x), fft_flops((2, 6, 16), (2,))),
    (lambda x: torch.fft.rfft(x, n=32), fft_flops((2, 6, 32), (2,))),  # zero-padded to n
    (lambda x: torch.fft.fft2(x), fft_flops((2, 6, 16), (1, 2))),
    (lambda x: torch.fft.fftn(x), fft_flops((2, 6, 16), (0, 1, 2))),
    (lambda x: torch.fft.ifft(torch.fft.fft(x, dim=1), dim=1), 2 * fft_flops((2, 6, 16), (1,))),
    (lambda x: torch.fft.irfft(torch.fft.rfft(x)), 2 * fft_flops((2, 6, 16), (2,))),
    (lambda x: torch.fft.ifft2(torch.fft.fft2(x)), 2 * fft_flops((2, 6, 16), (1, 2))),
], ids=["rfft", "rfft-n", "fft2", "fftn", "fft-ifft", "rfft-irfft", "fft2-ifft2"])
def test_every_fft_family_is_counted(engine, fn, expected):
    assert _count(fn, (2, 6, 16), engine).total == expected


@pytest.mark.parametrize("engine", ENGINES)
def test_only_complex_products_count(engine):
    real = _count(lambda x: x * 2.0 * x, (1, 14, 8, 4), engine)
    complex_ = _count(lambda x: torch.complex(x, x) * torch.complex(x, -x), (1, 14, 8, 4),
                      engine)
    assert real.total == 0
    assert complex_.total == 14 * 8 * 4
    if engine == "torch":  # a real product is reported as uncounted, not hidden
        assert real.uncounted["mul"] == 2 and "mul" not in complex_.uncounted


@pytest.mark.parametrize("engine", ENGINES)
def test_a_complex_scaled_by_a_number_is_element_wise_not_a_product(engine):
    scaled = _count(lambda x: torch.complex(x, x) * 2.0, (1, 14, 8, 4), engine)
    product = _count(lambda x: torch.complex(x, x) * x, (1, 14, 8, 4), engine)
    assert scaled.total == 0 and product.total == 14 * 8 * 4


def test_backward_ops_have_rules_in_the_torch_mapping():
    mapping = torch_mapping()
    for name in ("_scaled_dot_product_flash_attention_for_cpu_backward",
                 "_scaled_dot_product_flash_attention_backward", "convolution_backward",
                 "avg_pool2d_backward", "_adaptive_avg_pool2d_backward"):
        assert getattr(torch.ops.aten, name) in mapping, name
    # a depthwise convolution's backward: each gradient = the forward's 2*8*3*3*5*5 = 3600
    x, w = torch.empty(2, 8, 5, 5, device="meta"), torch.empty(8, 1, 3, 3, device="meta")
    grad = torch.empty(2, 8, 5, 5, device="meta")
    formula = mapping[torch.ops.aten.convolution_backward]
    args = (grad, x, w, [8], [1, 1], [1, 1], [1, 1], False, [0, 0], 8)
    assert formula(*args, [True, True, False], out_val=None) == 2 * 3600
    assert formula(*args, [False, True, False], out_val=None) == 3600


@pytest.mark.parametrize("engine", ENGINES)
def test_fused_attention_counts_qk_and_av(engine):
    def sdpa(x):
        q = x.reshape(2, 50, 3, 16).transpose(1, 2)
        return F.scaled_dot_product_attention(q, q, q)

    counted = _count(sdpa, (2, 50, 48), engine)
    assert counted.total == attention_flops((2, 3, 50, 16), (2, 3, 50, 16), (2, 3, 50, 16))
    assert counted.total == 2 * 50 * 50 * 48 * 2  # 2*N^2*D per image


@pytest.mark.parametrize("engine", ENGINES)
def test_average_pooling_is_k_squared_per_output(engine):
    counted = _count(lambda x: F.avg_pool2d(x, 3, stride=1, padding=1), (1, 8, 10, 10), engine)
    assert counted.total == 9 * 8 * 10 * 10


@pytest.mark.parametrize("engine", ENGINES)
def test_same_padding_convolution_is_counted(engine):
    conv = nn.Conv2d(4, 6, 3, padding="same")
    counted = count_flops(conv, (1, 4, 9, 9), engine=engine)
    assert counted.total == 6 * 4 * 3 * 3 * 9 * 9


@pytest.mark.parametrize("module", [
    nn.LayerNorm(16), nn.LayerNorm(16, elementwise_affine=False), nn.GroupNorm(4, 16),
    nn.BatchNorm2d(16), nn.InstanceNorm2d(16, affine=True), nn.AdaptiveAvgPool2d(2),
    nn.Upsample(scale_factor=2), nn.Upsample(scale_factor=2, mode="bilinear"),
], ids=lambda m: type(m).__name__ + ("" if getattr(m, "elementwise_affine", True) else "-raw"))
def test_torch_engine_counts_what_fvcore_counts(module):
    shape = (2, 16, 6, 6) if not isinstance(module, nn.LayerNorm) else (2, 6, 16)
    by_torch = count_flops(module, shape, engine="torch").total
    assert by_torch > 0
    assert by_torch == count_flops(module, shape, engine="fvcore").total


def test_torch_dense_formulas_are_halved_to_multiply_adds():
    counted = count_flops(nn.Linear(32, 24, bias=True), (5, 32), engine="torch")
    assert counted.total == 5 * 32 * 24


def test_one_table_feeds_both_engines():
    handles, mapping = fvcore_handles(), torch_mapping()
    for rule in RULES:
        assert set(rule.fvcore) <= set(handles)
        for name in rule.torch:
            packet = getattr(torch.ops.aten, name, None)
            assert packet is None or packet in mapping
    assert torch.ops.aten._fft_r2c in mapping and "aten::fft_rfft2" in handles
    assert torch.ops.aten._scaled_dot_product_flash_attention_for_cpu in mapping
