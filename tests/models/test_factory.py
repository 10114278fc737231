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
