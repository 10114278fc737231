"""Nothing lost: an interrupted run leaves valid files, re-running resumes to the same numbers
as an uninterrupted run, and results are keyed by the checkpoint's content and the settings
(never by its file name alone), so no run reports or deletes another's rows."""

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from robustness_helpers import oracle_bundle, write_oracle_clean, write_oracle_tree

from gfbench.errors import GfbenchError, ResultsFileError, RunInterrupted
from gfbench.results import read_results, read_summary
from gfbench.robustness.evaluate import (
    NoProgress,
    RobustnessConfig,
    check_out_folder,
    file_sha256,
    run_robustness,
)

CORRUPTIONS = ("gaussian_noise", "defocus_blur", "fog")


class InterruptAfter(NoProgress):
    """A progress display whose user presses Ctrl-C after `parts` parts have finished."""

    def __init__(self, parts: int):
        self.left = parts

    def finish(self, part, row):
        self.left -= 1
        if self.left == 0:
            raise KeyboardInterrupt


@pytest.fixture
def config(tmp_path) -> RobustnessConfig:
    data = write_oracle_tree(tmp_path / "c", CORRUPTIONS)
    return RobustnessConfig(checkpoint=Path("oracle.pth"), data=data,
                            clean=write_oracle_clean(tmp_path / "val"), corruptions=CORRUPTIONS,
                            batch_size=3, workers=0, device="cpu", out=tmp_path / "run")


def counts(rows):
    return sorted((r.source, r.corruption, r.severity, r.images, r.correct_top1,
                   r.correct_top5) for r in rows)


def only_json(folder: Path) -> Path:
    (path,) = folder.glob("*.json")
    return path


def test_interrupted_run_resumes_to_the_uninterrupted_numbers(config, tmp_path):
    reference = run_robustness(replace(config, out=tmp_path / "reference"),
                               bundle=oracle_bundle())
    with pytest.raises(RunInterrupted) as stop:
        run_robustness(config, progress=InterruptAfter(7), bundle=oracle_bundle())
    assert isinstance(stop.value, KeyboardInterrupt) and stop.value.rows_kept == 7
    _, written = read_results(stop.value.path)  # valid JSON after the interrupt
    assert len(written) == 7 and stop.value.path.parent == tmp_path / "run"
    resumed = run_robustness(config, bundle=oracle_bundle())
    assert resumed.json_path == stop.value.path
    assert len(resumed.resumed) == 7 and resumed.evaluated_images == 4 * (16 - 7)
    assert counts(resumed.rows) == counts(reference.rows)
    assert resumed.summaries[0].mean_ce_pct == reference.summaries[0].mean_ce_pct
    again = run_robustness(config, bundle=oracle_bundle())  # nothing left to do
    assert again.evaluated_images == 0 and len(again.resumed) == 16


def test_other_settings_get_their_own_file_and_no_rows_are_deleted(config):
    first = run_robustness(replace(config, corruptions=("fog",)), bundle=oracle_bundle())
    limited = run_robustness(replace(config, limit=1), bundle=oracle_bundle())
    assert limited.json_path != first.json_path and limited.resumed == []
    assert {r.images for r in limited.rows} == {2}
    assert len(read_results(first.json_path)[1]) == 1 + 5  # clean + fog x 5, untouched
    again = run_robustness(replace(config, corruptions=("defocus_blur",), resume=False),
                           bundle=oracle_bundle())  # evaluates its parts again, keeps fog's
    assert again.json_path == first.json_path and again.resumed == []
    assert again.evaluated_images == 4 * (1 + 5)
    kept = read_results(first.json_path)[1]
    assert sorted(set(kept["corruption"])) == ["clean", "defocus_blur", "fog"]
    assert len(kept) == 1 + 5 + 5


def test_a_different_checkpoint_with_the_same_file_name_is_not_resumed(config, tmp_path):
    folder = tmp_path / "ckpts"
    folder.mkdir()
    checkpoint = folder / "best.pth"
    bundle = oracle_bundle()
    torch.save(bundle.module.state_dict(), checkpoint)
    one = replace(config, checkpoint=checkpoint, corruptions=("fog",), severities=(1,))
    first = run_robustness(one, bundle=bundle)
    truth = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert first.checkpoint_sha256 == file_sha256(checkpoint, chunk=7) == truth  # streamed
    assert {r.checkpoint_sha256 for r in first.rows} == {truth}
    assert first.json_path.name.startswith("robustness-oracle-best-")
    checkpoint.write_bytes(checkpoint.read_bytes() + b"another training run")
    second = run_robustness(one, bundle=oracle_bundle())
    assert second.resumed == [] and second.evaluated_images == 4 + 4  # evaluated, not copied
    assert second.json_path != first.json_path  # its own file, the first one kept
    assert len(read_results(first.json_path)[1]) == 2
    # a file renamed into place is refused in one line, not silently resumed
    second.json_path.unlink()
    second.csv_path.unlink()
    first.json_path.rename(second.json_path)
    with pytest.raises(ResultsFileError, match="holds another checkpoint's rows"):
        run_robustness(one, bundle=oracle_bundle())


def test_the_results_file_carries_the_summary(config):
    report = run_robustness(config, bundle=oracle_bundle())
    stored = read_summary(report.json_path)["summaries"]
    assert stored == json.loads(json.dumps(report.summary))
    (record,) = stored
    expected = report.summaries[0]
    assert record["clean_error_top1_pct"] == pytest.approx(25.0)  # 1 of the 4 clean images
    assert record["mean_ce_pct"] == pytest.approx(expected.mean_ce_pct)
    assert record["mce_pct"] is None and record["comparable_to_published"] is False
    assert record["ce_corruptions"] == 3 and record["missing_parts"] == 75 - 15
    assert [g["group"] for g in record["groups"]] == ["noise", "blur", "weather"]


@pytest.mark.parametrize("make, fragment", [
    (lambda tmp: tmp / "file.txt", "is a file, not a folder"),
    (lambda tmp: Path("/proc/gfbench-x"), "cannot write there"),
    (lambda tmp: tmp / "runs" / "rob.json", "expected a folder, not a file name"),
])
def test_out_is_checked_before_any_work(make, fragment, tmp_path):
    (tmp_path / "file.txt").write_text("not a folder")
    with pytest.raises(GfbenchError, match=fragment):
        check_out_folder(make(tmp_path))
    assert check_out_folder(tmp_path / "new" / "folder").is_dir()
