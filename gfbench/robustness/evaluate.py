"""Evaluate a checkpoint on ImageNet-C, in-memory corruptions, clean val, FGSM/PGD and the
other standard test sets (ImageNet-A, -R, -Sketch, V2).

The core (``evaluate_parts``) takes an nn.Module, its mean/std and a list of parts, and yields
integer counts per part as soon as the part is done; ``run_robustness`` is the thin layer that
loads the checkpoint, plans the parts from the options, writes one row per finished part to
a file keyed by the checkpoint's content and the settings (resuming from what a previous run
left) and joins torchrun's process group when there is one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader

from gfbench.defaults import DEFAULT_OUT
from gfbench.device import PRECISIONS, autocast, use_device
from gfbench.errors import (
    CheckpointError,
    GfbenchError,
    ResultsFileError,
    RunInterrupted,
    first_line,
)
from gfbench.options import check_jpeg_quality
from gfbench.results import (
    ResultsWriter,
    RobustnessRow,
    check_output_folder,
    collect_provenance,
    read_results,
)
from gfbench.robustness import distributed as dd
from gfbench.robustness.attacks import (
    FP16_LOSS_SCALE,
    AttackSpec,
    PixelSpaceModel,
    attack_spec,
    run_attack,
)
from gfbench.robustness.calibration import IMAGE_COLUMNS, CalibrationSums
from gfbench.robustness.data import (
    CLASS_MAPS,
    EVAL_SETS,
    Part,
    PartsDataset,
    Recipe,
    class_index,
    eval_set_classes,
    eval_set_labels,
    folder_class_names,
    require_folder,
    scan_classes,
    severity_folders,
)
from gfbench.robustness.fourier import (
    DEFAULT_FOURIER_EPS,
    DEFAULT_FOURIER_GRID,
    FourierSpec,
    fourier_maps,
    half_grid,
    perturb,
)
from gfbench.robustness.metrics import RobustnessSummary, summarize, summary_records
from gfbench.robustness.protocol import (
    BENCHMARK_CORRUPTIONS,
    CBAR_CORRUPTIONS,
    SEVERITIES,
    parse_corruptions,
    parse_severities,
)

GENERATED_SOURCE = "generated"  # ImageNet-C corruptions made in memory
GENERATED_BAR_SOURCE = "generated-bar"  # ImageNet-C-bar corruptions made in memory


def generated_source(corruption: str) -> str:
    """The row source of a corruption generated in memory: C-bar's rows apart from C's."""
    return GENERATED_BAR_SOURCE if corruption in CBAR_CORRUPTIONS else GENERATED_SOURCE


def cbar_note(jpeg_quality: int | None = None) -> str:
    """Why in-memory ImageNet-C-bar differs from the authors' released files."""
    saved = ("saved as JPEG quality 85" if jpeg_quality is None
             else f"saved as JPEG quality 85, here {jpeg_quality}")
    return ("ImageNet-C-bar corruptions generated in memory by gfbench, seeded per image (the "
            f"authors' released set used one run-wide random stream and was {saved}; "
            "Mintun et al. warn that in-memory and saved results differ)")


def generated_note(jpeg_quality: int | None = None) -> str:
    """Why in-memory corruptions are not the released benchmark, and which frost ran."""
    from gfbench.robustness.corruptions import frost_source

    if jpeg_quality is None:
        saved = "which were saved as JPEG quality 85"
    elif jpeg_quality == 85:
        saved = "re-encoded as JPEG quality 85 as they were, but other random draws"
    else:
        saved = f"which were saved as JPEG quality 85, here {jpeg_quality}"
    return ("corruptions generated in memory by gfbench (not the released ImageNet-C JPEGs, "
            f"{saved}; frost textures: {frost_source()}): mCE on them is not comparable to "
            "published numbers")


COUNT_FIELDS = ("images", "correct_top1", "correct_top5", "unreadable")
IMAGENET_CLASSES = 1000
Resolution = tuple[int, int]


@dataclass
class ModelBundle:
    """A model ready to evaluate and the input facts it was trained with."""

    module: nn.Module
    name: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_size: Resolution
    interpolation: str = "bicubic"
    crop_pct: float = 0.875
    num_classes: int = 1000


DEFAULT_BATCH_SIZE = 64  # images per forward pass and process


