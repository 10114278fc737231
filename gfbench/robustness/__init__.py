"""Robustness of a checkpoint: ImageNet-C (released or generated in memory), clean error and
FGSM/PGD, with the metrics (CE, mCE, relative mCE) computed from result rows.

Names are imported on first use, so the metrics (pandas only) serve `gfbench plot` without
loading torch.
"""

import importlib
from typing import Any

_EXPORTS = {
    "ATTACKS": "attacks", "PixelSpaceModel": "attacks", "fgsm": "attacks", "pgd": "attacks",
    "CORRUPTIONS": "corruptions", "corrupt": "corruptions", "image_rng": "corruptions",
    "imagenet_wnids": "data", "ModelBundle": "evaluate", "RobustnessConfig": "evaluate",
    "RobustnessReport": "evaluate", "evaluate_parts": "evaluate", "run_robustness": "evaluate",
    "RobustnessSummary": "metrics", "summarize": "metrics", "summary_frame": "metrics",
    "ALEXNET_ERROR": "protocol", "ALL_CORRUPTIONS": "protocol",
    "BENCHMARK_CORRUPTIONS": "protocol", "EXTRA_CORRUPTIONS": "protocol", "GROUPS": "protocol",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import the module that defines ``name`` on first access."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'gfbench.robustness' has no attribute {name!r}")
    return getattr(importlib.import_module(f"gfbench.robustness.{_EXPORTS[name]}"), name)
