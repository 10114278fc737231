"""The counting rules gfbench adds to both FLOP engines, in one table.

The convention these rules implement is stated once, in gfbench.defaults.FLOP_CONVENTION
(fvcore's: a multiply-add is one FLOP). Neither fvcore nor torch's ``FlopCounterMode``
counts FFTs, and fvcore counts nothing for ``scaled_dot_product_attention``; the rules below
fill those gaps. Each rule is a pure function of shapes, wrapped twice: as an fvcore
``Handle`` (jit values in, count out) keyed by the traced op name, and as a
``FlopCounterMode`` formula keyed by the aten op the dispatcher runs. The torch engine also
gets fvcore's normalisation, pooling and resampling counts, and torch's own dense formulas
(2*m*n*k) halved, so that both engines count the same ops in the same unit. A training
count's backward ops get the torch-side rules of their own (fused attention's recompute,
convolution gradients, pooling); matmul gradients are torch's halved ``mm``/``bmm``.

>>> fft_flops((1, 14, 14, 384), dims=(1, 2))  # one rfft2 of GFNet-XS's 14x14x384 feature
602112
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.flop_counter import flop_registry

from gfbench.layers.global_filter import fft_flops  # the one home of the FFT count rule

Shape = Sequence[int]
Handle = Callable[[list, list], int]  # fvcore's contract: (jit inputs, jit outputs) -> count
TorchFormula = Callable[..., int]  # FlopCounterMode raw formula: (*args, out_val=..., **kwargs)


# --- the rules, as pure functions of shapes -------------------------------------------------


def numel(shape: Shape) -> int:
    """Number of elements of a tensor of this shape."""
    return math.prod(int(s) for s in shape)


def complex_mul_flops(out_shape: Shape) -> int:
    """An element-wise product with a complex operand: one per complex output element."""
    return numel(out_shape)


def attention_flops(q_shape: Shape, k_shape: Shape, v_shape: Shape) -> int:
    """softmax(QK^T)V without the softmax: Nq*Nk*Dqk (QK^T) + Nq*Nk*Dv (AV) per batch*head."""
    batch_heads = numel(q_shape[:-2])
    n_q, d_qk = q_shape[-2], q_shape[-1]
    n_k, d_v = k_shape[-2], v_shape[-1]
    return batch_heads * n_q * n_k * (d_qk + d_v)


def attention_backward_flops(q_shape: Shape, k_shape: Shape, v_shape: Shape) -> int:
    """A fused attention kernel's backward, which keeps no N x N matrix and so recomputes the
    scores (FlashAttention, Dao et al. 2022, Algorithm 4): QK^T again (Dqk), dP = dO V^T (Dv),
    dV = P^T dO (Dv), dQ = dS K (Dqk), dK = dS^T Q (Dqk): Nq*Nk*(3*Dqk + 2*Dv) per batch*head,
    the multiply-adds of torch's ``sdpa_backward_flop_count`` (half its 2*m*n*k)."""
    batch_heads = numel(q_shape[:-2])
    n_q, d_qk = q_shape[-2], q_shape[-1]
    n_k, d_v = k_shape[-2], v_shape[-1]
    return batch_heads * n_q * n_k * (3 * d_qk + 2 * d_v)


def avg_pool_flops(out_shape: Shape, kernel: Sequence[int], spatial_dims: int) -> int:
    """Average pooling: k*k (k^d) additions per output element, as the mixer formulas say."""
    sizes = list(kernel) * spatial_dims if len(kernel) == 1 else list(kernel)
    return numel(out_shape) * numel(sizes)


def conv_flops(x_shape: Shape, w_shape: Shape, out_shape: Shape, transposed: bool = False) -> int:
    """A convolution: batch * weight elements * output positions (fvcore); a transposed one
    scatters every input position through the whole weight, so input positions there."""
    return x_shape[0] * numel(w_shape) * numel((x_shape if transposed else out_shape)[2:])


def conv_backward_flops(x_shape: Shape, w_shape: Shape, out_shape: Shape, transposed: bool,
                        input_grad: bool, weight_grad: bool) -> int:
    """A convolution's backward: each forward multiply-add x*w gives one to the input gradient
    (g*w) and one to the weight gradient (g*x), so each gradient computed costs the forward's
    count, whatever the stride, dilation or groups; the bias gradient is a sum (not counted)."""
    return conv_flops(x_shape, w_shape, out_shape, transposed) * (int(input_grad)
                                                                  + int(weight_grad))


