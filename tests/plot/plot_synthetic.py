"""Small synthetic results files, written with the real ResultsWriter, for the plot tests.

Not measurements: every number follows a known power of the token count, so the tests can
compute what each figure must show.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from gfbench.results import ComplexityRow, Provenance, ResultsWriter, RobustnessRow

GPU = "NVIDIA H100 80GB HBM3"
RESOLUTIONS = (224, 320, 448, 576, 640)
DEIT_OOM_FROM = 576  # deit-s runs out of memory at this resolution and above
CORRUPTIONS = ("gaussian_noise", "defocus_blur", "snow", "contrast")


def provenance(kind: str, device_name: str = GPU, date: str = "2026-01-01T00:00:00+00:00",
               command: str = "gfbench complexity --models gfnet-xs,deit-s") -> Provenance:
    """A fixed provenance (no clock, no torch import) for synthetic files."""
    return Provenance(kind=kind, command=command, date=date, gfbench_version="0.1.0",
                      python_version="3.11.2", torch_version="2.14.1", timm_version="1.0.31",
                      fvcore_version="0.1.5", platform="Linux", cpu_model="Test CPU 9000",
                      cpu_threads=2, torch_threads=2, device_name=device_name,
                      cuda_version="12.8" if device_name == GPU else "", driver_version="",
                      tf32_matmul=False, cudnn_benchmark=False)


def model_row(name: str, res: int, *, device: str = "cuda", batch: int = 8,
              precision: str = "fp16", oom: bool = False, scale: float = 1.0) -> ComplexityRow:
    """One model row whose numbers follow a known power of the token count."""
    tokens = (res // 16) ** 2
    power = 1.0 if name.startswith("gfnet") else 1.5
    row = ComplexityRow(subject="model", name=name, res_h=res, res_w=res, tokens=tokens,
                        batch_size=batch, precision=precision, mode="inference", device=device,
                        flops=2.0e9 * (tokens / 196) ** power, params=16_000_000 + 10 * tokens,
                        status="oom" if oom else "ok")
    if not oom:
        median = scale * 3.0 * (tokens / 196) ** power + 0.01 * res
        row.latency_ms_p10, row.latency_ms_p50, row.latency_ms_p90 = (
            0.97 * median, median, 1.05 * median)
        row.throughput_ips = batch * 1000.0 / median
        row.peak_mem_bytes = 1e8 * (tokens / 196) ** (power + 0.5)
    return row


def mixer_row(name: str, side: int, width: int | None = None, *, batch: int = 8,
              dim: int = 64) -> ComplexityRow:
    """One bare-mixer row on a side x width grid; FLOPs ~ N log N (global filter) or N²."""
    width = width or side
    tokens = side * width
    growth = tokens * tokens if name.startswith("attention") else tokens * np.log2(tokens)
    median = 0.5 + 1e-6 * growth
    return ComplexityRow(subject="mixer", name=name, res_h=side, res_w=width, tokens=tokens,
                         batch_size=batch, precision="fp32", mode="infer", device="cpu", dim=dim,
                         flops=float(dim * growth), params=dim * tokens,
                         latency_ms_p10=0.9 * median, latency_ms_p50=median,
                         latency_ms_p90=1.1 * median, throughput_ips=batch * 1000.0 / median,
                         peak_mem_bytes=4.0 * dim * tokens * (8 if width != side else 1))


def write_complexity(stem: Path, rows: list[ComplexityRow], **prov) -> Path:
    """A complexity results file pair; returns the JSON path."""
    writer = ResultsWriter(stem, provenance("complexity", **prov))
    for row in rows:
        writer.add(row)
    writer.flush()  # an empty run still leaves its (empty) files
    return writer.json_path


def gpu_rows() -> list[ComplexityRow]:
    """gfnet-xs and deit-s on a GPU; deit-s OOM from DEIT_OOM_FROM on."""
    return [model_row(name, res, oom=name == "deit-s" and res >= DEIT_OOM_FROM)
            for name in ("gfnet-xs", "deit-s") for res in RESOLUTIONS]


def cpu_rows() -> list[ComplexityRow]:
    """The same models on a CPU at batch 1, fp32: another setting."""
    return [model_row(name, res, device="cpu", batch=1, precision="fp32", scale=20.0)
            for name in ("gfnet-xs", "deit-s") for res in RESOLUTIONS[:3]]


def robustness_rows(model: str, base_error: float, precision: str = "fp32"
                    ) -> list[RobustnessRow]:
    """Clean, four corruptions x five severities and FGSM, from integer counts."""
    images = 200
    checkpoint = f"ckpt/{model}.pth"
    rows = [RobustnessRow(model=model, checkpoint=checkpoint, source="clean",
                          corruption="clean", severity=0, images=images,
                          correct_top1=round(images * (1 - base_error)),
                          correct_top5=images, precision=precision)]
    for i, corruption in enumerate(CORRUPTIONS):
        for severity in range(1, 6):
            error = base_error + 0.03 * severity * (i + 1)
            rows.append(RobustnessRow(
                model=model, checkpoint=checkpoint, source="imagenet-c", corruption=corruption,
                severity=severity, images=images, correct_top1=round(images * (1 - error)),
                correct_top5=images - severity, precision=precision))
    rows.append(RobustnessRow(model=model, checkpoint=checkpoint, source="attack",
                              corruption="fgsm", severity=0, images=images,
                              correct_top1=round(images * (0.5 - base_error)), correct_top5=images,
                              eps=1 / 255, precision=precision))
    return rows


def write_robustness(stem: Path, rows: list[RobustnessRow]) -> Path:
    """A robustness results file pair; returns the JSON path."""
    writer = ResultsWriter(stem, provenance("robustness", command="gfbench robustness"))
    for row in rows:
        writer.add(row)
    return writer.json_path


def write_bad_files(folder: Path) -> dict[str, Path]:
    """Malformed, empty, foreign and badly typed files, by what is wrong with them."""
    folder.mkdir(parents=True, exist_ok=True)
    bad = {"broken": folder / "broken.json", "foreign": folder / "foreign.json"}
    bad["broken"].write_text("{ not json")
    bad["foreign"].write_text(json.dumps({"hello": "world"}))
    bad["empty"] = write_complexity(folder / "empty", [])
    typed = write_complexity(folder / "typed", [model_row("gfnet-xs", 224)])
    payload = json.loads(typed.read_text())
    payload["rows"][0]["flops"] = "lots"
    typed.write_text(json.dumps(payload))
    bad["typed"] = typed
    return bad


def with_calibration(rows: list[RobustnessRow], seed: int = 0) -> list[RobustnessRow]:
    """The rows with calibration from simulated per-image softmax values that agree with each
    row's counts: confident when right, overconfident when wrong, more so at higher severity."""
    import dataclasses

    from gfbench.robustness.calibration import CalibrationSums

    rng = np.random.default_rng(seed)
    out = []
    for row in rows:
        right = np.arange(row.images) < row.correct_top1
        confidence = np.where(right, rng.uniform(0.55, 1.0, row.images),
                              rng.uniform(0.2 + 0.08 * row.severity, 0.9, row.images))
        label_p = np.where(right, confidence, (1 - confidence) * rng.uniform(0.05, 0.6,
                                                                              row.images))
        values = np.stack([np.ones(row.images), right.astype(float), confidence,
                           -np.log(label_p), (1 - label_p) ** 2 + np.where(right, 0.0,
                                                                           confidence ** 2)], 1)
        sums = CalibrationSums.from_images(values)
        out.append(dataclasses.replace(row, ece=sums.ece, nll=sums.nll, brier=sums.brier,
                                       calibration_bins=sums.bins_text()))
    return out
