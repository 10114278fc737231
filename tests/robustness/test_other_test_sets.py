"""ImageNet-A, -R, -Sketch and -V2 from their released layouts, on small trees made here: labels
from the canonical class list (never from the folders present), 200-class subsets scored on
the 1000-way logits restricted to their columns, V2's folders read as class indices."""

from pathlib import Path

import pytest
from robustness_helpers import index_bundle, write_image, write_index_tree

from gfbench.errors import DataError
from gfbench.results import read_provenance, read_summary
from gfbench.robustness.data import (
    EVAL_SETS,
    eval_set_classes,
    imagenet_wnids,
    read_wnid_list,
)
from gfbench.robustness.evaluate import RobustnessConfig, run_robustness

WNIDS = imagenet_wnids()
A = eval_set_classes("imagenet-a")
R = eval_set_classes("imagenet-r")


def test_subset_lists_are_the_authors():
    # hendrycks/natural-adv-examples eval.py maps 1000-way index 6 -> 0, 11 -> 1, 13 -> 2,
    # 988 -> 199; hendrycks/imagenet-r eval.py's set starts with n01443537 (index 1)
    assert len(A) == len(R) == 200 and list(A) == sorted(A) and list(R) == sorted(R)
    assert A[:3] == (6, 11, 13) and A[-1] == 988
    assert WNIDS[R[0]] == "n01443537" and len(set(A) & set(R)) == 86
    assert eval_set_classes("imagenet-sketch") == eval_set_classes("imagenet-v2") == tuple(
        range(1000))


def test_a_subset_file_naming_unknown_classes_is_refused():
    with pytest.raises(DataError, match="not ImageNet-1k wnids: n99999999, cat"):
        read_wnid_list(f"{WNIDS[3]}\nn99999999\ncat\n", "subset.txt")
    with pytest.raises(DataError, match="lists a wnid twice"):
        read_wnid_list(f"{WNIDS[3]}\n{WNIDS[3]}\n", "subset.txt")
    assert read_wnid_list(f"{WNIDS[9]}\n{WNIDS[2]}\n", "ok.txt") == (WNIDS[2], WNIDS[9])


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    """Partial downloads: a few classes of each set, some images planted wrong."""
    root = tmp_path_factory.mktemp("sets")
    a = write_index_tree(root / "imagenet-a", {  # 4 of 6 right, only behind the decoy
        WNIDS[A[10]]: [A[10], A[10], A[50]], WNIDS[A[50]]: [A[50]],
        WNIDS[A[199]]: [A[199], A[7]]}, decoy=True)
    r = write_index_tree(root / "imagenet-r", {  # 2 of 3 right
        WNIDS[R[0]]: [R[0], R[1]], WNIDS[R[150]]: [R[150]]}, decoy=True)
    sketch = write_index_tree(root / "sketch", {  # 3 of 4 right
        WNIDS[3]: [3, 3], WNIDS[500]: [500, 999]}, decoy=False)
    v2 = write_index_tree(root / "v2", {  # 7 of 8 right; sorted as strings: 10, 100, 2, 999
        "2": [2, 2], "10": [10, 10], "100": [100, 100], "999": [999, 998]}, decoy=False)
    return {"imagenet-a": a, "imagenet-r": r, "imagenet-sketch": sketch, "imagenet-v2": v2}


