"""Fused global filter: GFNet's rfft2 -> complex product -> irfft2 as DFT matrix products in Triton.

Semantics are exactly those of ``gfbench.layers.global_filter.global_filter_reference``:
x (B, H, W, D) channels-last, any float dtype; weight (H, W//2+1, D, 2); the spectrum is the
ortho-normalised 2D real DFT over (H, W) in float32, it is multiplied by the complex weight,
and the ortho inverse real DFT (irfft2 to (H, W)) comes back as float32.

The math, per channel (l < W//2+1 are the kept frequencies of the last axis):
  A = x F_W^T            rfft along W: Ar = cos/sqrt(W) x, Ai = -sin/sqrt(W) x
  X = F_H A              complex DFT along H: Xr = C Ar + S Ai, Xi = C Ai - S Ar
  Y = X * w              the learned complex filter
  Z = F_H^-1 Y           Zr = C Yr - S Yi, Zi = C Yi + S Yr
  y = sum_l c_l Re(Z_l e^{+2 pi i l w / W}) / sqrt(W)   (c_l = 1 at DC and Nyquist, else 2)
with C, S the ortho cos/sin matrices of H. The last line is irfft's Hermitian rule: the
imaginary part of the DC and Nyquist columns is ignored, every other column counts twice.
Every step is a product with a small precomputed matrix (``dft_matrices``), so it runs on
tensor cores (``tl.dot``) with float32 accumulation.

Two kernel routes (``plan_tiles``):
- ``fused``: one program per (channel block, image) loads the whole H x W x Dblk tile once,
  does all four transforms in registers and writes the result once. Sides up to 32 (padded
  sizes <= 32), any D, non-square allowed.
- ``split``: three kernels (rows: rfft along W; columns: DFT along H, filter, inverse DFT along
  H, in place; rows: irfft along W) through one float32 intermediate of (B, 2, H, W//2+1, D).
  Sides up to 256, any D, non-square allowed.
Larger sides, other dtypes, or a device where no kernel can run (no Triton, not CUDA, or a
compute capability below 8.0: ``kernel_support``) use the reference path.

The adjoint of the filter is the filter with the conjugate weight, so the backward pass for x
runs the same kernel; the weight gradient is sum_b c_l rfft2(grad) conj(rfft2(x)) in torch.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from gfbench.layers.global_filter import IMPLS, global_filter_reference

try:
    import triton
    import triton.language as tl
except ImportError:  # the reference path still works; select_route reports "reference"
    triton = None
    tl = None

ROUTES = ("fused", "split", "reference")
DOT_PRECISIONS = ("ieee", "tf32x3", "tf32")
# tl.dot with input_precision "tf32" / "tf32x3" runs on TF32 tensor cores, which start with
# Ampere (compute capability 8.0); older GPUs take the reference path.
MIN_CAPABILITY = (8, 0)
KERNEL_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
MIN_BLOCK = 16  # tl.dot needs every matrix dimension >= 16
FUSED_MAX_PADDED_SIDE = 32
SPLIT_MAX_PADDED_SIDE = 256
# Block sizes: chosen so that an sm_90 compile (Triton 3.8, 3xTF32) uses no or few spill
# registers; they are not yet tuned by timing on a GPU.
NUM_WARPS = 8
NUM_STAGES = 2  # software-pipelining depth of the split kernels' loops (3 overflows smem at 256)
FUSED_TILE_ELEMENTS = 4096  # padded H * padded (W//2+1) * channels held by one fused program
ROWS_TILE_ELEMENTS = 8192  # padded W * (image rows * channels) of one row-transform program
ROWS_MIN, ROWS_MAX = 64, 128  # image rows * channels of one row-transform program
COLUMNS_TILE_ELEMENTS = 4096  # padded H * (columns * channels) of one column program


def _pow2(n: int) -> int:
    """Smallest power of two >= n (and >= 1)."""
    return 1 << max(0, (n - 1).bit_length())


def _padded(n: int) -> int:
    """A matrix side as the kernels hold it: a power of two, at least MIN_BLOCK."""
    return max(MIN_BLOCK, _pow2(n))


@dataclass(frozen=True)
class TilePlan:
    """How the kernels cover one (H, W, D) problem: route, padded sizes and block sizes."""

    route: str  # "fused" | "split" | "reference"
    h_pad: int
    w_pad: int
    l_pad: int  # padded W//2+1
    block_d: int = 0  # fused: channels per program
    rows_block_h: int = 0  # split, row kernels: image rows per program
    rows_block_d: int = 0  # split, row kernels: channels per program
    cols_block_l: int = 0  # split, column kernel: frequency columns per program
    cols_block_d: int = 0  # split, column kernel: channels per program
    num_warps: int = NUM_WARPS
    num_stages: int = NUM_STAGES


def covered_route(height: int, width: int) -> str:
    """The kernel route that covers an H x W grid, or "reference" when none does."""
    side = max(_padded(height), _padded(width))
    if side <= FUSED_MAX_PADDED_SIDE:
        return "fused"
    if side <= SPLIT_MAX_PADDED_SIDE:
        return "split"
    return "reference"


def plan_tiles(height: int, width: int, dim: int, route: str | None = None) -> TilePlan:
    """Block sizes for an (H, W, D) problem; ``route`` forces one (any covered side fits split)."""
    route = covered_route(height, width) if route is None else route
    if route not in ROUTES:
        raise ValueError(f"route must be one of {ROUTES}, got {route!r}")
    hp, wp, lp = _padded(height), _padded(width), _padded(width // 2 + 1)
    if route == "fused" and max(hp, wp) > FUSED_MAX_PADDED_SIDE:
        raise ValueError(f"the fused route covers sides up to {FUSED_MAX_PADDED_SIDE}, "
                         f"got {height}x{width}")
    if route == "split" and max(hp, wp) > SPLIT_MAX_PADDED_SIDE:
        raise ValueError(f"the split route covers sides up to {SPLIT_MAX_PADDED_SIDE}, "
                         f"got {height}x{width}")
    channels = _pow2(dim)
    if route == "fused":
        block_d = min(channels, max(1, FUSED_TILE_ELEMENTS // (hp * lp)))
        return TilePlan(route, hp, wp, lp, block_d=block_d)
    if route == "split":
        rows_d = min(channels, 32)
        rows_n = min(ROWS_MAX, max(ROWS_MIN, ROWS_TILE_ELEMENTS // wp))
        cols_n = max(MIN_BLOCK, COLUMNS_TILE_ELEMENTS // hp)
        cols_d = min(channels, 32, cols_n)
        return TilePlan(route, hp, wp, lp,
                        rows_block_h=max(1, rows_n // rows_d), rows_block_d=rows_d,
                        cols_block_l=max(1, cols_n // cols_d), cols_block_d=cols_d)
    return TilePlan(route, hp, wp, lp)


def triton_available() -> bool:
    """Whether Triton could be imported (the kernels exist)."""
    return triton is not None


def interpreter_enabled() -> bool:
    """Whether the kernels were built by Triton's CPU interpreter (TRITON_INTERPRET=1 at import)."""
    return triton is not None and type(_fused_filter_kernel).__name__ == "InterpretedFunction"


