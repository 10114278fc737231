"""FGSM and PGD: inside the L-inf budget and the pixel range, seeded, and harmful to a
trained model; the normalisation sits inside the attacked function."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from robustness_helpers import GRATING_MEAN, GRATING_STD, gratings, pixels

from gfbench.errors import UnknownNameError
from gfbench.robustness.attacks import (
    ATTACKS,
    PixelSpaceModel,
    attack_spec,
    fgsm,
    pgd,
    run_attack,
    uniform_start,
)


@pytest.fixture(scope="module")
def batch():
    images, labels = gratings(160, np.random.default_rng(2))
    return pixels(images), torch.from_numpy(labels)


def accuracy(model, x, y) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def test_protocol_budgets():
    assert ATTACKS["fgsm"].eps == ATTACKS["fgsm"].step == 1 / 255
    assert (ATTACKS["pgd"].eps, ATTACKS["pgd"].step, ATTACKS["pgd"].steps) == (1 / 255,
                                                                             0.5 / 255, 5)
    assert ATTACKS["pgd"].random_start and not ATTACKS["fgsm"].random_start
    with pytest.raises(UnknownNameError, match="unknown attack 'cw'; known: fgsm, pgd"):
        attack_spec("cw")


@pytest.mark.parametrize("name", ["fgsm", "pgd"])
def test_attacks_stay_in_budget_and_range(name, grating_model, batch, one_thread):
    model = PixelSpaceModel(grating_model, GRATING_MEAN, GRATING_STD)
    x, y = batch
    x = x.clone()
    x[:8] = x[:8].round()  # saturated pixels: the range clamp must act
    for eps in (1 / 255, 8 / 255):
        spec = replace(ATTACKS[name], eps=eps, step=eps / 2 if name == "pgd" else eps)
        adversarial = run_attack(spec, model, x, y, seed=0, image_ids=range(len(x)))
        assert adversarial.shape == x.shape
        assert (adversarial - x).abs().max() <= eps + 1e-6
        assert adversarial.min() >= 0 and adversarial.max() <= 1
        assert (adversarial - x).abs().max() >= eps - 1e-6  # it does use the budget


def test_attacks_lower_accuracy_of_a_trained_model(grating_model, batch, one_thread):
    model = PixelSpaceModel(grating_model, GRATING_MEAN, GRATING_STD)
    x, y = batch
    clean = accuracy(model, x, y)
    assert clean >= 0.95
    for eps in (1 / 255, 8 / 255):
        attacked_fgsm = accuracy(model, fgsm(model, x, y, eps), y)
        start = uniform_start(0, range(len(x)), x.shape[1:], eps)
        attacked_pgd = accuracy(model, pgd(model, x, y, eps, eps / 4, 5, start), y)
        assert attacked_fgsm <= clean and attacked_pgd <= clean
    assert attacked_fgsm < clean - 0.05 and attacked_pgd < clean - 0.1


def test_pgd_start_is_per_image_and_seeded():
    first = uniform_start(3, [10, 11], (3, 4, 4), 0.1)
    assert torch.equal(first[1], uniform_start(3, [11], (3, 4, 4), 0.1)[0])  # batch-independent
    assert not torch.equal(first[0], first[1])
    assert first.abs().max() <= 0.1
    assert not torch.equal(first, uniform_start(4, [10, 11], (3, 4, 4), 0.1))


def test_normalisation_is_inside_the_attacked_function(grating_model, batch):
    model = PixelSpaceModel(grating_model, GRATING_MEAN, GRATING_STD)
    x, _ = batch
    mean = torch.tensor(GRATING_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(GRATING_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(model(x[:4]), grating_model((x[:4] - mean) / std))


class ConfidentLinear(torch.nn.Module):
    """4 classes, class 0 ahead by 15 logits: d(loss)/d(logit) ~ 1e-6 and the input gradient
    ~1e-8, below half precision's smallest number (6e-8), yet its sign is clear in fp32."""

    def __init__(self):
        super().__init__()
        signs = torch.from_numpy(np.random.default_rng(5).choice([-1.0, 1.0], 48)).float()
        weight = 0.01 * torch.stack([-signs, signs, signs, signs])
        self.linear = torch.nn.Linear(48, 4)
        with torch.no_grad():
            self.linear.weight.copy_(weight)
            self.linear.bias.copy_(torch.tensor([15.0, 0.0, 0.0, 0.0]))

    def forward(self, x):
        return self.linear(x.flatten(1))


@pytest.mark.parametrize("name", ["fgsm", "pgd"])
def test_fp16_attacks_scale_the_loss_so_gradients_do_not_underflow(name):
    from gfbench.robustness.attacks import FP16_LOSS_SCALE

    model = ConfidentLinear().eval()
    x = torch.full((2, 3, 4, 4), 0.5)
    y = torch.zeros(2, dtype=torch.long)
    spec = ATTACKS[name]
    reference = run_attack(spec, model, x, y, seed=1, image_ids=[0, 1])  # fp32
    assert torch.all((reference - x).abs() > 0.5 / 255)  # every pixel moved
    with torch.autocast("cpu", dtype=torch.float16):
        unscaled = run_attack(spec, model, x, y, seed=1, image_ids=[0, 1])
        scaled = run_attack(spec, model, x, y, seed=1, image_ids=[0, 1],
                            loss_scale=FP16_LOSS_SCALE)
    start = x if name == "fgsm" else run_attack(replace(spec, steps=0), model, x, y, seed=1,
                                                image_ids=[0, 1])
    assert torch.equal(unscaled, start)  # the failure: a zero gradient, no step taken
    assert torch.equal(scaled, reference)  # with scaling: the fp32 answer


def test_loss_scale_backs_off_when_the_gradient_overflows():
    from gfbench.robustness.attacks import _input_gradient

    model = ConfidentLinear().eval()
    x = torch.full((2, 3, 4, 4), 0.5)
    y = torch.ones(2, dtype=torch.long)  # a wrong label: gradients of order 0.01
    reference = _input_gradient(model, x, y)
    with torch.autocast("cpu", dtype=torch.float16):
        gradient = _input_gradient(model, x, y, loss_scale=2.0**30)  # overflows half at first
    assert torch.isfinite(gradient).all()
    assert torch.allclose(gradient, reference, rtol=1e-2, atol=0)
