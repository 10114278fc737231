"""Calibration of the top-1 softmax: expected calibration error, negative log-likelihood and
Brier score, from sums a reader can add across parts and ranks (no torch here).

Definitions (Guo et al., ICML 2017; Ovadia et al., NeurIPS 2019 for the shift setting), over
the N readable images of a part, with p the softmax (over the 200 classes for ImageNet-A/R):
  confidence = max_k p_k; bin b (0..14) holds confidence in (b/15, (b+1)/15]
  ECE        = sum_b |correct_b - confidence_sum_b| / N   (= sum_b n_b/N |acc_b - conf_b|)
  NLL        = mean of -log p_label (nats)
  Brier      = mean of sum_k (p_k - [k = label])^2        (0..2)
A row keeps the 15 per-bin (count, confidence sum, correct) triples, so ECE is recomputed
exactly from the file, and the bins of several parts add up to the bins of their union.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

BINS = 15  # equal-width bins of the top-1 confidence (Guo et al. 2017)
# The per-image columns the evaluation loop writes (see CalibrationSums.from_images).
IMAGE_COLUMNS = ("readable", "correct", "confidence", "nll", "brier")


def bin_of(confidence: np.ndarray) -> np.ndarray:
    """The bin (0..14) of each confidence: (b/15, (b+1)/15] -> b; NaN falls in bin 0."""
    scaled = np.nan_to_num(np.ceil(np.asarray(confidence, dtype=np.float64) * BINS) - 1, nan=0)
    return np.clip(scaled, 0, BINS - 1).astype(np.int64)


def exact_sum(values: Iterable[float]) -> float:
    """The correctly rounded sum (math.fsum): the same float whatever the order or the split
    across ranks; NaN when the values mix +inf and -inf."""
    try:
        return math.fsum(values)
    except (ValueError, OverflowError):
        return math.nan


@dataclass(frozen=True)
class CalibrationSums:
    """What a part's calibration is made of: integer counts and exactly rounded float sums."""

    counts: tuple[int, ...]  # readable images per bin
    confidence: tuple[float, ...]  # sum of their top-1 confidence, per bin
    correct: tuple[int, ...]  # their top-1 hits, per bin
    nll_sum: float  # sum of -log p_label
    brier_sum: float  # sum of sum_k (p_k - y_k)^2

    @classmethod
    def empty(cls) -> CalibrationSums:
        """No image: the identity of +."""
        return cls((0,) * BINS, (0.0,) * BINS, (0,) * BINS, 0.0, 0.0)

    @classmethod
    def from_images(cls, values: np.ndarray) -> CalibrationSums:
        """The sums of per-image rows (readable, correct, confidence, nll, brier): rows not
        readable are left out, as they are from the error."""
        values = np.asarray(values, dtype=np.float64).reshape(-1, len(IMAGE_COLUMNS))
        kept = values[values[:, 0] > 0]
        correct, confidence = kept[:, 1] > 0, kept[:, 2]
        bins = bin_of(confidence)
        return cls(
            counts=tuple(int(n) for n in np.bincount(bins, minlength=BINS)),
            confidence=tuple(exact_sum(confidence[bins == b].tolist()) for b in range(BINS)),
            correct=tuple(int(n) for n in np.bincount(bins[correct], minlength=BINS)),
            nll_sum=exact_sum(kept[:, 3].tolist()), brier_sum=exact_sum(kept[:, 4].tolist()))

    def __add__(self, other: CalibrationSums) -> CalibrationSums:
        """The sums of two disjoint sets of images (parts pooled; float sums rounded once
        more each, so pooling is exact for the counts and within an ulp for the sums)."""
        return CalibrationSums(
            tuple(a + b for a, b in zip(self.counts, other.counts, strict=True)),
            tuple(a + b for a, b in zip(self.confidence, other.confidence, strict=True)),
            tuple(a + b for a, b in zip(self.correct, other.correct, strict=True)),
            self.nll_sum + other.nll_sum, self.brier_sum + other.brier_sum)

    @property
    def images(self) -> int:
        """Readable images counted."""
        return sum(self.counts)

    @property
    def ece(self) -> float | None:
        """Expected calibration error as a fraction (None without images)."""
        if not self.images:
            return None
        gap = exact_sum(abs(k - c) for k, c in zip(self.correct, self.confidence, strict=True))
        return gap / self.images

    @property
    def nll(self) -> float | None:
        """Mean negative log-likelihood in nats (None without images)."""
        return self.nll_sum / self.images if self.images else None

    @property
    def brier(self) -> float | None:
        """Mean multi-class Brier score, 0..2 (None without images)."""
        return self.brier_sum / self.images if self.images else None

    def accuracy(self) -> list[float | None]:
        """Top-1 accuracy per bin (None for an empty bin): the reliability diagram's bars."""
        return [k / n if n else None for k, n in zip(self.correct, self.counts, strict=True)]

    def mean_confidence(self) -> list[float | None]:
        """Mean top-1 confidence per bin (None for an empty bin)."""
        return [c / n if n else None for c, n in zip(self.confidence, self.counts, strict=True)]

    def bins_text(self) -> str:
        """The bins as one CSV- and JSON-safe string: 15 space-separated
        'count:confidence_sum:correct' triples, floats written to round-trip exactly."""
        return " ".join(f"{n}:{c!r}:{k}" for n, c, k in zip(self.counts, self.confidence,
                                                          self.correct, strict=True))


def parse_bins(text: object, nll: object = None, brier: object = None
               ) -> CalibrationSums | None:
    """A row's calibration back from its stored fields: the bins string (bins_text), and the
    mean NLL and Brier (times the images, for the sums); None when the row has no bins (a
    file written before calibration was computed) or they do not parse."""
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        triples = [item.split(":") for item in text.split()]
        counts = tuple(int(t[0]) for t in triples)
        confidence = tuple(float(t[1]) for t in triples)
        correct = tuple(int(t[2]) for t in triples)
    except (ValueError, IndexError):
        return None
    if len(triples) != BINS or any(len(t) != 3 for t in triples):
        return None
    n = sum(counts)

    def total(mean: object) -> float:
        """A stored mean back to a sum (NaN when absent)."""
        return float(mean) * n if isinstance(mean, (int, float)) and mean == mean else math.nan

    return CalibrationSums(counts, confidence, correct, total(nll), total(brier))


def pooled(sums: Sequence[CalibrationSums | None]) -> CalibrationSums | None:
    """The calibration of several parts together; None when any of them has none (a pool of
    the parts that do would misstate what was evaluated)."""
    if not sums or any(s is None for s in sums):
        return None
    total = CalibrationSums.empty()
    for s in sums:
        assert s is not None
        total = total + s
    return total
