"""Calibration under shift (ECE over 15 equal-width bins, NLL, Brier): against cases whose
calibration is known by construction or by hand, against an independent numpy computation,
through the whole run (rows, CSV, summary), for ImageNet-A/R's 200 classes, for files written
before calibration, and bit for bit under torchrun."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from robustness_helpers import (
    FOLDER_CLASSES,
    ORACLE_SIZE,
    index_bundle,
    index_colour,
    torchrun_robustness,
    write_folder_tree,
    write_folder_val,
    write_image,
    write_index_tree,
    write_vit_checkpoint,
)
from torch import nn

import gfbench
from gfbench.results import read_results
from gfbench.robustness.calibration import CalibrationSums, parse_bins, pooled
from gfbench.robustness.data import eval_set_classes, imagenet_wnids
from gfbench.robustness.evaluate import (
    ModelBundle,
    RobustnessConfig,
    _calibration_values,
    _score,
    run_robustness,
)
from gfbench.robustness.metrics import summarize

# --- an independent reference: numpy, from the logits, no gfbench code ---


def reference(logits: np.ndarray, labels: np.ndarray, columns: np.ndarray | None = None
              ) -> dict:
    """ECE (15 bins, Guo et al. 2017: bin m holds confidence in ((m-1)/15, m/15]), mean NLL
    and mean Brier of float logits, written from the definitions."""
    logits = np.asarray(logits, dtype=np.float64)
    if columns is not None:
        logits = logits[:, columns]
        labels = np.array([list(columns).index(label) for label in labels])
    shifted = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    confidence = p.max(axis=1)
    right = p.argmax(axis=1) == labels
    edges = np.linspace(0, 1, 16)
    ece = 0.0
    counts, correct, sums = [], [], []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        inside = (confidence > low) & (confidence <= high)
        counts.append(int(inside.sum()))
        correct.append(int(right[inside].sum()))
        sums.append(float(confidence[inside].sum()))
        if inside.any():
            ece += inside.mean() * abs(right[inside].mean() - confidence[inside].mean())
    onehot = np.eye(p.shape[1])[labels]
    return {"ece": ece, "nll": float(-np.log(p[np.arange(len(p)), labels]).mean()),
            "brier": float(((p - onehot) ** 2).sum(axis=1).mean()), "counts": counts,
            "correct": correct, "confidence": sums, "right": int(right.sum())}


def through_gfbench(logits: np.ndarray, labels: np.ndarray, readable: np.ndarray | None = None,
                    columns: np.ndarray | None = None) -> CalibrationSums:
    """What the evaluation loop computes for one batch (scoring, per-image values, sums); the
    logits keep their dtype (float64 ones carry a constructed confidence to the last bit)."""
    logits_t = torch.from_numpy(np.asarray(logits))
    labels_t = torch.tensor(labels, dtype=torch.long)
    readable_t = torch.ones(len(labels), dtype=torch.bool) if readable is None else \
        torch.tensor(readable)
    columns_t = None if columns is None else torch.tensor(columns, dtype=torch.long)
    hit1, _ = _score(logits_t, labels_t, readable_t, columns_t)
    values = _calibration_values(logits_t, labels_t, readable_t, hit1, columns_t)
    return CalibrationSums.from_images(values.numpy())


def logits_with_confidence(confidence: float, right: bool, classes: int = 4
                           ) -> tuple[list[float], int]:
    """Logits whose softmax puts `confidence` on class 0 and splits the rest evenly, and a
    label that makes the top-1 answer right (0) or wrong (1)."""
    rest = math.log((1 - confidence) / (classes - 1))
    return [math.log(confidence)] + [rest] * (classes - 1), 0 if right else 1


def batch(cases: list[tuple[float, bool]]) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels of (confidence, right) cases."""
    rows = [logits_with_confidence(c, r) for c, r in cases]
    return np.array([r[0] for r in rows]), np.array([r[1] for r in rows])


