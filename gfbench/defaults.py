"""One home for what every command assumes when not told: the models, sizes and output folder,
and the FLOP convention every count follows. Imports nothing heavy (the CLI's help uses it)."""

from __future__ import annotations

from pathlib import Path

DEFAULT_MODELS = ("gfnet", "deit", "resmlp")  # GFNet-XS, DeiT-S, ResMLP-12: the paper's trio
DEFAULT_RESOLUTIONS = ("224", "320", "448", "640")  # 4 sizes: enough to tell N log N from N^2
DEFAULT_TOKENS = ("14", "28", "56")  # token grids of bare mixers (224, 448, 896 at patch 16)
NATIVE = "native"  # --res native: each model's pretrained input size
DEFAULT_OUT = Path("runs")  # every command's default output folder (git ignores it)
PRECISION_NAMES = ("fp32", "bf16", "fp16")  # fp32 runs without autocast
# The crossover (gfbench.measure.crossover): which curves the global filter is set against.
# Names match by prefix after lower-casing and "-" -> "_" (gfnet_xs, deit_s, vit_small_...);
# mixer rows pair with mixers and model rows with models.
FFT_FAMILY = ("global_filter", "gfnet")  # the fast-filter kernel is the same mixer, impl fast
FFT_RIVALS = ("attention", "spatial_mlp", "deit", "vit", "resmlp")  # attention-like, spatial MLP
# The Fourier heat map (gfbench.robustness.fourier, Yin et al. 2019): the paper's ImageNet norm,
# and 15 x 15 frequencies (113 parts after mirroring, about 1.5x ImageNet-C's 75) rather than
# the paper's 224 x 224 (25,090 parts).
DEFAULT_FOURIER_EPS = 15.7
DEFAULT_FOURIER_GRID = 15

FLOP_CONVENTION = (
    "FLOPs follow fvcore and the papers: one fused multiply-add = one FLOP (so GFLOPs = GMACs, "
    "half of torch's 2*m*n*k); element-wise ops, softmax, activations and residual adds are "
    "not counted; normalisation layers are counted as fvcore does. Added rules: each 2D FFT "
    "(forward or inverse, real or complex) of an H x W x D feature = H*W*D*ceil(log2(H*W)) "
    "(the inverse counted on its output grid); the complex filter product = one per complex "
    "element; attention (SDPA, fused or explicit) = 2*N^2*D (QK^T and AV); average pooling = "
    "k*k per output element."
)
