"""nn.Modules only: the token mixers and the MIXERS table of their specs."""

from gfbench.layers.attention import Attention
from gfbench.layers.global_filter import (
    GlobalFilter,
    fft_flops,
    filter_impl_used,
    global_filter_reference,
)
from gfbench.layers.mixers import (
    MIXERS,
    MixerSpec,
    build_mixer,
    default_heads,
    get_mixer,
    mixer_catalogue,
)
from gfbench.layers.simple_mixers import (
    DepthwiseConv,
    FourierMixing,
    IdentityMixer,
    Pooling,
    SpatialMLP,
)

__all__ = [
    "MIXERS", "Attention", "DepthwiseConv", "FourierMixing", "GlobalFilter", "IdentityMixer",
    "MixerSpec", "Pooling", "SpatialMLP", "build_mixer", "default_heads", "fft_flops",
    "filter_impl_used", "get_mixer", "global_filter_reference", "mixer_catalogue",
]
