"""Robustness of a checkpoint: ImageNet-C (released or generated in memory), clean error and
FGSM/PGD, with the metrics (CE, mCE, relative mCE) computed from result rows."""

from gfbench.robustness.attacks import ATTACKS, PixelSpaceModel, fgsm, pgd
from gfbench.robustness.corruptions import CORRUPTIONS, corrupt, image_rng
from gfbench.robustness.data import imagenet_wnids
from gfbench.robustness.evaluate import (
    ModelBundle,
    RobustnessConfig,
    RobustnessReport,
    evaluate_parts,
    run_robustness,
)
from gfbench.robustness.metrics import RobustnessSummary, summarize, summary_frame
from gfbench.robustness.protocol import (
    ALEXNET_ERROR,
    ALL_CORRUPTIONS,
    BENCHMARK_CORRUPTIONS,
    EXTRA_CORRUPTIONS,
    GROUPS,
)

__all__ = [
    "ALEXNET_ERROR", "ALL_CORRUPTIONS", "ATTACKS", "BENCHMARK_CORRUPTIONS", "CORRUPTIONS",
    "EXTRA_CORRUPTIONS", "GROUPS", "ModelBundle", "PixelSpaceModel", "RobustnessConfig",
    "RobustnessReport", "RobustnessSummary", "corrupt", "evaluate_parts", "fgsm",
    "image_rng", "imagenet_wnids", "pgd", "run_robustness", "summarize", "summary_frame",
]
