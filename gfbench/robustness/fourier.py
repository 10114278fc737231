"""The Fourier heat map of Yin et al. (NeurIPS 2019, "A Fourier Perspective on Model Robustness
in Computer Vision", arXiv:1906.08988, Sec. 2): the top-1 error when one real Fourier basis
image U_{i,j} of L2 norm eps, with a random sign per image and channel, is added to the clean
[0, 1] image (before normalisation) and the result clipped to [0, 1].

U_{i,j} is the unit-norm real image whose 2-D DFT is non-zero only at (i, j) and its
conjugate-symmetric partner (-i, -j): a cosine, cos(2 pi (i m / H + j n / W)) normalised.
U_{i,j} and U_{-i,-j} are the same image, so only one half of a grid is evaluated and the
figures mirror it. Frequencies are signed and centred (the fftshift layout): -H//2..(H-1)//2.

Each frequency is one part (source "fourier", corruption "fourier:<i>,<j>@<eps>"), so a run
resumes per frequency and torchrun shards it like any other part. Imports no torch at module
level (the figures use the pure functions here).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from gfbench.defaults import DEFAULT_FOURIER_EPS as DEFAULT_FOURIER_EPS
from gfbench.defaults import DEFAULT_FOURIER_GRID as DEFAULT_FOURIER_GRID

if TYPE_CHECKING:
    import torch

PAPER = ('Yin et al., NeurIPS 2019, "A Fourier Perspective on Model Robustness in Computer '
         'Vision" (arXiv:1906.08988)')
SOURCE = "fourier"
# The paper's perturbation norms: 4 on CIFAR-10 (32x32), 15.7 on ImageNet (224x224), in [0, 1]
# pixel units, per channel.
PAPER_EPS_IMAGENET = 15.7
PAPER_EPS_CIFAR = 4.0
# DEFAULT_FOURIER_EPS (gfbench.defaults) is the paper's ImageNet norm, 15.7. DEFAULT_FOURIER_GRID:
# 15 x 15 frequencies (113 after dropping the mirrored half) cost 113 passes over the images:
# about 1.5 times the 75 parts of ImageNet-C; the paper's 224 x 224 grid is 25,090 passes. 15
# is odd, so the zero frequency and the axes are on the grid.
_STREAM = 0x46F0  # keeps the sign generator apart from the corruptions' generators
_NAME = re.compile(r"^fourier:(-?\d+),(-?\d+)@(.+)$")


@dataclass(frozen=True)
class FourierSpec:
    """One frequency of the heat map (signed, centred) and the perturbation's L2 norm."""

    ky: int  # vertical frequency, -H//2..(H-1)//2
    kx: int  # horizontal frequency
    eps: float  # L2 norm of the perturbation per channel, [0, 1] pixel units

    @property
    def corruption(self) -> str:
        """The row's corruption name: the frequency and eps, so other eps never resume it."""
        return f"fourier:{self.ky},{self.kx}@{float(self.eps)!r}"


def parse_corruption(name: str) -> FourierSpec | None:
    """The FourierSpec a row's corruption names, None when it is not a Fourier part."""
    found = _NAME.match(str(name))
    if found is None:
        return None
    try:
        return FourierSpec(int(found[1]), int(found[2]), float(found[3]))
    except ValueError:
        return None


