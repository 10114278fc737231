"""A small, reproducible end-to-end demonstration of `gfbench robustness` and `gfbench plot`
on a CPU, without ImageNet, ImageNet-C or a pretrained checkpoint.

What it does (seeded, deterministic data; 1068 s measured on 2026-12-06 on a 2-core CPU
shared with other jobs, load average 4-5, of which training took 658 s and the evaluation
374 s; an epoch of the training took 25-108 s under that load and 8 s on a quiet machine, so
less on an idle one):
1. draws a procedural 10-class image set (stripes at 4 orientations, rings, checkerboard, dots,
   disk, square, spokes; random colours, scales and phases) as 256x256 JPEGs in
   <work>/train/<wnid>/ and <work>/val/<wnid>/; the folder names are 10 evenly spaced
   ImageNet-1k wnids used only as labels of the layout, the images are not ImageNet classes;
2. trains timm's `test_vit` (a 0.3M-parameter ViT at 160x160) from scratch on the train split
   and saves {"model": state_dict} in <work>/;
3. runs the real CLI in a subprocess: `gfbench robustness` on the val split, every one of the
   15 ImageNet-C corruptions and of ImageNet-C-bar's 10 (Mintun et al. 2021) x 5 severities
   generated in memory, clean error, FGSM/PGD and a
   9 x 9 Fourier heat map (Yin et al. 2019), each part with its calibration (ECE, NLL, Brier),
   writing <out>/robustness-test_vit-<checkpoint>-<key>.json/.csv (key: a hash of the
   checkpoint's content and the settings) with --no-resume, so every run evaluates all parts
   again, even into a folder that holds the committed file; then `gfbench plot` on that file;
4. prints the commands it ran and the headline numbers read back from the results file.

The numbers describe a toy model on toy data: its CE/mCE are normalised by AlexNet's ImageNet-C
errors only because that is the metric's definition, they are NOT comparable to published
ImageNet-C results (different images, classes, model and in-memory corruptions).

    python benchmarks/robustness_demo.py                      # from the repository root
    python benchmarks/robustness_demo.py --work /tmp/demo --epochs 20 --val-per-class 40
"""

from __future__ import annotations

import argparse
import math
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from timm.data import resolve_data_config

from gfbench.models import create_model
from gfbench.results import read_results
from gfbench.robustness.data import imagenet_wnids
from gfbench.robustness.evaluate import model_input_size
from gfbench.robustness.metrics import summarize

IMAGE_SIDE = 256  # the generator's Resize(256) + CenterCrop(224) then has nothing to resize
CLASSES = ("stripes-0", "stripes-45", "stripes-90", "stripes-135", "rings", "checkerboard",
           "dots", "disk", "square", "spokes")
NOISE_AND_BLUR = ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur",
                  "motion_blur", "zoom_blur")


@dataclass
class DemoConfig:
    """Sizes, training schedule and where everything goes."""

    work: Path
    out: Path
    plots: Path
    model: str = "test_vit"
    train_per_class: int = 200
    val_per_class: int = 20
    epochs: int = 15
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0
    threads: int = 2


# --- the procedural data set ---


Field = Callable[[np.ndarray, np.ndarray, np.random.Generator], np.ndarray]