def kernel_support(device: torch.device | str,
                   capability: tuple[int, int] | None = None) -> str:
    """Why the kernels cannot run on this device ("" when they can).

    They need Triton, and a CUDA device of compute capability >= ``MIN_CAPABILITY``
    (``capability`` replaces the device's own, for tests), or Triton's interpreter.
    """
    if triton is None:
        return "Triton is not installed"
    if interpreter_enabled():
        return ""
    device = torch.device(device)
    if device.type != "cuda":
        return f"the kernels run on CUDA devices, not {device.type}"
    major, minor = capability or torch.cuda.get_device_capability(device)
    if (major, minor) < MIN_CAPABILITY:
        return (f"compute capability {major}.{minor} is below the kernels' "
                f"{MIN_CAPABILITY[0]}.{MIN_CAPABILITY[1]} (TF32 tensor cores)")
    return ""


def kernel_can_run(device: torch.device | str,
                   capability: tuple[int, int] | None = None) -> bool:
    """Whether the kernels can run on this device (see ``kernel_support``)."""
    return kernel_support(device, capability) == ""


def select_route(x: torch.Tensor, weight: torch.Tensor) -> str:
    """The path global_filter takes for these tensors: "fused", "split" or "reference"."""
    if x.dim() != 4 or x.dtype not in KERNEL_DTYPES or weight.dtype not in KERNEL_DTYPES:
        return "reference"
    if not kernel_can_run(x.device) or x.numel() == 0:
        return "reference"
    return covered_route(x.shape[1], x.shape[2])


