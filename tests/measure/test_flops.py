"""FLOP counting of the paper's 13 models and of every bare mixer, by both engines."""

import math
import warnings

import pytest
import torch

with warnings.catch_warnings():  # importing fvcore warns about torch.jit.script
    warnings.simplefilter("ignore")
    from fvcore.nn import FlopCountAnalysis

from torch import nn

from gfbench.layers import MIXERS, build_mixer
from gfbench.layers.global_filter import GlobalFilter
from gfbench.measure.flops import count_flops, count_params, own_parts
from gfbench.measure.memory import rss_peak_bytes
from gfbench.models import create_model

# Expected GFLOPs at 224 under gfbench's convention: plain fvcore on the released / timm
# definitions plus the FFT, filter-product and SDPA rules by hand (the papers publish the
# rounded figures: GFNet NeurIPS 2021 Table 1, DeiT Table 1, ResMLP Table 1).
EXPECTED_GFLOPS_224 = {
    "gfnet-ti": 1.288, "gfnet-xs": 2.857, "gfnet-s": 4.490, "gfnet-b": 7.939,
    "gfnet-h-ti": 2.085, "gfnet-h-s": 4.649, "gfnet-h-b": 8.614,
    "deit-ti": 1.259, "deit-s": 4.609, "deit-b": 17.582,
    "resmlp-12": 3.010, "resmlp-24": 5.961, "resmlp-36": 8.913,
}


def _builder(name, res):
    return lambda: create_model(name, img_size=res)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(EXPECTED_GFLOPS_224))
def test_engines_agree_and_match_the_expected_table(name):
    for res in (224, 384):
        shape = (1, 3, res, res)
        by_torch = count_flops(_builder(name, res), shape, engine="torch").total
        by_fvcore = count_flops(_builder(name, res), shape, engine="fvcore").total
        assert by_torch == pytest.approx(by_fvcore, rel=0.01), (name, res)
        if res == 224:
            assert by_torch / 1e9 == pytest.approx(EXPECTED_GFLOPS_224[name], rel=0.01)


def test_deit_attention_term_is_counted_where_plain_fvcore_misses_it():
    model = create_model("deit-s", img_size=224).eval()
    plain = FlopCountAnalysis(model, torch.zeros(1, 3, 224, 224))
    plain.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    tokens, width, depth = 197, 384, 12
    attention = depth * 2 * tokens**2 * width  # QK^T and AV in every block
    ours = count_flops(model, (1, 3, 224, 224), engine="fvcore")
    assert ours.total == plain.total() + attention
    assert ours.by_operator["scaled_dot_product_attention"] == attention
    assert ours.total / 1e9 == pytest.approx(4.61, abs=0.005)  # plain fvcore: 4.25


def test_deit_s_counts_at_2048_without_allocating_its_attention():
    tokens, width, depth = 128 * 128 + 1, 384, 12
    result = {}

    def count() -> None:
        result["flops"] = count_flops(_builder("deit-s", 2048), (1, 3, 2048, 2048))

    peak = rss_peak_bytes(count)
    counted = result["flops"]
    # one block's attention matrix alone would be 6 heads * 16385^2 * 4 bytes = 6.4 GB, far
    # more than this process ever held, so no freed memory could hide it from the peak RSS
    assert peak is None or peak < 512 * 2**20
    assert counted.by_operator["bmm"] == depth * 2 * tokens**2 * width
    assert counted.total > 2.5e12


@pytest.mark.parametrize("name", sorted(MIXERS))
@pytest.mark.parametrize(("height", "width"), [(14, 14), (12, 20)])
def test_every_mixer_counts_exactly_its_formula(name, height, width):
    dim, spec = 96, MIXERS[name]
    counted = count_flops(lambda: build_mixer(name, dim, height, width), (1, height, width, dim))
    assert counted.total == spec.flops(dim, height, width)


@pytest.mark.parametrize("name", sorted(MIXERS))
def test_fvcore_counts_every_mixer_the_same(name):
    dim = 48
    by_fvcore = count_flops(lambda: build_mixer(name, dim, 8, 8), (1, 8, 8, dim),
                            engine="fvcore")
    assert by_fvcore.total == MIXERS[name].flops(dim, 8, 8)