def centred(k: int, side: int) -> int:
    """A frequency as fftshift places it: k modulo side, in -side//2..(side-1)//2."""
    return (k + side // 2) % side - side // 2


def axis_frequencies(side: int, n: int) -> list[int]:
    """n frequencies of one axis spread over the spectrum: all of them when n is the side,
    one is the zero frequency, else round(linspace(-K, K, n)) with K = (side-1)//2 (symmetric,
    so halves mirror)."""
    if n >= side:
        return list(range(-(side // 2), (side - 1) // 2 + 1))
    if n == 1:
        return [0]
    top = (side - 1) // 2
    return sorted({int(v) for v in np.round(np.linspace(-top, top, n))})


def grid_frequencies(size: tuple[int, int], n: int) -> list[tuple[int, int]]:
    """Every (ky, kx) of an n x n grid over an H x W image's spectrum, row-major."""
    return [(ky, kx) for ky in axis_frequencies(size[0], n) for kx in axis_frequencies(size[1], n)]


def partner(ky: int, kx: int, size: tuple[int, int]) -> tuple[int, int]:
    """The conjugate-symmetric frequency (-ky, -kx), centred: U of both is one image."""
    return centred(-ky, size[0]), centred(-kx, size[1])


def half_grid(size: tuple[int, int], n: int) -> list[tuple[int, int]]:
    """The frequencies of the grid to evaluate: of each pair {f, partner(f)} the one that is
    not smaller (ky > 0, or ky equal to its partner's and kx not smaller)."""
    return [f for f in grid_frequencies(size, n) if f >= partner(*f, size)]


def basis_image(size: tuple[int, int], ky: int, kx: int) -> np.ndarray:
    """U_{ky,kx}: the H x W real cosine of that frequency with unit L2 norm (float64)."""
    rows = np.arange(size[0])[:, None] / size[0]
    cols = np.arange(size[1])[None, :] / size[1]
    wave = np.cos(2.0 * math.pi * (ky * rows + kx * cols))
    return wave / np.linalg.norm(wave)


def image_signs(seed: int, key: str, spec: FourierSpec, size: tuple[int, int],
                channels: int = 3) -> np.ndarray:
    """The random sign (+1 or -1) per channel of one image: seeded by the run's seed, the
    image's key and the frequency, like the generated corruptions (workers, ranks and batch
    order cannot change them)."""
    from gfbench.robustness.corruptions import image_seed

    ky, kx = centred(spec.ky, size[0]) % size[0], centred(spec.kx, size[1]) % size[1]
    rng = np.random.default_rng([seed, image_seed(key), _STREAM, ky, kx])
    return np.where(rng.random(channels) < 0.5, -1.0, 1.0)


@functools.lru_cache(maxsize=4)
def _basis_cached(size: tuple[int, int], ky: int, kx: int) -> np.ndarray:
    """basis_image, kept for the batches of one part."""
    return basis_image(size, ky, kx)


def perturb(pixels: torch.Tensor, spec: FourierSpec, keys: Sequence[str], seed: int
            ) -> torch.Tensor:
    """A [0, 1] batch (B x C x H x W) plus eps * sign * U_{ky,kx} per image and channel,
    clipped to [0, 1]: the paper's perturbation, before the model's normalisation."""
    import torch

    size = (int(pixels.shape[-2]), int(pixels.shape[-1]))
    basis = torch.from_numpy(_basis_cached(size, spec.ky, spec.kx)).to(pixels.device,
                                                                       torch.float32)
    signs = np.stack([image_signs(seed, k, spec, size, pixels.shape[1]) for k in keys])
    scale = torch.from_numpy(signs * spec.eps).to(pixels.device, torch.float32)
    return (pixels + scale[:, :, None, None] * basis).clamp_(0.0, 1.0)


# --- reading the rows back: the heat map of each (model, checkpoint, eps) ---


@dataclass
class FourierMap:
    """One heat map: the error at every grid frequency (both halves), centred, in percent."""

    model: str
    checkpoint: str
    eps: float
    ky: list[int]  # the rows of `error`, ascending (negative frequencies first)
    kx: list[int]  # its columns
    error: np.ndarray  # top-1 error (%), NaN where no row has the frequency
    clean_error: float | None  # top-1 error (%) of the clean row, None when absent
    evaluated: int  # frequencies evaluated (rows), one per mirrored pair

    @property
    def change(self) -> np.ndarray | None:
        """The error minus the clean error (percentage points), None without a clean row."""
        return None if self.clean_error is None else self.error - self.clean_error

    def record(self) -> dict[str, object]:
        """The map as the results summary stores it (JSON: NaN as None)."""
        return {"model": self.model, "checkpoint": self.checkpoint, "eps": self.eps,
                "ky": self.ky, "kx": self.kx, "frequencies_evaluated": self.evaluated,
                "clean_error_top1_pct": self.clean_error,
                "error_top1_pct": [[None if math.isnan(v) else float(v) for v in row]
                                   for row in self.error]}


def _mirrored_axis(values: set[int]) -> list[int]:
    """A full axis from one half's values: each positive value's negative added (a negative
    value without its positive is the Nyquist frequency -side/2, its own mirror)."""
    return sorted(values | {-v for v in values if v > 0})


def fourier_maps(frame: pd.DataFrame) -> list[FourierMap]:
    """The heat maps that the Fourier rows of a frame of robustness rows hold, one per (model,
    checkpoint, eps), each frequency mirrored to its partner; the latest row of a part wins."""
    if frame.empty or "source" not in frame or not (frame["source"] == SOURCE).any():
        return []
    maps = []
    for (model, checkpoint), rows in frame.groupby(["model", "checkpoint"], sort=False):
        clean = rows[(rows["source"] == "clean") & (rows["images"] > 0)]
        clean_error = (None if clean.empty else
                       100.0 * (1.0 - clean["correct_top1"].iloc[-1] / clean["images"].iloc[-1]))
        by_eps: dict[float, dict[tuple[int, int], float]] = {}
        for row in rows[rows["source"] == SOURCE].itertuples():
            spec = parse_corruption(str(row.corruption))
            if spec is None or not row.images:
                continue
            error = 100.0 * (1.0 - float(row.correct_top1) / float(row.images))
            by_eps.setdefault(spec.eps, {})[(spec.ky, spec.kx)] = error
        for eps, errors in by_eps.items():
            ky = _mirrored_axis({f[0] for f in errors})
            kx = _mirrored_axis({f[1] for f in errors})
            grid = np.full((len(ky), len(kx)), np.nan)
            for i, y in enumerate(ky):
                for j, x in enumerate(kx):
                    mirror = (-y if -y in ky else y, -x if -x in kx else x)
                    value = errors.get((y, x), errors.get(mirror))
                    if value is not None:
                        grid[i, j] = value
            maps.append(FourierMap(str(model), str(checkpoint), eps, ky, kx, grid,
                                   clean_error, len(errors)))
    return maps