def _rotated(yy: np.ndarray, xx: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """Image coordinates rotated about the centre (u along the angle, v across it)."""
    theta = math.radians(degrees)
    cy = cx = IMAGE_SIDE / 2
    u = (xx - cx) * math.cos(theta) + (yy - cy) * math.sin(theta)
    v = -(xx - cx) * math.sin(theta) + (yy - cy) * math.cos(theta)
    return u, v


def _centre(rng: np.random.Generator) -> tuple[float, float]:
    """A random point near the middle, so the 224 centre crop keeps the object."""
    return tuple(IMAGE_SIDE / 2 + rng.uniform(-25, 25, 2))


def stripes(angle: float) -> Field:
    """A sinusoidal grating varying along `angle` degrees (+-8), random period and phase."""
    def field(yy: np.ndarray, xx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        u, _ = _rotated(yy, xx, angle + rng.uniform(-8, 8))
        return 0.5 + 0.5 * np.sin(2 * np.pi * u / rng.uniform(12, 28) + rng.uniform(0, 2 * np.pi))
    return field


def rings(yy: np.ndarray, xx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Concentric sinusoidal rings around a random centre."""
    cy, cx = _centre(rng)
    radius = np.hypot(yy - cy, xx - cx)
    return 0.5 + 0.5 * np.sin(2 * np.pi * radius / rng.uniform(14, 30) + rng.uniform(0, 2 * np.pi))


def checkerboard(yy: np.ndarray, xx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A slightly rotated checkerboard of random cell size and offset."""
    u, v = _rotated(yy, xx, rng.uniform(-10, 10))
    cell = rng.uniform(16, 34)
    offset = rng.uniform(0, cell, 2)
    return ((np.floor((u + offset[0]) / cell) + np.floor((v + offset[1]) / cell)) % 2).astype(
        np.float32)


def dots(yy: np.ndarray, xx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A rotated lattice of small disks."""
    u, v = _rotated(yy, xx, rng.uniform(0, 90))
    spacing = rng.uniform(26, 42)
    radius = spacing * rng.uniform(0.2, 0.32)
    du = np.mod(u + rng.uniform(0, spacing), spacing) - spacing / 2
    dv = np.mod(v + rng.uniform(0, spacing), spacing) - spacing / 2
    return (du**2 + dv**2 < radius**2).astype(np.float32)


def disk(yy: np.ndarray, xx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One large filled disk."""
    cy, cx = _centre(rng)
    return (np.hypot(yy - cy, xx - cx) < rng.uniform(45, 85)).astype(np.float32)


def square(yy: np.ndarray, xx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One large filled square at a random rotation."""
    cy, cx = _centre(rng)
    u, v = _rotated(yy - cy + IMAGE_SIDE / 2, xx - cx + IMAGE_SIDE / 2, rng.uniform(0, 90))
    half = rng.uniform(40, 75)
    return ((np.abs(u) < half) & (np.abs(v) < half)).astype(np.float32)


def spokes(yy: np.ndarray, xx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Radial sectors (a pinwheel) around a random centre."""
    cy, cx = _centre(rng)
    angle = np.arctan2(yy - cy, xx - cx)
    return 0.5 + 0.5 * np.sin(int(rng.integers(5, 11)) * angle + rng.uniform(0, 2 * np.pi))


FIELDS: tuple[Field, ...] = (stripes(0), stripes(45), stripes(90), stripes(135), rings,
                             checkerboard, dots, disk, square, spokes)


def colour_pair(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random foreground and background colours at least 0.3 apart in luma (pattern visible)."""
    luma = np.array([0.299, 0.587, 0.114])
    while True:
        fg, bg = rng.uniform(0, 1, (2, 3))
        if abs(float(luma @ (fg - bg))) >= 0.3:
            return fg, bg


def draw(label: int, rng: np.random.Generator) -> np.ndarray:
    """One IMAGE_SIDE^2 uint8 RGB image of a class: its pattern in random colours, a soft
    illumination gradient and a little sensor noise."""
    yy, xx = np.mgrid[0:IMAGE_SIDE, 0:IMAGE_SIDE].astype(np.float32)
    mix = FIELDS[label](yy, xx, rng)[..., None]
    fg, bg = colour_pair(rng)
    image = bg * (1 - mix) + fg * mix
    slope = rng.uniform(-0.15, 0.15, 2) / IMAGE_SIDE
    image = image * (1 + slope[0] * (yy - IMAGE_SIDE / 2) + slope[1] * (xx - IMAGE_SIDE / 2)
                     )[..., None]
    image = image + rng.normal(0, 0.02, image.shape)
    return np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8)


def demo_wnids() -> tuple[str, ...]:
    """10 evenly spaced ImageNet-1k wnids (sorted, so sorted-folder label i is CLASSES[i])."""
    return imagenet_wnids()[::100][: len(CLASSES)]


def write_split(root: Path, per_class: int, rng: np.random.Generator) -> None:
    """<root>/<wnid>/<class>_<i>.JPEG for every class (quality 90, like a photo)."""
    if root.exists():
        shutil.rmtree(root)
    for label, wnid in enumerate(demo_wnids()):
        folder = root / wnid
        folder.mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(draw(label, rng)).save(folder / f"{CLASSES[label]}_{i:04d}.JPEG",
                                                   quality=90)


def read_split(root: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """The decoded JPEGs of a split (uint8 Nx3xHxW) and their sorted-folder labels."""
    images, labels = [], []
    for label, wnid in enumerate(demo_wnids()):
        for path in sorted((root / wnid).glob("*.JPEG")):
            with Image.open(path) as opened:
                images.append(np.asarray(opened.convert("RGB")))
            labels.append(label)
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2), torch.tensor(labels)


# --- training ---


def random_views(batch: torch.Tensor, size: tuple[int, int], generator: torch.Generator
                 ) -> torch.Tensor:
    """Random square crops of 80-100% of the side, resized to the model's input: covers both the
    clean view (crop_pct) and the generator's 224/256 crop the evaluation uses."""
    side = batch.shape[-1]
    crop = int(side * (0.8 + 0.2 * torch.rand(1, generator=generator).item()))
    top, left = torch.randint(0, side - crop + 1, (2,), generator=generator).tolist()
    window = batch[:, :, top:top + crop, left:left + crop].float() / 255
    return F.interpolate(window, size=size, mode="bilinear", antialias=True, align_corners=False)


def train(config: DemoConfig, images: torch.Tensor, labels: torch.Tensor) -> torch.nn.Module:
    """Train the model from scratch with AdamW and a cosine schedule, printing each epoch."""
    torch.manual_seed(config.seed)
    model = create_model(config.model, num_classes=len(CLASSES))
    data = resolve_data_config({}, model=model)
    size = model_input_size(model, tuple(data["input_size"][1:]))
    mean = torch.tensor(data["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(data["std"]).view(1, 3, 1, 1)
    steps_per_epoch = math.ceil(len(labels) / config.batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.05)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch, pct_start=0.1)
    generator = torch.Generator().manual_seed(config.seed)
    started = time.perf_counter()
    model.train()
    for epoch in range(config.epochs):
        order = torch.randperm(len(labels), generator=generator)
        loss_sum, correct = 0.0, 0
        for step in range(steps_per_epoch):
            pick = order[step * config.batch_size:(step + 1) * config.batch_size]
            inputs = (random_views(images[pick], size, generator) - mean) / std
            logits = model(inputs)
            loss = F.cross_entropy(logits, labels[pick])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            loss_sum += loss.item() * len(pick)
            correct += int((logits.argmax(1) == labels[pick]).sum())
        print(f"  epoch {epoch + 1:2d}/{config.epochs}: loss {loss_sum / len(labels):.3f}, "
              f"train accuracy {100 * correct / len(labels):.1f}% "
              f"({time.perf_counter() - started:.0f} s)", flush=True)
    return model.eval()


# --- the CLI runs and the summary ---


def gfbench_command() -> list[str]:
    """The installed `gfbench` entry point beside this Python, else `python -m gfbench`."""
    found = shutil.which("gfbench", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "gfbench"]


def robustness_command(config: DemoConfig, checkpoint: Path, val: Path) -> list[str]:
    """`gfbench robustness`: 15 generated ImageNet-C corruptions and ImageNet-C-bar's 10, x 5
    severities each, clean val, FGSM and PGD, and a 9 x 9 Fourier heat map (calibration comes
    with every part)."""
    return [*gfbench_command(), "robustness", "--ckpt", str(checkpoint), "--model", config.model,
            "--generate-from", str(val), "--clean", str(val), "--class-map", "folders",
            "--corruptions", "default,c-bar", "--severities", "1-5", "--attack", "fgsm",
            "--attack", "pgd", "--fourier-map", "--fourier-grid", "9",
            "--limit", str(config.val_per_class), "--batch-size", "100",
            "--workers", "2", "--device", "cpu", "--seed", str(config.seed),
            "--out", str(config.out), "--no-resume"]  # a demo evaluates, even into results/


def results_file(config: DemoConfig, checkpoint: Path) -> Path:
    """The results file `gfbench robustness` wrote for this checkpoint (the newest, should
    several settings have been run into the same folder)."""
    found = config.out.glob(f"robustness-{config.model}-{checkpoint.stem}-*.json")
    return max(found, key=lambda p: p.stat().st_mtime)


def plot_command(config: DemoConfig, json_path: Path) -> list[str]:
    """`gfbench plot` of the results file, PNG only."""
    return [*gfbench_command(), "plot", str(json_path), "--out",
            str(config.plots), "--format", "png"]


def run(command: list[str]) -> None:
    """Print a command, run it with its output streaming through; stop on failure."""
    print(f"\n$ {shlex.join(command)}", flush=True)
    subprocess.run(command, check=True)


def _pct(value: float | None) -> str:
    """A percentage or 'n/a'."""
    return "n/a" if value is None else f"{value:.1f}%"


def print_summary(json_path: Path) -> None:
    """Headline numbers of the results file, recomputed from its integer counts."""
    _, frame = read_results(json_path)
    summary = next(s for s in summarize(frame) if s.source == "generated")
    clean = summary.clean_error_top1_pct
    print("\nSummary (toy ViT on procedural data, corruptions generated in memory: NOT comparable "
          "to ImageNet-C numbers)")
    print(f"  clean top-1 accuracy     {_pct(None if clean is None else 100 - clean)}")
    print(f"  mean corruption error    {_pct(summary.mean_error_pct)} (15 corruptions x 5)")
    print(f"  mCE (AlexNet-normalised) {_pct(summary.mce_pct)}")
    print(f"  relative mCE             {_pct(summary.relative_mce_pct)}")
    bar = next((s for s in summarize(frame) if s.source == "generated-bar"), None)
    if bar is not None:
        print(f"  C-bar error              {_pct(bar.cbar_error_pct)} (10 C-bar corruptions x 5)")
    for attack in summary.attacks.itertuples():
        print(f"  {attack.attack} accuracy (eps {attack.eps * 255:.0f}/255)  "
              f"{_pct(attack.accuracy_top1_pct)}")
    rows = frame[frame["source"] == "generated"]
    print("  top-1 error by severity 1..5:")
    for corruption in NOISE_AND_BLUR:
        part = rows[rows["corruption"] == corruption].sort_values("severity")
        errors = 100 * (1 - part["correct_top1"] / part["images"])
        print(f"    {corruption:<16} " + " ".join(f"{e:5.1f}" for e in errors))


def parse_args() -> DemoConfig:
    """The command-line options as a DemoConfig."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/gfbench-robustness-demo"),
                        help="folder for the images and the checkpoint (not results)")
    parser.add_argument("--out", type=Path, default=Path("runs") / "robustness-demo",
                        help="folder for the results file; default runs/robustness-demo (the "
                        "committed one is made with --out results)")
    parser.add_argument("--plots", type=Path, default=None,
                        help="figures of this run alone; default <work>/plots (the committed "
                        "figures come from `gfbench plot results/ --out results/plots`)")
    parser.add_argument("--train-per-class", type=int, default=200)
    parser.add_argument("--val-per-class", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    return DemoConfig(work=args.work, out=args.out,
                      plots=args.plots or args.work / "plots",
                      train_per_class=args.train_per_class,
                      val_per_class=args.val_per_class, epochs=args.epochs, seed=args.seed)


def main() -> None:
    """Data, training, `gfbench robustness`, `gfbench plot`, summary."""
    config = parse_args()
    torch.set_num_threads(config.threads)
    started = time.perf_counter()
    rng = np.random.default_rng(config.seed)
    train_dir, val_dir = config.work / "train", config.work / "val"
    write_split(train_dir, config.train_per_class, rng)
    write_split(val_dir, config.val_per_class, rng)
    print(f"data: {len(CLASSES)} classes ({', '.join(CLASSES)}) as folders "
          f"{', '.join(demo_wnids())}; {config.train_per_class} train and "
          f"{config.val_per_class} val images per class in {config.work} "
          f"({time.perf_counter() - started:.0f} s)", flush=True)

    images, labels = read_split(train_dir)
    print(f"training {config.model} from scratch on {len(labels)} images, CPU, "
          f"{config.threads} threads", flush=True)
    model = train(config, images, labels)
    checkpoint = config.work / f"{config.model}-procedural10.pth"
    torch.save({"model": model.state_dict()}, checkpoint)

    commands = [robustness_command(config, checkpoint, val_dir)]
    run(commands[0])
    json_path = results_file(config, checkpoint)
    commands.append(plot_command(config, json_path))
    run(commands[1])
    print_summary(json_path)
    print(f"\nCommands run ({time.perf_counter() - started:.0f} s in all):")
    for command in commands:
        print(f"  {shlex.join(command)}")


if __name__ == "__main__":
    main()
