"""Per-module breakdown: hand counts by role, totals equal to each engine's, roles for timm
models, depths, planning and the results file."""

from __future__ import annotations

import math

import pytest
import torch

from gfbench.errors import GfbenchError, UnknownNameError
from gfbench.measure import breakdown as bd
from gfbench.measure import flops
from gfbench.measure.flops import count_flops, count_params
from gfbench.measure.setting import Setting, SweepOptions, count_setting
from gfbench.models import create_model
from gfbench.results import read_rows


def by_group(rows, field="flops"):
    """The rows of one setting added up per role (plain Python, no gfbench helper)."""
    totals = dict.fromkeys(bd.GROUPS, 0)
    for row in rows:
        totals[row.group] += getattr(row, field)
    return totals


def meta(name, size=224):
    """A model on the meta device."""
    with torch.device("meta"):
        return create_model(name, img_size=size)


# --- hand counts (one fused multiply-add = one FLOP) ---------------------------------------


def test_deit_s_roles_match_hand_counts_from_layer_shapes():
    n, d, depth, classes = 197, 384, 12, 1000  # 14*14 patches + the class token
    rows = bd.breakdown_setting("deit-s", (224, 224), depth=0)
    flops, params = by_group(rows), by_group(rows, "params")
    qkv, proj, sdpa = n * d * 3 * d, n * d * d, 2 * n * n * d  # SDPA: QK^T and AV
    assert flops["token_mixer"] == depth * (qkv + proj + sdpa) == 1_752_007_680
    assert flops["channel_mlp"] == depth * 2 * n * d * 4 * d
    assert flops["embedding"] == 196 * d * (3 * 16 * 16)  # the 16x16 patch convolution
    assert flops["head"] == d * classes
    assert flops["norm"] == (2 * depth + 1) * 5 * n * d  # LayerNorm: 5 per element (fvcore)
    assert params["token_mixer"] == depth * (d * 3 * d + 3 * d + d * d + d)
    assert params["embedding"] == 3 * 16 * 16 * d + d + n * d + d  # conv, pos_embed, cls_token
    assert params["head"] == d * classes + classes
    assert flops["other"] == 0 and params["other"] == 0


