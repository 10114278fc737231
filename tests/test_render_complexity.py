"""The complexity table in the terminal: readable FLOPs, forward-only FLOPs in train mode."""

from __future__ import annotations

from rich.console import Console

from gfbench.render import complexity_table, print_complexity_report
from gfbench.results import ComplexityRow


def _row(name: str, flops: float, tokens: int = 196, mode: str = "infer") -> ComplexityRow:
    return ComplexityRow(subject="mixer", name=name, res_h=14, res_w=14, tokens=tokens,
                         batch_size=1, precision="fp32", mode=mode, device="meta", flops=flops,
                         params=1000)


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


def test_train_mode_labels_the_flops_as_forward_only(monkeypatch):
    console = Console(record=True, width=200, color_system=None)
    monkeypatch.setattr("gfbench.render.console", console)
    print_complexity_report([_row("global_filter", 623_616.0, mode="train")], [], [], "conv.",
                            "t")
    text = console.export_text()
    assert "fwd FLOPs" in text
    assert "FLOPs per image of the forward pass only (train mode times forward + backward)" \
        in text


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
    assert "not timed" in text and "no bytes" in text
