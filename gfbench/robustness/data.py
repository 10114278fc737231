"""Reading evaluation images: the canonical wnid -> class index map, the ImageNet-C tree and
ImageNet-style class folders, and one Dataset that serves every (corruption, severity) part.

Labels come from the position of a folder's wnid in the canonical sorted list of the 1000
ImageNet-1k wnids (package data), never from the order of the folders that happen to exist,
so a subset of classes or a partial download keeps the right labels.
"""

from __future__ import annotations

import bisect
import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from gfbench.errors import DataError
from gfbench.robustness.fourier import FourierSpec
from gfbench.robustness.protocol import EVAL_SET_INFO

IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff")
CLASS_MAPS = ("imagenet", "folders")
GENERATION_RESIZE = 256  # ImageNet-C was made by Resize(256) + CenterCrop(224)
GENERATION_CROP = 224
PIL_FILTERS = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
               "nearest": Image.Resampling.NEAREST, "lanczos": Image.Resampling.LANCZOS,
               "box": Image.Resampling.BOX, "hamming": Image.Resampling.HAMMING}
LAYOUT = "<root>/<corruption>/<severity>/<wnid>/<image>.JPEG"

Resolution = tuple[int, int]


@functools.lru_cache(maxsize=1)
def imagenet_wnids() -> tuple[str, ...]:
    """The 1000 ImageNet-1k wnids in sorted order: position = class index of ImageNet models."""
    text = resources.files("gfbench").joinpath("data/imagenet_wnids.txt").read_text()
    return tuple(line.strip() for line in text.splitlines() if line.strip())


@dataclass(frozen=True)
class Sample:
    """One image to evaluate: its file, class index and path relative to its class root."""

    path: str
    label: int
    key: str  # "<wnid>/<file name>": stable across machines, seeds generated corruptions


@dataclass(frozen=True)
class Recipe:
    """How a part's files become model inputs (a plain dataclass so workers can pickle it).

    mode "as_is": decode, resize only when the size differs (ImageNet-C JPEGs are 224x224);
    "eval": resize to size/crop_pct and centre-crop (the model's clean-val transform);
    "generate": Resize(256) + CenterCrop(224), corrupt in memory, (with jpeg_quality) save as
    a JPEG of that quality and read back, as the released files were, resize if the model
    differs.
    """

    mode: str
    size: Resolution
    interpolation: str = "bicubic"
    crop_pct: float = 0.875
    corruption: str = ""
    severity: int = 0
    seed: int = 0
    jpeg_quality: int | None = None  # "generate": re-encode the corrupted crop as this JPEG

    def describe(self) -> str:
        """In words, what the files go through before ToTensor and the model's mean/std (the
        results file records it per source, so a reader knows what was scored)."""
        side = "x".join(map(str, self.size))
        if self.mode == "as_is":
            return f"decoded as released; resized to {side} ({self.interpolation}) only if not"
        if self.mode == "eval":
            cover = "x".join(str(math.floor(s / self.crop_pct)) for s in self.size)
            return (f"resized ({self.interpolation}) to cover {cover} (the model's crop_pct "
                    f"{self.crop_pct}), centre crop {side}")
        saved = ("" if self.jpeg_quality is None else
                 f", saved as JPEG quality {self.jpeg_quality} (PIL) and read back")
        return (f"resized (bilinear) to cover {GENERATION_RESIZE}x{GENERATION_RESIZE}, centre "
                f"crop {GENERATION_CROP}x{GENERATION_CROP}, corrupted in memory{saved}, resized "
                f"to {side} ({self.interpolation}) only if not")


@dataclass
class Part:
    """One unit of evaluation and of resume: a (source, corruption, severity) and its images."""

    source: str  # imagenet-c | generated | generated-bar | clean | attack | fourier | EVAL_SETS
    corruption: str
    severity: int
    samples: list[Sample]
    recipe: Recipe
    classes: tuple[int, ...] | None = None  # logit columns scored (a 200-class subset)
    fourier: FourierSpec | None = None  # the Fourier basis perturbation (source "fourier")

    @property
    def name(self) -> str:
        """Display name: 'clean', 'pgd', 'gaussian_noise/3' or 'generated gaussian_noise/3'."""
        name = self.corruption if self.severity == 0 else f"{self.corruption}/{self.severity}"
        return f"generated {name}" if self.recipe.mode == "generate" else name


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside a folder, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def class_folders(root: Path) -> list[Path]:
    """Sub-folders of a class root, sorted by name."""
    return sorted(p for p in root.iterdir() if p.is_dir())