def norm_flops(shape: Shape, affine: bool, training: bool = True) -> int:
    """fvcore's normalisation count: 5 (4 without affine) per element; 2 (1) for eval BatchNorm."""
    if training:
        return numel(shape) * (5 if affine else 4)
    return numel(shape) * (2 if affine else 1)


def scaled_elementwise_flops(shape: Shape, scale: int) -> int:
    """fvcore's element-wise counters: ``scale`` FLOPs per element of the given tensor."""
    return numel(shape) * scale


# --- fvcore side: jit values in, a count out ------------------------------------------------


def _jit_constant(value: Any) -> Any:
    """The Python value of a traced constant (lists included); None when it is not constant."""
    node = value.node()
    if node.kind() == "prim::ListConstruct":
        return [_jit_constant(v) for v in node.inputs()]
    return value.toIValue()


def _jit_shape(value: Any) -> list[int]:
    """Sizes of a traced tensor; TypeError for a non-tensor or a tensor of unknown sizes."""
    kind = value.type()
    sizes = kind.sizes() if isinstance(kind, torch._C.TensorType) else None
    if sizes is None:
        raise TypeError(f"expected a traced tensor of known sizes, got {kind}")
    return sizes


def _jit_is_complex(value: Any) -> bool:
    """Whether a traced value is a complex tensor."""
    kind = value.type()
    return isinstance(kind, torch._C.TensorType) and "Complex" in str(kind.scalarType())


def _resolve_dims(dim: Any, sizes: Any, ndim: int, default: Sequence[int] | None) -> list[int]:
    """The transformed axes of an FFT call, as non-negative indices."""
    if dim is None:
        if default is not None:
            dim = default
        elif sizes is not None:
            dim = range(-len(sizes), 0)
        else:
            dim = range(ndim)
    dims = [dim] if isinstance(dim, int) else list(dim)
    return [d % ndim for d in dims]


def _fft_jit(default_dims: Sequence[int] | None, one_dim: bool) -> Handle:
    """A handle for one family of torch.fft calls (1D, 2D or n-D signature)."""

    def handle(inputs: list, outputs: list) -> int:
        x, out = inputs[0], outputs[0]
        sizes = _jit_constant(inputs[1])
        sizes = [sizes] if one_dim and sizes is not None else sizes
        if _jit_is_complex(out) or not _jit_is_complex(x):
            # forward (or complex) transform: the input is the real grid, padded to s/n
            grid = list(_jit_shape(x)) if not _jit_is_complex(x) else list(_jit_shape(out))
            dims = _resolve_dims(_jit_constant(inputs[2]), sizes, len(grid), default_dims)
            if sizes is not None and not _jit_is_complex(x):
                for d, s in zip(dims, sizes, strict=False):
                    if s is not None and s > 0:
                        grid[d] = s
        else:  # complex in, real out: counted on the output grid
            grid = list(_jit_shape(out))
            dims = _resolve_dims(_jit_constant(inputs[2]), sizes, len(grid), default_dims)
        return fft_flops(grid, dims)

    return handle


def _jit_is_scalar(value: Any) -> bool:
    """Whether a traced operand is a number or a 0-d tensor (a scaling, not a product)."""
    kind = value.type()
    return not isinstance(kind, torch._C.TensorType) or kind.dim() == 0


def _complex_mul_jit(inputs: list, outputs: list) -> int:
    """aten::mul counts only when an operand is complex (a filter product) and none is a
    scalar (a complex scaled by a number is element-wise); real is free."""
    if any(_jit_is_complex(v) for v in inputs) and not any(_jit_is_scalar(v) for v in inputs[:2]):
        return complex_mul_flops(_jit_shape(outputs[0]))
    return 0


def _attention_jit(inputs: list, outputs: list) -> int:
    """aten::scaled_dot_product_attention(q, k, v, ...)."""
    return attention_flops(*(_jit_shape(v) for v in inputs[:3]))