def test_each_set_is_scored_with_its_own_labels_and_classes(trees, tmp_path):
    config = RobustnessConfig(checkpoint=Path("index-oracle.pth"), test_sets=trees,
                              batch_size=4, workers=0, device="cpu", out=tmp_path)
    report = run_robustness(config, bundle=index_bundle())
    found = {r.source: (r.images, r.correct_top1) for r in report.rows}
    assert found == {"imagenet-a": (6, 4), "imagenet-r": (3, 2), "imagenet-sketch": (4, 3),
                     "imagenet-v2": (8, 7)}
    (summary,) = read_summary(report.json_path)["summaries"]
    stored = {t["test_set"]: t for t in summary["test_sets"]}
    assert stored["imagenet-a"]["error_top1_pct"] == pytest.approx(100 * 2 / 6)
    assert stored["imagenet-v2"]["accuracy_top1_pct"] == pytest.approx(100 * 7 / 8)
    assert stored["imagenet-r"]["released_images"] == 30000
    assert not any(t["complete"] for t in stored.values())  # partial downloads say so
    assert summary["source"] == "test-sets"  # no clean set, no corruption was evaluated
    described = read_provenance(report.json_path).extra["preprocessing"]
    assert set(described) == set(trees)  # each test set says how its images were prepared
    size = "x".join(map(str, index_bundle().input_size))
    assert all(f"centre crop {size}" in text and "mean" in text for text in described.values())


def test_a_test_set_only_run_shows_no_clean_error_and_no_mce(trees, tmp_path):
    import io

    from rich.console import Console

    from gfbench.render import robustness_summary_table
    from gfbench.robustness.protocol import REFERENCE_MCE

    config = RobustnessConfig(checkpoint=Path("index-oracle.pth"),
                              test_sets={"imagenet-v2": trees["imagenet-v2"]}, batch_size=4,
                              workers=0, device="cpu", out=tmp_path)
    (summary,) = run_robustness(config, bundle=index_bundle()).summaries
    screen = Console(file=io.StringIO(), width=120)
    screen.print(robustness_summary_table(summary, REFERENCE_MCE))
    text = screen.file.getvalue()
    assert "ImageNetV2" in text or "imagenet-v2" in text.lower()
    assert "clean top-1 error" not in text and "published mCE" not in text


def bad_trees(tmp_path):
    """(test set, folder, fragment of the one-line error)."""
    v2_wnids = write_index_tree(tmp_path / "v2w", {WNIDS[1]: [1]}, decoy=False)
    v2_padded = write_index_tree(tmp_path / "v2p", {"007": [7]}, decoy=False)
    a_outside = write_index_tree(tmp_path / "a", {WNIDS[0]: [0]}, decoy=False)
    sketch_names = write_index_tree(tmp_path / "s", {"cats": [0]}, decoy=False)
    (tmp_path / "empty" / WNIDS[6]).mkdir(parents=True)
    write_image(tmp_path / "file.jpg", (1, 2, 3))
    return [
        ("imagenet-v2", v2_wnids, "are not class indices 0..999 (expected <root>/<class index "
         "0..999>/<image>) (these look like wnids"),
        ("imagenet-v2", v2_padded, "folders 007 are not class indices"),
        ("imagenet-a", a_outside, f"folders {WNIDS[0]} are not among the 200 ImageNet-A "
         "classes (expected <root>/<wnid>/<image>)"),
        ("imagenet-r", a_outside, "are not among the 200 ImageNet-R classes"),
        ("imagenet-sketch", sketch_names, "folders cats are not among the ImageNet-1k wnids"),
        ("imagenet-a", tmp_path / "empty", "no images found (expected <root>/<wnid>/<image>, "
         "the ImageNet-A release)"),
        ("imagenet-r", tmp_path / "nowhere", "--imagenet-r"),
        ("imagenet-sketch", tmp_path / "file.jpg", "is a file, expected a folder"),
    ]


def test_a_folder_without_the_layout_is_refused_before_loading(tmp_path):
    for name, folder, fragment in bad_trees(tmp_path):
        config = RobustnessConfig(checkpoint=tmp_path / "absent.pth", test_sets={name: folder},
                                  workers=0, device="cpu", out=tmp_path / "out")
        with pytest.raises(DataError) as error:
            run_robustness(config)  # the checkpoint is never opened: it does not exist
        assert fragment in str(error.value) and "\n" not in str(error.value), fragment
        assert str(error.value).startswith(EVAL_SETS[name].option)
