"""Robustness of a checkpoint: ImageNet-C (released or generated in memory), clean error and
FGSM/PGD, with the metrics (CE, mCE, relative mCE) computed from result rows.

Names are imported on first use, so the metrics (pandas only) serve `gfbench plot` without
loading torch.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # static names for type checkers and IDEs; at run time __getattr__ imports them
    from gfbench.robustness.attacks import ATTACKS as ATTACKS
    from gfbench.robustness.attacks import PixelSpaceModel as PixelSpaceModel
    from gfbench.robustness.attacks import fgsm as fgsm
    from gfbench.robustness.attacks import pgd as pgd
    from gfbench.robustness.corruptions import CORRUPTIONS as CORRUPTIONS
    from gfbench.robustness.corruptions import corrupt as corrupt
    from gfbench.robustness.corruptions import image_rng as image_rng
    from gfbench.robustness.data import imagenet_wnids as imagenet_wnids
    from gfbench.robustness.evaluate import ModelBundle as ModelBundle
    from gfbench.robustness.evaluate import RobustnessConfig as RobustnessConfig
    from gfbench.robustness.evaluate import RobustnessReport as RobustnessReport
    from gfbench.robustness.evaluate import evaluate_parts as evaluate_parts
    from gfbench.robustness.evaluate import run_robustness as run_robustness
    from gfbench.robustness.metrics import RobustnessSummary as RobustnessSummary
    from gfbench.robustness.metrics import summarize as summarize
    from gfbench.robustness.metrics import summary_frame as summary_frame
    from gfbench.robustness.protocol import ALEXNET_ERROR as ALEXNET_ERROR
    from gfbench.robustness.protocol import ALL_CORRUPTIONS as ALL_CORRUPTIONS
    from gfbench.robustness.protocol import BENCHMARK_CORRUPTIONS as BENCHMARK_CORRUPTIONS
    from gfbench.robustness.protocol import EXTRA_CORRUPTIONS as EXTRA_CORRUPTIONS
    from gfbench.robustness.protocol import GROUPS as GROUPS

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
