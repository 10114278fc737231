"""GFNet's global filter: 2D real FFT over the token grid, learned complex product, inverse FFT."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
from torch import nn

# The global filter implementations a user can ask for: the released cuFFT formulation,
# gfbench's fused Triton kernels, or the kernels where they can run and the reference
# elsewhere (the fast path itself falls back per call where no kernel covers the input).
IMPLS = ("reference", "fast", "auto")
# What ran, per layer: a kernel route (fast_filter.ROUTES) reduces to "fast" or "reference".
_ROUTE_IMPL = {"fused": "fast", "split": "fast", "reference": "reference"}


def fft_flops(real_shape: Sequence[int], dims: Iterable[int]) -> int:
    """One FFT: elements of the real-domain grid times ceil(log2(points transformed)).

    ``real_shape`` is the full real grid (the input of a forward real FFT, the output of an
    inverse one, the tensor itself for a complex FFT); for rfft2 of (B, H, W, D) over (1, 2)
    this is B*H*W*D*ceil(log2(H*W)), the GFNet authors' count.
    """
    points = math.prod(int(real_shape[d]) for d in dims)
    return math.prod(int(s) for s in real_shape) * math.ceil(math.log2(points)) \
        if points > 1 else 0


def global_filter_reference(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The released formulation: float32 rfft2 (ortho), complex product, irfft2 to (H, W).

    x: (B, H, W, D) real; weight: (H, W//2+1, D, 2) real/imaginary parts. Returns float32.
    """
    height, width = x.shape[1], x.shape[2]
    spectrum = torch.fft.rfft2(x.float(), dim=(1, 2), norm="ortho")
    spectrum = spectrum * torch.view_as_complex(weight.float())
    return torch.fft.irfft2(spectrum, s=(height, width), dim=(1, 2), norm="ortho")


class GlobalFilter(nn.Module):
    """Token mixer of GFNet: a learned element-wise filter in the 2D frequency domain.

    Input and output are (B, H, W, D) on an H x W token grid (``width`` is the grid's width,
    as everywhere in gfbench; the filter keeps its W//2+1 non-redundant frequency columns).
    ``impl`` picks the reference cuFFT path or gfbench's fused kernel
    (``gfbench.layers.fast_filter``); ``auto`` uses the kernel where it can run.
    ``last_route`` says what the last forward ran: "fused", "split" or "reference".
    """

    def __init__(self, dim: int, height: int = 14, width: int | None = None,
                 impl: str = "reference"):
        super().__init__()
        width = height if width is None else width
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
        self.impl = impl
        self.last_route = ""
        self.complex_weight = nn.Parameter(torch.randn(height, width // 2 + 1, dim, 2) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.impl == "reference":
            self.last_route = "reference"
            return global_filter_reference(x, self.complex_weight)
        from gfbench.layers.fast_filter import filter_with_route

        y, self.last_route = filter_with_route(x, self.complex_weight, impl=self.impl)
        return y


def filter_impl_used(model: nn.Module) -> str:
    """What the global filters of a model ran on their last forward.

    "fast" or "reference" when every layer that ran took that path, "mixed" when some
    layers fell back to the reference (e.g. sides the kernels do not cover), "" when the
    model has no global filter or none has run.
    """
    ran = {_ROUTE_IMPL[m.last_route] for m in model.modules()
           if isinstance(m, GlobalFilter) and m.last_route}
    if len(ran) > 1:
        return "mixed"
    return ran.pop() if ran else ""