def test_a_timm_attention_pooling_head_counts_in_both_engines():
    # torch's FlopCounterMode raises on this head under no_grad; gfbench counts with autograd
    import timm

    def builder():
        return timm.create_model("vit_tiny_patch16_224", global_pool="map")

    shape = (1, 3, 224, 224)
    assert count_flops(builder, shape).total == count_flops(builder, shape, "fvcore").total


def test_uncounted_ops_are_reported_not_hidden():
    counted = count_flops(_builder("deit-s", 224), (1, 3, 224, 224))
    assert {"gelu", "add"} <= set(counted.uncounted)
    assert counted.uncounted["gelu"] == 12
    summary = counted.uncounted_summary()
    assert summary.startswith("add:") and "gelu:12" in summary


def test_a_real_module_is_counted_on_a_meta_copy_and_left_untouched():
    mixer = build_mixer("attention", 64, 8, 8)
    counted = count_flops(mixer, (1, 8, 8, 64))
    assert counted.total == MIXERS["attention"].flops(64, 8, 8)
    assert all(p.device.type == "cpu" for p in mixer.parameters())


class _Tiny(nn.Module):
    """A convolution stem, GFNet's global filter with a residual add, a Linear: all by hand."""

    def __init__(self, dim: int = 8, side: int = 8):
        super().__init__()
        self.stem = nn.Conv2d(3, dim, 3, padding=1)
        self.filter = GlobalFilter(dim, side, side)
        self.proj = nn.Linear(dim, 2 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x).permute(0, 2, 3, 1)
        return self.proj(self.filter(x) + x)


@pytest.mark.parametrize("engine", ["torch", "fvcore"])
def test_one_count_gives_total_operator_and_module_views_that_agree(engine):
    dim, side = 8, 8
    conv = 3 * 3 * 3 * dim * side * side
    fft = side * side * dim * math.ceil(math.log2(side * side))  # rfft2, and irfft2 alike
    product = side * (side // 2 + 1) * dim  # one complex multiply per spectrum element
    linear = side * side * dim * 2 * dim
    counted = count_flops(_Tiny, (1, 3, side, side), engine=engine)
    assert counted.total == conv + 2 * fft + product + linear == 28_480
    assert counted.by_module == {"stem": conv, "filter": 2 * fft + product, "proj": linear}
    assert sorted(counted.by_operator.values()) == sorted([conv, fft, fft, product, linear])
    assert sum(counted.by_module.values()) == sum(counted.by_operator.values()) == counted.total
    assert counted.module_uncounted[""] == {"add": 1}  # the residual, the model's own op
    assert counted.uncounted == {"add": sum(t.get("add", 0)
                                            for t in counted.module_uncounted.values())}


def test_own_parts_subtract_the_nearest_counted_descendant():
    from collections import Counter

    inclusive = {"": Counter(mm=10), "blocks.0": Counter(mm=6), "blocks.0.attn": Counter(mm=4),
                 "head": Counter(mm=1)}  # "blocks" itself never ran (a ModuleList)
    own = own_parts(inclusive)
    assert own == {"": Counter(mm=3), "blocks.0": Counter(mm=2),
                   "blocks.0.attn": Counter(mm=4), "head": Counter(mm=1)}
    # a module whose children do all of its work has no own part to list
    assert own_parts({"": {"mm": 5}, "blocks": {"mm": 5}, "blocks.0": {"mm": 5}}) == {
        "blocks.0": {"mm": 5}}


def test_parameters_are_counted_on_meta():
    with torch.device("meta"):
        model = create_model("gfnet-xs", img_size=224)
    assert count_params(model) == 15_985_768  # the release's GFNet-XS at 224


def test_unknown_engine_is_refused():
    with pytest.raises(ValueError, match="engine"):
        count_flops(lambda: build_mixer("identity", 8, 4, 4), (1, 4, 4, 8), engine="thop")


def test_resmlp_parameters_grow_with_the_square_of_the_tokens():
    small, large = (count_params(_meta("resmlp-12", r)) for r in (224, 448))
    # 12 token-mixing Linears of N x N (+ N bias): 196 -> 784 tokens
    assert large - small == 12 * ((784**2 + 784) - (196**2 + 196))
    assert math.isclose(small, 15_350_872)


def _meta(name, res):
    with torch.device("meta"):
        return create_model(name, img_size=res)