def class_index(names: Iterable[str], class_map: str) -> dict[str, int]:
    """Class index per folder name: canonical ImageNet-1k position, or sorted-folder position.

    DataError when class_map is 'imagenet' and a folder is not an ImageNet-1k wnid.
    """
    names = sorted(set(names))
    if class_map == "folders":
        return {name: i for i, name in enumerate(names)}
    if class_map != "imagenet":
        raise DataError(f"unknown class map {class_map!r}; allowed: {', '.join(CLASS_MAPS)}")
    canonical = {wnid: i for i, wnid in enumerate(imagenet_wnids())}
    unknown = [n for n in names if n not in canonical]
    if unknown:
        shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5
                                          else "")
        raise DataError(
            f"class folders {shown} are not ImageNet-1k wnids (e.g. n01440764); for a data set "
            "with its own classes use --class-map folders"
        )
    return {name: canonical[name] for name in names}


def scan_classes(root: Path, labels: dict[str, int], limit: int | None) -> list[Sample]:
    """Samples of a class root (<root>/<class>/<image>), the first `limit` per class."""
    samples = []
    for folder in class_folders(root):
        files = list_images(folder)[:limit]
        samples += [Sample(str(f), labels[folder.name], f"{folder.name}/{f.name}") for f in files]
    return samples