@dataclass
class RobustnessConfig:
    """Everything `gfbench robustness` was asked to do."""

    checkpoint: Path
    model: str | None = None
    data: Path | None = None
    clean: Path | None = None
    generate_from: Path | None = None
    corruptions: tuple[str, ...] = BENCHMARK_CORRUPTIONS
    severities: tuple[int, ...] = SEVERITIES
    attacks: tuple[str, ...] = ()
    batch_size: int = DEFAULT_BATCH_SIZE
    workers: int = 4
    device: str = "auto"
    precision: str = "fp32"
    limit: int | None = None
    out: Path | None = None  # a folder; default runs/ (gfbench.results.DEFAULT_OUT)
    seed: int = 0
    class_map: str = "imagenet"
    resume: bool = True
    test_sets: dict[str, Path] = field(default_factory=dict)  # EVAL_SETS name -> its folder
    fourier_map: bool = False  # the Fourier heat map on --clean (gfbench.robustness.fourier)
    fourier_grid: int | None = None  # N x N frequencies (the image side: every one); None 15
    fourier_eps: float | None = None  # L2 norm of the basis image per channel; None: 15.7
    jpeg_quality: int | None = None  # re-encode generated corruptions as JPEG of this quality

    def fourier_settings(self) -> tuple[int, float]:
        """The Fourier map's grid and eps, the defaults where not given."""
        grid = DEFAULT_FOURIER_GRID if self.fourier_grid is None else self.fourier_grid
        return grid, DEFAULT_FOURIER_EPS if self.fourier_eps is None else self.fourier_eps


@dataclass
class RobustnessReport:
    """What a run produced: rows (all, resumed ones included), summaries, files, speed."""

    rows: list[RobustnessRow]
    summaries: list[RobustnessSummary]
    json_path: Path | None
    csv_path: Path | None
    resumed: list[str] = field(default_factory=list)  # parts skipped, already in the file
    evaluated_images: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    is_main: bool = True
    world_size: int = 1
    checkpoint_sha256: str = ""

    @property
    def summary(self) -> list[dict]:
        """The summaries as stored in the results JSON (and printed by --json)."""
        return summary_records(self.summaries)

    def as_json(self) -> dict[str, Any]:
        """What --json prints: the files, the checkpoint's hash and the stored summaries."""
        return {"files": [str(self.json_path), str(self.csv_path)],
                "checkpoint_sha256": self.checkpoint_sha256,
                "resumed_parts": len(self.resumed), "evaluated_images": self.evaluated_images,
                "summaries": self.summary}

    @property
    def images_per_second(self) -> float | None:
        """Images evaluated per wall-clock second by the whole job (None if nothing ran)."""
        return self.evaluated_images / self.seconds if self.evaluated_images and self.seconds \
            else None


class ProgressCallback(Protocol):
    """What the library tells a progress display (the CLI's rich bars)."""

    def begin(self, parts: Sequence[tuple[str, int, str]]) -> None:
        """The parts this process will evaluate (name, its number of images, its kind: the
        attack's name, or 'forward' for one forward pass per image), in order."""

    def advance(self, part: int, images: int) -> None:
        """`images` more images of part number `part` (position in begin's list) are done."""

    def finish(self, part: int, row: RobustnessRow) -> None:
        """Part number `part` is done and its row written."""


class NoProgress:
    """A progress callback that shows nothing (tests, non-zero ranks)."""

    def begin(self, parts: Sequence[tuple[str, int, str]]) -> None:
        """Nothing to show."""

    def advance(self, part: int, images: int) -> None:
        """Nothing to show."""

    def finish(self, part: int, row: RobustnessRow) -> None:
        """Nothing to show."""


# --- the core: an nn.Module and parts in, counts out ---


