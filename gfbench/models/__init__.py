"""Model families (GFNet written here, the rest from timm), one factory, checkpoint loading."""

from gfbench.models.checkpoint import (
    Architecture,
    infer_architecture,
    load_checkpoint,
    read_state_dict,
    unwrap_state_dict,
)
from gfbench.models.factory import (
    ENTRIES,
    SHORT_NAMES,
    TRIO,
    canonical_name,
    check_resolution,
    count_params_on_meta,
    create_model,
    model_catalogue,
    parse_resolution,
    timm_name,
    token_grid,
)
from gfbench.models.gfnet import GFNet, GFNetPyramid, resize_state_dict

__all__ = [
    "ENTRIES", "SHORT_NAMES", "TRIO", "Architecture", "GFNet", "GFNetPyramid", "canonical_name",
    "check_resolution", "count_params_on_meta", "create_model", "infer_architecture",
    "load_checkpoint", "model_catalogue", "parse_resolution", "read_state_dict",
    "resize_state_dict", "timm_name", "token_grid", "unwrap_state_dict",
]
