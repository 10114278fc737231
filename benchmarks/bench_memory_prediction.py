"""How close is the predicted peak memory (gfbench.measure.predict) to the measured one?

    python benchmarks/bench_memory_prediction.py [--out benchmarks/memory_prediction] [--quick]

Each setting is measured as ``gfbench complexity --metrics memory --device cpu`` measures it
(the library's ``cpu_memory_setting``: a fresh child whose glibc hands freed blocks back,
VmHWM - VmRSS around the second step) and predicted with the CPU allocator model, on the meta
device, for the same setting. On a machine with CUDA the same settings are also measured with
``torch.cuda.max_memory_allocated`` (gfbench's CUDA protocol) against the CUDA prediction;
without one that part is skipped and says so. Settings: GFNet-XS, DeiT-S and ResMLP-12 at
two sizes in inference and training (with and without SGD), and the four bare mixers (plus
explicit attention) at two token grids, width 384. Goal: within 10% wherever the measured peak
is above 64 MiB. Writes results.csv and results.md to ``--out``. About 10 minutes on a
loaded 2-core machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import pandas as pd
import torch

from gfbench.measure.memory import MMAP_THRESHOLD
from gfbench.measure.predict import predict_setting
from gfbench.measure.setting import Setting, SweepOptions
from gfbench.measure.worker import call_in_child

MIB = 2**20
GOAL, ABOVE = 0.10, 64 * MIB
MODELS = ("gfnet-xs", "deit-s", "resmlp-12")
MIXERS = ("global_filter", "attention", "attention_explicit", "spatial_mlp", "dwconv")


def settings(quick: bool) -> list[tuple[Setting, str]]:
    """(setting, optimizer) pairs: the trio and the mixers, inference and training."""
    out = []
    for name in MODELS[:1] if quick else MODELS:
        for res in (224,) if quick else (224, 320):
            out.append((Setting("model", name, res, res, 8, "fp32", "infer", "cpu"), ""))
            out.append((Setting("model", name, res, res, 2, "fp32", "train", "cpu"), ""))
        out.append((Setting("model", name, 224, 224, 2, "fp32", "train", "cpu",
                            optimizer="sgd"), "sgd"))
    for name in MIXERS[:1] if quick else MIXERS:
        for side in (28, 56):
            out.append((Setting("mixer", name, side, side, 4, "fp32", "infer", "cpu", 384), ""))
        out.append((Setting("mixer", name, 28, 28, 4, "fp32", "train", "cpu", 384), ""))
    return out


def measured_cpu(setting: Setting, optimizer: str) -> float | None:
    """The CPU peak as a complexity sweep measures it: cpu_memory_setting in a child whose
    allocator hands freed blocks back (the sweep's own call)."""
    options = SweepOptions(metrics=frozenset({"memory"}), optimizer=optimizer)
    result = call_in_child("gfbench.measure.setting:cpu_memory_setting",
                           {"setting": setting, "options": options}, threads=1,
                           mmap_threshold=MMAP_THRESHOLD)
    if not result.ok or result.value.peak_bytes is None:
        return None
    return float(result.value.peak_bytes)


def measured_cuda(setting: Setting, optimizer: str) -> float | None:
    """The CUDA peak as the sweep measures it (max_memory_allocated above memory_allocated)."""
    from gfbench.measure.memory import cuda_peak_bytes
    from gfbench.measure.setting import build_step

    kwargs = {**dataclasses.asdict(dataclasses.replace(setting, device="cuda:0")),
              "optimizer": optimizer}
    step = build_step(**kwargs)
    try:
        return float(cuda_peak_bytes(step, "cuda:0"))
    finally:
        del step
        torch.cuda.empty_cache()


def row(setting: Setting, optimizer: str, device: str) -> dict:
    """One setting: measured, predicted, their ratio and how long the prediction took."""
    start = time.perf_counter()
    measured = measured_cuda(setting, optimizer) if device == "cuda" else \
        measured_cpu(setting, optimizer)
    measure_s = time.perf_counter() - start
    pred = predict_setting(setting, device_kind=device)
    ratio = None if not measured else pred.peak_above_resident / measured
    return {"device": device, "subject": setting.subject, "name": setting.name,
            "size": f"{setting.res_h}x{setting.res_w}", "batch": setting.batch_size,
            "mode": setting.mode + (f"+{optimizer}" if optimizer else ""),
            "measured_mib": None if measured is None else measured / MIB,
            "predicted_mib": pred.peak_above_resident / MIB,
            "ratio": ratio, "resident_mib": pred.resident / MIB,
            "predict_s": pred.trace_s, "measure_s": measure_s,
            "judged": measured is not None and measured > ABOVE,
            "within_goal": ratio is not None and abs(ratio - 1) <= GOAL}


def markdown(frame: pd.DataFrame, notes: list[str]) -> str:
    """The results table and its summary."""
    judged = frame[frame.judged]
    lines = ["# Predicted vs measured peak memory (above the resident model)", "",
             f"Goal: |predicted / measured - 1| <= {GOAL:.0%} where measured > 64 MiB.", "",
             f"Judged settings: {len(judged)}; within the goal: {int(judged.within_goal.sum())}.",
             *notes, "", "| " + " | ".join(frame.columns) + " |",
             "|" + "---|" * len(frame.columns)]
    for _, r in frame.iterrows():
        lines.append("| " + " | ".join(f"{v:.3g}" if isinstance(v, float) else str(v)
                                       for v in r.values) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    """Measure and predict every setting; write the CSV and the Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/memory_prediction"))
    parser.add_argument("--quick", action="store_true", help="one model, one mixer")
    args = parser.parse_args()
    rows, notes = [], []
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    if "cuda" not in devices:
        notes.append("CUDA part skipped: no CUDA device on this machine.")
        print(notes[-1])
    for device in devices:
        for setting, optimizer in settings(args.quick):
            rows.append(row(setting, optimizer, device))
            print({k: rows[-1][k] for k in ("device", "name", "size", "mode", "measured_mib",
                                             "predicted_mib", "ratio")}, flush=True)
    frame = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out / "results.csv", index=False)
    (args.out / "results.md").write_text(markdown(frame, notes))
    print(f"wrote {args.out / 'results.csv'} and results.md")


if __name__ == "__main__":
    main()
