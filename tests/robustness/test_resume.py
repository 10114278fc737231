"""Nothing lost: an interrupted run leaves valid files, and re-running resumes to the same
numbers as an uninterrupted run."""

from dataclasses import replace
from pathlib import Path

import pytest
from robustness_helpers import oracle_bundle, write_oracle_clean, write_oracle_tree

from gfbench.errors import ResultsFileError
from gfbench.results import read_results
from gfbench.robustness.evaluate import NoProgress, RobustnessConfig, run_robustness

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


def test_interrupted_run_resumes_to_the_uninterrupted_numbers(config, tmp_path):
    reference = run_robustness(replace(config, out=tmp_path / "reference"),
                               bundle=oracle_bundle())
    with pytest.raises(KeyboardInterrupt):
        run_robustness(config, progress=InterruptAfter(7), bundle=oracle_bundle())
    _, written = read_results(tmp_path / "run.json")  # valid JSON after the interrupt
    assert len(written) == 7
    resumed = run_robustness(config, bundle=oracle_bundle())
    assert len(resumed.resumed) == 7 and resumed.evaluated_images == 4 * (16 - 7)
    assert counts(resumed.rows) == counts(reference.rows)
    assert resumed.summaries[0].mean_ce_pct == reference.summaries[0].mean_ce_pct
    again = run_robustness(config, bundle=oracle_bundle())  # nothing left to do
    assert again.evaluated_images == 0 and len(again.resumed) == 16


def test_resume_refuses_a_file_made_with_other_settings(config):
    run_robustness(replace(config, corruptions=("fog",)), bundle=oracle_bundle())
    with pytest.raises(ResultsFileError, match="other settings .*limit None vs 1"):
        run_robustness(replace(config, limit=1), bundle=oracle_bundle())
    fresh = run_robustness(replace(config, limit=1, resume=False), bundle=oracle_bundle())
    assert fresh.resumed == [] and {r.images for r in fresh.rows} == {2}
