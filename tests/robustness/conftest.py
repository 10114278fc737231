"""Fixtures for the robustness tests (helpers live in robustness_helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from robustness_helpers import gratings, normalise, pixels
from torch import nn


@pytest.fixture(scope="session")
def grating_model() -> Iterator[nn.Module]:
    """A conv net trained (one thread, fixed seed, a second or two) to classify gratings by
    orientation; it takes normalised inputs (robustness_helpers.normalise)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    images, labels = gratings(1000, np.random.default_rng(0))
    x = normalise(pixels(images))
    y = torch.from_numpy(labels)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 5, stride=2, padding=2), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(16, 4))
    optimiser = torch.optim.Adam(model.parameters(), 5e-3)
    for _ in range(6):
        for batch in torch.randperm(len(x)).split(100):
            loss = F.cross_entropy(model(x[batch]), y[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    torch.set_num_threads(threads)
    yield model.eval()


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Run a CPU-heavy test on one thread (two threads on a busy 2-core box thrash)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