def _score(logits: torch.Tensor, labels: torch.Tensor, readable: torch.Tensor,
           columns: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image top-1 and top-5 hits (int64), zero for unreadable images. With `columns`
    only those classes compete (ImageNet-A/R's 200 of the 1000 logits); labels stay 1000-way."""
    if columns is not None:
        logits = logits[:, columns]
    k = min(5, logits.shape[1])
    top = logits.topk(k, dim=1).indices
    if columns is not None:
        top = columns[top]
    hit1 = (top[:, 0] == labels) & readable
    hit5 = (top == labels[:, None]).any(dim=1) & readable
    return hit1.long(), hit5.long()


def _calibration_values(logits: torch.Tensor, labels: torch.Tensor, readable: torch.Tensor,
                        hit1: torch.Tensor, columns: torch.Tensor | None = None
                        ) -> torch.Tensor:
    """Per-image (readable, top-1 hit, top-1 confidence, NLL, Brier) in float64, zero rows for
    unreadable images. The softmax is over `columns` when given (ImageNet-A/R: the 200 classes
    top-1 competes among, as in _score); a label outside them has NLL inf."""
    if columns is not None:
        position = torch.full((logits.shape[1],), -1, dtype=torch.long, device=labels.device)
        position[columns] = torch.arange(len(columns), device=labels.device)
        logits, labels = logits[:, columns], position[labels]
    log_p = torch.log_softmax(logits.double(), dim=1)
    p = log_p.exp()
    known = labels >= 0
    label = labels.clamp(min=0)[:, None]
    nll = torch.where(known, -log_p.gather(1, label)[:, 0], torch.inf)
    target = torch.zeros_like(p).scatter_(1, label, known[:, None].double())
    values = torch.stack([torch.ones_like(nll), hit1.double(), p.amax(dim=1), nll,
                          (p - target).square().sum(dim=1)], dim=1)
    return torch.where(readable[:, None], values, torch.zeros_like(values))


def _predict(model: nn.Module, pixels_u8: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
             device: torch.device, precision: str) -> torch.Tensor:
    """Logits of a uint8 batch: ToTensor (/255) and the model's normalisation on the device."""
    with torch.inference_mode(), autocast(device, precision):
        pixels = pixels_u8.float().div_(255.0)
        return model((pixels - mean) / std).float()


def _fourier_logits(model: nn.Module, pixels_u8: torch.Tensor, spec: FourierSpec,
                    keys: Sequence[str], seed: int, mean: torch.Tensor, std: torch.Tensor,
                    device: torch.device, precision: str) -> torch.Tensor:
    """Logits of a uint8 batch with a Fourier basis image added in float [0, 1] pixels (not
    rounded back to uint8: at eps 15.7 and 224x224 its amplitude is about 25/255)."""
    with torch.inference_mode(), autocast(device, precision):
        pixels = perturb(pixels_u8.float().div_(255.0), spec, keys, seed)
        return model((pixels - mean) / std).float()


def _attacked_logits(pixel_model: PixelSpaceModel, spec: AttackSpec, pixels_u8: torch.Tensor,
                     labels: torch.Tensor, ids: torch.Tensor, seed: int, device: torch.device,
                     precision: str) -> torch.Tensor:
    """Logits of the attacked versions of a uint8 batch (attack in [0, 1] pixel space)."""
    pixels = pixels_u8.float().div_(255.0)
    with autocast(device, precision):
        scale = FP16_LOSS_SCALE if precision == "fp16" else 1.0  # no underflow in half
        attacked = run_attack(spec, pixel_model, pixels, labels, seed, ids.tolist(), scale)
        with torch.no_grad():
            return pixel_model(attacked).float()


def evaluate_parts(model: nn.Module, parts: Sequence[Part], mean: Sequence[float],
                   std: Sequence[float], *, device: torch.device | str = "cpu",
                   precision: str = "fp32", batch_size: int = 64, workers: int = 0,
                   seed: int = 0, context: dd.DistContext | None = None,
                   progress: ProgressCallback | None = None
                   ) -> Iterator[tuple[int, dict[str, int], CalibrationSums]]:
    """Yield (part index, summed integer counts, calibration sums) for every part, in order,
    as each finishes.

    One DataLoader serves all parts; under torchrun each rank reads its shard of every part
    (no padding) and the counts are summed over ranks before they are yielded (on every rank).
    The calibration is exact too: each rank writes its images' float64 (confidence, NLL,
    Brier) into their own slots of a part-long table, which all_reduce sums (every slot has
    one writer, so the sum is that value, bit for bit), and the sums are rounded once
    (math.fsum): a k-rank run gives the bits of a 1-rank run.
    Parts whose source is 'attack' are attacked (their corruption names the attack); parts
    with a FourierSpec get its basis image added (gfbench.robustness.fourier).
    """
    context = context or dd.DistContext()
    progress = progress or NoProgress()
    device = torch.device(device)
    model = model.eval().to(device)
    model.requires_grad_(False)
    mean_t = torch.tensor(mean, device=device, dtype=torch.float32).view(1, -1, 1, 1)
    std_t = torch.tensor(std, device=device, dtype=torch.float32).view(1, -1, 1, 1)
    pixel_model = PixelSpaceModel(model, mean, std).to(device)
    specs = {i: attack_spec(p.corruption) for i, p in enumerate(parts) if p.source == "attack"}
    fourier = {i: p.fourier for i, p in enumerate(parts) if p.fourier is not None}
    columns = {i: torch.tensor(p.classes, dtype=torch.long, device=device)
               for i, p in enumerate(parts) if p.classes is not None}

    dataset = PartsDataset(parts)
    shards = dd.shard([len(p.samples) for p in parts], context.rank, context.world_size)
    local_totals = [len(s) for s in shards]
    loader = DataLoader(
        dataset, batch_size=batch_size, sampler=dd.ShardSampler([i for s in shards for i in s]),
        num_workers=workers, pin_memory=device.type == "cuda", drop_last=False,
        prefetch_factor=4 if workers > 0 else None, persistent_workers=False,
    )
    progress.begin([(p.name, n, p.corruption if p.source == "attack" else "forward")
                    for p, n in zip(parts, local_totals, strict=True)])
    counts = torch.zeros(len(parts), len(COUNT_FIELDS), dtype=torch.long, device=device)
    slots: dict[int, torch.Tensor] = {}  # part -> its per-image calibration values (this rank's)
    seen = [0] * len(parts)
    next_part = 0

    def slots_of(part_index: int) -> torch.Tensor:
        """The part's per-image table (every image of the part, zeros where not this rank's)."""
        if part_index not in slots:
            slots[part_index] = torch.zeros(len(parts[part_index].samples), len(IMAGE_COLUMNS),
                                            dtype=torch.float64, device=device)
        return slots[part_index]

    def finished() -> Iterator[tuple[int, dict[str, int], CalibrationSums]]:
        nonlocal next_part
        while next_part < len(parts) and seen[next_part] == local_totals[next_part]:
            total = dd.sum_counts(counts[next_part], context).cpu().tolist()
            values = dd.sum_counts(slots_of(next_part), context).cpu().numpy()
            del slots[next_part]
            yield (next_part, dict(zip(COUNT_FIELDS, (int(v) for v in total), strict=True)),
                   CalibrationSums.from_images(values))
            next_part += 1

    yield from finished()
    for images, labels, part_ids, sample_ids, readable in loader:
        images = images.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        readable_dev = readable.to(device, non_blocking=True)
        part_ids_dev = part_ids.to(device, non_blocking=True)
        for part_index in part_ids.unique().tolist():
            rows = part_ids == part_index
            whole = bool(rows.all())  # the usual case: no boolean gathers on the device
            pick = slice(None) if whole else part_ids_dev == part_index
            if part_index in specs:
                logits = _attacked_logits(pixel_model, specs[part_index], images[pick],
                                          labels[pick], sample_ids[rows], seed, device,
                                          precision)
            elif part_index in fourier:
                keys = [parts[part_index].samples[i].key for i in sample_ids[rows].tolist()]
                logits = _fourier_logits(model, images[pick], fourier[part_index], keys, seed,
                                         mean_t, std_t, device, precision)
            else:
                logits = _predict(model, images[pick], mean_t, std_t, device, precision)
            hit1, hit5 = _score(logits, labels[pick], readable_dev[pick],
                                columns.get(part_index))
            slots_of(part_index)[sample_ids[rows].to(device)] = _calibration_values(
                logits, labels[pick], readable_dev[pick], hit1, columns.get(part_index))
            ok = readable_dev[pick].long()
            counts[part_index] += torch.stack([ok.sum(), hit1.sum(), hit5.sum(),
                                               (1 - ok).sum()])
            batch_count = int(rows.sum())
            seen[part_index] += batch_count
            progress.advance(part_index, batch_count)
        yield from finished()
    yield from finished()


# --- the thin layer: checkpoint, options, files ---


def model_input_size(module: nn.Module, configured: Resolution) -> Resolution:
    """The resolution a model was built at (GFNet's img_size, a ViT's or mixer's patch
    embedding), else the configured one: timm's data config keeps 224 for a model built at 384."""
    for owner in (module, getattr(module, "patch_embed", None), getattr(module, "stem", None)):
        size = getattr(owner, "img_size", None)
        if isinstance(size, (tuple, list)) and len(size) == 2:
            return int(size[0]), int(size[1])
        if isinstance(size, int):
            return size, size
    return configured


def load_bundle(checkpoint: Path, model_name: str | None) -> ModelBundle:
    """Load a checkpoint (architecture named or inferred) and read its input config from timm."""
    from timm.data import resolve_data_config

    from gfbench.models import load_checkpoint

    module = load_checkpoint(checkpoint, model=model_name)
    config = resolve_data_config({}, model=module)
    height, width = model_input_size(module, tuple(config["input_size"][1:]))
    num_classes = getattr(module, "num_classes", None)
    if not isinstance(num_classes, int) or num_classes <= 0:
        with torch.no_grad():
            num_classes = int(module(torch.zeros(1, 3, height, width)).shape[-1])
    name = getattr(module, "gfbench_name", None) or model_name or type(module).__name__
    return ModelBundle(module=module, name=str(name), mean=tuple(config["mean"]),
                       std=tuple(config["std"]), input_size=(int(height), int(width)),
                       interpolation=str(config.get("interpolation", "bicubic")),
                       crop_pct=float(config.get("crop_pct", 0.875)), num_classes=num_classes)


def _labels_for(roots: Sequence[Path], class_map: str, num_classes: int,
                options: Sequence[str]) -> dict[str, int]:
    """Class index per folder name across all class roots, checked against the model's head."""
    names = sorted({n for root, option in zip(roots, options, strict=True)
                    for n in folder_class_names(root, option)})
    labels = class_index(names, class_map)
    needed = 1000 if class_map == "imagenet" else len(names)
    if num_classes != needed:
        what = ("ImageNet-1k labels need 1000 (one per wnid)" if class_map == "imagenet"
                else f"the data has {len(names)} class folders")
        raise CheckpointError(f"the model outputs {num_classes} classes but {what}; "
                              "check --ckpt/--model, or --class-map")
    return labels


def check_out_folder(out: Path) -> Path:
    """--out as a folder the results can be written to (made when absent); GfbenchError in one
    line when it is a file, is named like one, cannot be made or cannot be written to."""
    out = Path(out)
    if out.suffix.lower() in (".json", ".csv") and not out.is_dir():
        raise GfbenchError(f"--out {out}: expected a folder, not a file name (the files inside "
                           "are named robustness-<model>-<checkpoint>-<key>.json and .csv)")
    return check_output_folder(out)


def robustness_config(checkpoint: Path, *, corruptions: str = "default",
                      severities: str = "1-5", attacks: Sequence[str] = (),
                      batch_size: Sequence[int] | None = None, **fields: Any
                      ) -> RobustnessConfig:
    """The config a command line asks for: the corruption and severity texts parsed, and one
    batch size (a list of them is complexity's batch sweep, refused here in one line)."""
    if batch_size is not None and len(batch_size) != 1:
        raise GfbenchError(f"--batch-size {','.join(map(str, batch_size))}: robustness takes "
                           "one batch size (a comma list is complexity's batch sweep)")
    return RobustnessConfig(
        checkpoint, corruptions=parse_corruptions(corruptions),
        severities=parse_severities(severities), attacks=tuple(attacks),
        batch_size=batch_size[0] if batch_size else DEFAULT_BATCH_SIZE, **fields)


def check_config(config: RobustnessConfig) -> None:
    """The mistakes that can be named before a checkpoint is loaded, each in one line."""
    if config.precision not in PRECISIONS:
        raise GfbenchError(f"--precision {config.precision!r}; allowed: {', '.join(PRECISIONS)}")
    if config.batch_size < 1 or config.workers < 0:
        raise GfbenchError("--batch-size must be at least 1 and --workers at least 0")
    if config.class_map not in CLASS_MAPS:
        raise GfbenchError(f"--class-map {config.class_map!r}; allowed: {', '.join(CLASS_MAPS)}")
    if config.attacks and config.clean is None:
        raise GfbenchError("--attack needs --clean (an ImageNet val folder to attack)")
    check_fourier(config)
    for attack in config.attacks:
        attack_spec(attack)
    unknown = [name for name in config.test_sets if name not in EVAL_SETS]
    if unknown:
        raise GfbenchError(f"unknown test set {', '.join(unknown)}; known: {', '.join(EVAL_SETS)}")
    if config.test_sets and config.class_map != "imagenet":
        options = ", ".join(EVAL_SETS[n].option for n in config.test_sets)
        raise GfbenchError(f"{options} score ImageNet-1k classes: use --class-map imagenet")
    if (config.data is None and config.generate_from is None and config.clean is None
            and not config.test_sets):
        raise GfbenchError("nothing to evaluate: give --data (ImageNet-C), --generate-from, "
                           "--clean, --attack with --clean, or a test set such as "
                           "--imagenet-a")
    bar = [c for c in config.corruptions if c in CBAR_CORRUPTIONS]
    if bar and config.generate_from is None:
        raise GfbenchError(f"ImageNet-C-bar corruptions ({', '.join(bar)}) are generated in "
                           "memory: they need --generate-from (an ImageNet val folder)")
    if config.data is not None and not released_corruptions(config):
        raise GfbenchError("--data reads released ImageNet-C corruptions, but --corruptions "
                           "names only ImageNet-C-bar ones: add ImageNet-C names or drop --data")
    if config.jpeg_quality is not None:
        check_jpeg_quality(config.jpeg_quality)
        if config.generate_from is None:
            raise GfbenchError("--jpeg-quality re-encodes the corruptions gfbench generates: "
                               "it needs --generate-from")
    if config.limit is not None and config.limit < 1:
        raise GfbenchError(f"--limit {config.limit}: must be at least 1 image per class")
    check_out_folder(config.out or DEFAULT_OUT)
    for folder, option in ((config.clean, "--clean"), (config.generate_from, "--generate-from")):
        if folder is not None:
            folder_class_names(require_folder(folder, option), option)
    if config.data is not None:
        severity_folders(config.data, released_corruptions(config), config.severities)
    for name, folder in config.test_sets.items():
        eval_set_labels(folder, name)


def check_fourier(config: RobustnessConfig, side: int | None = None) -> None:
    """The Fourier options' mistakes in one line (the grid against the model's image side
    once the model is known), before anything is evaluated."""
    if config.fourier_map and config.clean is None:
        raise GfbenchError("--fourier-map needs --clean (the ImageNet val folder it perturbs)")
    if not config.fourier_map and (config.fourier_grid, config.fourier_eps) != (None, None):
        raise GfbenchError("--fourier-grid and --fourier-eps set up --fourier-map: add it")
    grid, eps = config.fourier_settings()
    if not (math.isfinite(eps) and eps > 0):
        raise GfbenchError(f"--fourier-eps {eps}: must be a number above 0 (the L2 norm of "
                           "the basis image per channel, [0, 1] pixels)")
    if grid < 1 or (side is not None and grid > side):
        top = f"the model's image side, {side}" if side is not None else "the image side"
        raise GfbenchError(f"--fourier-grid {grid}: must be 1 to {top} (frequencies per axis)")


def generation_notes(config: RobustnessConfig) -> list[str]:
    """The caveats of the corruptions a run generates in memory (ImageNet-C's, C-bar's)."""
    if config.generate_from is None:
        return []
    sources = {generated_source(c) for c in config.corruptions}
    return ([generated_note(config.jpeg_quality)] if GENERATED_SOURCE in sources else []) + (
        [cbar_note(config.jpeg_quality)] if GENERATED_BAR_SOURCE in sources else [])


def released_corruptions(config: RobustnessConfig) -> tuple[str, ...]:
    """The corruptions --data is read for: ImageNet-C's (C-bar's are only generated)."""
    return tuple(c for c in config.corruptions if c not in CBAR_CORRUPTIONS)


def plan_parts(config: RobustnessConfig, bundle: ModelBundle) -> list[Part]:
    """The parts to evaluate, in order: clean, ImageNet-C, generated, attacks, Fourier
    frequencies, test sets."""
    check_config(config)
    folders = severity_folders(config.data, released_corruptions(config), config.severities) \
        if config.data is not None else {}
    clean_root = config.clean or config.generate_from
    roots = [*folders.values()]
    options = ["--data"] * len(folders)
    if clean_root is not None:
        roots.append(require_folder(clean_root, "--clean" if config.clean else "--generate-from"))
        options.append("--clean" if config.clean else "--generate-from")
    if config.generate_from is not None:
        roots.append(require_folder(config.generate_from, "--generate-from"))
        options.append("--generate-from")
    labels = _labels_for(roots, config.class_map, bundle.num_classes, options) if roots else {}
    if config.test_sets and bundle.num_classes != IMAGENET_CLASSES:
        names = ", ".join(EVAL_SETS[n].option for n in config.test_sets)
        raise CheckpointError(
            f"the model outputs {bundle.num_classes} classes but {names} "
            f"{'is' if len(config.test_sets) == 1 else 'are'} scored on ImageNet-1k's "
            f"{IMAGENET_CLASSES} logits (ImageNet-A/R keep 200 of them); check --ckpt/--model")

    size, interp = bundle.input_size, bundle.interpolation
    eval_recipe = Recipe("eval", size, interp, bundle.crop_pct)
    parts: list[Part] = []
    clean_samples = [] if clean_root is None else scan_classes(clean_root, labels, config.limit)
    if clean_root is not None:
        parts.append(Part("clean", "clean", 0, clean_samples, eval_recipe))
    for (corruption, severity), folder in folders.items():
        parts.append(Part("imagenet-c", corruption, severity,
                          scan_classes(folder, labels, config.limit),
                          Recipe("as_is", size, interp)))
    if config.generate_from is not None:
        source = scan_classes(config.generate_from, labels, config.limit)
        for corruption in config.corruptions:
            for severity in config.severities:
                recipe = Recipe("generate", size, interp, corruption=corruption,
                                severity=severity, seed=config.seed,
                                jpeg_quality=config.jpeg_quality)
                parts.append(Part(generated_source(corruption), corruption, severity, source,
                                  recipe))
    for attack in config.attacks:
        parts.append(Part("attack", attack, 0, clean_samples, eval_recipe))
    if config.fourier_map:
        check_fourier(config, min(size))
        grid, eps = config.fourier_settings()
        for ky, kx in half_grid(size, grid):
            spec = FourierSpec(ky, kx, float(eps))
            parts.append(Part("fourier", spec.corruption, 0, clean_samples, eval_recipe,
                              fourier=spec))
    for name in [n for n in EVAL_SETS if n in config.test_sets]:
        folder = config.test_sets[name]
        samples = scan_classes(folder, eval_set_labels(folder, name), config.limit)
        subset = EVAL_SETS[name].subset_file is not None
        parts.append(Part(name, name, 0, samples, eval_recipe,
                          classes=eval_set_classes(name) if subset else None))
    return parts


def safe_name(text: str) -> str:
    """Text usable in a file name: runs of anything but letters, digits, '.', '_', '-' -> '_'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file, streamed (a checkpoint of hundreds of MB never sits in memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def module_sha256(module: nn.Module) -> str:
    """sha256 of a module's state (names, shapes, values): the identity of a model handed over
    in memory, when there is no checkpoint file to hash."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def checkpoint_sha256(checkpoint: Path, module: nn.Module) -> str:
    """The content hash that keys a checkpoint's results: of the file, else of the module."""
    return file_sha256(checkpoint) if Path(checkpoint).is_file() else module_sha256(module)


def run_settings(config: RobustnessConfig, bundle: ModelBundle) -> dict[str, object]:
    """The settings every row's numbers depend on (with the checkpoint, they key the file).
    jpeg_quality is there only when set, so runs without it keep their files' keys."""
    settings: dict[str, object] = {
        "limit": config.limit, "precision": config.precision, "class_map": config.class_map,
        "seed": config.seed, "input_size": list(bundle.input_size),
        "interpolation": bundle.interpolation, "crop_pct": bundle.crop_pct,
    }
    if config.jpeg_quality is not None:
        settings["jpeg_quality"] = config.jpeg_quality
    return settings


FOLDER_SETTINGS = ("data", "clean", "generate_from", *EVAL_SETS)


def data_folders(config: RobustnessConfig) -> dict[str, str | None]:
    """The folder of every data option (None when not given): each only adds its own parts."""
    given = {"data": config.data, "clean": config.clean, "generate_from": config.generate_from,
             **{name: config.test_sets.get(name) for name in EVAL_SETS}}
    return {k: None if v is None else str(Path(v).resolve()) for k, v in given.items()}


def results_key(checkpoint_sha: str, settings: dict[str, object]) -> str:
    """8 hex digits naming (checkpoint content, settings): another checkpoint, even with the
    same file name, or other settings get their own results file; the same ones resume it."""
    text = json.dumps({"checkpoint_sha256": checkpoint_sha, **settings}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def results_stem(out: Path, model: str, checkpoint: Path, key: str) -> Path:
    """<out>/robustness-<model>-<checkpoint stem>-<key> (add .json or .csv)."""
    name = f"robustness-{safe_name(model)}-{safe_name(Path(checkpoint).stem)}-{key}"
    return Path(out) / name


def resumable_settings(json_path: Path, settings: dict[str, object], checkpoint_sha: str
                       ) -> dict[str, object]:
    """The settings to record when resuming json_path: ResultsFileError when the file holds
    another checkpoint's rows or was made with other settings or data folders; a folder given
    before but not now is kept."""
    provenance, _ = read_results(json_path)
    previous_sha = str(provenance.extra.get("checkpoint_sha256") or "none recorded")
    if previous_sha != checkpoint_sha:
        raise ResultsFileError(
            f"{json_path} holds another checkpoint's rows (sha256 {previous_sha[:12]} vs "
            f"{checkpoint_sha[:12]}): use another --out")
    previous = provenance.extra.get("settings") or {}
    optional = set(FOLDER_SETTINGS)
    clashes = [f"{k} {previous[k]!r} vs {v!r}" for k, v in settings.items()
               if k in previous and previous[k] != v
               and not (k in optional and (previous[k] is None or v is None))]
    if clashes:
        raise ResultsFileError(
            f"{json_path} was made with other settings ({'; '.join(clashes)}): use another "
            "--out")
    return {k: previous.get(k) if v is None and k in optional else v
            for k, v in settings.items()}


def _finite(value: float | None) -> float | None:
    """A mean as a row stores it: None when there is none or it is not finite (NaN logits, a
    label the softmax cannot reach), which JSON cannot hold."""
    return value if value is not None and math.isfinite(value) else None


def _row(bundle: ModelBundle, checkpoint: Path, part: Part, counts: dict[str, int],
         calibration: CalibrationSums, config: RobustnessConfig, device: torch.device,
         checkpoint_sha: str) -> RobustnessRow:
    """The results row of a finished part."""
    images = counts["images"]
    eps = attack_spec(part.corruption).eps if part.source == "attack" else (
        part.fourier.eps if part.fourier is not None else None)
    return RobustnessRow(
        model=bundle.name, checkpoint=Path(checkpoint).name, source=part.source,
        corruption=part.corruption, severity=part.severity, images=images,
        correct_top1=counts["correct_top1"], correct_top5=counts["correct_top5"],
        unreadable=counts["unreadable"],
        error_top1=1 - counts["correct_top1"] / images if images else None,
        error_top5=1 - counts["correct_top5"] / images if images else None,
        eps=eps, precision=config.precision, device=device.type,
        checkpoint_sha256=checkpoint_sha, ece=_finite(calibration.ece),
        nll=_finite(calibration.nll), brier=_finite(calibration.brier),
        calibration_bins=calibration.bins_text() if images else None,
        jpeg_quality=config.jpeg_quality if part.recipe.mode == "generate" else None,
    )


def _open_writer(config: RobustnessConfig, bundle: ModelBundle, device: torch.device,
                 context: dd.DistContext, notes: list[str], checkpoint_sha: str,
                 parts: Sequence[Part]) -> ResultsWriter:
    """The results writer (rank 0): the file keyed by checkpoint content and settings; rows
    already in it are kept (ResultsWriter never drops rows)."""
    settings = run_settings(config, bundle)
    stem = results_stem(config.out or DEFAULT_OUT, bundle.name, config.checkpoint,
                        results_key(checkpoint_sha, settings))
    json_path = stem.with_suffix(".json")
    settings = {**settings, **data_folders(config)}
    if json_path.exists():  # its rows are kept (--no-resume evaluates their parts again)
        settings = resumable_settings(json_path, settings, checkpoint_sha)
    provenance = collect_provenance(
        "robustness", device=str(device), settings=settings, world_size=context.world_size,
        checkpoint_path=str(Path(config.checkpoint).resolve()), checkpoint_sha256=checkpoint_sha,
        notes=notes, label_source=("canonical ImageNet-1k wnid list"
                                   if config.class_map == "imagenet"
                                   else "sorted class folder names"),
        preprocessing=preprocessing(parts, bundle),
    )
    return ResultsWriter(stem, provenance, summary_of=summary_payload)


def preprocessing(parts: Sequence[Part], bundle: ModelBundle) -> dict[str, str]:
    """Per source, what its images went through before the model (stored in provenance)."""
    described: dict[str, str] = {}
    for part in parts:
        described.setdefault(part.source, f"{part.recipe.describe()}; then ToTensor and the "
                                          f"model's mean {bundle.mean} and std {bundle.std}")
    return described


def summary_payload(rows: Sequence[RobustnessRow]) -> dict[str, list[dict]]:
    """The `summary` stored beside the rows: one record per (model, checkpoint, source), and
    the Fourier heat maps (the whole grid, mirrored) when there are Fourier rows."""
    frame = _rows_frame(rows)
    maps = [m.record() for m in fourier_maps(frame)]
    return {"summaries": summary_records(summarize(frame)), **({"fourier": maps} if maps else {})}


def run_robustness(config: RobustnessConfig, progress: ProgressCallback | None = None,
                   bundle: ModelBundle | None = None) -> RobustnessReport:
    """Evaluate a checkpoint as the options say, writing each part's row as it finishes.

    ``bundle`` replaces loading config.checkpoint (a model already in memory; its name and
    config.checkpoint's file name still label the rows). Under torchrun a failure on any rank
    ends every rank: the failing one raises its own error, the others dd.PeerFailed."""
    check_config(config)
    context = dd.init_distributed(config.device if config.device != "auto" else
                                  ("cuda" if torch.cuda.is_available() else "cpu"))
    failed = False
    try:
        return _run(config, context, progress if context.is_main else None, bundle)
    except BaseException as exc:
        failed = True
        if isinstance(exc, KeyboardInterrupt) and not isinstance(exc, RunInterrupted):
            raise RunInterrupted(0, config.out or DEFAULT_OUT, is_main=context.is_main) \
                from None  # before any row
        raise
    finally:
        if not (failed and context.distributed):  # a peer may never reach the exit barrier
            dd.shutdown_distributed()


def _run(config: RobustnessConfig, context: dd.DistContext, progress: ProgressCallback | None,
         bundle: ModelBundle | None) -> RobustnessReport:
    """run_robustness inside the process group (if any)."""
    device = use_device(config.device, context.local_rank if context.distributed else None)
    bundle = bundle or load_bundle(config.checkpoint, config.model)
    parts = plan_parts(config, bundle)
    checkpoint_sha = dd.broadcast_from_main(dd.run_on_main(  # read the file once, on rank 0
        lambda: checkpoint_sha256(config.checkpoint, bundle.module), context), context)
    notes = generation_notes(config)
    writer = dd.run_on_main(lambda: _open_writer(config, bundle, device, context, notes,
                                                 checkpoint_sha, parts), context)
    try:  # the lock on the results file is held until the run ends, however it ends
        done = writer.done() if writer and config.resume else set()
        key = (bundle.name, Path(config.checkpoint).name)
        todo_flags = [(*key, p.source, p.corruption, p.severity) not in done for p in parts]
        todo_flags = dd.broadcast_from_main(todo_flags, context)
        todo = [p for p, flag in zip(parts, todo_flags, strict=True) if flag]
        resumed = [p.name for p, flag in zip(parts, todo_flags, strict=True) if not flag]

        started = time.perf_counter()
        evaluated = 0
        try:
            for index, counts, calibration in evaluate_parts(
                    bundle.module, todo, bundle.mean, bundle.std, device=device,
                    precision=config.precision, batch_size=config.batch_size,
                    workers=config.workers, seed=config.seed, context=context, progress=progress):
                evaluated += counts["images"] + counts["unreadable"]
                row = _row(bundle, config.checkpoint, todo[index], counts, calibration, config,
                           device, checkpoint_sha)
                if writer is not None:
                    writer.add(row)
                if progress is not None:
                    progress.finish(index, row)
        except KeyboardInterrupt:
            kept_in = writer.json_path if writer else config.out or DEFAULT_OUT
            raise RunInterrupted(len(writer.rows) if writer else 0, kept_in,
                                 is_main=context.is_main) from None
        except (GfbenchError, dd.PeerFailed):
            raise
        except Exception as exc:  # a crash mid-run (out of memory, a bad file system): one line
            kept = "" if writer is None else (f"; {len(writer.rows)} rows kept in "
                                              f"{writer.json_path}" if writer.rows
                                              else "; no rows were written")
            rank = f"rank {context.rank} of {context.world_size}: " if context.distributed else ""
            raise GfbenchError(f"{rank}evaluation stopped by {first_line(exc)}{kept}; the same "
                               "command resumes") from exc
        seconds = time.perf_counter() - started
        if writer is None:
            return RobustnessReport([], [], None, None, resumed, evaluated, seconds, notes,
                                    is_main=False, world_size=context.world_size,
                                    checkpoint_sha256=checkpoint_sha)
        summaries = summarize(_rows_frame(writer.rows))
        writer.flush()
        return RobustnessReport(list(writer.rows), summaries, writer.json_path,
                                writer.csv_path, resumed, evaluated, seconds, notes,
                                world_size=context.world_size, checkpoint_sha256=checkpoint_sha)
    finally:
        if writer is not None:
            writer.close()


def _rows_frame(rows: Sequence[RobustnessRow]) -> pd.DataFrame:
    """Rows as a DataFrame with the RobustnessRow columns."""
    columns = [f.name for f in dataclasses.fields(RobustnessRow)]
    return pd.DataFrame([dataclasses.asdict(r) for r in rows], columns=columns)
