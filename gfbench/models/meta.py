"""Models without their weights: built on the meta device with no initialisation, given real
(zeroed) storage only where an engine must run them, and fused to their deploy form.

Counting needs shapes, never values, so nothing here draws a random number:

* ``on_meta()`` builds on the meta device and skips the in-place writes that initialise
  weights (``trunc_normal_``, ``fill_``...): on meta they compute nothing, yet their Python
  decompositions were most of a timm model's build time.
* ``materialise(model)`` gives a meta model zeroed CPU storage (``to_empty``), then recomputes
  the buffers timm derives from the configuration (relative-position indices, RoPE tables),
  so fvcore can trace real tensors without paying for random initialisation.
* ``reparameterise(model)`` fuses re-parameterisable models (RepVGG, MobileOne, FastViT,
  LeViT...) with timm's ``reparameterize_model``; on meta, where the fused modules are built
  on meta too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

# In-place methods that change a tensor's shape, storage or autograd state rather than its
# values: they still run on meta (a later shape depends on them).
_METADATA_WRITES = frozenset({
    "resize_", "resize_as_", "set_", "as_strided_", "squeeze_", "unsqueeze_", "t_",
    "transpose_", "swapaxes_", "swapdims_", "requires_grad_", "detach_", "share_memory_",
    "rename_", "refine_names_", "align_to_",
})


class _SkipMetaWrites(TorchFunctionMode):
    """Makes in-place value writes to meta tensors no-ops: a meta tensor holds no values, so
    initialisation there only costs time (torch decomposes e.g. clamp_ in Python on meta)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        name = getattr(func, "__name__", "")
        if (name.endswith("_") and not name.endswith("__") and name not in _METADATA_WRITES
                and args and isinstance(args[0], torch.Tensor) and args[0].is_meta):
            return args[0]
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def on_meta() -> Iterator[None]:
    """Build modules on the meta device without initialising their weights (no values exist
    there to initialise): shapes, parameter counts and meta forwards as usual, in a fraction
    of the time."""
    with torch.device("meta"), _SkipMetaWrites():
        yield


def is_meta(model: nn.Module) -> bool:
    """Whether every parameter and buffer of the model is on the meta device."""
    return all(t.is_meta for t in (*model.parameters(), *model.buffers()))


def materialise(model: nn.Module, device: str | torch.device = "cpu") -> nn.Module:
    """The meta model, in place, with zeroed storage on ``device`` (no random initialisation:
    engines that run real tensors count shapes, not values). Buffers that timm modules can
    recompute from their configuration (``init_non_persistent_buffers``) are recomputed; any
    other buffer is zero, which is a valid index and a harmless mask."""
    model.to_empty(device=device)
    with torch.no_grad():
        for tensor in (*model.parameters(), *model.buffers()):
            tensor.zero_()
        for module in model.modules():
            init_buffers = getattr(module, "init_non_persistent_buffers", None)
            if callable(init_buffers):
                init_buffers()
    return model


def reparameterise(model: nn.Module) -> nn.Module:
    """The model fused to its deploy form (timm's ``reparameterize_model``, in eval mode, as
    some fusions require); on meta the fused modules are built on meta without initialising
    them. Models with nothing to fuse come back unchanged."""
    from timm.utils.model import reparameterize_model

    model.eval()
    if not is_meta(model):
        return reparameterize_model(model, inplace=True)
    with on_meta():
        return reparameterize_model(model, inplace=True)
