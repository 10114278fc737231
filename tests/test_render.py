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


def test_the_exponent_table_never_cuts_names_or_exponents_at_80_columns():
    from gfbench.measure.scaling import scaling_exponents
    from gfbench.render import exponents_table
    from gfbench.results import ComplexityRow

    rows = [ComplexityRow(subject="model", name="swin_tiny_patch4_window7_224", res_h=s,
                          res_w=s, tokens=(s // 4) ** 2, batch_size=1, precision="fp32",
                          mode="infer", device="cpu", flops=1e9 * (s / 224) ** 2,
                          params=28e6 + s, latency_ms_p10=0.9 * s, latency_ms_p50=s,
                          latency_ms_p90=1.1 * s)
            for s in (224, 384, 512)]
    console = Console(file=io.StringIO(), width=80)
    console.print(exponents_table(scaling_exponents(rows)))
    text = console.file.getvalue()
    assert "…" not in text and "swin_tiny_patch4_window7_224" in text
    assert "latency" in text and "1.00" in text  # FLOPs grow as N exactly


def test_a_long_model_name_folds_and_no_number_is_cut_at_80_columns():
    from gfbench.render import complexity_table
    from gfbench.results import ComplexityRow

    row = ComplexityRow(subject="model", name="swin_tiny_patch4_window7_224", res_h=224,
                        res_w=224, tokens=3136, batch_size=1, precision="fp32", mode="train",
                        device="cpu", flops=4.509e9, params=28_288_354, latency_ms_p10=325.0,
                        latency_ms_p50=328.0, latency_ms_p90=334.0, throughput_ips=3.05,
                        peak_mem_bytes=173.1 * 2**20)
    console = Console(file=io.StringIO(), width=80)
    console.print(complexity_table([row], "t"))
    text = console.file.getvalue()
    assert "…" not in text
    for cell in ("3136", "4.509G", "28.3M", "328", "325-334", "3.05", "173.1"):
        assert cell in text, cell


def _log_lines(settings, monkeypatch, seconds=(), **kwargs) -> list[str]:
    """The log lines a sweep over these settings prints (each setting taking `seconds`)."""
    from types import SimpleNamespace

    moments = iter([t for s in seconds for t in (0.0, s)])
    monkeypatch.setattr("gfbench.render.time", SimpleNamespace(
        monotonic=lambda: next(moments, 0.0)))
    target = Console(file=io.StringIO(), width=200, color_system=None)
    with ComplexityProgress(len(settings), target=target, **kwargs) as progress:
        for setting in settings:
            progress.start(setting)
            progress.finish(setting.row(), skipped=False)
    return [line for line in target.file.getvalue().splitlines() if line.startswith("done")]


def _setting(batch: int, side: int = 224) -> Setting:
    return Setting("model", "deit-s", side, side, batch, "fp32", "infer", "cpu")


def test_log_lines_name_the_batch_only_when_the_sweep_has_several(monkeypatch):
    lines = _log_lines([_setting(1), _setting(8)], monkeypatch, batch_sizes=[1, 8])
    assert [line.split()[3] for line in lines] == ["b1", "b8"]
    lines = _log_lines([_setting(1, 224), _setting(1, 384)], monkeypatch, batch_sizes=[1])
    assert lines and not any(" b1" in line for line in lines)
    # not told the sweep's batch sizes: a batch other than 1 is named, all once two differ
    lines = _log_lines([_setting(1), _setting(8), _setting(1, 384)], monkeypatch)
    assert " b1 " not in lines[0] and [line.split()[3] for line in lines[1:]] == ["b8", "b1"]
    assert not any(" b1" in line for line in _log_lines([_setting(1)] * 2, monkeypatch))


def test_log_lines_show_the_time_left_while_settings_remain(monkeypatch):
    lines = _log_lines([_setting(1, side) for side in (224, 384, 512, 640)], monkeypatch,
                       seconds=(45.0, 60.0, 30.0, 30.0))
    assert [line.split("eta ")[-1].strip() if "eta" in line else None for line in lines] == [
        "0:02:15",  # 3 settings left x 45 s
        "0:01:45",  # 2 left x 52.5 s
        "0:00:45",  # 1 left x 45 s
        None]  # nothing left
