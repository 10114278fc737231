"""The model registry: names, resolutions, errors."""

import pytest
import torch

import gfbench
from gfbench.errors import ResolutionError, UnknownNameError
from gfbench.models import canonical_name, model_catalogue, parse_resolution, token_grid


@pytest.mark.parametrize("name, expected", [
    ("gfnet", "gfnet-xs"), ("deit", "deit-s"), ("resmlp", "resmlp-12"),
    ("GFNet-H-S", "gfnet-h-s"), ("gfnet_h_b", "gfnet-h-b"), ("deit_base_patch16_224", "deit-b"),
    ("resnet18", "resnet18"), ("vit_small_patch16_224.augreg", "vit_small_patch16_224.augreg"),
])
def test_canonical_names(name, expected):
    assert canonical_name(name) == expected


def test_unknown_name_suggests_closest():
    with pytest.raises(UnknownNameError, match="Did you mean deit-s"):
        canonical_name("deit-sm")


@pytest.mark.parametrize("text, size", [("224", (224, 224)), (384, (384, 384)),
                                        ("384x512", (384, 512)), ((64, 96), (64, 96))])
def test_parse_resolution(text, size):
    assert parse_resolution(text) == size


@pytest.mark.parametrize("name, res, fragment", [
    ("deit", "200", "multiple of 16"), ("gfnet-h-s", 240, "multiple of 32"),
    ("gfnet", 0, "must be positive"), ("gfnet", -16, "must be positive"),
    ("gfnet", "8", "multiple of 16"), ("deit", "abc", "not a number"),
    ("resnet18", 16, "at least its total stride 32"),
])
def test_invalid_resolutions(name, res, fragment):
    with pytest.raises(ResolutionError, match=fragment):
        gfbench.create_model(name, img_size=res)


@pytest.mark.parametrize("name, res, grid", [
    ("deit", "384x512", (24, 32)), ("resmlp", 384, (24, 24)), ("gfnet", 512, (32, 32)),
    ("gfnet-h-ti", 224, (56, 56)),
])
def test_any_resolution_and_token_grid(name, res, grid):
    with torch.device("meta"):
        model = gfbench.create_model(name, img_size=res)
    assert token_grid(model) == grid


def test_resmlp_token_mixing_grows_with_tokens():
    with torch.device("meta"):
        model = gfbench.create_model("resmlp", img_size=384)
    assert model.blocks[0].linear_tokens.weight.shape == (576, 576)


def test_catalogue_counts_parameters():
    rows = {r["name"]: r for r in model_catalogue()}
    assert rows["deit-s"]["params"] == 22_050_664
    assert rows["resmlp-12"]["params"] == 15_350_872
    assert rows["gfnet-xs"]["alias"] == "gfnet"


@pytest.mark.parametrize("name, res, grid", [
    ("resnet18", 224, (112, 112)),  # CNN: the stem's output grid
    ("convnext_atto", 256, (64, 64)),  # ConvNeXt: the 4x4 stem = the first stage
    ("swin_tiny_patch4_window7_224", 224, (56, 56)),  # Swin's first stage
    ("pvt_v2_b0", 320, (80, 80)),  # one patch embedding per stage: the first
    ("xcit_nano_12_p16_224", 224, (14, 14)),  # a convolutional patch embedding: its last conv
    ("poolformer_s12", 224, (56, 56)),  # MetaFormer: the first stage (NCHW)
    ("levit_128s", 224, (14, 14)),  # (B, N, C) tokens read through the stage's reduction
    ("hrnet_w18_small", 224, (112, 112)),  # feature_info names no module: its first conv at 1/2
    ("vit_base_patch16_siglip_224", 224, (14, 14)),
])
def test_token_grid_of_any_timm_model(name, res, grid):
    with torch.device("meta"):
        model = gfbench.create_model(name, img_size=res)
    assert token_grid(model, (1, 3, res, res)) == grid


@pytest.mark.parametrize("name", ["deit", "gfnet", "gfnet-h-ti", "resmlp",
                                  "vit_small_patch16_224", "swin_tiny_patch4_window7_224"])
def test_stated_and_hooked_grids_agree(name):
    with torch.device("meta"):
        model = gfbench.create_model(name)
    assert token_grid(model) == token_grid(model, (1, 3, 224, 224)) is not None


def test_class_and_register_tokens_are_not_tokens():
    with torch.device("meta"):
        model = gfbench.create_model("vit_small_patch14_reg4_dinov2", img_size=126)
    assert model.num_prefix_tokens == 5
    assert token_grid(model, (1, 3, 126, 126)) == (9, 9)


def test_token_grid_is_none_where_no_grid_is_seen():
    with torch.device("meta"):
        model = gfbench.create_model("tnt_s_patch16_224")
    assert token_grid(model, (1, 3, 224, 224)) is None


def test_token_grid_never_raises_on_an_input_the_model_refuses():
    with torch.device("meta"):
        model = gfbench.create_model("swin_tiny_patch4_window7_224")
    assert token_grid(model, (1, 3, 100, 100)) in (None, (25, 25))


def test_overlapping_patch_embeddings_take_any_size():
    with torch.device("meta"):
        model = gfbench.create_model("pvt_v2_b0", img_size=100)
    gfbench.models.check_forward(model, 100)


def test_a_size_only_the_forward_refuses_is_one_line():
    with torch.device("meta"):
        model = gfbench.create_model("swin_tiny_patch4_window7_224")
    with pytest.raises(ResolutionError, match=r"^swin_tiny_patch4_window7_224 cannot run at "
                                              r"100x100: .+"):
        gfbench.models.check_forward(model, 100)


def test_token_grid_defaults_to_the_size_the_model_was_built_for():
    with torch.device("meta"):
        built = gfbench.create_model("resnet18", img_size=320)
        default = gfbench.create_model("resnet10t")  # pretrained_cfg input size 176
    assert token_grid(built) == (160, 160)
    assert token_grid(default) == (88, 88)


def test_a_model_published_at_a_size_its_patch_does_not_tile_builds_there():
    import torch

    from gfbench.errors import ResolutionError
    from gfbench.models import create_model, native_resolution

    name = "vit_so400m_patch14_siglip_384"  # 384 = 27 patches of 14 + 6 px dropped
    assert native_resolution(name) == (384, 384)
    with torch.device("meta"):
        model = create_model(name, img_size=384)
        assert model.patch_embed.grid_size == (27, 27)
        with pytest.raises(ResolutionError, match="multiple of 16"):
            create_model("vit_small_patch16_224", img_size=300)  # published tiling: refused
