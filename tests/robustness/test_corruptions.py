"""gfbench's in-memory corruptions: pure, seeded, shape- and dtype-keeping, and harmful in the
right direction (error grows with severity for noise and blur on a trained model)."""

import numpy as np
import pytest
import torch
from robustness_helpers import gratings, normalise, pixels
from torch.utils.data import DataLoader

from gfbench.errors import GfbenchError, UnknownNameError
from gfbench.robustness.corruptions import CORRUPTIONS, PARAMETERS, corrupt, image_rng
from gfbench.robustness.data import Part, PartsDataset, Recipe, Sample
from gfbench.robustness.procedural import (
    chamfer_distance,
    clipped_zoom,
    frost_texture,
    hsv_to_rgb,
    rgb_to_hsv,
)
from gfbench.robustness.protocol import ALL_CORRUPTIONS, GROUPS

# Corruptions whose output does not depend on the generator (pure image operations).
DETERMINISTIC = {"gaussian_blur", "defocus_blur", "contrast", "brightness", "saturate",
                 "jpeg_compression", "pixelate", "zoom_blur"}


def natural_image(size: int = 48) -> np.ndarray:
    """A smooth colourful uint8 test image with an edge."""
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    image = np.stack([xx, yy, 0.5 + 0.4 * np.sin(6 * xx * yy)], axis=-1)
    image[size // 3: 2 * size // 3, size // 3: 2 * size // 3] = (0.9, 0.2, 0.1)
    return np.rint(image * 255).astype(np.uint8)


def test_all_nineteen_are_registered_with_five_severities():
    assert set(CORRUPTIONS) == set(ALL_CORRUPTIONS)
    assert all(len(PARAMETERS[name]) == 5 for name in ALL_CORRUPTIONS)


@pytest.mark.parametrize("name", ALL_CORRUPTIONS)
def test_seeded_shape_and_dtype_preserving(name):
    image = natural_image()
    for severity in (1, 5):
        first = corrupt(image, name, severity, image_rng(0, "n0/a.JPEG", name, severity))
        again = corrupt(image, name, severity, image_rng(0, "n0/a.JPEG", name, severity))
        assert first.shape == image.shape and first.dtype == np.uint8
        assert np.array_equal(first, again)
        assert not np.array_equal(first, image)  # it does corrupt
        as_float = corrupt(image.astype(np.float32) / 255, name, severity,
                           image_rng(0, "n0/a.JPEG", name, severity))
        assert as_float.shape == image.shape and as_float.dtype == np.float32
        assert as_float.min() >= 0.0 and as_float.max() <= 1.0
        assert np.abs(as_float * 255 - first).max() <= 1.0 + 1e-4  # same result up to rounding
    other = corrupt(image, name, 5, image_rng(1, "n0/a.JPEG", name, 5))
    assert np.array_equal(other, first) == (name in DETERMINISTIC)


def test_bad_names_severities_and_shapes():
    image = natural_image(16)
    rng = np.random.default_rng(0)
    with pytest.raises(UnknownNameError, match="unknown corruption"):
        corrupt(image, "rain", 1, rng)
    for severity in (0, 6):
        with pytest.raises(GfbenchError, match="not 1..5"):
            corrupt(image, "fog", severity, rng)
    with pytest.raises(ValueError, match="HxWx3"):
        CORRUPTIONS["fog"].apply(image[..., 0], 1, rng)


def test_helpers_invert_and_keep_shape():
    rgb = np.random.default_rng(0).random((20, 30, 3)).astype(np.float32)
    assert np.allclose(hsv_to_rgb(rgb_to_hsv(rgb)), rgb, atol=1e-5)
    assert clipped_zoom(rgb, 1.3).shape == rgb.shape
    texture = frost_texture(40, 56, np.random.default_rng(0))
    assert texture.shape == (40, 56, 3) and texture.min() >= 0 and texture.max() <= 1
    assert texture.std() > 0.05  # a texture, not a flat wash


def test_capped_chamfer_distance_in_strips_is_the_whole_one_capped():
    """Cut into strips with margins of the cap (spatter's fast path), the capped distance is
    the same float32 numbers as the one-pass transform of the whole image, capped."""
    rng = np.random.default_rng(3)
    for shape, density in (((224, 224), 0.002), ((224, 224), 0.02), ((150, 90), 0.005),
                           ((97, 301), 0.001), ((40, 33), 0.01)):
        edges = rng.random(shape) < density
        whole = chamfer_distance(edges)
        for cap in (2.5, 7, 20):
            for strip in (4, 16, 32):
                capped = chamfer_distance(edges, cap=cap, strip=strip)
                assert np.array_equal(capped, np.minimum(whole, np.float32(cap))), (shape, cap)
    assert np.all(chamfer_distance(np.zeros((60, 50), dtype=bool), cap=20) == 20)


def test_pixelate_is_pil_box_down_and_box_up():
    """pixelate enlarges by picking the pixels PIL's box filter would (NEAREST where that is
    the same, at 224 x 224), for every size, uint8 and float alike."""
    from PIL import Image

    rng = np.random.default_rng(4)
    for height, width in ((224, 224), (10, 21), (37, 37), (57, 122), (225, 224)):
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        for severity, scale in enumerate(PARAMETERS["pixelate"], start=1):
            small = (max(1, int(width * scale)), max(1, int(height * scale)))
            box = Image.Resampling.BOX
            expected = np.asarray(Image.fromarray(image).resize(small, box).resize((width, height),
                                                                                    box))
            ours = corrupt(image, "pixelate", severity, rng)
            assert np.array_equal(ours, expected), (height, width, severity)
            assert ours.flags.writeable
            as_float = corrupt(image / 255.0, "pixelate", severity, rng)
            assert as_float.dtype == np.float64
            assert np.array_equal(np.rint(as_float * 255), expected)


def test_generated_pixels_do_not_depend_on_worker_count(tmp_path):
    from PIL import Image

    samples = []
    for i in range(4):
        path = tmp_path / "n01" / f"{i}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(np.roll(natural_image(), 5 * i, axis=1)).save(path)
        samples.append(Sample(str(path), 0, f"n01/{i}.png"))
    parts = [Part("generated", name, 3, samples,
                  Recipe("generate", (32, 32), "bilinear", corruption=name, severity=3, seed=7))
             for name in ("shot_noise", "glass_blur", "frost")]
    dataset = PartsDataset(parts)

    def images(workers: int) -> torch.Tensor:
        loader = DataLoader(dataset, batch_size=5, num_workers=workers)
        return torch.cat([batch[0] for batch in loader])

    single = images(0)
    assert single.shape == (12, 3, 32, 32)
    assert torch.equal(single, images(2))


def family_errors(model, images, labels, corruption) -> list[float]:
    """Top-1 error of the grating model per severity 1..5 of one corruption."""
    errors = []
    for severity in range(1, 6):
        corrupted = np.stack([corrupt(x, corruption, severity,
                                      image_rng(0, str(i), corruption, severity))
                              for i, x in enumerate(images)])
        with torch.no_grad():
            predicted = model(normalise(pixels(corrupted))).argmax(1).numpy()
        errors.append(float((predicted != labels).mean()))
    return errors


@pytest.mark.parametrize("family", ["noise", "blur"])
def test_error_grows_with_severity(family, grating_model, one_thread):
    images, labels = gratings(120, np.random.default_rng(1))
    with torch.no_grad():
        clean_error = float((grating_model(normalise(pixels(images))).argmax(1).numpy()
                             != labels).mean())
    assert clean_error <= 0.05
    per_corruption = {c: family_errors(grating_model, images, labels, c)
                      for c in GROUPS[family]}
    for corruption, errors in per_corruption.items():
        assert errors[4] > errors[0], (corruption, errors)
    family_mean = np.mean(list(per_corruption.values()), axis=0)
    assert family_mean[0] < family_mean[2] < family_mean[4], family_mean
    assert family_mean[4] - family_mean[0] >= 0.1, family_mean
