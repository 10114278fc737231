"""gfbench's in-memory corruptions against the reference ImageNet-C functions on real photographs
(scikit-image's samples, Resize(256) + CenterCrop(224)), all 19 corruptions at all 5 severities,
on the same random draws (see fidelity_helpers): strength within 5%, SSIM to the clean image
within 0.02, PSNR to the reference's output at least 40 dB. The OpenCV and Python-loop steps
gfbench restates in numpy are checked against OpenCV and the reference loop themselves."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("skimage", reason="needs scikit-image (pip install -e '.[dev]')")
pytest.importorskip("imagecorruptions", reason="needs imagecorruptions-imaug (dev extra)")
cv2 = pytest.importorskip("cv2", reason="needs OpenCV (installed with imagecorruptions-imaug)")

from fidelity_helpers import (  # noqa: E402
    PHOTOS,
    as_float,
    gfbench_output,
    photo,
    psnr,
    reference_output,
    severities,
    ssim,
    strength,
)

from gfbench.robustness import corruptions, procedural  # noqa: E402
from gfbench.robustness.protocol import ALL_CORRUPTIONS  # noqa: E402

SEED = 20190329  # any seed works; both sides get the same one
MAX_STRENGTH_RATIO_GAP = 0.05
MAX_SSIM_GAP = 0.02
MIN_PSNR_DB = 40.0
# The reference glass-blur loop runs in plain Python here (about 0.2 s a pass): one photograph.
SLOW = {"glass_blur": 1}
# Corruptions whose output depends on the random draws (the rest are pure image operations).
RANDOM = ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "glass_blur",
          "motion_blur", "snow", "frost", "fog", "spatter", "elastic_transform")


def photos_for(corruption: str) -> tuple[str, ...]:
    """Two photographs per corruption (one for slow references), rotating through all four."""
    start = ALL_CORRUPTIONS.index(corruption)
    return tuple(PHOTOS[(start + k) % len(PHOTOS)] for k in range(SLOW.get(corruption, 2)))


@pytest.fixture(scope="session")
def reference():
    """The reference's output per (corruption, photograph, severity, seed), computed once."""
    cache: dict[tuple, np.ndarray] = {}

    def get(corruption: str, name: str, severity: int, seed: int = SEED) -> np.ndarray:
        key = (corruption, name, severity, seed)
        if key not in cache:
            cache[key] = reference_output(corruption, photo(name), severity, seed)
        return cache[key]

    return get


@pytest.mark.parametrize("corruption", ALL_CORRUPTIONS)
def test_matches_the_reference_on_photographs(corruption, reference):
    failures = []
    for name in photos_for(corruption):
        clean = as_float(photo(name))
        for severity in severities(corruption):
            theirs = reference(corruption, name, severity)
            ours = gfbench_output(corruption, photo(name), severity, SEED)
            ratio = strength(ours, clean) / strength(theirs, clean)
            ssim_gap = ssim(ours, clean) - ssim(theirs, clean)
            db = psnr(ours, theirs)
            if (abs(ratio - 1) > MAX_STRENGTH_RATIO_GAP or abs(ssim_gap) > MAX_SSIM_GAP
                    or db < MIN_PSNR_DB):
                failures.append(f"{name} severity {severity}: strength ratio {ratio:.3f}, "
                                f"SSIM gap {ssim_gap:+.4f}, PSNR {db:.1f} dB")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("corruption", RANDOM)
def test_agreement_needs_the_same_draws(corruption, reference):
    """Without lined-up draws the outputs part (so the PSNR above measures the math)."""
    name = photos_for(corruption)[0]
    severity = 3
    theirs = reference(corruption, name, severity)
    other = gfbench_output(corruption, photo(name), severity, SEED + 1)
    assert psnr(other, theirs) < MIN_PSNR_DB