def test_gfnet_xs_token_mixer_is_the_fft_rule():
    h, w, d, depth = 14, 14, 384, 12
    rows = bd.breakdown_setting("gfnet-xs", (224, 224), depth=0)
    fft = h * w * d * math.ceil(math.log2(h * w))  # GFNet authors' count, forward and inverse
    product = h * (w // 2 + 1) * d  # one complex multiply per spectrum element
    assert by_group(rows)["token_mixer"] == depth * (2 * fft + product) == 14_966_784
    assert by_group(rows, "params")["token_mixer"] == depth * h * (w // 2 + 1) * d * 2
    # bytes: rfft2 reads the float32 grid and writes the complex64 half spectrum, the product
    # reads it and the (equally large) filter and writes it, irfft2 reads it and writes the grid
    real, spectrum = h * w * d * 4, h * (w // 2 + 1) * d * 8
    assert by_group(rows, "bytes")["token_mixer"] == \
        depth * (2 * (real + spectrum) + 3 * spectrum) == 27_869_184


def test_resmlp_token_mixer_is_linear_tokens_and_affine_is_a_norm_listed_uncounted():
    n, d, depth = 196, 384, 12
    rows = bd.breakdown_setting("resmlp-12", (224, 224), depth=3)
    assert by_group(rows)["token_mixer"] == depth * d * n * n  # Linear(N, N) on every channel
    assert by_group(rows, "params")["token_mixer"] == depth * (n * n + n)
    norm = next(r for r in rows if r.module == "blocks.0.norm1")
    assert norm.group == "norm" and norm.flops == 0 and norm.params == 2 * d
    assert norm.uncounted_ops == "addcmul:1"  # listed, not dropped


# --- totals ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gfnet-xs", "deit-s", "resmlp-12"])
def test_rows_add_up_to_the_torch_engine_total_at_every_depth(name):
    model = meta(name)
    total = count_flops(lambda: create_model(name, img_size=224), (1, 3, 224, 224)).total
    counts = count_flops(model, (1, 3, 224, 224))  # counted once, cut 5 ways
    deepest, _ = bd.module_depth(model)
    per_depth = []
    for depth in range(deepest + 1):
        rows = bd.breakdown_rows(name, (224, 224), model, counts, depth, tokens=196)
        assert all(r.flops >= 0 and r.params >= 0 for r in rows)
        assert sum(r.flops for r in rows) == total == rows[0].model_flops
        assert sum(r.params for r in rows) == count_params(model)
        assert math.isclose(sum(r.flops_share for r in rows), 1.0)
        assert sum(r.bytes for r in rows) == counts.bytes_total  # every module's bytes, once
        per_depth.append((by_group(rows), by_group(rows, "params"), by_group(rows, "bytes")))
    assert all(p == per_depth[0] for p in per_depth)  # a role's total does not depend on depth


@pytest.mark.parametrize("name", ["gfnet-ti", "deit-ti"])
def test_fvcore_rows_add_up_to_its_total_and_match_the_torch_rows(name):
    size = (64, 64)  # 4x4 tokens: fvcore traces with real tensors
    fvcore_rows = bd.breakdown_setting(name, size, depth=3, engine="fvcore")
    total = count_flops(lambda: create_model(name, img_size=size), (1, 3, *size),
                        engine="fvcore").total
    assert sum(r.flops for r in fvcore_rows) == total
    assert all(r.bytes is None for r in fvcore_rows)  # fvcore's trace records no bytes
    torch_rows = bd.breakdown_setting(name, size, depth=3, engine="torch")
    key = lambda r: (r.module, r.own, r.group)  # noqa: E731
    assert {key(r): r.flops for r in fvcore_rows if r.flops} == \
        {key(r): r.flops for r in torch_rows if r.flops}


def test_complexity_and_breakdown_read_the_same_count(monkeypatch):
    traced = []  # every FlopCount the torch engine made

    def spy(*args):
        traced.append(real(*args))
        return traced[-1]

    real = flops._count_torch
    monkeypatch.setattr(flops, "_count_torch", spy)
    setting = Setting("model", "gfnet-ti", 64, 64, 1, "fp32", "infer", "meta")
    row = count_setting(setting, SweepOptions(metrics=frozenset({"flops"}), fvcore_max_flops=0))
    rows = bd.breakdown_setting("gfnet-ti", (64, 64), depth=2)
    complexity_count, breakdown_count = traced  # one trace each, nothing counted on the side
    assert complexity_count == breakdown_count  # same engine, same per-module tables
    assert row.flops == row.flops_torch == complexity_count.total
    assert {r.model_flops for r in rows} == {breakdown_count.total}
    assert sum(r.flops for r in rows) == breakdown_count.total
    assert row.uncounted_ops == breakdown_count.uncounted_summary()
    assert row.bytes == complexity_count.bytes_total == sum(r.bytes for r in rows)  # batch 1


# --- roles of timm models ----------------------------------------------------------------------


@pytest.mark.parametrize(("name", "expected"), [
    ("swin_tiny_patch4_window7_224", {
        "layers.0.blocks.0.attn": "token_mixer", "layers.0.blocks.0.mlp": "channel_mlp",
        "layers.0.blocks.0.norm1": "norm", "patch_embed": "embedding",
        "layers.1.downsample": "embedding", "head": "head", "layers.0.blocks.0": None}),
    ("mixer_s16_224", {"blocks.0.mlp_tokens": "token_mixer",
                       "blocks.0.mlp_channels": "channel_mlp", "stem": "embedding"}),
    ("gmlp_ti16_224", {"blocks.0.mlp_channels": "channel_mlp",
                       "blocks.0.mlp_channels.gate": "token_mixer"}),
    ("resnet18", {"fc": "head", "bn1": "norm", "layer1.0.bn1": "norm", "layer1.0.conv1": None}),
])
def test_timm_modules_get_their_roles(name, expected):
    groups = bd.assign_groups(meta(name))
    assert {path: groups[path] for path in expected} == expected


def test_a_timm_model_without_a_known_mixer_puts_its_convolutions_under_other():
    rows = bd.breakdown_setting("resnet18", (64, 64), depth=0)
    flops = by_group(rows)
    assert flops["token_mixer"] == 0 and flops["other"] > 0.9 * rows[0].model_flops
    assert rows[0].tokens == 32 * 32  # a CNN's tokens: its stem's output grid (stride 2)


def test_swin_attention_share_is_counted_through_window_attention():
    rows = bd.breakdown_setting("swin_tiny_patch4_window7_224", (224, 224), depth=0)
    assert 0.3 < by_group(rows)["token_mixer"] / rows[0].model_flops < 0.4


# --- depth, rows, planning -------------------------------------------------------------------


def test_depth_zero_is_one_row_per_role_of_the_whole_model():
    rows = bd.breakdown_setting("gfnet-xs", (224, 224), depth=0)
    assert {r.module for r in rows} == {bd.MODEL_LABEL} and not any(r.own for r in rows)
    assert [r.group for r in rows] == [g for g in bd.GROUPS if g in {r.group for r in rows}]


def test_depth_one_lists_the_models_own_parameters_apart():
    rows = bd.breakdown_setting("deit-s", (224, 224), depth=1)
    own = [r for r in rows if r.own]
    assert [(r.module, r.group, r.params) for r in own if r.params] == [
        (bd.MODEL_LABEL, "embedding", 197 * 384 + 384)]  # pos_embed + cls_token
    assert {r.module for r in rows if not r.own} == {"patch_embed", "blocks", "norm", "head"}


def test_a_depth_that_does_not_exist_is_refused_in_one_line():
    with pytest.raises(GfbenchError) as info:
        bd.check_depth("deit-s", meta("deit-s"), 5)
    message = str(info.value)
    assert "\n" not in message and "--depth 5 does not exist in deit-s" in message
    assert "allowed: 0 to 4" in message and "blocks.0.attn.qkv" in message
    bd.check_depth("deit-s", meta("deit-s"), 4)  # the deepest that exists is fine


def test_plan_checks_everything_before_counting(tmp_path):
    plan = bd.plan_breakdown(bd.BreakdownRequest(models=("gfnet", "deit-s"),
                                                 resolutions=("224", "384x512"), depth=2,
                                                 engine="both", out=tmp_path))
    assert plan.settings == (("gfnet-xs", (224, 224)), ("gfnet-xs", (384, 512)),
                             ("deit-s", (224, 224)), ("deit-s", (384, 512)))
    assert plan.engines == ("torch", "fvcore") and plan.folder == tmp_path
    assert plan.name == "breakdown-d2-both"
    for request, error in [(bd.BreakdownRequest(depth=9), GfbenchError),
                           (bd.BreakdownRequest(depth=-1), GfbenchError),
                           (bd.BreakdownRequest(engine="jit"), GfbenchError),
                           (bd.BreakdownRequest(models=("no-such-net",)), UnknownNameError)]:
        with pytest.raises(error):
            bd.plan_breakdown(request)


def test_run_writes_a_breakdown_file_and_keeps_going_after_an_engine_fails(tmp_path,
                                                                           monkeypatch):
    real = bd.breakdown_setting

    def fvcore_fails(name, size, depth, engine="torch", reparam=False, batch=1):
        if engine == "fvcore":
            raise RuntimeError("tracing failed\nsecond line")
        return real(name, size, depth, engine, reparam, batch)

    monkeypatch.setattr(bd, "breakdown_setting", fvcore_fails)
    plan = bd.plan_breakdown(bd.BreakdownRequest(models=("deit-ti",), resolutions=("112",),
                                                 depth=0, engine="both", out=tmp_path))
    rows, path = bd.run_breakdown(plan)
    assert path == tmp_path / "0001-breakdown-d0-both.json"
    kind, stored = read_rows(path)
    assert kind == "breakdown" and stored == rows
    failed = [r for r in rows if r.status == "error"]
    assert [(r.engine, r.error) for r in failed] == [("fvcore", "RuntimeError: tracing failed")]
    summary = bd.summarise(rows)
    assert [s.engine for s in summary] == ["torch"]
    assert summary[0].flops == by_group([r for r in rows if r.status == "ok"])
    assert 0 < summary[0].mixer_share < 1


def test_counting_again_is_a_new_run_and_the_earlier_run_is_untouched(tmp_path):
    def run(models, depth=0):
        return bd.run_breakdown(bd.plan_breakdown(bd.BreakdownRequest(
            models=models, resolutions=("112",), depth=depth, out=tmp_path)))

    first, first_path = run(("deit-ti", "gfnet-ti"))
    before = first_path.read_text()
    again, again_path = run(("deit-ti",))
    assert again_path.name == "0002-breakdown-d0-torch.json"
    assert first_path.read_text() == before
    assert {r.name for r in read_rows(again_path)[1]} == {"deit-ti"}
    assert sorted(map(repr, read_rows(first_path)[1])) == sorted(map(repr, first))
