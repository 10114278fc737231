"""Token mixers: one interface, parameter counts equal to their formulas."""

import pytest
import torch

from gfbench.errors import UnknownNameError
from gfbench.layers import MIXERS, build_mixer, get_mixer, global_filter_reference


@pytest.mark.parametrize("name", list(MIXERS))
@pytest.mark.parametrize("height, width", [(6, 6), (4, 7)])
def test_shape_and_parameter_formula(name, height, width):
    dim = 32
    spec = MIXERS[name]
    mixer = spec.build(dim, height, width)
    x = torch.randn(2, height, width, dim)
    assert mixer(x).shape == x.shape
    assert sum(p.numel() for p in mixer.parameters()) == spec.params(dim, height, width)


def test_dwconv_kernel_option():
    mixer = build_mixer("dwconv", 16, 5, kernel_size=7)
    assert sum(p.numel() for p in mixer.parameters()) == MIXERS["dwconv"].params(
        16, 5, 5, kernel_size=7)


def test_attention_fused_equals_explicit():
    torch.manual_seed(0)
    fused = build_mixer("attention", 64, 4)
    explicit = build_mixer("attention_explicit", 64, 4)
    explicit.load_state_dict(fused.state_dict())
    x = torch.randn(2, 4, 4, 64)
    assert torch.allclose(fused(x), explicit(x), atol=1e-5)


def test_global_filter_with_unit_filter_is_identity():
    mixer = build_mixer("global_filter", 8, 6, 5)
    with torch.no_grad():
        mixer.complex_weight.zero_()
        mixer.complex_weight[..., 0] = 1.0
    x = torch.randn(2, 6, 5, 8)
    assert torch.allclose(mixer(x), x, atol=1e-5)
    assert torch.allclose(global_filter_reference(x, mixer.complex_weight), x, atol=1e-5)


def test_fourier_is_real_part_of_fft():
    x = torch.randn(1, 3, 3, 4)
    expected = torch.fft.fft2(x.reshape(1, 9, 4)).real.reshape(1, 3, 3, 4)
    assert torch.allclose(build_mixer("fourier", 4, 3)(x), expected, atol=1e-5)


def test_unknown_mixer():
    with pytest.raises(UnknownNameError, match="did you mean attention"):
        get_mixer("atention")