def test_glass_pass_is_the_reference_loop():
    """The vectorised pass equals the reference's sequential copy loop, draw for draw."""
    import imagecorruptions.corruptions as reference_module

    loop = reference_module._shuffle_pixels_njit_glass_blur.py_func  # plain Python
    state = np.random.RandomState(1)
    for height, width, delta, passes in ((31, 40, 1, 2), (40, 29, 2, 3), (25, 33, 3, 2),
                                         (36, 36, 4, 2), (9, 8, 4, 1)):
        image = state.randint(0, 256, (height, width, 3)).astype(np.uint8)
        expected = loop(height, width, image.copy(), (1.0, delta, passes), 7)  # seeds np.random
        draws = np.random.RandomState(7)
        ours = image
        shape = (len(range(height - delta, delta, -1)), len(range(width - delta, delta, -1)), 2)
        for _ in range(passes):
            ours = procedural.glass_pass(ours, delta, draws.randint(-delta, delta, size=shape))
        assert np.array_equal(ours, expected), (height, width, delta)


def test_opencv_restatements_match_opencv():
    """Canny, the 5x5 chamfer distance (whole, and capped in strips), equalizeHist, the emboss
    filter, the defocus correlation and warpAffine as gfbench restates them give OpenCV's own
    results on random images."""
    state = np.random.RandomState(2)
    for shape in ((64, 80), (37, 23)):
        blocks = np.kron(state.randint(0, 256, (shape[0] // 6 + 1, shape[1] // 6 + 1)),
                         np.ones((6, 6)))[:shape[0], :shape[1]]
        noisy = np.clip(blocks + state.normal(0, 20, shape), 0, 255).astype(np.uint8)
        for gray in (noisy, cv2.GaussianBlur(noisy, (0, 0), 1.5)):
            edges = procedural.canny(gray, 50, 150)
            assert np.array_equal(edges, cv2.Canny(gray, 50, 150) > 0)
            assert 0 < edges.sum() < edges.size
        sparse = state.rand(*shape) < 0.01
        mask = np.where(sparse, 0, 255).astype(np.uint8)
        np.testing.assert_array_equal(procedural.chamfer_distance(sparse),
                                      cv2.distanceTransform(mask, cv2.DIST_L2, 5))
        levels = state.randint(40, 90, shape).astype(np.uint8)
        assert np.array_equal(procedural.equalize_hist(levels), cv2.equalizeHist(levels))
        for cap in (5, 20):  # strips of 8 rows and 2 x 6 margin rows at cap 5
            assert np.array_equal(procedural.chamfer_distance(sparse, cap=cap, strip=8),
                                  np.minimum(cv2.distanceTransform(mask, cv2.DIST_L2, 5), cap))
        assert np.array_equal(procedural.emboss(levels),
                              cv2.filter2D(levels, cv2.CV_8U, np.array([[-2, -1, 0], [-1, 1, 1],
                                                                        [0, 1, 2]])))
        image = state.rand(*shape, 3).astype(np.float32)
        for radius, alias_blur in corruptions.PARAMETERS["defocus_blur"]:
            kernel = procedural.disk_kernel(radius, alias_blur)
            theirs = np.stack([cv2.filter2D(image[..., c].astype(np.float64), -1,
                                            kernel.astype(np.float64)) for c in range(3)], -1)
            ours = procedural.correlate_disk(image, radius, alias_blur)
            np.testing.assert_allclose(ours, theirs, atol=2e-6)
        points = np.float32([[10, 10], [30, 5], [5, 20]])
        moved = points + state.uniform(-3, 3, points.shape).astype(np.float32)
        forward = cv2.getAffineTransform(points, moved)
        ours = procedural.warp_affine(image, procedural.affine_from_points(points, moved))
        theirs = cv2.warpAffine(image, forward, shape[::-1], borderMode=cv2.BORDER_REFLECT_101)
        np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_frost_source_names_what_ran(monkeypatch):
    from importlib.metadata import version

    assert corruptions.frost_source() == (
        f"photographs (imagecorruptions-imaug {version('imagecorruptions-imaug')})")
    image = np.asarray(photo("coffee"))
    with_photos = corruptions.corrupt(image, "frost", 3, np.random.default_rng(0))
    large = np.zeros((650, 950, 3), dtype=np.uint8)  # larger than every photograph: enlarged
    assert corruptions.corrupt(large, "frost", 5, np.random.default_rng(0)).shape == large.shape
    monkeypatch.setattr(corruptions, "_frost_photographs", lambda: None)
    assert corruptions.frost_source() == "procedural"
    fallback = corruptions.corrupt(image, "frost", 3, np.random.default_rng(0))
    assert fallback.shape == image.shape and not np.array_equal(fallback, with_photos)
