"""Compiled measurements: a reset per setting, and graph breaks, recompiles and eager
fallbacks read from TorchDynamo's counters (backend "eager": fast, no C compiler needed)."""

import pytest
import torch
import torch._dynamo
from torch import nn

from gfbench.measure.compile import WatchedCompile, compile_status
from gfbench.measure.timing import make_step, time_step


class Breaks(nn.Module):
    """A Linear, a graph break (print), a ReLU."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 4)

    def forward(self, x):
        y = self.linear(x)
        print("graph break")
        return y.relu()


def _run(module, *batches):
    """Call the module on (batch, 4) inputs in turn; returns its report."""
    for batch in batches:
        module(torch.randn(batch, 4))
    return module.report()


def test_a_clean_graph_is_compiled_once():
    report = _run(WatchedCompile(nn.Linear(4, 4), backend="eager"), 2, 2, 2)
    assert (report.frames, report.frames_compiled, report.graphs) == (1, 1, 1)
    assert report.status == "compiled"


def test_a_graph_break_is_counted(capsys):
    report = _run(WatchedCompile(Breaks(), backend="eager"), 2, 2)
    assert report.graph_breaks == 1 and report.graphs == 2
    assert report.status == "graph breaks: 1"


def test_a_recompile_after_the_first_call_is_reported():
    report = _run(WatchedCompile(nn.Linear(4, 4), backend="eager"), 2, 3)
    assert report.recompiles == 1 and report.status == "recompiled: 1"


def test_hitting_the_recompile_limit_is_an_eager_fallback():
    with torch._dynamo.config.patch(recompile_limit=1):
        report = _run(WatchedCompile(nn.Linear(4, 4), backend="eager"), 2, 3, 4)
    assert report.frames_compiled < report.frames
    assert "fell back to eager" in report.status


def test_each_setting_starts_from_a_reset_compiler():
    # without the reset, the same Linear.forward at new sizes would be a recompile (dynamic
    # shapes, then eager after recompile_limit); with it every setting compiles afresh
    with torch._dynamo.config.patch(recompile_limit=1):
        reports = [_run(WatchedCompile(nn.Linear(4, 4), backend="eager"), batch, batch)
                   for batch in (2, 3, 5, 7)]
    assert [r.status for r in reports] == ["compiled"] * 4
    assert all(r.frames == 1 and r.recompiles == 0 for r in reports)


@pytest.mark.parametrize("mode", ["infer", "train"])
def test_the_status_of_a_timed_step(mode):
    model = WatchedCompile(nn.Linear(4, 4), backend="eager")
    time_step(make_step(model, torch.randn(2, 4), mode=mode), "cpu", warmup=2, repeat=3)
    assert compile_status(model) == "compiled"
    assert compile_status(nn.Linear(4, 4)) == ""


def test_an_uncalled_module_has_compiled_nothing():
    assert WatchedCompile(nn.Linear(4, 4), backend="eager").report().status == \
        "fell back to eager"
