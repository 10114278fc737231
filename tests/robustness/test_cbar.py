"""ImageNet-C-bar corruptions (gfbench/robustness/cbar.py): the published magnitudes, the
contract every corruption keeps, and one property per corruption checked by a computation that
does not reuse the module's (spectra, normal-distribution tails, symmetry, Snell's law)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gfbench.errors import GfbenchError, UnknownNameError
from gfbench.robustness import cbar
from gfbench.robustness.corruptions import corrupt, corruption_id, image_rng
from gfbench.robustness.protocol import ALL_CORRUPTIONS, CBAR_CORRUPTIONS
from tests.robustness.fidelity_helpers import PHOTOS, photo

# Copied by hand from imagenet_c_bar/imagenet_c_bar.csv in facebookresearch/augmentation-
# corruption, commit ba4d5a5e9132fe98fcd4be1ac90abedbbb188794 (the file's ten rows, in its order).
PUBLISHED_CSV = {
    "caustic_refraction": (2.35, 3.2, 4.9, 6.6, 9.15),
    "inverse_sparkles": (1.0, 2.0, 4.0, 9.0, 10.0),
    "sparkles": (1.0, 2.0, 3.0, 5.0, 6.0),
    "perlin_noise": (4.6, 5.2, 5.8, 7.6, 8.8),
    "blue_noise_sample": (0.8, 1.6, 2.4, 4.0, 5.6),
    "plasma_noise": (4.75, 7.0, 8.5, 9.25, 10.0),
    "checkerboard_cutout": (2.0, 3.0, 4.0, 5.0, 6.0),
    "cocentric_sine_waves": (3.0, 5.0, 8.0, 9.0, 10.0),
    "single_frequency_greyscale": (1.0, 1.5, 2.0, 4.5, 5.0),
    "brownish_noise": (1.0, 2.0, 3.0, 4.0, 5.0),
}
SIDE = 224


def grey(value: int = 128, side: int = SIDE) -> np.ndarray:
    """A flat grey image, so a corruption's added pattern is out - value."""
    return np.full((side, side, 3), value, dtype=np.uint8)


