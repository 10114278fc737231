"""Multi-head self-attention over a token grid, fused (SDPA) or explicit softmax(QK^T)V."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """timm-style attention (qkv Linear with bias, proj Linear) on (B, H, W, D) tokens.

    ``fused=True`` calls scaled_dot_product_attention (FlashAttention / memory-efficient
    kernels on CUDA); ``fused=False`` materialises the N x N attention matrix.
    """

    def __init__(self, dim: int, num_heads: int = 6, fused: bool = True):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.fused = fused
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, height, width, dim = x.shape
        tokens = height * width
        qkv = self.qkv(x.reshape(batch, tokens, dim))
        qkv = qkv.reshape(batch, tokens, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        if self.fused:
            out = F.scaled_dot_product_attention(q, k, v)
        else:
            attn = (q * self.scale) @ k.transpose(-2, -1)
            out = attn.softmax(dim=-1) @ v
        out = out.transpose(1, 2).reshape(batch, tokens, dim)
        return self.proj(out).reshape(batch, height, width, dim)
