"""Every terminal table at 80 columns: long model and corruption names fold onto further lines
of their cell, nothing is cut with an ellipsis, and every number stays whole on one line."""

from __future__ import annotations

import dataclasses
import io

import pandas as pd
from rich.console import Console
from terminal_text import assert_whole, at_80, reads_down

from gfbench import render
from gfbench.measure.breakdown import summarise
from gfbench.measure.scaling import scaling_exponents
from gfbench.results import BreakdownRow, ComplexityRow, Provenance, ResultsWriter, RobustnessRow
from gfbench.robustness.metrics import summarize
from gfbench.robustness.protocol import ALL_CORRUPTIONS, REFERENCE_MCE

DEIT = "deit_tiny_patch16_224.fb_in1k"
VIT = "vit_base_patch14_reg4_dinov2.lvd142m"
LONGEST = "vit_large_patch14_clip_quickgelu_336.openai_ft_in12k_in1k"


def test_reads_down_finds_folded_words_and_misses_cut_ones():
    folded = "│ deit_tiny_patch │ 1.2M │\n│ 16_224.fb_in1k  │      │"
    assert reads_down(folded, DEIT) and reads_down(folded, "1.2M")
    assert not reads_down("│ deit_tiny_patch1… │ 1.2M │", DEIT)
    assert not reads_down("│ deit_tiny_patch │\n│ ── │\n│ 16_224.fb_in1k │", DEIT)  # moved


def test_gfbench_list_tables():
    from gfbench.layers import MIXERS
    from gfbench.models import model_catalogue

    catalogue = model_catalogue()
    catalogue.append({**catalogue[0], "name": "dinov2-b", "alias": "", "timm_name": VIT})
    text = at_80(render.models_table(catalogue))
    assert_whole(text, [VIT, *(r["timm_name"] for r in catalogue)], ["86.568M", "15.986M"])
    mixers = [{"name": s.name, "flops_formula": s.flops_formula,
               "params_formula": s.params_formula, "paper": s.paper} for s in MIXERS.values()]
    text = at_80(render.mixers_table(mixers))
    assert_whole(text, [w for r in mixers for v in r.values() for w in v.split()])


def test_gfbench_list_timm_selection():
    rows = [{"name": name, "native_res": (518, 518), "params": 86_582_208.0}
            for name in (DEIT, VIT, LONGEST)]
    assert_whole(at_80(render.selection_table(rows, "3 models selected by @models.txt")),
                 [DEIT, VIT, LONGEST], ["518x518", "86.582M"])


