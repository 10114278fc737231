"""The checkpoint layer: a saved file becomes a model with its input facts and class count."""

import timm
from robustness_helpers import write_vit_checkpoint
from timm.data import resolve_data_config

from gfbench.robustness.evaluate import load_bundle, model_input_size


def test_load_bundle_reads_classes_size_and_normalisation(tmp_path):
    bundle = load_bundle(write_vit_checkpoint(tmp_path / "vit.pth", num_classes=7), "test_vit")
    reference = resolve_data_config({}, model=timm.create_model("test_vit"))
    assert bundle.name == "test_vit" and bundle.num_classes == 7
    assert bundle.input_size == tuple(reference["input_size"][1:])
    assert bundle.mean == tuple(reference["mean"]) and bundle.std == tuple(reference["std"])
    assert bundle.crop_pct == reference["crop_pct"]


def test_input_size_is_the_built_one_not_the_default_config():
    assert model_input_size(timm.create_model("test_vit", img_size=64), (224, 224)) == (64, 64)
    assert model_input_size(timm.create_model("test_resnet"), (160, 160)) == (160, 160)
