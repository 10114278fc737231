"""GFNet's global filter: 2D real FFT over the token grid, learned complex product, inverse FFT."""

from __future__ import annotations

import math

import torch
from torch import nn

IMPLS = ("reference", "fast", "auto")


def fft_flops(height: int, width: int, dim: int) -> int:
    """FLOPs of one 2D FFT of an H x W x D feature under the GFNet authors' convention."""
    return height * width * dim * math.ceil(math.log2(height * width))


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

    Input and output are (B, H, W, D). ``impl`` picks the reference cuFFT path or gfbench's
    fused kernel (``gfbench.layers.fast_filter``); ``auto`` uses the fused kernel on CUDA.
    """

    def __init__(self, dim: int, height: int = 14, width: int | None = None,
                 impl: str = "reference"):
        super().__init__()
        width = height // 2 + 1 if width is None else width
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
        self.impl = impl
        self.complex_weight = nn.Parameter(torch.randn(height, width, dim, 2) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.impl != "reference":
            from gfbench.layers.fast_filter import global_filter

            return global_filter(x, self.complex_weight, impl=self.impl)
        return global_filter_reference(x, self.complex_weight)
