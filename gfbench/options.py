"""What the options several commands share accept, checked in one place: each parser turns
the typed text into a value or fails in one line (GfbenchError) naming the option and what it
allows, so a bad value reads the same in every command. Imports nothing heavy."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gfbench.defaults import NATIVE, PRECISION_NAMES
from gfbench.errors import GfbenchError


class Names(tuple):
    """A comma list as typed (--models, --exclude, --mixers, --metrics...), blanks dropped."""


class Sizes(tuple):
    """--res values: 'N', 'HxW' or 'native', syntax checked."""


class BatchSizes(tuple):
    """--batch-size values: whole numbers >= 1, each once, in the order given."""


def comma_list(option: str, what: str) -> Callable[[str], Names]:
    """The parser of a comma-list option; an empty list is refused (it would silently mean
    the default)."""

    def parse(text: str) -> Names:
        parts = Names(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
        if not parts:
            raise GfbenchError(f"{option} is empty; give {what} (a comma list), or leave the "
                               "option out for the default")
        return parts

    return parse


_SIZE = re.compile(r"\s*\d+\s*(?:[xX×]\s*\d+\s*)?")


def parse_sizes(text: str) -> Sizes:
    """--res: '224,384x512,native' -> ('224', '384x512', 'native')."""
    values = comma_list("--res", "sizes such as 224, 384x512 or native")(text)
    for value in values:
        if value.lower() != NATIVE and (not _SIZE.fullmatch(value) or
                                        any(int(n) < 1 for n in re.findall(r"\d+", value))):
            raise GfbenchError(f"--res {value!r} is not a size: give N, HxW or native "
                               "(examples: 224, 384x512, native)")
    return Sizes(values)


def parse_batch_sizes(text: str) -> BatchSizes:
    """--batch-size: '1,8,32' -> (1, 8, 32); each a whole number >= 1."""
    values = comma_list("--batch-size", "whole numbers >= 1")(text)
    sizes = []
    for value in values:
        size = int(value) if value.isdigit() else 0
        if size < 1:
            raise GfbenchError(f"--batch-size {value!r} is not a whole number >= 1 "
                               "(a comma list is a batch sweep where the command takes one, "
                               "e.g. 1,8,32)")
        sizes.append(size)
    return BatchSizes(dict.fromkeys(sizes))


def one_batch_size(sizes: BatchSizes | None, command: str) -> int | None:
    """The one --batch-size of a command that times a single batch (None: not given)."""
    if sizes is None:
        return None
    if len(sizes) != 1:
        raise GfbenchError(f"--batch-size {','.join(map(str, sizes))}: {command} takes one "
                           "batch size, a whole number >= 1 (no sweep)")
    return int(sizes[0])


def parse_precision(text: str) -> str:
    """--precision: fp32, bf16 or fp16 (case and blanks ignored)."""
    value = text.strip().lower()
    if value not in PRECISION_NAMES:
        raise GfbenchError(f"--precision {text!r} is not one of {', '.join(PRECISION_NAMES)}")
    return value


_DEVICE = re.compile(r"auto|cpu|cuda(?::\d+)?")


def parse_device(text: str) -> str:
    """--device: auto, cpu, cuda or cuda:N (whether it exists here is checked when it is
    used, by gfbench.device.resolve_device)."""
    value = text.strip().lower()
    if not _DEVICE.fullmatch(value):
        raise GfbenchError(f"--device {text!r} is not one of auto, cpu, cuda, cuda:<index>")
    return value


def parse_spec(text: str) -> str:
    """--spec: a known device kind (gfbench.hardware, case ignored) or 'all'."""
    from gfbench.hardware import KNOWN_DEVICES

    value = text.strip().lower()
    if value != "all" and value not in KNOWN_DEVICES:
        raise GfbenchError(f"--spec {text!r} is not a known device kind; give all or one of "
                           f"{', '.join(KNOWN_DEVICES)}")
    return value


def parse_out(text: str) -> Path:
    """--out: a folder in every command (gfbench names the files it writes there); a name
    ending in .json is refused rather than becoming a folder called x.json."""
    if not text.strip():
        raise GfbenchError("--out is empty; give a folder (e.g. runs)")
    path = Path(text)
    if path.suffix.lower() in (".json", ".csv"):
        raise GfbenchError(f"--out {text!r} names a file; --out is a folder, and gfbench names "
                           "the files it writes in it (e.g. --out runs)")
    return path


JPEG_QUALITIES = range(1, 96)  # PIL's JPEG quality scale (above 95 PIL advises against it)


def check_jpeg_quality(value: int) -> int:
    """--jpeg-quality: a JPEG quality PIL takes, 1..95."""
    if value not in JPEG_QUALITIES:
        raise GfbenchError(f"--jpeg-quality {value} is not a whole number from 1 to 95 (PIL's "
                           "JPEG quality; the released ImageNet-C files were saved at 85)")
    return value


def parse_jpeg_quality(text: str) -> int:
    """--jpeg-quality: '85' -> 85, a whole number from 1 to 95."""
    value = text.strip()
    if not value.isdigit():
        raise GfbenchError(f"--jpeg-quality {text!r} is not a whole number from 1 to 95 (PIL's "
                           "JPEG quality; the released ImageNet-C files were saved at 85)")
    return check_jpeg_quality(int(value))


_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_SIZE_TEXT = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*")


@dataclass(frozen=True)
class MemoryBudget:
    """--fit-memory: the bytes a step may use, and what they are (a size, or a device kind's
    nominal capacity)."""

    bytes: int
    label: str  # "80 GiB (h100-sxm, nominal)" or "24GB"
    nominal: bool = False  # a vendor's nominal capacity (a device reports less as usable)


def parse_memory_budget(text: str) -> MemoryBudget:
    """--fit-memory: a size with its unit ('80GiB', '24GB', '512MiB') or a known device kind
    (gfbench.hardware.KNOWN_DEVICES: its nominal capacity)."""
    from gfbench.hardware import KNOWN_DEVICES

    kind = KNOWN_DEVICES.get(text.strip().lower())
    if kind is not None:
        return MemoryBudget(kind.memory_bytes, f"{kind.memory_gib:g} GiB ({kind.name}, nominal "
                            "capacity; usable memory is less)", nominal=True)
    match = _SIZE_TEXT.fullmatch(text)
    unit = _UNITS.get(match.group(2).lower()) if match else None
    if match is None or unit is None or float(match.group(1)) <= 0:
        raise GfbenchError(f"--fit-memory {text!r} is neither a size (a number and one of B, KB, "
                           f"MB, GB, TB, KiB, MiB, GiB, TiB, e.g. 80GiB) nor a known device "
                           f"kind ({', '.join(KNOWN_DEVICES)})")
    return MemoryBudget(int(float(match.group(1)) * unit), text.strip())
