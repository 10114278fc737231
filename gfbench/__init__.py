"""gfbench: how token mixers scale and how robust a checkpoint is.

Public API for notebooks and scripts::

    import gfbench
    model = gfbench.create_model("gfnet-xs", img_size=384)   # any gfbench or timm name
    model = gfbench.load_checkpoint("gfnet-xs.pth", img_size=384)  # architecture inferred

Importing gfbench registers the GFNet family in timm (``timm.create_model("gfnet_xs")``).
"""

from gfbench.models import canonical_name, create_model, load_checkpoint, parse_resolution

__version__ = "0.1.0"
__all__ = ["__version__", "canonical_name", "create_model", "load_checkpoint",
           "parse_resolution"]
