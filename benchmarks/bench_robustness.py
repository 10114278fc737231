"""How fast is `gfbench robustness`? Two measurements, printed as tables (and saved as JSON):

1. Evaluation throughput (images/s) of the real pipeline (run_robustness: DataLoader workers
   decoding JPEGs, pinned memory, inference_mode, the chosen precision) on a synthetic
   ImageNet-C-shaped tree of 224x224 JPEGs, next to the model alone on tensors already in
   memory and the data loading alone, so it is visible which one limits.
2. The cost of each in-memory corruption (--generate-from) per 224x224 image, per severity.

    python benchmarks/bench_robustness.py --model gfnet-ti --device cpu --images 256
    python benchmarks/bench_robustness.py --model gfnet-s --device cuda --precision bf16 \
        --images 4096 --batch-size 256 --workers 8
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from rich.console import Console
from rich.table import Table
from timm.data import resolve_data_config
from torch.utils.data import DataLoader

from gfbench.models import create_model
from gfbench.results import collect_provenance
from gfbench.robustness.corruptions import corrupt, image_rng
from gfbench.robustness.data import PartsDataset, imagenet_wnids
from gfbench.robustness.evaluate import (
    PRECISIONS,
    ModelBundle,
    RobustnessConfig,
    plan_parts,
    run_robustness,
)
from gfbench.robustness.protocol import ALL_CORRUPTIONS

CORRUPTIONS = ("gaussian_noise", "fog")  # two parts of the synthetic tree


def photo_like(rng: np.random.Generator, size: int = 224) -> np.ndarray:
    """A 224x224 uint8 image with smooth shading, edges and texture (JPEG-sized like a photo)."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    waves = np.sin(2 * np.pi * (xx * rng.uniform(1, 4) + yy * rng.uniform(1, 4)))
    base = rng.uniform(0.2, 0.8, 3) + 0.3 * waves[..., None]
    for _ in range(6):
        cy, cx, r = rng.uniform(0, 1, 3)
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 < (0.3 * r) ** 2
        base[mask] = rng.uniform(0, 1, 3)
    noisy = base + rng.normal(0, 0.05, base.shape)
    return np.rint(np.clip(noisy, 0, 1) * 255).astype(np.uint8)


def write_tree(root: Path, images: int, classes: int = 8) -> None:
    """A synthetic ImageNet-C tree: CORRUPTIONS x severity 1 x classes, images in total."""
    rng = np.random.default_rng(0)
    wnids = imagenet_wnids()[:classes]
    per_class = max(1, images // (len(CORRUPTIONS) * classes))
    for corruption in CORRUPTIONS:
        for wnid in wnids:
            folder = root / corruption / "1" / wnid
            folder.mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(photo_like(rng)).save(folder / f"{i}.JPEG", quality=85)


def bundle_for(name: str) -> ModelBundle:
    """A randomly initialised model with its data config, as a loaded checkpoint would be."""
    model = create_model(name)
    config = resolve_data_config({}, model=model)
    _, height, width = config["input_size"]
    return ModelBundle(module=model, name=name, mean=tuple(config["mean"]),
                       std=tuple(config["std"]), input_size=(height, width),
                       interpolation=config["interpolation"], crop_pct=config["crop_pct"],
                       num_classes=model.num_classes)


def model_only(bundle: ModelBundle, device: torch.device, precision: str, batch: int,
               repeats: int) -> float:
    """Images/s of the model on a tensor already on the device (upper bound)."""
    model = bundle.module.eval().to(device)
    x = torch.randn(batch, 3, *bundle.input_size, device=device)
    dtype = PRECISIONS[precision]
    with torch.inference_mode(), torch.autocast(device.type, dtype=dtype or torch.bfloat16,
                                                enabled=dtype is not None):
        model(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            model(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
    return batch * repeats / (time.perf_counter() - start)


def loading_only(config: RobustnessConfig, bundle: ModelBundle) -> float:
    """Images/s of the DataLoader alone (decode + collate + pinning), no model."""
    dataset = PartsDataset(plan_parts(config, bundle))
    loader = DataLoader(dataset, batch_size=config.batch_size, num_workers=config.workers,
                        pin_memory=torch.cuda.is_available() and config.device != "cpu")
    start = time.perf_counter()
    count = sum(len(batch[0]) for batch in loader)
    return count / (time.perf_counter() - start)


def corruption_costs(repeats: int) -> dict[str, list[float]]:
    """Median milliseconds per 224x224 image for every corruption and severity."""
    images = [photo_like(np.random.default_rng(i)) for i in range(repeats)]
    costs = {}
    for name in ALL_CORRUPTIONS:
        per_severity = []
        for severity in range(1, 6):
            times = []
            for i, image in enumerate(images):
                rng = image_rng(0, str(i), name, severity)
                start = time.perf_counter()
                corrupt(image, name, severity, rng)
                times.append(1000 * (time.perf_counter() - start))
            per_severity.append(statistics.median(times))
        costs[name] = per_severity
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gfnet-ti")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", default="fp32", choices=list(PRECISIONS))
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--corruption-repeats", type=int, default=5)
    parser.add_argument("--skip-eval", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("results/bench_robustness.json"))
    args = parser.parse_args()
    console = Console()
    record: dict = {"args": {k: str(v) for k, v in vars(args).items()}}

    if not args.skip_eval:
        bundle = bundle_for(args.model)
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "imagenet-c"
            write_tree(root, args.images)
            config = RobustnessConfig(
                checkpoint=Path(f"{args.model}-random.pth"), data=root, corruptions=CORRUPTIONS,
                severities=(1,), batch_size=args.batch_size, workers=args.workers,
                device=args.device, precision=args.precision, out=Path(tmp) / "out")
            report = run_robustness(config, bundle=bundle)
            loader_ips = loading_only(config, bundle)
        device = torch.device(args.device)
        model_ips = model_only(bundle, device, args.precision, args.batch_size,
                               repeats=max(1, args.images // args.batch_size))
        table = Table(title=f"Evaluation throughput: {args.model} {args.precision} on "
                      f"{args.device}, batch {args.batch_size}, {args.workers} workers")
        for column in ("what", "images/s"):
            table.add_column(column, justify="right" if column == "images/s" else "left")
        table.add_row(f"gfbench robustness pipeline ({report.evaluated_images} JPEGs)",
                      f"{report.images_per_second:,.1f}")
        table.add_row("model alone (tensors on the device)", f"{model_ips:,.1f}")
        table.add_row("data loading alone (decode + collate)", f"{loader_ips:,.1f}")
        console.print(table)
        record["evaluation"] = {"pipeline_ips": report.images_per_second,
                                "model_only_ips": model_ips, "loading_only_ips": loader_ips,
                                "images": report.evaluated_images}

    costs = corruption_costs(args.corruption_repeats)
    table = Table(title="In-memory corruption cost, ms per 224x224 image (median, main process)")
    table.add_column("corruption")
    for severity in range(1, 6):
        table.add_column(f"sev {severity}", justify="right")
    table.add_column("mean", justify="right")
    for name, per_severity in costs.items():
        table.add_row(name, *(f"{v:.1f}" for v in per_severity),
                      f"{statistics.mean(per_severity):.1f}")
    console.print(table)
    record["corruption_ms"] = costs
    record["provenance"] = dataclasses.asdict(collect_provenance("robustness", device=args.device))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
