"""Reading the trees: canonical labels for class subsets, missing parts, empty folders,
unreadable images, --limit, and class-count checks."""

from dataclasses import replace
from pathlib import Path

import pytest
from robustness_helpers import (
    ORACLE_WNIDS,
    oracle_bundle,
    oracle_colour,
    write_image,
    write_oracle_clean,
    write_oracle_tree,
)

from gfbench.errors import CheckpointError, DataError
from gfbench.robustness.data import class_index, imagenet_wnids, scan_classes, severity_folders
from gfbench.robustness.evaluate import RobustnessConfig, run_robustness


def test_a_class_subset_keeps_its_canonical_indices():
    wnids = imagenet_wnids()
    subset = [wnids[999], wnids[3], wnids[500]]
    assert class_index(subset, "imagenet") == {wnids[3]: 3, wnids[500]: 500, wnids[999]: 999}
    assert class_index(subset, "folders") == {wnids[3]: 0, wnids[500]: 1, wnids[999]: 2}


def test_scan_labels_and_limit(tmp_path):
    clean = write_oracle_clean(tmp_path / "val")
    write_image(clean / ORACLE_WNIDS[1] / "img2.JPEG", oracle_colour(1, 0))
    labels = class_index(ORACLE_WNIDS, "imagenet")
    samples = scan_classes(clean, labels, limit=None)
    assert [s.label for s in samples] == [5, 5, 900, 900, 900]
    assert [s.key for s in samples][:2] == [f"{ORACLE_WNIDS[0]}/img0.JPEG",
                                            f"{ORACLE_WNIDS[0]}/img1.JPEG"]
    limited = scan_classes(clean, labels, limit=1)
    assert [Path(s.path).name for s in limited] == ["img0.JPEG", "img0.JPEG"]


def test_folders_that_are_not_wnids_need_the_folders_class_map():
    with pytest.raises(DataError, match="cat, dog are not ImageNet-1k wnids.*--class-map folders"):
        class_index(["dog", "cat"], "imagenet")


def test_missing_corruptions_and_severities_are_listed(tmp_path):
    root = write_oracle_tree(tmp_path / "c", ["gaussian_noise", "shot_noise"], (1, 2, 3, 4, 5))
    write_oracle_tree(root, ["fog"], (1, 2))
    with pytest.raises(DataError) as info:
        severity_folders(root, ("gaussian_noise", "shot_noise", "fog", "frost"), (1, 2, 3, 4, 5))
    message = str(info.value)
    assert "lacks fog (3,4,5), frost (all)" in message
    assert "--corruptions gaussian_noise,shot_noise" in message and "\n" not in message
    found = severity_folders(root, ("gaussian_noise", "fog"), (1, 2))
    assert sorted(found) == [("fog", 1), ("fog", 2), ("gaussian_noise", 1),
                             ("gaussian_noise", 2)]


def test_empty_and_absent_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="none of the requested corruptions is there"):
        severity_folders(tmp_path / "empty", ("fog",), (1,))
    with pytest.raises(DataError, match="no such folder"):
        severity_folders(tmp_path / "nowhere", ("fog",), (1,))
    config = RobustnessConfig(checkpoint=Path("x.pth"), clean=tmp_path / "empty", workers=0,
                              device="cpu", out=tmp_path / "out")
    with pytest.raises(DataError, match="--clean .*empty: no images found"):
        run_robustness(config, bundle=oracle_bundle())


def test_unreadable_images_are_counted_not_fatal(tmp_path):
    root = write_oracle_tree(tmp_path / "c", ["fog"], (1,))
    broken = root / "fog" / "1" / ORACLE_WNIDS[0] / "zz_broken.JPEG"
    broken.write_bytes(b"\xff\xd8 this is not a JPEG")
    config = RobustnessConfig(checkpoint=Path("oracle.pth"), data=root, corruptions=("fog",),
                              severities=(1,), workers=0, device="cpu", out=tmp_path / "out")
    (row,) = run_robustness(config, bundle=oracle_bundle()).rows
    assert (row.images, row.unreadable) == (4, 1)
    assert row.error_top1 == 1 - row.correct_top1 / 4


def test_model_class_count_must_match_the_labels(tmp_path):
    root = write_oracle_tree(tmp_path / "c", ["fog"], (1,))
    config = RobustnessConfig(checkpoint=Path("oracle.pth"), data=root, corruptions=("fog",),
                              severities=(1,), workers=0, device="cpu", out=tmp_path / "out")
    with pytest.raises(CheckpointError, match="outputs 10 classes but ImageNet-1k labels need"):
        run_robustness(config, bundle=replace(oracle_bundle(), num_classes=10))
    with pytest.raises(CheckpointError, match="the data has 2 class folders"):
        run_robustness(replace(config, class_map="folders"), bundle=oracle_bundle())