def _avg_pool_jit(spatial_dims: int) -> Handle:
    """aten::avg_pool{1,2,3}d(x, kernel_size, ...)."""

    def handle(inputs: list, outputs: list) -> int:
        return avg_pool_flops(_jit_shape(outputs[0]), _jit_constant(inputs[1]), spatial_dims)

    return handle


def _convolution_mode_jit(inputs: list, outputs: list) -> int:
    """aten::_convolution_mode (padding='same'/'valid'): what fvcore's conv handle would count."""
    return conv_flops(_jit_shape(inputs[0]), _jit_shape(inputs[1]), _jit_shape(outputs[0]))


# --- torch side: raw dispatcher arguments in, a count out -----------------------------------


def _shape(value: Any) -> list[int]:
    """Shape of a tensor argument."""
    return list(value.shape)


def _fft_r2c(x: torch.Tensor, dim: Sequence[int], *_: Any, out_val: Any = None,
             **__: Any) -> int:
    """aten._fft_r2c(self, dim, normalization, onesided): the real input is the grid."""
    return fft_flops(_shape(x), [d % x.dim() for d in dim])


def _fft_on_output(x: torch.Tensor, dim: Sequence[int], *_: Any, out_val: Any = None,
                   **__: Any) -> int:
    """aten._fft_c2r / _fft_c2c: counted on the output grid (real for c2r)."""
    return fft_flops(_shape(out_val), [d % out_val.dim() for d in dim])


def _complex_mul(*args: Any, out_val: Any = None, **_: Any) -> int:
    """aten.mul: only a product of tensors with a complex operand counts; a complex scaled by
    a number (irfft's backward doubles its mirrored bins so) is element-wise, not counted."""
    tensors = [a for a in args if isinstance(a, torch.Tensor) and a.dim() > 0]
    if len(tensors) == 2 and any(a.is_complex() for a in tensors):
        return complex_mul_flops(_shape(out_val))
    return 0


def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *_: Any, out_val: Any = None,
               **__: Any) -> int:
    """Every fused SDPA kernel (flash, efficient, cudnn, CPU flash, the composite op)."""
    return attention_flops(_shape(q), _shape(k), _shape(v))


def _attention_backward(grad_out: torch.Tensor, q: torch.Tensor, k: torch.Tensor,
                        v: torch.Tensor, *_: Any, out_val: Any = None, **__: Any) -> int:
    """Every fused SDPA backward kernel: (grad_out, query, key, value, ...)."""
    return attention_backward_flops(_shape(q), _shape(k), _shape(v))


def _convolution_backward(grad_out: torch.Tensor, x: torch.Tensor, w: torch.Tensor,
                          _bias_sizes: Any, _stride: Any, _padding: Any, _dilation: Any,
                          transposed: bool, _output_padding: Any, _groups: Any,
                          output_mask: Sequence[bool], *_: Any, out_val: Any = None,
                          **__: Any) -> int:
    """aten.convolution_backward: the gradients output_mask asks for (torch's own formula
    counts a grouped convolution's weight gradient groups times over)."""
    return conv_backward_flops(_shape(x), _shape(w), _shape(grad_out), transposed,
                               input_grad=output_mask[0], weight_grad=output_mask[1])


def _avg_pool(spatial_dims: int) -> TorchFormula:
    """aten.avg_pool{2,3}d(x, kernel_size, ...)."""

    def formula(x: torch.Tensor, kernel: Sequence[int], *_: Any, out_val: Any = None,
                **__: Any) -> int:
        return avg_pool_flops(_shape(out_val), list(kernel), spatial_dims)

    return formula


def _avg_pool_backward(spatial_dims: int) -> TorchFormula:
    """aten.avg_pool{2,3}d_backward(grad_out, x, kernel_size, ...): each output's gradient is
    added to its k^d inputs, k^d per output element like the forward."""

    def formula(grad_out: torch.Tensor, x: torch.Tensor, kernel: Sequence[int], *_: Any,
                out_val: Any = None, **__: Any) -> int:
        return avg_pool_flops(_shape(grad_out), list(kernel), spatial_dims)

    return formula


