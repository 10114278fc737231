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
    TokenGrid,
    canonical_name,
    check_forward,
    check_resolution,
    count_params_on_meta,
    create_model,
    model_catalogue,
    native_resolution,
    parse_resolution,
    record_token_grid,
    timm_name,
    token_grid,
)
from gfbench.models.gfnet import GFNet, GFNetPyramid, resize_state_dict
from gfbench.models.selection import (
    check_size_texts,
    chosen_models,
    model_sizes,
    read_spec_file,
    select_models,
    selection_catalogue,
)

__all__ = [
    "ENTRIES", "SHORT_NAMES", "Architecture", "GFNet", "GFNetPyramid", "TokenGrid",
    "canonical_name", "check_forward", "check_resolution", "check_size_texts", "chosen_models",
    "count_params_on_meta",
    "create_model", "infer_architecture", "load_checkpoint", "model_catalogue", "model_sizes",
    "native_resolution", "parse_resolution", "read_spec_file", "read_state_dict",
    "record_token_grid", "resize_state_dict", "select_models", "selection_catalogue",
    "timm_name", "token_grid", "unwrap_state_dict",
]
