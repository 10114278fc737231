"""White-box L-inf attacks as the GFNet authors evaluated them: FGSM and PGD on [0, 1] pixels,
the model's normalisation inside the attacked function, images kept in the valid range.

Budgets are in [0, 1] pixel units: FGSM eps = step = 1/255; PGD eps = 1/255, 5 steps of
0.5/255 from a uniform random start in [-eps, eps], projected after every step.

Under fp16 autocast the backward pass runs in half precision, where input gradients below
~6e-8 flush to zero: the sign step then does nothing and accuracy under attack reads too
high. The loss is therefore scaled up before the backward pass (dynamic loss scaling, as in
mixed-precision training: halve the scale while the gradient overflows) and the gradient
scaled back; attacks only use its sign.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gfbench.errors import UnknownNameError


@dataclass(frozen=True)
class AttackSpec:
    """An attack's budget: eps (L-inf radius), step size, steps, random start or not."""

    name: str
    eps: float
    step: float
    steps: int
    random_start: bool


ATTACKS: dict[str, AttackSpec] = {
    "fgsm": AttackSpec("fgsm", eps=1 / 255, step=1 / 255, steps=1, random_start=False),
    "pgd": AttackSpec("pgd", eps=1 / 255, step=0.5 / 255, steps=5, random_start=True),
}


def attack_spec(name: str) -> AttackSpec:
    """The spec of a named attack; UnknownNameError listing the known ones."""
    try:
        return ATTACKS[name.strip().lower()]
    except KeyError:
        raise UnknownNameError(
            f"unknown attack {name!r}; known: {', '.join(ATTACKS)}") from None


class PixelSpaceModel(nn.Module):
    """The model as a function of [0, 1] pixels: (x - mean) / std happens inside, so gradients
    and budgets live in pixel space."""

    mean: torch.Tensor  # buffers, registered in __init__
    std: torch.Tensor

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model((pixels - self.mean) / self.std)


FP16_LOSS_SCALE = 2.0**14  # first scale tried under fp16 (halved while gradients overflow)


def _input_gradient(model: nn.Module, pixels: torch.Tensor, labels: torch.Tensor,
                    loss_scale: float = 1.0) -> torch.Tensor:
    """d(summed cross-entropy)/d(pixels): summed so each image's gradient ignores the batch.

    loss_scale > 1 multiplies the loss before the backward pass (so half-precision gradients
    do not underflow) and divides the gradient after; while it overflows, the scale halves."""
    pixels = pixels.detach().requires_grad_(True)
    while True:
        with torch.enable_grad():
            loss = F.cross_entropy(model(pixels).float(), labels, reduction="sum")
            (gradient,) = torch.autograd.grad(loss * loss_scale, pixels)
        if loss_scale <= 1.0 or bool(torch.isfinite(gradient).all()):
            return gradient / loss_scale
        loss_scale = max(1.0, loss_scale / 2)


def project(adversarial: torch.Tensor, clean: torch.Tensor, eps: float) -> torch.Tensor:
    """Back into the eps-ball around the clean images and into [0, 1]."""
    return (clean + (adversarial - clean).clamp(-eps, eps)).clamp(0.0, 1.0)


def fgsm(model: nn.Module, pixels: torch.Tensor, labels: torch.Tensor, eps: float = 1 / 255,
         step: float | None = None, loss_scale: float = 1.0) -> torch.Tensor:
    """Fast gradient sign method: one signed-gradient step (default step = eps)."""
    gradient = _input_gradient(model, pixels, labels, loss_scale)
    stepped = pixels + (eps if step is None else step) * gradient.sign()
    return project(stepped, pixels, eps).detach()


def pgd(model: nn.Module, pixels: torch.Tensor, labels: torch.Tensor, eps: float = 1 / 255,
        step: float = 0.5 / 255, steps: int = 5, start: torch.Tensor | None = None,
        loss_scale: float = 1.0) -> torch.Tensor:
    """Projected gradient descent (ascent on the loss) from `start` (a perturbation, e.g. from
    uniform_start), projected to the eps-ball and [0, 1] after every step."""
    adversarial = pixels if start is None else project(pixels + start, pixels, eps)
    for _ in range(steps):
        gradient = _input_gradient(model, adversarial, labels, loss_scale)
        adversarial = project(adversarial + step * gradient.sign(), pixels, eps).detach()
    return adversarial


def uniform_start(seed: int, image_ids: Sequence[int], shape: Sequence[int], eps: float
                  ) -> torch.Tensor:
    """Per-image uniform noise in [-eps, eps], seeded by (seed, image id): the same image gets
    the same start whatever batch or rank it lands in."""
    noise = [np.random.default_rng([seed, int(i)]).uniform(-eps, eps, size=tuple(shape))
             for i in image_ids]
    return torch.from_numpy(np.stack(noise).astype(np.float32))


def run_attack(spec: AttackSpec, model: nn.Module, pixels: torch.Tensor, labels: torch.Tensor,
               seed: int = 0, image_ids: Sequence[int] = (), loss_scale: float = 1.0
               ) -> torch.Tensor:
    """Attacked pixels for a batch under a spec (image_ids seed PGD's random start; pass
    FP16_LOSS_SCALE as loss_scale under fp16 autocast)."""
    if spec.steps == 1 and not spec.random_start:
        return fgsm(model, pixels, labels, spec.eps, spec.step, loss_scale)
    start = None
    if spec.random_start:
        start = uniform_start(seed, image_ids, pixels.shape[1:], spec.eps).to(pixels.device)
    return pgd(model, pixels, labels, spec.eps, spec.step, spec.steps, start, loss_scale)