def _layer_or_group_norm(x: torch.Tensor, *args: Any, out_val: Any = None, **_: Any) -> int:
    """aten.native_layer_norm(x, shape, weight, ...) / native_group_norm(x, weight, ...)."""
    weight = next((a for a in args if isinstance(a, torch.Tensor) or a is None), None)
    return norm_flops(_shape(x), affine=weight is not None)


def _batch_norm(x: torch.Tensor, weight: Any, *args: Any, out_val: Any = None, **_: Any) -> int:
    """Batch-norm kernels whose first bool argument says training (instance norm lands here)."""
    training = next(a for a in args if isinstance(a, bool))
    return norm_flops(_shape(x), affine=weight is not None, training=training)


def _batch_norm_eval(x: torch.Tensor, weight: Any, *_: Any, out_val: Any = None,
                     **__: Any) -> int:
    """aten._native_batch_norm_legit_no_training: inference BatchNorm."""
    return norm_flops(_shape(x), affine=weight is not None, training=False)


def _per_input_element(x: torch.Tensor, *_: Any, out_val: Any = None, **__: Any) -> int:
    """fvcore's adaptive_avg_pool2d count: one per input element."""
    return scaled_elementwise_flops(_shape(x), 1)


def _adaptive_pool_backward(grad_out: torch.Tensor, x: torch.Tensor, *_: Any,
                            out_val: Any = None, **__: Any) -> int:
    """aten._adaptive_avg_pool2d_backward(grad_out, x): one per input element, as forward."""
    return scaled_elementwise_flops(_shape(x), 1)


def _per_output_element(scale: int) -> TorchFormula:
    """fvcore's resampling counts: ``scale`` per output element."""

    def formula(*_: Any, out_val: Any = None, **__: Any) -> int:
        return scaled_elementwise_flops(_shape(out_val), scale)

    return formula


# --- the table -------------------------------------------------------------------------------

_FFT_FAMILIES = {  # torch.fft name stem -> (default dims, 1D signature)
    "": ((-1,), True),
    "2": ((-2, -1), False),
    "n": (None, False),
}


def _fft_handles() -> dict[str, Handle]:
    """fvcore handles for every torch.fft transform (fft, ifft, rfft, irfft, hfft, ihfft)."""
    return {
        f"aten::fft_{kind}{suffix}": _fft_jit(default, one_dim)
        for kind in ("fft", "ifft", "rfft", "irfft", "hfft", "ihfft")
        for suffix, (default, one_dim) in _FFT_FAMILIES.items()
    }


@dataclass(frozen=True)
class CountingRule:
    """One counting rule: what it counts, and its fvcore handles and torch formulas by op name."""

    name: str
    counts: str
    fvcore: Mapping[str, Handle] = field(default_factory=dict)
    torch: Mapping[str, TorchFormula] = field(default_factory=dict)