def radial_power(field: np.ndarray) -> tuple[float, float]:
    """Mean FFT power of a 2-D field in a low (radius 4..24) and a high (radius > 80) band."""
    power = np.abs(np.fft.fftshift(np.fft.fft2(field - field.mean()))) ** 2
    h, w = field.shape
    radius = np.hypot(*np.meshgrid(np.arange(h) - h // 2, np.arange(w) - w // 2, indexing="ij"))
    return float(power[(radius >= 4) & (radius <= 24)].mean()), float(power[radius > 80].mean())


def normal_cdf(z: float) -> float:
    """P(N(0, 1) <= z)."""
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def test_magnitudes_are_the_published_csv():
    assert set(CBAR_CORRUPTIONS) == set(PUBLISHED_CSV)
    assert cbar.MAGNITUDES == PUBLISHED_CSV
    assert {spec.magnitudes for spec in cbar.BAR_CORRUPTIONS.values()} == set(
        PUBLISHED_CSV.values())


@pytest.fixture(scope="module")
def small_photo() -> np.ndarray:
    """A natural photograph, non-square (40 x 56) to cover HxW handling, kept small for speed."""
    return np.asarray(photo("chelsea"))[60:100, 80:136].copy()


@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("name", CBAR_CORRUPTIONS)
def test_shape_dtype_and_seeding(name, severity, small_photo):
    one = corrupt(small_photo, name, severity, image_rng(0, "a.JPEG", name, severity))
    again = corrupt(small_photo, name, severity, image_rng(0, "a.JPEG", name, severity))
    other = corrupt(small_photo, name, severity, image_rng(1, "a.JPEG", name, severity))
    assert one.shape == small_photo.shape and one.dtype == np.uint8
    np.testing.assert_array_equal(one, again)
    assert not np.array_equal(one, other)
    assert not np.array_equal(one, small_photo)


def test_float_images_come_back_float_on_the_uint8_result(small_photo):
    rng = image_rng(0, "x", "sparkles", 3)
    as_u8 = corrupt(small_photo, "sparkles", 3, rng)
    as_float = corrupt(small_photo.astype(np.float32) / 255, "sparkles", 3,
                       image_rng(0, "x", "sparkles", 3))
    assert as_float.dtype == np.float32
    np.testing.assert_allclose(as_float * 255, as_u8, atol=1e-3)


def test_names_and_severities_are_checked(small_photo):
    rng = np.random.default_rng(0)
    with pytest.raises(UnknownNameError, match="cocentric_sine_waves"):
        cbar.corrupt_bar(small_photo, "concentric_sine_waves", 1, rng)
    with pytest.raises(GfbenchError, match="severity 6 is not 1..5"):
        corrupt(small_photo, "sparkles", 6, rng)
    with pytest.raises(ValueError, match="HxWx3"):
        corrupt(small_photo[..., 0], "sparkles", 1, rng)


def test_c_bar_seeds_are_apart_from_imagenet_c():
    ids = [corruption_id(n) for n in ALL_CORRUPTIONS + CBAR_CORRUPTIONS]
    assert ids == list(range(29))  # the 19 keep their numbers; the 10 follow


# --- one property per corruption ---


def test_spectral_noises_rise_and_fall_with_frequency():
    rng = np.random.default_rng(3)
    blue = cbar.spectral_noise(SIDE, SIDE, cbar.blue_weight, rng)
    brown = cbar.spectral_noise(SIDE, SIDE, cbar.brownish_weight, rng)
    assert blue.std() == pytest.approx(1.0) and brown.std() == pytest.approx(1.0)
    blue_low, blue_high = radial_power(blue)
    brown_low, brown_high = radial_power(brown)
    assert blue_high > 10 * blue_low
    assert brown_low > 100 * brown_high


def test_brownish_noise_adds_low_frequencies_per_channel():
    clean = grey()
    out = corrupt(clean, "brownish_noise", 5, image_rng(0, "g", "brownish_noise", 5))
    added = out.astype(float) - clean
    for channel in range(3):
        low, high = radial_power(added[..., channel])
        assert low > 100 * high
    # independent fields per channel (the authors draw one per channel)
    assert abs(np.corrcoef(added[..., 0].ravel(), added[..., 1].ravel())[0, 1]) < 0.5


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_blue_noise_sample_blacks_out_the_normal_tail(severity):
    # A unit-variance sum of many random-phase sinusoids is close to normal, so the fraction of
    # pixels at or below the threshold is Phi(threshold).
    magnitude = PUBLISHED_CSV["blue_noise_sample"][severity - 1]
    expected = normal_cdf(magnitude * 3.0 / 10 - 2.5)
    clean = grey(200)
    fractions = [np.mean(np.all(corrupt(clean, "blue_noise_sample", severity,
                                        image_rng(seed, "g", "blue_noise_sample", severity)) == 0,
                                axis=2)) for seed in range(4)]
    assert np.mean(fractions) == pytest.approx(expected, abs=0.002 + 0.05 * expected)


def test_single_frequency_greyscale_is_one_grey_plane_wave():
    clean = grey()
    for seed in range(6):
        out = corrupt(clean, "single_frequency_greyscale", 5,
                      image_rng(seed, "g", "single_frequency_greyscale", 5))
        added = out.astype(float) - clean
        assert np.array_equal(added[..., 0], added[..., 1])
        assert np.array_equal(added[..., 0], added[..., 2])
        window = np.outer(np.hanning(SIDE), np.hanning(SIDE))
        power = np.abs(np.fft.fft2(added[..., 0] * window)) ** 2
        peak = np.unravel_index(np.argmax(power), power.shape)
        mirror = tuple((-p) % SIDE for p in peak)
        near = np.zeros_like(power, dtype=bool)
        for r, c in (peak, mirror):
            rows = (np.arange(r - 3, r + 4) % SIDE)[:, None]
            cols = (np.arange(c - 3, c + 4) % SIDE)[None, :]
            near[rows, cols] = True
        assert power[near].sum() > 0.95 * power.sum()


def test_checkerboard_cutout_greys_half_of_the_fraction():
    # Only squares of one colour are candidates, each cut with probability m / 10.
    clean = grey(30)
    for severity in (1, 5):
        fraction = PUBLISHED_CSV["checkerboard_cutout"][severity - 1] / 10
        cut = [np.mean(np.all(corrupt(clean, "checkerboard_cutout", severity,
                                      image_rng(s, "g", "checkerboard_cutout", severity)) == 128,
                              axis=2)) for s in range(60)]
        assert np.mean(cut) == pytest.approx(fraction / 2, abs=0.03)


def test_rings_without_wobble_are_radially_symmetric():
    field = cbar.ring_field(81, 81, (40.0, 40.0), freq=3.0, amplitude=0.0, ring_width=7.3)
    np.testing.assert_allclose(field, field[::-1, ::-1], atol=1e-9)  # point symmetry
    np.testing.assert_allclose(field, field.T, atol=1e-9)  # mirror in the diagonal
    np.testing.assert_allclose(field, np.rot90(field), atol=1e-9)  # quarter turn
    rows, cols = np.indices((81, 81))
    by_hand = np.mod(np.hypot(rows - 40, cols - 40), 7.3) / 7.3 - 0.5
    np.testing.assert_allclose(field, by_hand, atol=1e-9)


def test_cocentric_sine_waves_add_a_grey_sawtooth():
    clean = grey()
    intensity = PUBLISHED_CSV["cocentric_sine_waves"][2] * 128 / 10
    spreads = []
    for seed in range(8):
        out = corrupt(clean, "cocentric_sine_waves", 3, image_rng(seed, "g",
                                                                 "cocentric_sine_waves", 3))
        added = out.astype(float) - clean
        assert np.abs(added[..., 0] - added[..., 1]).max() <= 1
        assert added.min() >= -intensity / 2 - 1 and added.max() <= intensity / 2
        spreads.append(added.std())
    # a sawtooth uniform over [-I/2, I/2) has standard deviation I / sqrt(12)
    assert np.mean(spreads) == pytest.approx(intensity / math.sqrt(12), rel=0.15)


@pytest.mark.parametrize("name", ["sparkles", "inverse_sparkles"])
def test_sparkles_only_brighten(name, small_photo):
    for severity in (1, 5):
        out = corrupt(small_photo, name, severity, image_rng(2, "p", name, severity))
        assert np.all(out >= small_photo)


def test_sparkles_are_local_and_inverse_sparkles_wash_out():
    clean = np.asarray(photo("coffee"))
    changed = {name: np.mean(np.any(corrupt(clean, name, 1, image_rng(0, "p", name, 1)) != clean,
                                    axis=2)) for name in ("sparkles", "inverse_sparkles")}
    assert changed["sparkles"] < 0.5 < changed["inverse_sparkles"]


def test_plasma_noise_is_a_bounded_colour_blend(small_photo):
    magnitude = PUBLISHED_CSV["plasma_noise"][4]
    intensity = magnitude * 64 / 10
    out = corrupt(small_photo, "plasma_noise", 5, image_rng(0, "p", "plasma_noise", 5))
    added = out.astype(float) - (1 - intensity / 255) * small_photo
    assert added.min() >= -intensity - 1 and added.max() <= intensity + 1
    assert np.abs(added[..., 0] - added[..., 2]).max() > 10  # coloured, not grey


def test_perlin_noise_is_zero_on_the_lattice_and_blends_grey(small_photo):
    gradients, perm = cbar.perlin_tables(np.random.default_rng(0))
    lattice = np.arange(-3.0, 9.0)
    assert np.abs(cbar.perlin(*np.meshgrid(lattice, lattice), gradients, perm)).max() < 1e-12
    alpha = PUBLISHED_CSV["perlin_noise"][4] * 0.5 / 10
    out = corrupt(small_photo, "perlin_noise", 5, image_rng(0, "p", "perlin_noise", 5))
    added = out.astype(float) - (1 - alpha) * small_photo
    # turbulence >= 0, so the blended field is in [1/2, 1] of white; equal over channels
    assert added.min() >= 127.5 * alpha - 1 and added.max() <= 255 * alpha
    assert np.abs(added[..., 0] - added[..., 1]).max() <= 1


def test_refraction_obeys_snells_law():
    rng = np.random.default_rng(0)
    dx, dy = rng.normal(0, 1.0, 50), rng.normal(0, 1.0, 50)
    ox, oy = cbar.refraction_offsets(dx, dy, 4.0)
    normal = np.stack([dx, dy, np.ones(50)]) / np.sqrt(dx**2 + dy**2 + 1)
    oz = np.sqrt(1 - ox**2 - oy**2)
    cos_out = ox * normal[0] + oy * normal[1] + oz * normal[2]
    sin_in = np.sqrt(1 - normal[2] ** 2)
    np.testing.assert_allclose(np.sqrt(1 - cos_out**2), sin_in / 4.0, atol=1e-9)
    flat = cbar.refraction_offsets(np.zeros(3), np.full(3, 0.01), 4.0)
    assert np.all(flat[0] == 0) and np.all(flat[1] == 0)


def test_bilinear_sampling_with_zeros_outside():
    image = np.arange(12.0).reshape(3, 4, 1)
    rows, cols = np.array([1.0, 0.5, -1.0, 2.5]), np.array([2.0, 1.5, 0.0, 3.0])
    got = cbar.bilinear_zero(image, rows, cols)[:, 0]
    expected = [6.0, (1 + 2 + 5 + 6) / 4, 0.0, 11 / 2]  # last: half of a border pixel
    np.testing.assert_allclose(got, expected)


def test_caustic_refraction_moves_and_shades_pixels(small_photo):
    rng = image_rng(0, "p", "caustic_refraction", 5)
    out = corrupt(small_photo, "caustic_refraction", 5, rng)
    flat = corrupt(grey(90, 64), "caustic_refraction", 5, rng)
    assert np.mean(out != small_photo) > 0.5
    assert flat.std() > 1  # the lighting term alone varies a flat image


@pytest.mark.parametrize("name", CBAR_CORRUPTIONS)
def test_change_grows_with_severity(name):
    clean = [np.asarray(photo(p)) for p in PHOTOS]
    means = [np.mean([np.abs(corrupt(c, name, s, image_rng(7, p, name, 1)).astype(float) - c)
                      .mean() for c, p in zip(clean, PHOTOS, strict=True)]) for s in range(1, 6)]
    assert all(b > a for a, b in zip(means, means[1:], strict=False)), means
