"""Checkpoint loading: release-shaped files, inference, resizing, and every bad input."""

import pickle

import pytest
import timm
import torch

import gfbench
from gfbench.errors import CheckpointError
from gfbench.models import infer_architecture, read_state_dict


@pytest.fixture(scope="module")
def xs_release(tmp_path_factory):
    """A file shaped like the authors' release: a dict whose 'model' is the state dict."""
    torch.manual_seed(0)
    model = gfbench.create_model("gfnet-xs").eval()
    path = tmp_path_factory.mktemp("ckpt") / "gfnet-xs.pth"
    torch.save({"model": model.state_dict(), "epoch": 300}, path)
    return model, path


def test_round_trip_strict_at_native_resolution(xs_release):
    original, path = xs_release
    loaded = gfbench.load_checkpoint(path)
    assert loaded.gfbench_name == "gfnet-xs" and loaded.grid == (14, 14)
    for key, value in original.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    image = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(loaded(image), original(image))


def test_load_at_384_uses_the_resize_rule(xs_release):
    original, path = xs_release
    model = gfbench.load_checkpoint(path, img_size=384)
    weight = model.blocks[3].filter.complex_weight
    assert weight.shape == (24, 13, 384, 2)
    source = original.blocks[3].filter.complex_weight
    assert torch.allclose(weight[0, 0], source[0, 0], atol=1e-5)  # align_corners corner
    assert model.pos_embed.shape == (1, 576, 384)
    with torch.no_grad():
        out = model(torch.randn(2, 3, 384, 384))
    assert out.shape == (2, 1000) and torch.isfinite(out).all()


def test_load_into_named_model_and_module(xs_release, tmp_path):
    _, path = xs_release
    assert gfbench.load_checkpoint(path, model="gfnet").grid == (14, 14)
    module = gfbench.create_model("gfnet-xs", img_size=288)
    assert gfbench.load_checkpoint(path, model=module) is module
    assert module.blocks[0].filter.complex_weight.shape == (18, 10, 384, 2)


@pytest.mark.parametrize("name", ["gfnet-ti", "gfnet-h-ti", "deit-ti", "resmlp-12"])
def test_architecture_inferred_from_shapes(name):
    with torch.device("meta"):
        state = gfbench.create_model(name, num_classes=10).state_dict()
    arch = infer_architecture(state)
    assert (arch.name, arch.img_size, arch.num_classes) == (name, (224, 224), 10)


def test_inferred_resolution_of_a_fine_tuned_checkpoint():
    with torch.device("meta"):
        state = gfbench.create_model("gfnet-s", img_size=384).state_dict()
    assert infer_architecture(state).img_size == (384, 384)


def test_timm_checkpoint_with_module_prefix_and_wrapper(tmp_path):
    model = timm.create_model("deit_tiny_patch16_224", num_classes=7)
    path = tmp_path / "deit.pth"
    torch.save({"state_dict_ema": {f"module.{k}": v for k, v in model.state_dict().items()}},
               path)
    loaded = gfbench.load_checkpoint(path, img_size=256)
    assert loaded.gfbench_name == "deit-ti" and loaded.patch_embed.grid_size == (16, 16)
    assert loaded.head.out_features == 7


def test_mismatch_lists_missing_unexpected_and_shapes(xs_release, tmp_path):
    _, path = xs_release
    state = read_state_dict(path)
    del state["norm.weight"]
    state["extra.weight"] = torch.zeros(1)
    state["blocks.0.mlp.fc1.bias"] = torch.zeros(3)
    bad = tmp_path / "bad.pth"
    torch.save(state, bad)
    with pytest.raises(CheckpointError) as info:
        gfbench.load_checkpoint(bad, model="gfnet-xs")
    message = str(info.value)
    assert "missing 1: norm.weight" in message
    assert "unexpected 1: extra.weight" in message
    assert "blocks.0.mlp.fc1.bias (3,) vs (1536,)" in message
    assert "\n" not in message


class Evil:
    def __reduce__(self):
        return (print, ("this code must never run",))


@pytest.mark.parametrize("content, fragment", [
    (None, "no such checkpoint file"),
    (b"", "not a readable PyTorch checkpoint"),
    (b"hello, not a checkpoint", "not a"),
    ("truncated", "not a readable PyTorch checkpoint"),
    ("evil", "refused"),
    ("no-tensors", "holds no tensors"),
    ("unknown-arch", "cannot tell the architecture"),
])
def test_bad_files_give_one_clear_line(tmp_path, xs_release, content, fragment):
    path = tmp_path / "x.pth"
    if content == "truncated":
        path.write_bytes(xs_release[1].read_bytes()[:5000])
    elif content == "evil":
        path.write_bytes(pickle.dumps({"model": Evil()}))
        torch.save({"model": {"w": torch.zeros(1)}, "cfg": Evil()}, path)
    elif content == "no-tensors":
        torch.save({"model": {"lr": 0.1}}, path)
    elif content == "unknown-arch":
        torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        gfbench.load_checkpoint(path)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("arch, classifier", [("resnet10t", "fc"), ("test_convnext", "head.fc")])
def test_named_timm_model_takes_its_class_count_from_its_own_classifier(tmp_path, arch,
                                                                         classifier):
    path = tmp_path / "m.pth"
    torch.save({"model": timm.create_model(arch, num_classes=10).state_dict()}, path)
    model = gfbench.load_checkpoint(path, model=arch)
    assert model.get_classifier().out_features == 10
    assert f"{classifier}.weight" in model.state_dict()