RULES: tuple[CountingRule, ...] = (
    CountingRule(
        "fft", "each FFT = elements of its real grid * ceil(log2(points transformed)); inverse "
        "on its output grid",
        fvcore=_fft_handles(),
        torch={"_fft_r2c": _fft_r2c, "_fft_c2r": _fft_on_output, "_fft_c2c": _fft_on_output},
    ),
    CountingRule(
        "complex_mul", "element-wise product with a complex operand = 1 per complex element",
        fvcore={"aten::mul": _complex_mul_jit, "aten::mul_": _complex_mul_jit},
        torch={"mul": _complex_mul, "mul_": _complex_mul},
    ),
    CountingRule(
        "attention", "fused attention (SDPA) = Nq*Nk*(Dqk+Dv) per batch and head (QK^T and AV)",
        fvcore={"aten::scaled_dot_product_attention": _attention_jit},
        torch={name: _attention for name in (
            "scaled_dot_product_attention", "_scaled_dot_product_flash_attention",
            "_scaled_dot_product_efficient_attention", "_scaled_dot_product_cudnn_attention",
            "_scaled_dot_product_flash_attention_for_cpu",
            "_scaled_dot_product_fused_attention_overrideable")},
    ),
    CountingRule(
        "attention_backward", "fused attention's backward (training) = Nq*Nk*(3*Dqk+2*Dv) per "
        "batch and head: it recomputes QK^T, then dP, dV, dQ, dK (FlashAttention's backward)",
        torch={name: _attention_backward for name in (
            "_scaled_dot_product_flash_attention_backward",
            "_scaled_dot_product_efficient_attention_backward",
            "_scaled_dot_product_cudnn_attention_backward",
            "_scaled_dot_product_flash_attention_for_cpu_backward",
            "_scaled_dot_product_fused_attention_overrideable_backward")},
    ),
    CountingRule(
        "convolution_backward", "a convolution's backward (training) = the forward's count per "
        "gradient computed (input, weight); grouped convolutions included",
        torch={"convolution_backward": _convolution_backward},
    ),
    CountingRule(
        "avg_pool", "average pooling = k*k per output element (PoolFormer's mixer)",
        fvcore={"aten::avg_pool1d": _avg_pool_jit(1), "aten::avg_pool2d": _avg_pool_jit(2),
                "aten::avg_pool3d": _avg_pool_jit(3)},
        torch={"avg_pool2d": _avg_pool(2), "avg_pool3d": _avg_pool(3),
               "avg_pool2d_backward": _avg_pool_backward(2),
               "avg_pool3d_backward": _avg_pool_backward(3)},
    ),
    CountingRule(
        "convolution_mode", "convolution with padding='same'/'valid' = fvcore's conv count "
        "(fvcore has no handle for aten::_convolution_mode; torch counts it as a convolution)",
        fvcore={"aten::_convolution_mode": _convolution_mode_jit},
    ),
    CountingRule(
        "normalisation", "fvcore's norm counts, for the torch engine: 5 per element with affine "
        "(4 without); eval BatchNorm 2 (1)",
        torch={"native_layer_norm": _layer_or_group_norm,
               "native_group_norm": _layer_or_group_norm,
               "_native_batch_norm_legit_no_training": _batch_norm_eval,
               **{name: _batch_norm for name in (
                   "native_batch_norm", "_native_batch_norm_legit", "cudnn_batch_norm",
                   "miopen_batch_norm")}},
    ),
    CountingRule(
        "resampling", "fvcore's counts, for the torch engine: adaptive average pooling 1 per "
        "input element (its backward too: one share of the gradient per input), nearest "
        "upsampling 1 and bilinear 4 per output element",
        torch={"_adaptive_avg_pool2d": _per_input_element,
               "_adaptive_avg_pool2d_backward": _adaptive_pool_backward,
               "upsample_nearest2d": _per_output_element(1),
               "upsample_bilinear2d": _per_output_element(4),
               "grid_sampler_2d": _per_output_element(4)},
    ),
)


def fvcore_handles() -> dict[str, Handle]:
    """Every gfbench handle for fvcore's ``set_op_handle``, by traced op name."""
    return {op: handle for rule in RULES for op, handle in rule.fvcore.items()}


def _raw(formula: TorchFormula) -> TorchFormula:
    """Mark a formula as taking raw tensors (FlopCounterMode would pass shapes otherwise)."""
    formula._get_raw = True  # type: ignore[attr-defined]
    return formula


def _halved(formula: TorchFormula) -> TorchFormula:
    """torch's built-in formula (2 * multiply-adds) in multiply-adds."""

    def multiply_adds(*args: Any, out_val: Any = None, **kwargs: Any) -> int:
        return formula(*args, out_val=out_val, **kwargs) // 2

    return _raw(multiply_adds)


def torch_mapping() -> dict[Any, TorchFormula]:
    """``custom_mapping`` for FlopCounterMode: torch's dense formulas halved, then gfbench's
    rules (those ops this torch build has).

    FlopCounterMode counts by op packet but decomposes every op whose *overload* is not a
    key (upsample_nearest2d would vanish into index arithmetic), so each overload of a
    counted op is a key too.
    """
    by_packet: dict[Any, TorchFormula] = {op: _halved(f) for op, f in flop_registry.items()}
    for rule in RULES:
        for name, formula in rule.torch.items():
            packet = getattr(torch.ops.aten, name, None)
            if packet is not None:
                by_packet[packet] = _raw(formula)
    mapping = dict(by_packet)
    for packet, formula in by_packet.items():
        if isinstance(packet, torch._ops.OpOverloadPacket):
            for overload in packet.overloads():
                mapping[getattr(packet, overload)] = formula
    return mapping