def require_folder(path: Path, option: str) -> Path:
    """The folder, or DataError naming the option when it does not exist or is a file."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{option} {path}: no such folder")
    if not path.is_dir():
        raise DataError(f"{option} {path}: is a file, expected a folder")
    return path


def folder_class_names(root: Path, option: str) -> list[str]:
    """Names of the class folders that hold at least one image; DataError when there are none."""
    names = [f.name for f in class_folders(root) if list_images(f)]
    if not names:
        raise DataError(f"{option} {root}: no images found (expected {option} <root>/<wnid>/"
                        "<image>.JPEG, e.g. an ImageNet val folder)")
    return names


def severity_folders(root: Path, corruptions: Sequence[str],
                     severities: Sequence[int]) -> dict[tuple[str, int], Path]:
    """The (corruption, severity) class roots of an ImageNet-C tree; DataError listing every
    requested one that is absent or empty, with the --corruptions that would run."""
    root = require_folder(root, "--data")
    found: dict[tuple[str, int], Path] = {}
    missing: dict[str, list[int]] = {}
    for corruption in corruptions:
        for severity in severities:
            folder = root / corruption / str(severity)
            if folder.is_dir() and any(list_images(c) for c in class_folders(folder)):
                found[(corruption, severity)] = folder
            else:
                missing.setdefault(corruption, []).append(severity)
    if not found:
        raise DataError(f"--data {root}: none of the requested corruptions is there "
                        f"(expected {LAYOUT})")
    if missing:
        parts = [f"{c} ({'all' if len(s) == len(severities) else ','.join(map(str, s))})"
                 for c, s in missing.items()]
        complete = [c for c in corruptions if c not in missing]
        hint = (f"; run what is there with --corruptions {','.join(complete)}" if complete
                else "; choose the severities that are there with --severities")
        raise DataError(f"--data {root} lacks {', '.join(parts)}{hint}")
    return found


def resize_cover(image: Image.Image, size: Resolution, interpolation: str) -> Image.Image:
    """Resize so the image covers size (h, w) keeping its aspect ratio (shorter side = side)."""
    height, width = size
    scale = max(height / image.height, width / image.width)
    new_w = max(width, int(image.width * scale))
    new_h = max(height, int(image.height * scale))
    if (new_w, new_h) == image.size:
        return image
    return image.resize((new_w, new_h), PIL_FILTERS[interpolation])


def center_crop(image: Image.Image, size: Resolution) -> Image.Image:
    """The centre (h, w) window of an image at least that large."""
    height, width = size
    top = int(round((image.height - height) / 2.0))
    left = int(round((image.width - width) / 2.0))
    return image.crop((left, top, left + width, top + height))


def resize_exact(image: Image.Image, size: Resolution, interpolation: str) -> Image.Image:
    """The image at exactly (h, w), untouched when it already is."""
    if (image.height, image.width) == tuple(size):
        return image
    return image.resize((size[1], size[0]), PIL_FILTERS[interpolation])


def prepare(image: Image.Image, sample: Sample, recipe: Recipe) -> np.ndarray:
    """A decoded RGB image -> the HxWx3 uint8 array the model sees (before normalisation)."""
    if recipe.mode == "as_is":
        return np.asarray(resize_exact(image, recipe.size, recipe.interpolation))
    if recipe.mode == "eval":
        scale = (math.floor(recipe.size[0] / recipe.crop_pct),
                 math.floor(recipe.size[1] / recipe.crop_pct))
        image = resize_cover(image, scale, recipe.interpolation)
        return np.asarray(center_crop(image, recipe.size))
    crop = (GENERATION_CROP, GENERATION_CROP)
    image = center_crop(resize_cover(image, (GENERATION_RESIZE, GENERATION_RESIZE), "bilinear"),
                        crop)
    # the generator (and the scipy it needs) loads with the first generated image only: a run
    # on released files or clean images never pays for it
    from gfbench.robustness.corruptions import corrupt, image_rng, jpeg_roundtrip

    rng = image_rng(recipe.seed, sample.key, recipe.corruption, recipe.severity)
    corrupted = corrupt(np.asarray(image), recipe.corruption, recipe.severity, rng)
    if recipe.jpeg_quality is not None:
        corrupted = jpeg_roundtrip(corrupted, recipe.jpeg_quality)
    if crop == tuple(recipe.size):
        return corrupted
    return np.asarray(resize_exact(Image.fromarray(corrupted), recipe.size, recipe.interpolation))


class PartsDataset(Dataset):
    """Every image of every part behind one flat index, so one DataLoader (and its workers)
    feeds the whole run. Items: (uint8 3xHxW image, label, part index, index in the part,
    readable flag); an unreadable file yields a black image with readable=False, to be
    counted, not scored."""

    def __init__(self, parts: Sequence[Part]):
        self.parts = list(parts)
        self.offsets = [0]
        for part in self.parts:
            self.offsets.append(self.offsets[-1] + len(part.samples))

    def __len__(self) -> int:
        return self.offsets[-1]

    def locate(self, index: int) -> tuple[int, int]:
        """(part index, sample index) of a flat index."""
        part = bisect.bisect_right(self.offsets, index) - 1
        return part, index - self.offsets[part]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int, int, bool]:
        part_index, sample_index = self.locate(index)
        part = self.parts[part_index]
        sample = part.samples[sample_index]
        try:
            with Image.open(sample.path) as opened:
                array = prepare(opened.convert("RGB"), sample, part.recipe)
            readable = True
        except (OSError, ValueError, Image.DecompressionBombError):
            array = np.zeros((*part.recipe.size, 3), dtype=np.uint8)
            readable = False
        image = torch.from_numpy(np.array(array, dtype=np.uint8)).permute(2, 0, 1).contiguous()
        return image, sample.label, part_index, sample_index, readable


# --- the other standard test sets: ImageNet-A, -R, -Sketch, -V2 ---


@dataclass(frozen=True)
class EvalSet:
    """A released ImageNet test set: its option, folder naming and class subset (if any)."""

    name: str  # the row source: imagenet-a | imagenet-r | imagenet-sketch | imagenet-v2
    folders: str  # "wnid": <root>/<wnid>/<image>; "index": <root>/<0..999>/<image>
    subset_file: str | None  # package data listing the subset's wnids; None = all 1000
    source: str  # where the layout and the class list come from

    @property
    def title(self) -> str:
        """How people write its name."""
        return EVAL_SET_INFO[self.name][0]

    @property
    def option(self) -> str:
        """The CLI option that names its folder."""
        return f"--{self.name}"

    @property
    def layout(self) -> str:
        """The folder layout it expects, as the error messages show it."""
        return ("<root>/<class index 0..999>/<image>" if self.folders == "index"
                else "<root>/<wnid>/<image>")


EVAL_SETS: dict[str, EvalSet] = {
    "imagenet-a": EvalSet("imagenet-a", "wnid", "data/imagenet_a_wnids.txt",
                          "Hendrycks et al. 2021, github.com/hendrycks/natural-adv-examples"),
    "imagenet-r": EvalSet("imagenet-r", "wnid", "data/imagenet_r_wnids.txt",
                          "Hendrycks et al. 2021, github.com/hendrycks/imagenet-r"),
    "imagenet-sketch": EvalSet("imagenet-sketch", "wnid", None,
                               "Wang et al. 2019, github.com/HaohanWang/ImageNet-Sketch"),
    "imagenet-v2": EvalSet("imagenet-v2", "index", None,
                           "Recht et al. 2019, github.com/modestyachts/ImageNetV2"),
}


def read_wnid_list(text: str, where: str) -> tuple[str, ...]:
    """The ImageNet-1k wnids a subset file lists (one per line, sorted by class index);
    DataError naming any line that is not an ImageNet-1k wnid."""
    names = [line.strip() for line in text.splitlines() if line.strip()]
    canonical = {wnid: i for i, wnid in enumerate(imagenet_wnids())}
    unknown = [n for n in names if n not in canonical]
    if unknown:
        shown = ", ".join(unknown[:3]) + (f" and {len(unknown) - 3} more" if len(unknown) > 3
                                          else "")
        raise DataError(f"{where} names classes that are not ImageNet-1k wnids: {shown} "
                        "(expected one wnid per line, e.g. n01440764)")
    if len(set(names)) != len(names):
        raise DataError(f"{where} lists a wnid twice (expected each class once)")
    return tuple(sorted(names, key=canonical.__getitem__))


@functools.cache
def eval_set_classes(name: str) -> tuple[int, ...]:
    """The 1000-way class indices a test set is scored on, ascending (its logit columns)."""
    test_set = EVAL_SETS[name]
    if test_set.subset_file is None:
        return tuple(range(len(imagenet_wnids())))
    text = resources.files("gfbench").joinpath(test_set.subset_file).read_text()
    canonical = {wnid: i for i, wnid in enumerate(imagenet_wnids())}
    return tuple(canonical[w] for w in read_wnid_list(text, test_set.subset_file))


def _shown(names: Sequence[str]) -> str:
    """The first three names and how many more."""
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def eval_set_labels(root: Path, name: str) -> dict[str, int]:
    """1000-way class index per class folder of a test set's released layout: the canonical
    position of a wnid, or the number itself for ImageNetV2's 0..999 folders (never the sorted
    position of the folders present). DataError, naming what was expected, when a folder does
    not fit the layout or the set's classes, or when there are no images."""
    test_set = EVAL_SETS[name]
    root = require_folder(root, test_set.option)
    names = [f.name for f in class_folders(root) if list_images(f)]
    if not names:
        raise DataError(f"{test_set.option} {root}: no images found (expected "
                        f"{test_set.layout}, the {test_set.title} release)")
    wnids = imagenet_wnids()
    if test_set.folders == "index":
        bad = [n for n in names if not (n.isdigit() and str(int(n)) == n and int(n) < len(wnids))]
        if bad:
            hint = (" (these look like wnids: ImageNetV2 is released with folders named by "
                    "class index)" if all(b in set(wnids) for b in bad) else "")
            raise DataError(f"{test_set.option} {root}: folders {_shown(bad)} are not class "
                            f"indices 0..999 (expected {test_set.layout}){hint}")
        return {n: int(n) for n in names}
    allowed = {wnids[i]: i for i in eval_set_classes(name)}
    bad = [n for n in names if n not in allowed]
    if bad:
        what = (f"{len(allowed)} {test_set.title} classes" if test_set.subset_file
                else "ImageNet-1k wnids")
        raise DataError(f"{test_set.option} {root}: folders {_shown(bad)} are not among the "
                        f"{what} (expected {test_set.layout})")
    return {n: allowed[n] for n in names}
