"""Terminal rendering: the ETA of a sweep whose rows take long."""

import io

from rich.console import Console

from gfbench.measure.setting import Setting
from gfbench.render import ComplexityProgress, EtaColumn


def _eta_text(progress: ComplexityProgress) -> str:
    task = progress.progress.tasks[0]
    return EtaColumn().render(task).plain


def test_eta_comes_from_the_measured_rows_not_from_a_30_s_window(monkeypatch):
    clock = iter([0.0, 45.0, 45.0, 105.0])  # rows of 45 s and 60 s
    monkeypatch.setattr("gfbench.render.time.monotonic", lambda: next(clock))
    progress = ComplexityProgress(5, enabled=False, target=Console(file=io.StringIO()))
    setting = Setting("model", "deit-s", 224, 224, 1, "fp32", "infer", "cpu")
    assert _eta_text(progress) == "eta -:--:--"
    for _ in range(2):
        progress.start(setting)
        progress.finish(setting.row(), skipped=False)
    assert _eta_text(progress) == "eta 0:02:37"  # 3 rows left x 52.5 s
    progress.finish(setting.row(), skipped=True)  # a resumed row costs nothing
    assert _eta_text(progress) == "eta 0:01:45"
