"""Evaluate a checkpoint on ImageNet-C, in-memory corruptions, clean val and FGSM/PGD.

The core (``evaluate_parts``) takes an nn.Module, its mean/std and a list of parts, and yields
integer counts per part as soon as the part is done; ``run_robustness`` is the thin layer that
loads the checkpoint, plans the parts from the options, writes one row per finished part
(resuming from what a previous run left) and joins torchrun's process group when there is one.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader

from gfbench.errors import CheckpointError, GfbenchError, ResultsFileError
from gfbench.results import ResultsWriter, RobustnessRow, collect_provenance, read_results
from gfbench.robustness import distributed as dd
from gfbench.robustness.attacks import AttackSpec, PixelSpaceModel, attack_spec, run_attack
from gfbench.robustness.data import (
    CLASS_MAPS,
    Part,
    PartsDataset,
    Recipe,
    class_index,
    folder_class_names,
    require_folder,
    scan_classes,
    severity_folders,
)
from gfbench.robustness.metrics import RobustnessSummary, summarize
from gfbench.robustness.protocol import BENCHMARK_CORRUPTIONS, SEVERITIES

PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16,
                                             "fp16": torch.float16}
GENERATED_NOTE = ("corruptions generated in memory by gfbench's own implementation (not the "
                  "released ImageNet-C JPEGs; frost blends procedural textures, motion_blur and "
                  "snow use gfbench's line kernel): mCE on them is not comparable to published "
                  "numbers")
COUNT_FIELDS = ("images", "correct_top1", "correct_top5", "unreadable")
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
    batch_size: int = 64
    workers: int = 4
    device: str = "auto"
    precision: str = "fp32"
    limit: int | None = None
    out: Path | None = None
    seed: int = 0
    class_map: str = "imagenet"
    resume: bool = True


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

    @property
    def images_per_second(self) -> float | None:
        """Images evaluated per wall-clock second by the whole job (None if nothing ran)."""
        return self.evaluated_images / self.seconds if self.evaluated_images and self.seconds \
            else None


class ProgressCallback(Protocol):
    """What the library tells a progress display (the CLI's rich bars)."""

    def begin(self, parts: Sequence[tuple[str, int]]) -> None:
        """The parts this process will evaluate (name, its number of images), in order."""

    def advance(self, part: int, images: int) -> None:
        """`images` more images of part number `part` (position in begin's list) are done."""

    def finish(self, part: int, row: RobustnessRow) -> None:
        """Part number `part` is done and its row written."""


class NoProgress:
    """A progress callback that shows nothing (tests, non-zero ranks)."""

    def begin(self, parts: Sequence[tuple[str, int]]) -> None:
        """Nothing to show."""

    def advance(self, part: int, images: int) -> None:
        """Nothing to show."""

    def finish(self, part: int, row: RobustnessRow) -> None:
        """Nothing to show."""


# --- the core: an nn.Module and parts in, counts out ---


def resolve_device(device: str, context: dd.DistContext) -> torch.device:
    """'auto' -> cuda when available; under torchrun each rank takes its local GPU."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise GfbenchError(f"--device {device}: no CUDA device is available (use cpu)")
        if context.distributed:
            device = f"cuda:{context.local_rank}"
        torch.cuda.set_device(torch.device(device))
    try:
        return torch.device(device)
    except RuntimeError:
        raise GfbenchError(f"--device {device!r} is not a device (e.g. auto, cpu, cuda, cuda:1)"
                           ) from None


def _autocast(device: torch.device, precision: str) -> torch.autocast:
    """Autocast context for the chosen precision (disabled for fp32)."""
    dtype = PRECISIONS[precision]
    return torch.autocast(device_type=device.type, dtype=dtype or torch.bfloat16,
                          enabled=dtype is not None)


def _score(logits: torch.Tensor, labels: torch.Tensor, readable: torch.Tensor
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image top-1 and top-5 hits (int64), zero for unreadable images."""
    k = min(5, logits.shape[1])
    top = logits.topk(k, dim=1).indices
    hit1 = (top[:, 0] == labels) & readable
    hit5 = (top == labels[:, None]).any(dim=1) & readable
    return hit1.long(), hit5.long()


def _predict(model: nn.Module, pixels_u8: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
             device: torch.device, precision: str) -> torch.Tensor:
    """Logits of a uint8 batch: ToTensor (/255) and the model's normalisation on the device."""
    with torch.inference_mode(), _autocast(device, precision):
        pixels = pixels_u8.float().div_(255.0)
        return model((pixels - mean) / std).float()


def _attacked_logits(pixel_model: PixelSpaceModel, spec: AttackSpec, pixels_u8: torch.Tensor,
                     labels: torch.Tensor, ids: torch.Tensor, seed: int, device: torch.device,
                     precision: str) -> torch.Tensor:
    """Logits of the attacked versions of a uint8 batch (attack in [0, 1] pixel space)."""
    pixels = pixels_u8.float().div_(255.0)
    with _autocast(device, precision):
        attacked = run_attack(spec, pixel_model, pixels, labels, seed, ids.tolist())
        with torch.no_grad():
            return pixel_model(attacked).float()


def evaluate_parts(model: nn.Module, parts: Sequence[Part], mean: Sequence[float],
                   std: Sequence[float], *, device: torch.device | str = "cpu",
                   precision: str = "fp32", batch_size: int = 64, workers: int = 0,
                   seed: int = 0, context: dd.DistContext | None = None,
                   progress: ProgressCallback | None = None
                   ) -> Iterator[tuple[int, dict[str, int]]]:
    """Yield (part index, summed integer counts) for every part, in order, as each finishes.

    One DataLoader serves all parts; under torchrun each rank reads its shard of every part
    (no padding) and the counts are summed over ranks before they are yielded (on every rank).
    Parts whose source is 'attack' are attacked (their corruption names the attack).
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

    dataset = PartsDataset(parts)
    shards = dd.shard([len(p.samples) for p in parts], context.rank, context.world_size)
    local_totals = [len(s) for s in shards]
    loader = DataLoader(
        dataset, batch_size=batch_size, sampler=dd.ShardSampler([i for s in shards for i in s]),
        num_workers=workers, pin_memory=device.type == "cuda", drop_last=False,
        prefetch_factor=4 if workers > 0 else None, persistent_workers=False,
    )
    progress.begin([(p.name, n) for p, n in zip(parts, local_totals, strict=True)])
    counts = torch.zeros(len(parts), len(COUNT_FIELDS), dtype=torch.long, device=device)
    seen = [0] * len(parts)
    next_part = 0

    def finished() -> Iterator[tuple[int, dict[str, int]]]:
        nonlocal next_part
        while next_part < len(parts) and seen[next_part] == local_totals[next_part]:
            total = dd.sum_counts(counts[next_part], context).cpu().tolist()
            yield next_part, dict(zip(COUNT_FIELDS, (int(v) for v in total), strict=True))
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
            else:
                logits = _predict(model, images[pick], mean_t, std_t, device, precision)
            hit1, hit5 = _score(logits, labels[pick], readable_dev[pick])
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
    for attack in config.attacks:
        attack_spec(attack)
    if config.data is None and config.generate_from is None and config.clean is None:
        raise GfbenchError("nothing to evaluate: give --data (ImageNet-C), --generate-from, "
                           "--clean or --attack with --clean")
    if config.limit is not None and config.limit < 1:
        raise GfbenchError(f"--limit {config.limit}: must be at least 1 image per class")
    for folder, option in ((config.clean, "--clean"), (config.generate_from, "--generate-from")):
        if folder is not None:
            folder_class_names(require_folder(folder, option), option)
    if config.data is not None:
        severity_folders(config.data, config.corruptions, config.severities)


def plan_parts(config: RobustnessConfig, bundle: ModelBundle) -> list[Part]:
    """The parts to evaluate, in order: clean, ImageNet-C, generated, attacks."""
    check_config(config)
    folders = severity_folders(config.data, config.corruptions, config.severities) \
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
    labels = _labels_for(roots, config.class_map, bundle.num_classes, options)

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
                                severity=severity, seed=config.seed)
                parts.append(Part("generated", corruption, severity, source, recipe))
    for attack in config.attacks:
        parts.append(Part("attack", attack, 0, clean_samples, eval_recipe))
    return parts


def default_out(bundle: ModelBundle, checkpoint: Path) -> Path:
    """results/robustness-<model>-<checkpoint stem>: the setting in the file name."""
    return Path("results") / f"robustness-{bundle.name}-{Path(checkpoint).stem}"


def results_stem(out: Path) -> Path:
    """--out as a file stem: a trailing .json or .csv is dropped."""
    out = Path(out)
    return out.with_suffix("") if out.suffix in (".json", ".csv") else out


def run_settings(config: RobustnessConfig, bundle: ModelBundle) -> dict[str, object]:
    """The settings rows depend on; a resumed file must have been made with the same ones."""
    return {
        "limit": config.limit, "precision": config.precision, "class_map": config.class_map,
        "seed": config.seed, "input_size": list(bundle.input_size),
        "interpolation": bundle.interpolation, "crop_pct": bundle.crop_pct,
        "data": None if config.data is None else str(Path(config.data).resolve()),
        "clean": None if config.clean is None else str(Path(config.clean).resolve()),
        "generate_from": (None if config.generate_from is None
                          else str(Path(config.generate_from).resolve())),
    }


def resumable_settings(json_path: Path, settings: dict[str, object]) -> dict[str, object]:
    """The settings to record when resuming json_path: ResultsFileError when the file was made
    with other settings; folders given before but not now are kept."""
    provenance, _ = read_results(json_path)
    previous = provenance.extra.get("settings") or {}
    optional = ("data", "clean", "generate_from")  # a folder given once only adds other parts
    clashes = [f"{k} {previous[k]!r} vs {v!r}" for k, v in settings.items()
               if k in previous and previous[k] != v
               and not (k in optional and (previous[k] is None or v is None))]
    if clashes:
        raise ResultsFileError(
            f"{json_path} was made with other settings ({'; '.join(clashes)}): use another "
            "--out, or --no-resume to start it again")
    return {k: previous.get(k) if v is None and k in optional else v
            for k, v in settings.items()}


def _row(bundle: ModelBundle, checkpoint: Path, part: Part, counts: dict[str, int],
         config: RobustnessConfig, device: torch.device) -> RobustnessRow:
    """The results row of a finished part."""
    images = counts["images"]
    eps = attack_spec(part.corruption).eps if part.source == "attack" else None
    return RobustnessRow(
        model=bundle.name, checkpoint=Path(checkpoint).name, source=part.source,
        corruption=part.corruption, severity=part.severity, images=images,
        correct_top1=counts["correct_top1"], correct_top5=counts["correct_top5"],
        unreadable=counts["unreadable"],
        error_top1=1 - counts["correct_top1"] / images if images else None,
        error_top5=1 - counts["correct_top5"] / images if images else None,
        eps=eps, precision=config.precision, device=device.type,
    )


def _open_writer(config: RobustnessConfig, bundle: ModelBundle, device: torch.device,
                 context: dd.DistContext, notes: list[str]) -> ResultsWriter:
    """The results writer (rank 0), resuming from an existing file made with the same settings."""
    stem = results_stem(config.out or default_out(bundle, config.checkpoint))
    settings = run_settings(config, bundle)
    if config.resume and stem.with_suffix(".json").exists():
        settings = resumable_settings(stem.with_suffix(".json"), settings)
    provenance = collect_provenance(
        "robustness", device=str(device), settings=settings, world_size=context.world_size,
        checkpoint_path=str(Path(config.checkpoint).resolve()), notes=notes,
        label_source=("canonical ImageNet-1k wnid list" if config.class_map == "imagenet"
                      else "sorted class folder names"),
    )
    return ResultsWriter(stem, provenance)


def run_robustness(config: RobustnessConfig, progress: ProgressCallback | None = None,
                   bundle: ModelBundle | None = None) -> RobustnessReport:
    """Evaluate a checkpoint as the options say, writing each part's row as it finishes.

    ``bundle`` replaces loading config.checkpoint (a model already in memory; its name and
    config.checkpoint's file name still label the rows)."""
    check_config(config)
    context = dd.init_distributed(config.device if config.device != "auto" else
                                  ("cuda" if torch.cuda.is_available() else "cpu"))
    try:
        return _run(config, context, progress if context.is_main else None, bundle)
    finally:
        dd.shutdown_distributed()


def _run(config: RobustnessConfig, context: dd.DistContext, progress: ProgressCallback | None,
         bundle: ModelBundle | None) -> RobustnessReport:
    """run_robustness inside the process group (if any)."""
    device = resolve_device(config.device, context)
    bundle = bundle or load_bundle(config.checkpoint, config.model)
    parts = plan_parts(config, bundle)
    notes = [GENERATED_NOTE] if config.generate_from is not None else []
    writer = _open_writer(config, bundle, device, context, notes) if context.is_main else None
    done = writer.done() if writer and config.resume else set()
    key = (bundle.name, Path(config.checkpoint).name)
    todo_flags = [(*key, p.source, p.corruption, p.severity) not in done for p in parts]
    todo_flags = dd.broadcast_from_main(todo_flags, context)
    todo = [p for p, flag in zip(parts, todo_flags, strict=True) if flag]
    resumed = [p.name for p, flag in zip(parts, todo_flags, strict=True) if not flag]

    started = time.perf_counter()
    evaluated = 0
    for index, counts in evaluate_parts(
            bundle.module, todo, bundle.mean, bundle.std, device=device,
            precision=config.precision, batch_size=config.batch_size, workers=config.workers,
            seed=config.seed, context=context, progress=progress):
        evaluated += counts["images"] + counts["unreadable"]
        row = _row(bundle, config.checkpoint, todo[index], counts, config, device)
        if writer is not None:
            writer.add(row)
        if progress is not None:
            progress.finish(index, row)
    seconds = time.perf_counter() - started
    if writer is None:
        return RobustnessReport([], [], None, None, resumed, evaluated, seconds, notes,
                                is_main=False, world_size=context.world_size)
    if not writer.rows:
        writer.flush()
    frame = _rows_frame(writer.rows)
    return RobustnessReport(list(writer.rows), summarize(frame), writer.json_path,
                            writer.csv_path, resumed, evaluated, seconds, notes,
                            world_size=context.world_size)


def _rows_frame(rows: Sequence[RobustnessRow]) -> pd.DataFrame:
    """Rows as a DataFrame with the RobustnessRow columns."""
    columns = [f.name for f in dataclasses.fields(RobustnessRow)]
    return pd.DataFrame([dataclasses.asdict(r) for r in rows], columns=columns)