def default_dot_precision(dtype: torch.dtype) -> str:
    """Dot precision per input dtype: 3xTF32 (float32-accurate) for float32/64, TF32 otherwise."""
    return "tf32x3" if dtype in (torch.float32, torch.float64) else "tf32"


def _check_shapes(x: torch.Tensor, weight: torch.Tensor) -> None:
    """ValueError unless x is (B, H, W, D) and weight is (H, W//2+1, D, 2)."""
    if x.dim() != 4:
        raise ValueError(f"x must be (B, H, W, D), got shape {tuple(x.shape)}")
    _, height, width, dim = x.shape
    expected = (height, width // 2 + 1, dim, 2)
    if tuple(weight.shape) != expected:
        raise ValueError(f"weight must have shape {expected} for x of shape {tuple(x.shape)}, "
                         f"got {tuple(weight.shape)}")


def global_filter(x: torch.Tensor, weight: torch.Tensor, impl: str = "fast", *,
                  dot_precision: str | None = None) -> torch.Tensor:
    """GFNet's global filter by the Triton kernels where they cover x, else by the reference.

    ``impl`` "fast" and "auto" choose the same way (``select_route``): a kernel when x is on
    a CUDA device that can run it (``kernel_support``; or Triton's interpreter is on) and the
    sides are covered, otherwise ``global_filter_reference``; "reference" always takes the
    reference. ``dot_precision`` overrides the tl.dot precision ("ieee", "tf32x3", "tf32";
    default ``default_dot_precision(x.dtype)``).
    Returns float32 (B, H, W, D); differentiable in x and weight.
    """
    return filter_with_route(x, weight, impl, dot_precision=dot_precision)[0]


def filter_with_route(x: torch.Tensor, weight: torch.Tensor, impl: str = "fast", *,
                      dot_precision: str | None = None) -> tuple[torch.Tensor, str]:
    """``global_filter`` and the route it took ("fused", "split" or "reference")."""
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    if dot_precision is not None and dot_precision not in DOT_PRECISIONS:
        raise ValueError(f"dot_precision must be one of {DOT_PRECISIONS}, got {dot_precision!r}")
    _check_shapes(x, weight)
    route = "reference" if impl == "reference" else select_route(x, weight)
    if route == "reference":
        return global_filter_reference(x, weight), route
    precision = dot_precision or default_dot_precision(x.dtype)
    return FilterFunction.apply(x, weight, functools.partial(run_kernels, route=route,
                                                             precision=precision)), route


def column_weights(width: int, device: torch.device | str = "cpu",
                   dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """irfft's Hermitian multiplicity c_l of each kept column: 1 at DC and Nyquist, else 2."""
    weights = torch.ones(width // 2 + 1, device=device, dtype=dtype)
    weights[1:(width + 1) // 2] = 2.0
    return weights


def weight_gradient(x: torch.Tensor, grad_y: torch.Tensor) -> torch.Tensor:
    """d<grad_y, filter(x, w)>/dw = sum_b c_l rfft2(grad_y) conj(rfft2(x)), as (H, W//2+1, D, 2)."""
    dtype = torch.promote_types(torch.promote_types(x.dtype, grad_y.dtype), torch.float32)
    spectrum_x = torch.fft.rfft2(x.to(dtype), dim=(1, 2), norm="ortho")
    spectrum_g = torch.fft.rfft2(grad_y.to(dtype), dim=(1, 2), norm="ortho")
    product = (spectrum_g * spectrum_x.conj()).sum(0)
    product = product * column_weights(x.shape[2], x.device, dtype)[None, :, None]
    return torch.view_as_real(product)


FilterOp = Callable[[torch.Tensor, torch.Tensor, bool], torch.Tensor]


class FilterFunction(torch.autograd.Function):
    """Autograd for a filter operator ``op(x, weight, conjugate)`` with the reference's math.

    The filter is linear in x and its adjoint is the filter with the conjugate weight, so
    grad_x = op(grad_y, weight, True); grad_weight comes from ``weight_gradient``.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, op: FilterOp) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.op = op
        return op(x, weight, False)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y: torch.Tensor):
        x, weight = ctx.saved_tensors
        grad_x = grad_weight = None
        if ctx.needs_input_grad[0]:
            grad_x = ctx.op(grad_y.contiguous(), weight, True).to(x.dtype)
        if ctx.needs_input_grad[1]:
            grad_weight = weight_gradient(x, grad_y).to(weight.dtype)
        return grad_x, grad_weight, None


@dataclass(frozen=True)
class DftMatrices:
    """Ortho-normalised real DFT matrices of an H x W grid, zero-padded to the kernel sizes.

    For a row vector x over W: rfft(x) = x @ rfft_cos + i x @ rfft_sin; for a spectrum row z
    over W//2+1: irfft(z, W) = Re(z) @ irfft_cos + Im(z) @ irfft_sin; for a vector a over H:
    fft(a) = a @ dft_cos - i a @ dft_sin (all with norm="ortho").
    """

    rfft_cos: torch.Tensor  # (w_pad, l_pad): cos(2 pi l w / W) / sqrt(W)
    rfft_sin: torch.Tensor  # (w_pad, l_pad): -sin(2 pi l w / W) / sqrt(W)
    dft_cos: torch.Tensor  # (h_pad, h_pad): cos(2 pi k h / H) / sqrt(H), symmetric
    dft_sin: torch.Tensor  # (h_pad, h_pad): sin(2 pi k h / H) / sqrt(H), symmetric
    irfft_cos: torch.Tensor  # (l_pad, w_pad): c_l cos(2 pi l w / W) / sqrt(W)
    irfft_sin: torch.Tensor  # (l_pad, w_pad): -c_l sin(2 pi l w / W) / sqrt(W)


def _cos_sin(rows: int, cols: int, period: int) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of 2 pi r c / period, from the exact integer phase (r c mod period)."""
    phase = (np.arange(rows)[:, None] * np.arange(cols)[None, :]) % period
    angle = 2.0 * math.pi * phase / period
    cos, sin = np.cos(angle), np.sin(angle)
    cos[np.abs(cos) < 1e-12] = 0.0  # exact zeros where the phase is a quarter turn
    sin[np.abs(sin) < 1e-12] = 0.0  # and at DC / Nyquist, where irfft ignores imaginary parts
    return cos, sin


def _pad_to(matrix: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """The matrix in the top-left corner of a zero (rows, cols) array."""
    out = np.zeros((rows, cols))
    out[:matrix.shape[0], :matrix.shape[1]] = matrix
    return out


@functools.lru_cache(maxsize=64)
def dft_matrices(height: int, width: int, device: torch.device | str = "cpu") -> DftMatrices:
    """The six DFT matrices of an H x W grid, float32 on ``device``, cached per grid and device."""
    hp, wp, lp = _padded(height), _padded(width), _padded(width // 2 + 1)
    kept = width // 2 + 1
    w_cos, w_sin = _cos_sin(width, kept, width)  # (W, kept)
    w_cos, w_sin = w_cos / math.sqrt(width), w_sin / math.sqrt(width)
    h_cos, h_sin = _cos_sin(height, height, height)
    c_l = column_weights(width, dtype=torch.float64).numpy()

    def as_tensor(matrix: np.ndarray, rows: int, cols: int) -> torch.Tensor:
        return torch.tensor(_pad_to(matrix, rows, cols), dtype=torch.float32, device=device)

    return DftMatrices(
        rfft_cos=as_tensor(w_cos, wp, lp),
        rfft_sin=as_tensor(-w_sin, wp, lp),
        dft_cos=as_tensor(h_cos / math.sqrt(height), hp, hp),
        dft_sin=as_tensor(h_sin / math.sqrt(height), hp, hp),
        irfft_cos=as_tensor(c_l[:, None] * w_cos.T, lp, wp),
        irfft_sin=as_tensor(-c_l[:, None] * w_sin.T, lp, wp),
    )


def run_kernels(x: torch.Tensor, weight: torch.Tensor, conjugate: bool, route: str,
                precision: str) -> torch.Tensor:
    """The filter of x (float32 result) by the given kernel route; conjugate uses conj(weight)."""
    x, weight = x.contiguous(), weight.contiguous()
    batch, height, width, dim = x.shape
    plan = plan_tiles(height, width, dim, route)
    mats = dft_matrices(height, width, x.device)
    y = torch.empty(x.shape, dtype=torch.float32, device=x.device)
    kept = width // 2 + 1
    if plan.route == "fused":
        grid = (triton.cdiv(dim, plan.block_d), batch)
        _fused_filter_kernel[grid](
            x, weight, y, mats.rfft_cos, mats.rfft_sin, mats.dft_cos, mats.dft_sin,
            mats.irfft_cos, mats.irfft_sin, height, width, kept, dim,
            HP=plan.h_pad, WP=plan.w_pad, LP=plan.l_pad, DB=plan.block_d,
            CONJ=conjugate, PREC=precision, num_warps=plan.num_warps, num_stages=plan.num_stages)
        return y
    spectrum = torch.empty((batch, 2, height, kept, dim), dtype=torch.float32, device=x.device)
    rows_grid = (triton.cdiv(dim, plan.rows_block_d),
                 batch * triton.cdiv(height, plan.rows_block_h))
    _rows_forward_kernel[rows_grid](
        x, spectrum, mats.rfft_cos, mats.rfft_sin, height, width, kept, dim,
        WP=plan.w_pad, LP=plan.l_pad, LB=MIN_BLOCK, HB=plan.rows_block_h,
        DB=plan.rows_block_d, PREC=precision, num_warps=plan.num_warps, num_stages=plan.num_stages)
    cols_grid = (triton.cdiv(dim, plan.cols_block_d),
                 batch * triton.cdiv(kept, plan.cols_block_l))
    _columns_kernel[cols_grid](
        spectrum, weight, mats.dft_cos, mats.dft_sin, height, kept, dim,
        HP=plan.h_pad, HK=MIN_BLOCK, LB=plan.cols_block_l, DB=plan.cols_block_d,
        CONJ=conjugate, PREC=precision, num_warps=plan.num_warps, num_stages=plan.num_stages)
    _rows_inverse_kernel[rows_grid](
        spectrum, y, mats.irfft_cos, mats.irfft_sin, height, width, kept, dim,
        WP=plan.w_pad, LK=MIN_BLOCK, HB=plan.rows_block_h, DB=plan.rows_block_d,
        PREC=precision, num_warps=plan.num_warps, num_stages=plan.num_stages)
    return y


# Kernel layout: every tile is (rows, transform axis) with rows = (outer index, channel) and
# the channel fastest, so each transform is tile @ matrix: the data is the dot's A operand
# (M = rows, large) and the small DFT matrix its B operand.
if triton is not None:

    @triton.jit
    def _mm(a, b, PREC: tl.constexpr):
        """a @ b of float32 operands at the requested tl.dot precision, float32 accumulation."""
        return tl.dot(a, b, input_precision=PREC, out_dtype=tl.float32)

    @triton.jit
    def _mac(acc, a, b, PREC: tl.constexpr):
        """acc + a @ b, accumulated in place by the tensor cores (no extra accumulator)."""
        return tl.dot(a, b, acc=acc, input_precision=PREC, out_dtype=tl.float32)

    @triton.jit
    def _swap_outer(t, A: tl.constexpr, DB: tl.constexpr, B: tl.constexpr):
        """(A*DB, B) -> (B*DB, A): exchange the rows' outer index with the column index."""
        return tl.reshape(tl.permute(tl.reshape(t, (A, DB, B)), (2, 1, 0)), (B * DB, A))

    @triton.jit
    def _complex_weight(w_ptr, k, col, d, H, WH, D, CONJ: tl.constexpr):
        """Real and imaginary weight parts at broadcastable indices (k, col, d), zero outside."""
        mask = (k < H) & (col < WH) & (d < D)
        offs = ((k * WH + col) * D + d) * 2
        w_re = tl.load(w_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        w_im = tl.load(w_ptr + offs + 1, mask=mask, other=0.0).to(tl.float32)
        if CONJ:
            w_im = -w_im
        return w_re, w_im

    @triton.jit
    def _fused_filter_kernel(x_ptr, w_ptr, y_ptr, rc_ptr, rs_ptr, dc_ptr, ds_ptr,
                             ic_ptr, is_ptr, H, W, WH, D,
                             HP: tl.constexpr, WP: tl.constexpr, LP: tl.constexpr,
                             DB: tl.constexpr, CONJ: tl.constexpr, PREC: tl.constexpr):
        """One (channel block, image): load the H x W x DB tile, filter it, store it."""
        d0 = tl.program_id(0) * DB
        image = tl.program_id(1).to(tl.int64) * H * W * D
        x_ptr += image
        y_ptr += image
        r_w = tl.arange(0, WP)
        r_l = tl.arange(0, LP)
        r_h = tl.arange(0, HP)
        # x as (HP*DB rows, WP): row r is image row r // DB, channel d0 + r % DB
        row_h = tl.arange(0, HP * DB) // DB
        row_d = d0 + tl.arange(0, HP * DB) % DB
        offs = (row_h[:, None] * W + r_w[None, :]) * D + row_d[:, None]
        mask = (row_h[:, None] < H) & (row_d[:, None] < D) & (r_w[None, :] < W)
        x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        # rfft along W, then rows (l, channel) x columns h
        rc = tl.load(rc_ptr + r_w[:, None] * LP + r_l[None, :])
        rs = tl.load(rs_ptr + r_w[:, None] * LP + r_l[None, :])
        a_re = _swap_outer(_mm(x, rc, PREC), HP, DB, LP)
        a_im = _swap_outer(_mm(x, rs, PREC), HP, DB, LP)
        # complex DFT along H (cos and sin matrices are symmetric)
        dc = tl.load(dc_ptr + r_h[:, None] * HP + r_h[None, :])
        ds = tl.load(ds_ptr + r_h[:, None] * HP + r_h[None, :])
        s_re = _mac(_mm(a_re, dc, PREC), a_im, ds, PREC)
        s_im = _mac(_mm(a_im, dc, PREC), -a_re, ds, PREC)
        # the learned filter at (k, l, channel)
        row_l = tl.arange(0, LP * DB) // DB
        row_dl = d0 + tl.arange(0, LP * DB) % DB
        w_re, w_im = _complex_weight(w_ptr, r_h[None, :], row_l[:, None], row_dl[:, None],
                                     H, WH, D, CONJ)
        f_re = s_re * w_re - s_im * w_im
        f_im = s_re * w_im + s_im * w_re
        # inverse complex DFT along H, back to rows (h, channel), irfft along W
        z_re = _swap_outer(_mac(_mm(f_re, dc, PREC), -f_im, ds, PREC), LP, DB, HP)
        z_im = _swap_outer(_mac(_mm(f_im, dc, PREC), f_re, ds, PREC), LP, DB, HP)
        ic = tl.load(ic_ptr + r_l[:, None] * WP + r_w[None, :])
        iw = tl.load(is_ptr + r_l[:, None] * WP + r_w[None, :])
        y = _mac(_mm(z_re, ic, PREC), z_im, iw, PREC)
        tl.store(y_ptr + offs, y, mask=mask)

    @triton.jit
    def _rows_forward_kernel(x_ptr, s_ptr, rc_ptr, rs_ptr, H, W, WH, D,
                             WP: tl.constexpr, LP: tl.constexpr, LB: tl.constexpr,
                             HB: tl.constexpr, DB: tl.constexpr, PREC: tl.constexpr):
        """rfft along W of HB image rows x DB channels into the (B, 2, H, WH, D) spectrum."""
        d0 = tl.program_id(0) * DB
        blocks_h = tl.cdiv(H, HB)
        image = (tl.program_id(1) // blocks_h).to(tl.int64)
        x_ptr += image * H * W * D
        s_ptr += image * 2 * H * WH * D
        row_h = (tl.program_id(1) % blocks_h) * HB + tl.arange(0, HB * DB) // DB
        row_d = d0 + tl.arange(0, HB * DB) % DB
        rows_ok = (row_h[:, None] < H) & (row_d[:, None] < D)
        r_w = tl.arange(0, WP)
        offs = (row_h[:, None] * W + r_w[None, :]) * D + row_d[:, None]
        x = tl.load(x_ptr + offs, mask=rows_ok & (r_w[None, :] < W), other=0.0).to(tl.float32)
        plane = H * WH * D
        for l0 in range(0, WH, LB):
            r_l = l0 + tl.arange(0, LB)
            rc = tl.load(rc_ptr + r_w[:, None] * LP + r_l[None, :])
            rs = tl.load(rs_ptr + r_w[:, None] * LP + r_l[None, :])
            out = (row_h[:, None] * WH + r_l[None, :]) * D + row_d[:, None]
            out_mask = rows_ok & (r_l[None, :] < WH)
            tl.store(s_ptr + out, _mm(x, rc, PREC), mask=out_mask)
            tl.store(s_ptr + out + plane, _mm(x, rs, PREC), mask=out_mask)

    @triton.jit
    def _columns_kernel(s_ptr, w_ptr, dc_ptr, ds_ptr, H, WH, D,
                        HP: tl.constexpr, HK: tl.constexpr, LB: tl.constexpr,
                        DB: tl.constexpr, CONJ: tl.constexpr, PREC: tl.constexpr):
        """DFT along H, filter, inverse DFT along H of LB columns x DB channels, in place."""
        d0 = tl.program_id(0) * DB
        blocks_l = tl.cdiv(WH, LB)
        s_ptr += (tl.program_id(1) // blocks_l).to(tl.int64) * 2 * H * WH * D
        row_l = (tl.program_id(1) % blocks_l) * LB + tl.arange(0, LB * DB) // DB
        row_d = d0 + tl.arange(0, LB * DB) % DB
        rows_ok = (row_l[:, None] < WH) & (row_d[:, None] < D)
        r_k = tl.arange(0, HP)
        plane = H * WH * D
        s_re = tl.zeros((LB * DB, HP), dtype=tl.float32)
        s_im = tl.zeros((LB * DB, HP), dtype=tl.float32)
        for h0 in range(0, H, HK):
            r_h = h0 + tl.arange(0, HK)
            offs = (r_h[None, :] * WH + row_l[:, None]) * D + row_d[:, None]
            mask = rows_ok & (r_h[None, :] < H)
            a_re = tl.load(s_ptr + offs, mask=mask, other=0.0)
            a_im = tl.load(s_ptr + offs + plane, mask=mask, other=0.0)
            dc = tl.load(dc_ptr + r_h[:, None] * HP + r_k[None, :])
            ds = tl.load(ds_ptr + r_h[:, None] * HP + r_k[None, :])
            s_re = _mac(_mac(s_re, a_re, dc, PREC), a_im, ds, PREC)
            s_im = _mac(_mac(s_im, a_im, dc, PREC), -a_re, ds, PREC)
        w_re, w_im = _complex_weight(w_ptr, r_k[None, :], row_l[:, None], row_d[:, None],
                                     H, WH, D, CONJ)
        # the filtered spectrum goes back to this program's own tile (L2-resident), so the
        # inverse DFT can stream it in chunks of HK like the forward one
        offs = (r_k[None, :] * WH + row_l[:, None]) * D + row_d[:, None]
        mask = rows_ok & (r_k[None, :] < H)
        tl.debug_barrier()  # every load of the tile is done before it is overwritten
        tl.store(s_ptr + offs, s_re * w_re - s_im * w_im, mask=mask)
        tl.store(s_ptr + offs + plane, s_re * w_im + s_im * w_re, mask=mask)
        tl.debug_barrier()  # the filtered tile is visible to every thread of the program
        z_re = tl.zeros((LB * DB, HP), dtype=tl.float32)
        z_im = tl.zeros((LB * DB, HP), dtype=tl.float32)
        for k0 in range(0, H, HK):
            r_c = k0 + tl.arange(0, HK)
            chunk = (r_c[None, :] * WH + row_l[:, None]) * D + row_d[:, None]
            chunk_mask = rows_ok & (r_c[None, :] < H)
            f_re = tl.load(s_ptr + chunk, mask=chunk_mask, other=0.0, cache_modifier=".cg")
            f_im = tl.load(s_ptr + chunk + plane, mask=chunk_mask, other=0.0,
                           cache_modifier=".cg")
            dc = tl.load(dc_ptr + r_c[:, None] * HP + r_k[None, :])
            ds = tl.load(ds_ptr + r_c[:, None] * HP + r_k[None, :])
            z_re = _mac(_mac(z_re, f_re, dc, PREC), -f_im, ds, PREC)
            z_im = _mac(_mac(z_im, f_im, dc, PREC), f_re, ds, PREC)
        tl.debug_barrier()  # every load of the filtered tile is done before it is overwritten
        tl.store(s_ptr + offs, z_re, mask=mask)
        tl.store(s_ptr + offs + plane, z_im, mask=mask)

    @triton.jit
    def _rows_inverse_kernel(s_ptr, y_ptr, ic_ptr, is_ptr, H, W, WH, D,
                             WP: tl.constexpr, LK: tl.constexpr, HB: tl.constexpr,
                             DB: tl.constexpr, PREC: tl.constexpr):
        """irfft along W of HB image rows x DB channels from the filtered spectrum into y."""
        d0 = tl.program_id(0) * DB
        blocks_h = tl.cdiv(H, HB)
        image = (tl.program_id(1) // blocks_h).to(tl.int64)
        s_ptr += image * 2 * H * WH * D
        y_ptr += image * H * W * D
        row_h = (tl.program_id(1) % blocks_h) * HB + tl.arange(0, HB * DB) // DB
        row_d = d0 + tl.arange(0, HB * DB) % DB
        rows_ok = (row_h[:, None] < H) & (row_d[:, None] < D)
        r_w = tl.arange(0, WP)
        plane = H * WH * D
        y = tl.zeros((HB * DB, WP), dtype=tl.float32)
        for l0 in range(0, WH, LK):
            r_l = l0 + tl.arange(0, LK)
            offs = (row_h[:, None] * WH + r_l[None, :]) * D + row_d[:, None]
            mask = rows_ok & (r_l[None, :] < WH)
            z_re = tl.load(s_ptr + offs, mask=mask, other=0.0)
            z_im = tl.load(s_ptr + offs + plane, mask=mask, other=0.0)
            ic = tl.load(ic_ptr + r_l[:, None] * WP + r_w[None, :])
            iw = tl.load(is_ptr + r_l[:, None] * WP + r_w[None, :])
            y = _mac(_mac(y, z_re, ic, PREC), z_im, iw, PREC)
        offs = (row_h[:, None] * W + r_w[None, :]) * D + row_d[:, None]
        tl.store(y_ptr + offs, y, mask=rows_ok & (r_w[None, :] < W))