# --- (a) perfectly calibrated, (b) overconfident by a hand-computed amount ---


def test_confidence_equal_to_accuracy_in_every_bin_gives_ece_zero():
    # bin 7 holds 0.5 (1 of 2 right), bin 11 holds 0.75 (3 of 4), bin 13 holds 0.9 (9 of 10)
    cases = ([(0.5, True), (0.5, False)] + [(0.75, True)] * 3 + [(0.75, False)]
             + [(0.9, True)] * 9 + [(0.9, False)])
    sums = through_gfbench(*batch(cases))
    assert sums.counts[7] == 2 and sums.counts[11] == 4 and sums.counts[13] == 10
    assert sums.images == 16 and sum(sums.correct) == 13
    assert (sums.correct[7], sums.correct[11], sums.correct[13]) == (1, 3, 9)
    assert sums.ece == pytest.approx(0.0, abs=1e-12)


def test_an_overconfident_model_has_the_hand_computed_ece():
    # 10 images at confidence 0.9 with 6 right, 5 at 0.65 with 2 right:
    # ECE = (10/15)|0.6 - 0.9| + (5/15)|0.4 - 0.65| = (3 + 1.25) / 15
    cases = [(0.9, True)] * 6 + [(0.9, False)] * 4 + [(0.65, True)] * 2 + [(0.65, False)] * 3
    sums = through_gfbench(*batch(cases))
    assert sums.ece == pytest.approx(4.25 / 15, abs=1e-12)
    assert sums.counts[13] == 10 and sums.counts[9] == 5  # 0.9 in (13/15, 14/15]
    # NLL by hand: right images -log(c); wrong ones -log((1 - c) / 3)
    nll = (6 * -math.log(0.9) + 4 * -math.log(0.1 / 3) + 2 * -math.log(0.65)
           + 3 * -math.log(0.35 / 3)) / 15
    assert sums.nll == pytest.approx(nll, rel=1e-12)


def test_underconfidence_counts_as_miscalibration_too():
    cases = [(0.4, True)] * 5  # always right at confidence 0.4: ECE 0.6
    assert through_gfbench(*batch(cases)).ece == pytest.approx(0.6, abs=1e-12)


# --- (c) NLL, Brier (and ECE) against numpy on random logits ---


def test_nll_brier_and_ece_match_numpy_on_random_logits():
    rng = np.random.default_rng(7)
    logits = rng.normal(0, 3, (513, 10)).astype(np.float32)
    labels = rng.integers(0, 10, 513)
    readable = rng.random(513) > 0.1
    ref = reference(logits[readable], labels[readable])
    sums = through_gfbench(logits, labels, readable)
    assert sums.images == int(readable.sum())  # unreadable images are left out
    assert sums.nll == pytest.approx(ref["nll"], rel=1e-12)
    assert sums.brier == pytest.approx(ref["brier"], rel=1e-12)
    assert sums.ece == pytest.approx(ref["ece"], abs=1e-12)
    assert list(sums.counts) == ref["counts"] and list(sums.correct) == ref["correct"]
    np.testing.assert_allclose(sums.confidence, ref["confidence"], rtol=1e-12, atol=1e-12)
    assert ref["ece"] > 0.05 and 1 < ref["nll"] < 10  # a case where the numbers mean something


def test_the_bins_string_round_trips_exactly_and_pools_by_adding():
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 2, (200, 5)).astype(np.float32)
    labels = rng.integers(0, 5, 200)
    first, second = through_gfbench(logits[:120], labels[:120]), through_gfbench(
        logits[120:], labels[120:])
    back = parse_bins(first.bins_text(), first.nll, first.brier)
    assert back is not None
    assert (back.counts, back.confidence, back.correct) == (
        first.counts, first.confidence, first.correct)  # bit for bit, not approximately
    assert back.ece == first.ece
    both = pooled([first, second])
    whole = reference(logits, labels)
    assert both is not None and both.counts == tuple(whole["counts"])
    assert both.ece == pytest.approx(whole["ece"], abs=1e-12)
    assert pooled([first, None]) is None and parse_bins(None) is None
    assert parse_bins("1:0.5:1") is None  # not 15 bins


