"""The robustness progress display's ETA: images left of each kind (forward pass, FGSM, PGD)
at the speed measured for that kind, shown once the first part is done."""

import io

import pytest
from rich.console import Console

from gfbench.render import RobustnessProgress, clock_text, eta_seconds


class Clock:
    """A clock the test moves by hand."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Row:
    error_top1, images, unreadable = 0.5, 10, 0


def test_eta_counts_each_kind_at_its_own_speed():
    clock = Clock()
    progress = RobustnessProgress(target=Console(file=io.StringIO()), clock=clock)
    progress.begin([("clean", 10, "forward"), ("fog/1", 10, "forward"), ("pgd", 10, "pgd")])
    clock.now = 2.0
    progress.advance(0, 10)  # forward passes: 0.2 s per image
    assert progress.eta() is None  # nothing is finished: no guess yet
    progress.finish(0, Row())
    # 10 forward images at 0.2 s; PGD not timed yet: costed at the slowest kind timed
    assert progress.eta() == pytest.approx(10 * 0.2 + 10 * 0.2)
    clock.now = 3.0
    progress.advance(1, 10)  # now 3 s for 20 images: 0.15 s each
    progress.finish(1, Row())
    clock.now = 11.0
    progress.advance(2, 4)  # PGD: 8 s for 4 images, 2 s each
    assert progress.eta() == pytest.approx(6 * 2.0)
    assert progress.eta(2) == pytest.approx(12.0) and progress.eta(0) == 0
    progress.__exit__(None, None, None)


def test_eta_helpers():
    assert eta_seconds({"forward": 5}, {}, {}) is None
    assert eta_seconds({"forward": 5, "fgsm": 2}, {"forward": 1.0}, {"forward": 10}) == \
        pytest.approx(5 * 0.1 + 2 * 0.1)
    assert clock_text(None) == "-:--:--" and clock_text(3725.4) == "1:02:05"
