"""Every error, CE, mCE and relative mCE of a run on a synthetic ImageNet-C tree, against
numbers worked out by hand from the errors planted in the images."""

import json
from pathlib import Path

import pandas as pd
import pytest
from robustness_helpers import (
    oracle_bundle,
    write_oracle_clean,
    write_oracle_tree,
    wrong_count,
)

from gfbench.results import read_results
from gfbench.robustness.evaluate import RobustnessConfig, run_robustness
from gfbench.robustness.metrics import summarize, summary_frame
from gfbench.robustness.protocol import ALL_CORRUPTIONS, BENCHMARK_CORRUPTIONS

# Typed from the paper's table (Hendrycks & Dietterich, ICLR 2019), independently of gfbench's
# constants.
ALEXNET = [0.886428, 0.894468, 0.922640, 0.819880, 0.826268, 0.785948, 0.798360, 0.866816,
           0.826572, 0.819324, 0.564592, 0.853204, 0.646056, 0.717840, 0.606500]
ALEXNET_CLEAN = 0.4345
CLEAN_ERROR = 0.25  # write_oracle_clean: 1 of 4 wrong


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """All 19 corruptions x 5 severities x 2 classes x 2 images, plus a clean folder."""
    root = tmp_path_factory.mktemp("exact")
    data = write_oracle_tree(root / "imagenet-c", ALL_CORRUPTIONS)
    clean = write_oracle_clean(root / "val")
    config = RobustnessConfig(checkpoint=Path("oracle.pth"), data=data, clean=clean,
                              corruptions=ALL_CORRUPTIONS, batch_size=7, workers=0,
                              device="cpu", out=root / "out")
    return run_robustness(config, bundle=oracle_bundle())


def hand_mean_error(corruption):
    """mean over severities of the planted top-1 error (fraction)."""
    return sum(wrong_count(corruption, s) for s in range(1, 6)) / 4 / 5


def test_rows_hold_exact_counts(full_run):
    rows = {(r.corruption, r.severity): r for r in full_run.rows}
    assert len(rows) == 19 * 5 + 1
    for corruption in ALL_CORRUPTIONS:
        for severity in range(1, 6):
            row = rows[(corruption, severity)]
            wrong = wrong_count(corruption, severity)
            assert (row.source, row.images, row.unreadable) == ("imagenet-c", 4, 0)
            assert row.correct_top1 == 4 - wrong
            assert row.correct_top5 == 4 - wrong // 2  # odd-numbered wrong images leave top 5
            assert row.error_top1 == wrong / 4
    clean = rows[("clean", 0)]
    assert (clean.images, clean.correct_top1, clean.correct_top5) == (4, 3, 3)


def test_ce_mce_relative_mce_and_unnormalised_mean(full_run):
    (summary,) = full_run.summaries
    assert summary.complete and summary.comparable and summary.missing == []
    table = summary.per_corruption.set_index("corruption")
    ces, relatives, errors = [], [], []
    for corruption, alexnet in zip(BENCHMARK_CORRUPTIONS, ALEXNET, strict=True):
        error = hand_mean_error(corruption)
        ce = error / alexnet
        relative = (error - CLEAN_ERROR) / (alexnet - ALEXNET_CLEAN)
        assert table.loc[corruption, "error_top1_pct"] == pytest.approx(100 * error, abs=1e-12)
        assert table.loc[corruption, "ce_pct"] == pytest.approx(100 * ce, abs=1e-12)
        assert table.loc[corruption, "relative_ce_pct"] == pytest.approx(100 * relative,
                                                                        abs=1e-12)
        ces.append(ce)
        relatives.append(relative)
        errors.append(error)
    assert summary.clean_error_top1_pct == pytest.approx(100 * CLEAN_ERROR, abs=1e-12)
    assert summary.mce_pct == pytest.approx(100 * sum(ces) / 15, abs=1e-12)
    assert summary.relative_mce_pct == pytest.approx(100 * sum(relatives) / 15, abs=1e-12)
    assert summary.mean_error_pct == pytest.approx(100 * sum(errors) / 15, abs=1e-12)
    assert summary.mean_error_pct != pytest.approx(summary.mce_pct)  # different metrics
    # The extra four get errors but no CE, and do not enter any mean.
    for extra in ALL_CORRUPTIONS[15:]:
        assert pd.isna(table.loc[extra, "ce_pct"]) and table.loc[extra, "group"] == "extra"
        assert table.loc[extra, "error_top1_pct"] == pytest.approx(100 * hand_mean_error(extra))


def test_group_means(full_run):
    (summary,) = full_run.summaries
    groups = summary.groups.set_index("group")
    spans = {"noise": (0, 3), "blur": (3, 7), "weather": (7, 11), "digital": (11, 15)}
    for group, (start, stop) in spans.items():
        names = BENCHMARK_CORRUPTIONS[start:stop]
        expected_ce = sum(hand_mean_error(c) / a for c, a in
                          zip(names, ALEXNET[start:stop], strict=True)) / len(names)
        expected_error = sum(hand_mean_error(c) for c in names) / len(names)
        assert groups.loc[group, "mean_ce_pct"] == pytest.approx(100 * expected_ce, abs=1e-12)
        assert groups.loc[group, "mean_error_pct"] == pytest.approx(100 * expected_error,
                                                                    abs=1e-12)


def test_files_hold_the_same_rows_and_metrics_recompute_from_them(full_run):
    provenance, frame = read_results(full_run.json_path)
    assert provenance.kind == "robustness" and provenance.extra["settings"]["limit"] is None
    assert len(frame) == 96 and set(frame["checkpoint"]) == {"oracle.pth"}
    csv = pd.read_csv(full_run.csv_path, comment="#")
    assert csv["correct_top1"].tolist() == frame["correct_top1"].tolist()
    (again,) = summarize(frame)
    assert again.mce_pct == full_run.summaries[0].mce_pct
    table = summary_frame([again])
    assert table.loc[0, "mce_pct"] == again.mce_pct and table.loc[0, "comparable"]
    assert json.loads(full_run.json_path.read_text())["rows"][0]["source"] == "clean"


def test_partial_grid_has_no_mce_but_says_what_it_has(tmp_path):
    data = write_oracle_tree(tmp_path / "c", BENCHMARK_CORRUPTIONS[:2], severities=(1, 2, 3))
    config = RobustnessConfig(checkpoint=Path("oracle.pth"), data=data,
                              corruptions=BENCHMARK_CORRUPTIONS[:2], severities=(1, 2, 3),
                              workers=0, device="cpu", out=tmp_path / "out")
    (summary,) = run_robustness(config, bundle=oracle_bundle()).summaries
    assert summary.mce_pct is None and summary.relative_mce_pct is None
    assert not summary.complete and summary.ce_corruptions == 0
    assert len(summary.missing) == 75 - 6 and "gaussian_noise/4" in summary.missing
    expected = sum(wrong_count("gaussian_noise", s) for s in (1, 2, 3)) / 12
    table = summary.per_corruption.set_index("corruption")
    assert table.loc["gaussian_noise", "error_top1_pct"] == pytest.approx(100 * expected)
