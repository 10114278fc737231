"""The complexity table in the terminal: readable FLOPs; train mode's forward + backward."""

from __future__ import annotations

from rich.console import Console

from gfbench.render import complexity_table, print_complexity_report
from gfbench.results import ComplexityRow


def _row(name: str, flops: float, tokens: int = 196, mode: str = "infer",
         fwd_flops: float | None = None) -> ComplexityRow:
    return ComplexityRow(subject="mixer", name=name, res_h=14, res_w=14, tokens=tokens,
                         batch_size=1, precision="fp32", mode=mode, device="meta", flops=flops,
                         params=1000, fwd_flops=fwd_flops)


def _text(renderable) -> str:
    console = Console(record=True, width=100, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_flops_read_with_a_metric_prefix_like_the_progress_lines():
    text = _text(complexity_table([_row("global_filter", 623_616.0),
                                   _row("attention", 2_857_093_632.0),
                                   _row("resnet50", 4.1e9, tokens=0)], "t"))
    header = next(line for line in text.splitlines() if "name" in line)
    assert "FLOPs" in header and "GFLOPs" not in header and "fwd" not in header
    assert "623.6k" in text and "2.857G" in text and "0.0006" not in text
    resnet = next(line for line in text.splitlines() if line.startswith("resnet50"))
    assert resnet.split()[2] == "-"  # no token count, not "0"


def test_train_mode_labels_the_flops_as_both_passes_and_shows_the_forward(monkeypatch):
    console = Console(record=True, width=200, color_system=None)
    monkeypatch.setattr("gfbench.render.console", console)
    print_complexity_report([_row("global_filter", 1_870_848.0, mode="train",
                                  fwd_flops=623_616.0)], [], [], "conv.", "t")
    text = console.export_text()
    header = next(line for line in text.splitlines() if "name" in line)
    assert "fwd+bwd FLOPs" in header and "fwd FLOPs" in header.replace("fwd+bwd FLOPs", "")
    line = next(line for line in text.splitlines() if line.startswith("global_filter"))
    assert line.split()[3:5] == ["1.871M", "623.6k"]  # both passes, then the forward alone
    assert "FLOPs per image of a training step's forward and backward passes" in text


def test_bytes_per_image_and_flop_per_byte_are_the_rows_own_ratio():
    rows = [_row("global_filter", 623_616.0), _row("attention", 2_857_093_632.0)]
    rows[0].bytes, rows[1].bytes = 8192.0, 180_455_008.0
    lines = _text(complexity_table(rows, "t")).splitlines()
    header = next(line.split() for line in lines if "name" in line)
    assert header[-2:] == ["B/img", "FLOP/B"]
    cells = {line.split()[0]: line.split() for line in lines if line.startswith(("g", "a"))}
    assert cells["global_filter"][-2:] == ["8.19k", "76.1"]  # 623616 / 8192 = 76.1
    assert cells["attention"][-2:] == ["180M", "15.8"]  # 2857093632 / 180455008 = 15.83
    rows[1].bytes = None  # a row without bytes shows a dash, not a ratio
    lines = _text(complexity_table(rows, "t")).splitlines()
    assert next(line for line in lines if line.startswith("attention")).split()[-2:] == \
        ["-", "-"]


def test_no_bytes_no_byte_columns():
    header = next(line for line in _text(complexity_table(
        [_row("global_filter", 623_616.0)], "t")).splitlines() if "name" in line)
    assert "B/img" not in header and "FLOP/B" not in header


def test_the_bytes_convention_follows_the_flop_one_where_bytes_are_shown(monkeypatch):
    from gfbench.defaults import BYTES_CONVENTION

    console = Console(record=True, width=400, color_system=None)
    monkeypatch.setattr("gfbench.render.console", console)
    row = _row("global_filter", 623_616.0)
    print_complexity_report([row], [], [], "conv.", "t")
    assert BYTES_CONVENTION not in console.export_text()
    row.bytes = 8192.0
    print_complexity_report([row], [], [], "conv.", "t")
    assert f"conv. {BYTES_CONVENTION}" in console.export_text()


def test_the_crossover_table_names_pair_metric_and_verdict():
    from gfbench.measure.crossover import crossovers
    from gfbench.render import crossover_table

    rows = [ComplexityRow(subject="mixer", name=name, res_h=side, res_w=side, tokens=side**2,
                          batch_size=1, precision="fp32", mode="infer", device="cpu", dim=64,
                          flops=a * side**(2 * k))
            for name, a, k in (("global_filter", 40.0, 1.1), ("attention", 0.05, 2.0))
            for side in (7, 28, 112)]
    text = _text(crossover_table(crossovers(rows)))
    flops = next(line for line in text.splitlines() if " FLOPs " in line)
    # 40 N^1.1 = 0.05 N^2 at N = 800^(1/0.9) ≈ 1,681.3
    assert flops.split()[:4] == ["global_filter", "vs", "attention", "FLOPs"]
    assert "global_filter drops below attention at N≈1,681" in text
    assert "no bytes" in text and "latency" not in text  # nothing timed: no latency line
