"""Helpers shared by the robustness tests: the oracle model (predictions written into the
pixels, so every error is known by hand) and procedural gratings for a tiny trained CNN."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from gfbench.robustness.data import imagenet_wnids
from gfbench.robustness.evaluate import ModelBundle
from gfbench.robustness.protocol import ALL_CORRUPTIONS

# --- the oracle ---
# Red encodes the class slot (which of ORACLE_WNIDS), green the outcome:
# 0 = top-1 correct, 1 = wrong at top-1 but in the top 5, 2 = not in the top 5.
ORACLE_WNIDS = (imagenet_wnids()[5], imagenet_wnids()[900])  # labels 5 and 900, not 0 and 1
ORACLE_SIZE = 16


def oracle_colour(slot: int, outcome: int) -> tuple[int, int, int]:
    """The flat colour that makes the oracle see (class slot, outcome)."""
    return 40 * slot + 20, 80 * outcome + 40, 128


def write_image(path: Path, colour: tuple[int, int, int] | np.ndarray, size: int = ORACLE_SIZE
                ) -> None:
    """A JPEG of one flat colour (or of a given HxWx3 uint8 array)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    array = colour if isinstance(colour, np.ndarray) else np.full((size, size, 3), colour,
                                                                     np.uint8)
    Image.fromarray(array).save(path, format="JPEG", quality=95)


class OracleModel(nn.Module):
    """1000-way logits whose ranking is dictated by the image's colour (see oracle_colour)."""

    def __init__(self, labels: tuple[int, ...]):
        super().__init__()
        self.register_buffer("labels", torch.tensor(labels))
        self.num_classes = 1000

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        red = x[:, 0].mean(dim=(1, 2)) * 255
        green = x[:, 1].mean(dim=(1, 2)) * 255
        slot = ((red - 20) / 40).round().long().clamp(0, len(self.labels) - 1)
        outcome = ((green - 40) / 80).round().long().clamp(0, 2)
        label = self.labels[slot]
        logits = (-torch.arange(1000, dtype=torch.float32) / 1000).repeat(len(x), 1)
        rows = torch.arange(len(x))
        in_top5 = outcome == 1  # two decoys above the label: it ranks third
        logits[rows[in_top5], torch.where(label == 0, 1, 0)[in_top5]] = 10.0
        logits[rows[in_top5], torch.where(label == 2, 3, 2)[in_top5]] = 9.0
        logits[rows, label] = torch.where(outcome == 0, 10.0,
                                          torch.where(outcome == 1, 5.0, -10.0))
        return logits


def oracle_bundle() -> ModelBundle:
    """The oracle as the evaluator sees a loaded checkpoint (mean 0, std 1: raw pixels)."""
    canonical = {w: i for i, w in enumerate(imagenet_wnids())}
    model = OracleModel(tuple(canonical[w] for w in ORACLE_WNIDS))
    return ModelBundle(module=model, name="oracle", mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
                       input_size=(ORACLE_SIZE, ORACLE_SIZE), interpolation="bilinear",
                       crop_pct=1.0, num_classes=1000)


def wrong_count(corruption: str, severity: int) -> int:
    """Top-1 errors (0..4 of the 4 images) planted in part (corruption, severity)."""
    return (ALL_CORRUPTIONS.index(corruption) + severity) % 5


def outcome_of(image_index: int, wrong: int) -> int:
    """Image j of a part is wrong when j < wrong; even j stay in the top 5, odd j do not."""
    if image_index >= wrong:
        return 0
    return 1 if image_index % 2 == 0 else 2


def write_oracle_part(folder: Path, wrong: int) -> None:
    """Four images (two per oracle class) of which `wrong` are misclassified by the oracle."""
    for j in range(4):
        slot, copy = divmod(j, 2)
        write_image(folder / ORACLE_WNIDS[slot] / f"img{copy}.JPEG",
                    oracle_colour(slot, outcome_of(j, wrong)))


def write_oracle_tree(root: Path, corruptions, severities=(1, 2, 3, 4, 5)) -> Path:
    """An ImageNet-C tree of oracle images with wrong_count errors per part."""
    for corruption in corruptions:
        for severity in severities:
            write_oracle_part(root / corruption / str(severity), wrong_count(corruption, severity))
    return root


def write_oracle_clean(root: Path) -> Path:
    """A clean val folder on which the oracle has top-1 error 1/4 (one image out of the top 5)."""
    write_oracle_part(root, wrong=0)
    write_image(root / ORACLE_WNIDS[1] / "img1.JPEG", oracle_colour(1, 2))
    return root


# --- gratings: 4 orientations, for a tiny CNN ---

GRATING_SIZE = 32
GRATING_MEAN, GRATING_STD = (0.5, 0.5, 0.5), (0.15, 0.15, 0.15)