# --- through the whole run: a model that returns a known table of logits ---

TABLE_IMAGES = 60


class LogitTable(nn.Module):
    """Returns row i of a fixed table for the image whose colour encodes i (index_colour)."""

    def __init__(self, table: np.ndarray):
        super().__init__()
        self.register_buffer("table", torch.tensor(table, dtype=torch.float32))
        self.num_classes = table.shape[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        red, green = (x[:, c].mean(dim=(1, 2)) * 255 for c in range(2))
        index = (((red - 4) / 8).round() * 32 + ((green - 4) / 8).round()).long()
        return self.table[index.clamp(0, len(self.table) - 1)]


def write_table_part(folder: Path, indices: range) -> list[tuple[int, int]]:
    """One image per table index, in class folder index % 3; returns (index, label)."""
    placed = []
    for i in indices:
        label = i % 3
        write_image(folder / FOLDER_CLASSES[label] / f"img{i}.JPEG", index_colour(i, False))
        placed.append((i, label))
    return placed


@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    """Clean (24 images and one unreadable file) and fog/snow at severities 1, 2 (9 each)."""
    root = tmp_path_factory.mktemp("table")
    rng = np.random.default_rng(11)
    table = rng.normal(0, 2.5, (TABLE_IMAGES, 3)).astype(np.float32)
    placed = {("clean", 0): write_table_part(root / "val", range(0, 24))}
    (root / "val" / FOLDER_CLASSES[0] / "broken.JPEG").write_bytes(b"not an image")
    start = 24
    for corruption in ("fog", "snow"):
        for severity in (1, 2):
            placed[(corruption, severity)] = write_table_part(
                root / "c" / corruption / str(severity), range(start, start + 9))
            start += 9
    bundle = ModelBundle(module=LogitTable(table), name="table", mean=(0.0, 0.0, 0.0),
                         std=(1.0, 1.0, 1.0), input_size=(ORACLE_SIZE, ORACLE_SIZE),
                         interpolation="bilinear", crop_pct=1.0, num_classes=3)
    config = RobustnessConfig(checkpoint=Path("table.pth"), data=root / "c", clean=root / "val",
                              corruptions=("fog", "snow"), severities=(1, 2),
                              class_map="folders", batch_size=4, workers=0, device="cpu",
                              out=root / "out")
    report = run_robustness(config, bundle=bundle)
    expected = {key: reference(table[[i for i, _ in part]], np.array([y for _, y in part]))
                for key, part in placed.items()}
    return report, expected


def test_every_row_holds_the_reference_calibration(table_run):
    report, expected = table_run
    rows = {(r.corruption, r.severity): r for r in report.rows}
    assert set(rows) == set(expected)
    for key, ref in expected.items():
        row = rows[key]
        sums = parse_bins(row.calibration_bins, row.nll, row.brier)
        assert sums is not None
        assert row.correct_top1 == ref["right"] == sum(sums.correct)  # bins agree with error
        assert list(sums.counts) == ref["counts"] and sum(sums.counts) == row.images
        assert list(sums.correct) == ref["correct"]
        np.testing.assert_allclose(sums.confidence, ref["confidence"], rtol=1e-12, atol=1e-15)
        assert row.ece == pytest.approx(ref["ece"], abs=1e-12) and row.ece == sums.ece
        assert row.nll == pytest.approx(ref["nll"], rel=1e-12)
        assert row.brier == pytest.approx(ref["brier"], rel=1e-12)
    assert rows[("clean", 0)].unreadable == 1 and rows[("clean", 0)].images == 24


def test_csv_and_json_hold_the_same_calibration(table_run):
    report, _ = table_run
    csv = pd.read_csv(report.csv_path, comment="#")
    _, frame = read_results(report.json_path)
    assert len(csv) == len(frame) == 5
    for (_, a), (_, b) in zip(csv.iterrows(), frame.iterrows(), strict=True):
        assert a["calibration_bins"] == b["calibration_bins"]
        assert (a["ece"], a["nll"], a["brier"]) == (b["ece"], b["nll"], b["brier"])


def test_summary_means_per_severity_and_the_reliability_pool(table_run):
    report, expected = table_run
    (summary,) = report.summaries
    assert summary.clean_ece_pct == pytest.approx(100 * expected[("clean", 0)]["ece"])
    assert summary.clean_nll == pytest.approx(expected[("clean", 0)]["nll"])
    assert summary.clean_brier == pytest.approx(expected[("clean", 0)]["brier"])
    by_severity = summary.calibration.set_index("severity")
    for severity in (1, 2):
        parts = [expected[(c, severity)] for c in ("fog", "snow")]
        assert by_severity.loc[severity, "corruptions"] == 2
        for column, key, scale in (("ece_pct", "ece", 100), ("nll", "nll", 1),
                                   ("brier", "brier", 1)):
            assert by_severity.loc[severity, column] == pytest.approx(
                scale * np.mean([p[key] for p in parts]), rel=1e-12)
    per_corruption = summary.per_corruption.set_index("corruption")
    assert per_corruption.loc["fog", "ece_pct"] == pytest.approx(
        100 * np.mean([expected[("fog", s)]["ece"] for s in (1, 2)]), rel=1e-12)
    (clean_name, clean), (shift_name, shift) = summary.reliability
    assert clean_name == "clean" and shift_name == "severity 2, 2 corruptions pooled"
    assert list(shift.counts) == [a + b for a, b in zip(
        expected[("fog", 2)]["counts"], expected[("snow", 2)]["counts"], strict=True)]
    stored = json.loads(report.json_path.read_text())["summary"]["summaries"][0]
    assert stored["clean_ece_pct"] == pytest.approx(summary.clean_ece_pct)
    assert [r["severity"] for r in stored["calibration_by_severity"]] == [1, 2]
    assert stored["parts_without_calibration"] == 0


def test_a_file_written_before_calibration_still_reads_and_summarises(table_run, tmp_path):
    report, _ = table_run
    payload = json.loads(report.json_path.read_text())
    for row in payload["rows"]:
        for name in ("ece", "nll", "brier", "calibration_bins"):
            del row[name]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(payload))
    _, frame = read_results(old)
    assert frame["ece"].isna().all() and frame["calibration_bins"].isna().all()
    (summary,) = summarize(frame)
    assert summary.clean_ece_pct is None and summary.reliability == []
    assert summary.calibration["ece_pct"].isna().all() and summary.uncalibrated == 5
    assert summary.clean_error_top1_pct == report.summaries[0].clean_error_top1_pct
    # one old row among new ones: its severity has no mean rather than a mean of the rest
    mixed = pd.DataFrame([dataclasses.asdict(r) for r in report.rows])
    mixed.loc[mixed["corruption"] == "fog", ["ece", "calibration_bins"]] = None
    (partial,) = summarize(mixed)
    assert partial.calibration["ece_pct"].isna().all() and partial.clean_ece_pct is not None
    assert partial.uncalibrated == 2


