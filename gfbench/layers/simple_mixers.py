"""The other token mixers the GFNet paper compares: spatial MLP, depthwise conv, pooling, FNet."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SpatialMLP(nn.Module):
    """ResMLP's token mixing: one Linear across the N = H*W tokens, shared by all channels."""

    def __init__(self, dim: int, height: int, width: int):
        super().__init__()
        self.tokens = height * width
        self.mix = nn.Linear(self.tokens, self.tokens)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, height, width, dim = x.shape
        y = self.mix(x.reshape(batch, height * width, dim).transpose(1, 2))
        return y.transpose(1, 2).reshape(batch, height, width, dim)


class DepthwiseConv(nn.Module):
    """A k x k depthwise convolution (one filter per channel, 'same' size output)."""

    def __init__(self, dim: int, kernel_size: int = 3):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.conv = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class Pooling(nn.Module):
    """PoolFormer's mixer: average pooling minus the input (no parameters)."""

    def __init__(self, pool_size: int = 3):
        super().__init__()
        self.pool_size = pool_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.permute(0, 3, 1, 2)
        pooled = F.avg_pool2d(y, self.pool_size, stride=1, padding=self.pool_size // 2,
                              count_include_pad=False)
        return (pooled - y).permute(0, 2, 3, 1)


class FourierMixing(nn.Module):
    """FNet's mixer: real part of a 2D FFT over the token and channel axes (no parameters)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, height, width, dim = x.shape
        y = torch.fft.fft2(x.float().reshape(batch, height * width, dim), dim=(1, 2)).real
        return y.reshape(batch, height, width, dim).to(x.dtype)


class IdentityMixer(nn.Identity):
    """No token mixing at all: the floor every other mixer is compared with."""