def complexity_rows() -> list[ComplexityRow]:
    rows = []
    for name in (DEIT, VIT, "gfnet-xs"):
        for side, batch in ((224, 1), (518, 64), (1024, 256)):
            oom = side == 1024 and name != "gfnet-xs"
            p50 = 0.01 * side ** 2
            rows.append(ComplexityRow(
                subject="model", name=name, res_h=side, res_w=side, tokens=(side // 14) ** 2,
                batch_size=batch, precision="fp32", mode="infer", device="cuda",
                flops=4.6e9 * (side / 224) ** 2, params=86_582_208 + side,
                status="oom" if oom else "ok", error="out of memory" if oom else "",
                latency_ms_p10=None if oom else 0.9 * p50,
                latency_ms_p50=None if oom else p50, latency_ms_p90=None if oom else 1.1 * p50,
                throughput_ips=None if oom else 1000 * batch / p50,
                peak_mem_bytes=None if oom else 3.2e9 * side / 224,
                bytes=2.36e8 * (side / 224) ** 2))
    return rows


def test_complexity_and_exponent_tables():
    rows = complexity_rows()
    text = at_80(render.complexity_table(rows, f"models on cuda: {DEIT}, {VIT}, gfnet-xs"))
    assert_whole(text, [DEIT + "*", VIT + "*", "gfnet-xs"],
                 ["1024", "256", "5329", "96.13G", "86.6M", "OOM", "10486", "9437-11534", "24.4",
                  "13951", "2415-2952", "FLOP/B", "19.5"])
    counted = at_80(render.complexity_table(
        [dataclasses.replace(r, latency_ms_p50=None, peak_mem_bytes=None) for r in rows],
        "counted"))  # without timing, bytes per image too
    assert_whole(counted, [DEIT, VIT, "gfnet-xs"], ["B/img", "FLOP/B", "236M", "4.93G", "19.5"])
    for row in rows:
        row.batch_size = 1  # one setting over three sizes: one exponent per metric
    exponents = scaling_exponents(rows)
    assert {e.name for e in exponents} == {DEIT, VIT, "gfnet-xs"}
    text = at_80(render.exponents_table(exponents))
    assert_whole(text, [DEIT, VIT, "gfnet-xs", "latency", "(2 sizes: needs 3)", "both fit)"],
                 ["1.00", "0.50", "0.88–1.12,", "0.86–1.15,"])


def breakdown_rows(name: str) -> list[BreakdownRow]:
    roles = (("patch_embed", "embedding", 0.02), ("blocks.0.attn", "token_mixer", 0.45),
             ("blocks.0.mlp", "channel_mlp", 0.5), ("blocks.0.norm1", "norm", 0.01),
             ("head", "head", 0.02))
    return [BreakdownRow(name=name, res_h=518, res_w=518, tokens=1369, engine="torch", depth=2,
                         module=module, own=False, group=group, flops=int(share * 1e11),
                         params=int(share * 8.6e7), flops_share=share, params_share=share,
                         bytes=int(share * 2.4e8),
                         model_flops=int(1e11), model_params=int(8.6e7),
                         uncounted_ops="aten.scaled_dot_product_attention:12;aten.gelu:12")
            for module, group, share in roles]


def test_breakdown_tables():
    rows = breakdown_rows(VIT)
    assert_whole(at_80(render.breakdown_table(rows)),
                 ["blocks.0.attn", "channel MLP", "aten.scaled_dot_product_attention:12"],
                 ["45", "50.0", "38.7M", "aten.gelu:12", "bytes", "108M"])
    summaries = summarise(rows + breakdown_rows(DEIT) + breakdown_rows(LONGEST))
    assert_whole(at_80(render.breakdown_summary_table(summaries)),
                 [VIT, DEIT, LONGEST], ["518", "1369", "100", "45.0", "50.0"])


def robustness_summary(model: str):
    rows = [RobustnessRow(model=model, checkpoint=f"checkpoints/{model}/best.pth",
                          source="clean", corruption="clean", severity=0, images=50000,
                          correct_top1=40000, correct_top5=47000)]
    rows += [RobustnessRow(model=model, checkpoint=f"checkpoints/{model}/best.pth",
                           source="imagenet-c", corruption=corruption, severity=severity,
                           images=50000, correct_top1=30000 - 1000 * severity,
                           correct_top5=40000)
             for corruption in ALL_CORRUPTIONS for severity in range(1, 6)]
    rows += [RobustnessRow(model=model, checkpoint=f"checkpoints/{model}/best.pth",
                           source="attack", corruption=attack, severity=0, images=50000,
                           correct_top1=10000, correct_top5=20000, eps=1 / 255)
             for attack in ("fgsm", "pgd")]
    frame = pd.DataFrame([r.__dict__ for r in rows])
    return summarize(frame)[0]


def test_robustness_tables():
    summary = robustness_summary(VIT)
    text = at_80(render.robustness_corruption_table(summary))
    assert_whole(text, [*ALL_CORRUPTIONS, "digital", "extra"],
                 ["elastic_transform", "gaussian_noise", "46.0", "20.0", "122.9", "199.9"])
    text = at_80(render.robustness_summary_table(summary, REFERENCE_MCE))
    assert_whole(text, ["clean top-1 error", "relative mCE", "PGD top-1 accuracy"],
                 ["20.0", "84.6", "59.5"])


def test_comparison_tables(tmp_path):
    def provenance(device: str, torch: str) -> Provenance:
        return Provenance(kind="complexity", command=f"gfbench complexity --models {VIT}",
                          date="2026-01-01T00:00:00+00:00", gfbench_version="0.1.0",
                          python_version="3.11.2", torch_version=torch,
                          timm_version="1.0.31", fvcore_version="0.1.5", platform="Linux",
                          cpu_model="Test CPU", cpu_threads=2, torch_threads=2,
                          device_name=device, cuda_version="", driver_version="",
                          tf32_matmul=False, cudnn_benchmark=False)

    for side, device, torch, scale in (("a", "NVIDIA H100 80GB HBM3", "2.14.1", 1.0),
                                       ("b", "NVIDIA H200 141GB HBM3e", "2.15.0", 0.7)):
        writer = ResultsWriter(tmp_path / side / "run", provenance(device, torch))
        for row in complexity_rows():
            for field in ("latency_ms_p10", "latency_ms_p50", "latency_ms_p90"):
                if getattr(row, field) is not None:
                    setattr(row, field, getattr(row, field) * scale)
            writer.add(row)
        writer.flush()
    from gfbench.compare import compare_runs

    comparison = compare_runs(tmp_path / "a", tmp_path / "b")
    text = at_80(render.comparison_table(comparison))
    assert_whole(text, [DEIT, VIT, "gfnet-xs"], ["1024", "0.700x", "OOM", "10486", "7340"])
    text = at_80(render.provenance_differences_table(comparison))
    assert_whole(text, ["NVIDIA H200 141GB HBM3e"], ["2.15.0"])


def test_progress_log_lines_fold_long_names():
    from gfbench.measure.setting import Setting

    target = Console(file=io.StringIO(), width=80, color_system=None)
    with render.ComplexityProgress(1, target=target) as progress:
        setting = Setting("model", VIT, 518, 518, 64, "fp32", "infer", "cpu")
        progress.start(setting)
        progress.finish(setting.row(), skipped=False)
    assert_whole(target.file.getvalue(), [VIT])


def test_plot_report_lines_keep_long_paths_whole(monkeypatch, tmp_path):
    from types import SimpleNamespace

    out = tmp_path / "plots"
    figure = out / f"complexity-models-run0001-{VIT}-b64-fp32-infer-tokens.png"
    for name in ("console", "err_console"):
        monkeypatch.setattr(render, name, Console(record=True, width=80, color_system=None,
                                                  file=io.StringIO()))
    render.print_plot_report(SimpleNamespace(
        problems=[f"{tmp_path}/{DEIT}.json: row 3: flops is 'lots'"], notes=[], figures=[figure],
        reports=[out / "report.html"], out=out, written=[figure], removed=[]))
    text = render.console.export_text() + render.err_console.export_text()
    assert "…" not in text
    joined = text.replace("\n", "")  # soft-wrapped: the terminal wraps, nothing is cut
    assert str(figure) in joined and f"{DEIT}.json: row 3" in joined


def test_roofline_and_ceilings_tables():
    from gfbench.measure.roofline import fill_roofline

    spread = {"p10": 4e14, "p50": 5e14, "p90": 5.1e14}
    ceilings = {"source": "measured", "device": "cuda:0", "device_name": "NVIDIA H100 80GB HBM3",
                "threads": None, "matmul_flops_s": {"fp32": spread, "tf32": spread},
                "bandwidth_bytes_s": {"copy": {"p10": 2e12, "p50": 2.5e12, "p90": 2.6e12},
                                      "triad": {"p10": 2e12, "p50": 3e12, "p90": 3.1e12}},
                "bandwidth_used": "triad", "skipped": {}, "sizes": {"gemm_n_fp32": 16384}}
    rows = [r for r in complexity_rows() if r.status == "ok"]
    for row in rows:
        row.bytes = row.flops / 400  # 400 FLOP/B: above the ridge, 5e14 / 3e12 = 167
        fill_roofline(row, ceilings)
    first = rows[0]  # by hand: the bound is the larger of the two times of one call
    floor_ms = max(first.flops * first.batch_size / 5e14,
                   first.bytes * first.batch_size / 3e12) * 1000
    title = render.roofline_title(ceilings, rows, tf32=False)
    text = at_80(render.roofline_table(rows, title))
    assert_whole(text, [DEIT, VIT, "gfnet-xs", "compute", "TF32 off"],
                 ["400", "500T,", "3TB/s", f"{floor_ms:.3g}",
                  f"{first.latency_ms_p50 / floor_ms:.0f}", f"{100 * first.compute_share:.1f}"])
    table = at_80(render.ceilings_table(ceilings, {"matmul_flops_s": {"fp32": 3.35e13},
                                                   "bandwidth_bytes_s": 3.35e12}))
    assert_whole(table, ["fp32 GEMM n=16384", "triad (roofline)", "spec"],
                 ["400T", "500T", "510T", "3T", "3.35T", "33.5T"])
    assert render.roofline_table([r for r in complexity_rows() if r.status != "ok"], "") is None