# --- (e) ImageNet-A/R: the softmax over their 200 classes ---


def test_imagenet_a_and_r_use_the_softmax_over_their_200_classes(tmp_path):
    wnids = imagenet_wnids()
    a, r = np.array(eval_set_classes("imagenet-a")), np.array(eval_set_classes("imagenet-r"))
    plan = {"imagenet-a": {wnids[a[10]]: [a[10], a[10], a[50]], wnids[a[199]]: [a[199]]},
            "imagenet-r": {wnids[r[0]]: [r[0], r[1]], wnids[r[150]]: [r[150]]}}
    trees = {name: write_index_tree(tmp_path / name, images, decoy=True)
             for name, images in plan.items()}
    config = RobustnessConfig(checkpoint=Path("index-oracle.pth"), test_sets=trees,
                              batch_size=3, workers=0, device="cpu", out=tmp_path / "out")
    rows = {row.source: row for row in run_robustness(config, bundle=index_bundle()).rows}
    canonical = {w: i for i, w in enumerate(wnids)}
    for name, columns in (("imagenet-a", a), ("imagenet-r", r)):
        labels, logits = [], []
        for wnid, predictions in sorted(plan[name].items()):
            for predicted in predictions:  # the index oracle: written class 5, decoy 0 at 10
                row = np.full(1000, -10.0)
                row[predicted], row[0] = 5.0, 10.0
                logits.append(row)
                labels.append(canonical[wnid])
        within = reference(np.array(logits), np.array(labels), columns)
        everywhere = reference(np.array(logits), np.array(labels))
        row = rows[name]
        assert row.ece == pytest.approx(within["ece"], abs=1e-12)
        assert row.nll == pytest.approx(within["nll"], rel=1e-12)
        assert row.brier == pytest.approx(within["brier"], rel=1e-12)
        assert abs(everywhere["nll"] - within["nll"]) > 1  # 1000-way would be far off
        assert row.correct_top1 == within["right"]


