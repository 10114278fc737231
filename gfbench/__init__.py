"""gfbench: how token mixers scale and how robust a checkpoint is.

Public API for notebooks and scripts::

    import gfbench
    model = gfbench.create_model("gfnet-xs", img_size=384)   # any gfbench or timm name
    model = gfbench.load_checkpoint("gfnet-xs.pth", img_size=384)  # architecture inferred

The names load torch and timm on first use, so ``import gfbench`` (and ``gfbench --help``)
stays instant. Importing ``gfbench.models`` (which these names do) registers the GFNet family
in timm (``timm.create_model("gfnet_xs")``).
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # static names for type checkers and IDEs; at run time __getattr__ imports them
    from gfbench.models import canonical_name as canonical_name
    from gfbench.models import create_model as create_model
    from gfbench.models import load_checkpoint as load_checkpoint
    from gfbench.models import parse_resolution as parse_resolution

__version__ = "0.1.0"
_API = ("canonical_name", "create_model", "load_checkpoint", "parse_resolution")
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    """Import gfbench.models (torch, timm) on the first use of an API name."""
    if name not in _API:
        raise AttributeError(f"module 'gfbench' has no attribute {name!r}")
    return getattr(importlib.import_module("gfbench.models"), name)