def gratings(count: int, rng: np.random.Generator, size: int = GRATING_SIZE
             ) -> tuple[np.ndarray, np.ndarray]:
    """count uint8 images of tinted sinusoidal gratings; the label is the orientation
    (0, 45, 90, 135 degrees); period, phase, contrast and brightness are random."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    labels = rng.integers(0, 4, count)
    theta = labels * np.pi / 4
    period = rng.uniform(3.5, 12.0, count)[:, None, None]
    phase = rng.uniform(0, 2 * np.pi, count)[:, None, None]
    contrast = rng.uniform(0.05, 0.3, count)[:, None, None]
    mean = rng.uniform(0.35, 0.65, count)[:, None, None]
    tint = rng.uniform(0.7, 1.0, (count, 1, 1, 3))
    along = np.cos(theta)[:, None, None] * xx + np.sin(theta)[:, None, None] * yy
    grey = mean + contrast * np.sin(2 * np.pi * along / period + phase)
    return np.rint(np.clip(grey[..., None] * tint, 0, 1) * 255).astype(np.uint8), labels


def pixels(images: np.ndarray) -> torch.Tensor:
    """uint8 NxHxWx3 -> float Nx3xHxW in [0, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255


def normalise(x: torch.Tensor) -> torch.Tensor:
    """The grating model's input normalisation."""
    mean = torch.tensor(GRATING_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(GRATING_STD).view(1, 3, 1, 1)
    return (x - mean) / std


# --- a real checkpoint on the CLI path: timm's test_vit with 3 classes ---

FOLDER_CLASSES = ("alpha", "beta", "gamma")


def write_vit_checkpoint(path: Path, num_classes: int = 3) -> Path:
    """A timm test_vit state dict whose predictions vary with the image (zero head bias, head
    weights scaled up), saved as a plain file any user could have."""
    import timm

    torch.manual_seed(0)
    model = timm.create_model("test_vit", num_classes=num_classes)
    with torch.no_grad():
        model.head.bias.zero_()
        model.head.weight.mul_(30)
    torch.save(model.state_dict(), path)
    return path


def write_random_images(folder: Path, count: int, rng: np.random.Generator, size: int = 32
                        ) -> None:
    """count small JPEGs of a random flat colour plus noise (the model's answers vary)."""
    for i in range(count):
        base = rng.uniform(0, 255, 3)
        array = np.clip(base + rng.normal(0, 30, (size, size, 3)), 0, 255).astype(np.uint8)
        write_image(folder / f"img{i}.JPEG", array)


def write_folder_tree(root: Path, corruptions, severities, per_class: int, seed: int = 0
                      ) -> Path:
    """An ImageNet-C-shaped tree whose classes are FOLDER_CLASSES (use --class-map folders)."""
    rng = np.random.default_rng(seed)
    for corruption in corruptions:
        for severity in severities:
            for name in FOLDER_CLASSES:
                write_random_images(root / corruption / str(severity) / name, per_class, rng)
    return root


def write_folder_val(root: Path, per_class: int, seed: int = 1) -> Path:
    """A val folder of FOLDER_CLASSES with one unreadable file."""
    rng = np.random.default_rng(seed)
    for name in FOLDER_CLASSES:
        write_random_images(root / name, per_class, rng)
    (root / FOLDER_CLASSES[0] / "broken.JPEG").write_bytes(b"not an image")
    return root


# --- the index oracle: a class index written into the pixels, for the other test sets ---
# Red and green hold the predicted class index (32 levels each); blue > 128 adds a decoy:
# class 0 (in neither ImageNet-A's nor ImageNet-R's 200) gets the top logit, so only logits
# restricted to the subset find the written class.

DECOY_CLASS = 0


def index_colour(index: int, decoy: bool) -> tuple[int, int, int]:
    """The flat colour that makes the index oracle predict `index` (behind the decoy)."""
    return 8 * (index // 32) + 4, 8 * (index % 32) + 4, 200 if decoy else 40


class IndexOracle(nn.Module):
    """1000-way logits: the written index at 5, the decoy (when flagged) at 10, others -10."""

    def __init__(self):
        super().__init__()
        self.num_classes = 1000

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        red, green, blue = (x[:, c].mean(dim=(1, 2)) * 255 for c in range(3))
        index = (((red - 4) / 8).round() * 32 + ((green - 4) / 8).round()).long().clamp(0, 999)
        logits = torch.full((len(x), 1000), -10.0)
        rows = torch.arange(len(x))
        logits[rows, index] = 5.0
        logits[rows[blue > 128], DECOY_CLASS] = 10.0
        return logits


def index_bundle() -> ModelBundle:
    """The index oracle as the evaluator sees a loaded checkpoint."""
    return ModelBundle(module=IndexOracle(), name="index-oracle", mean=(0.0, 0.0, 0.0),
                       std=(1.0, 1.0, 1.0), input_size=(ORACLE_SIZE, ORACLE_SIZE),
                       interpolation="bilinear", crop_pct=1.0, num_classes=1000)


def write_index_tree(root: Path, images: dict[str, list[int]], decoy: bool) -> Path:
    """A test-set tree: one folder per name, holding one image per predicted index listed."""
    for folder, predictions in images.items():
        for j, index in enumerate(predictions):
            write_image(root / folder / f"img{j}.jpg", index_colour(index, decoy))
    return root


def run_cli(monkeypatch, capsys, *args):
    """Run `gfbench robustness` through the console entry point, in-process: (exit code,
    stdout, stderr), each with rich's line wrapping undone."""
    from gfbench.cli import main

    monkeypatch.setattr(sys, "argv", ["gfbench", "robustness", *map(str, args)])
    monkeypatch.setenv("COLUMNS", "160")
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, " ".join(out.out.split()), " ".join(out.err.split())


def torchrun_robustness(options: list[str], out: Path, cwd: Path
                        ) -> subprocess.CompletedProcess:
    """`torchrun --nproc_per_node=2 -m gfbench robustness OPTIONS --out OUT` with this
    checkout's gfbench, one thread per rank and a wide terminal; its output captured."""
    import gfbench

    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "120",
           "PYTHONPATH": str(Path(gfbench.__file__).parents[1])}
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "gfbench", "robustness", *options, "--out", str(out)],
        capture_output=True, text=True, timeout=240, env=env, cwd=cwd)