def test_a_label_outside_the_scored_classes_has_infinite_nll():
    logits = np.zeros((1, 10), dtype=np.float32)
    sums = through_gfbench(logits, np.array([7]), columns=np.array([0, 1, 2]))
    assert sums.nll == math.inf and sums.images == 1


# --- (d) torchrun: two ranks give a single process's calibration, bit for bit ---


def calibration_of(frame: pd.DataFrame) -> list[tuple]:
    """Every row's identity and calibration, sorted."""
    return sorted(frame[["source", "corruption", "severity", "images", "ece", "nll", "brier",
                         "calibration_bins"]].itertuples(index=False, name=None))


def test_two_gloo_processes_give_the_single_process_bits(tmp_path):
    checkpoint = write_vit_checkpoint(tmp_path / "vit3.pth")
    data = write_folder_tree(tmp_path / "c", ("gaussian_noise", "fog"), (3,), per_class=3)
    val = write_folder_val(tmp_path / "val", per_class=3)
    # batch 1: an image's logits never depend on which images share its batch, so any
    # difference can only come from how the ranks' numbers are added up
    options = ["--ckpt", str(checkpoint), "--model", "test_vit", "--data", str(data),
               "--clean", str(val), "--corruptions", "gaussian_noise,fog", "--severities", "3",
               "--attack", "fgsm", "--class-map", "folders", "--batch-size", "1",
               "--workers", "0", "--device", "cpu"]
    two = torchrun_robustness(options, tmp_path / "two", tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "120",
           "PYTHONPATH": str(Path(gfbench.__file__).parents[1])}
    assert two.returncode == 0, two.stderr[-3000:]
    one = subprocess.run([sys.executable, "-m", "gfbench", "robustness", *options, "--out",
                          str(tmp_path / "one")],
                         capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert one.returncode == 0, one.stderr[-3000:]
    (two_json,) = (tmp_path / "two").glob("*.json")
    (one_json,) = (tmp_path / "one").glob("*.json")
    provenance, two_frame = read_results(two_json)
    _, one_frame = read_results(one_json)
    assert provenance.extra["world_size"] == 2
    assert len(one_frame) == 4 and one_frame["ece"].notna().all()
    assert calibration_of(two_frame) == calibration_of(one_frame)  # exact, not approximate
    clean = one_frame[one_frame["source"] == "clean"].iloc[0]
    assert clean["unreadable"] == 1 and clean["images"] == 9
    assert len(set(one_frame["calibration_bins"])) == 4  # the parts do differ
