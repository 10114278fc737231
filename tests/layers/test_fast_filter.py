"""The fused global filter matches the reference: DFT matrices, backward math, and the Triton
kernels themselves run through Triton's CPU interpreter in a child process.

TRITON_INTERPRET is read when ``@triton.jit`` decorates the kernels (at import of
gfbench.layers.fast_filter), so the kernel checks run in a fresh interpreter: this file run as
a script with TRITON_INTERPRET=1 prints one JSON report, and the tests below assert on it.
Error metric everywhere: max |fast - reference| / max |reference| over the whole tensor.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gfbench.layers import fast_filter as ff
from gfbench.layers.global_filter import GlobalFilter, filter_impl_used, global_filter_reference

REPO = Path(__file__).resolve().parents[2]
FP32_TOL = 1e-5
BF16_TOL = 1e-2
HAS_TRITON = ff.triton_available()

# (name, (B, H, W, D), route forced or None for the route select_route picks, expected route)
FORWARD_CASES = [
    ("side7", (2, 7, 7, 16), None, "fused"),
    ("side8", (2, 8, 8, 32), None, "fused"),
    ("side14", (2, 14, 14, 64), None, "fused"),
    ("nonsquare6x11", (2, 6, 11, 24), None, "fused"),
    ("nonsquare12x7", (2, 12, 7, 16), None, "fused"),
    ("split14", (2, 14, 14, 32), "split", "split"),
    ("split9x12", (2, 9, 12, 24), "split", "split"),
    ("split34x6", (1, 34, 6, 16), None, "split"),
]
BACKWARD_CASES = [
    ("side8", (2, 8, 8, 32), None),
    ("nonsquare6x11", (2, 6, 11, 24), None),
    ("split9x12", (2, 9, 12, 24), "split"),
]
BF16_CASES = [("side14", (2, 14, 14, 64), None), ("split14", (2, 14, 14, 32), "split")]


def rel_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """max |actual - expected| / max |expected|: the accuracy metric of this module."""
    diff = (actual.double() - expected.double()).abs().max()
    return (diff / expected.double().abs().max()).item()


def _inputs(shape: tuple[int, ...], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random x and a GFNet-scale complex weight for a (B, H, W, D) shape."""
    gen = torch.Generator().manual_seed(seed)
    batch, height, width, dim = shape
    x = torch.randn(shape, generator=gen)
    weight = torch.randn(height, width // 2 + 1, dim, 2, generator=gen) * 0.02
    return x, weight


def _filter(x: torch.Tensor, weight: torch.Tensor, route: str | None) -> torch.Tensor:
    """global_filter, or the kernels of a forced route under the same autograd Function."""
    if route is None:
        return ff.global_filter(x, weight, impl="fast")
    op = functools.partial(ff.run_kernels, route=route, precision=ff.default_dot_precision(x.dtype))
    return ff.FilterFunction.apply(x, weight, op)


def interpreter_report() -> dict:
    """Every kernel check, computed in this process (which must have TRITON_INTERPRET=1)."""
    report: dict = {"interpreter": ff.interpreter_enabled(), "forward": {}, "bf16": {},
                    "backward": {}}
    for i, (name, shape, route, _) in enumerate(FORWARD_CASES):
        x, weight = _inputs(shape, seed=i)
        expected = global_filter_reference(x, weight)
        y = _filter(x, weight, route)
        report["forward"][name] = {
            "route": route or ff.select_route(x, weight),
            "error": rel_error(y, expected),
            "dtype": str(y.dtype),
            "ref_max": expected.abs().max().item(),
        }
    for i, (name, shape, route) in enumerate(BF16_CASES):
        x, weight = _inputs(shape, seed=100 + i)
        x = x.bfloat16()
        y = _filter(x, weight, route)
        report["bf16"][name] = {"route": route or ff.select_route(x, weight),
                                "error": rel_error(y, global_filter_reference(x, weight))}
    for i, (name, shape, route) in enumerate(BACKWARD_CASES):
        x, weight = _inputs(shape, seed=200 + i)
        grad_y = torch.randn(shape, generator=torch.Generator().manual_seed(300 + i))
        grads = []
        for fn in (functools.partial(_filter, route=route), global_filter_reference):
            xg, wg = x.clone().requires_grad_(), weight.clone().requires_grad_()
            fn(xg, wg).backward(grad_y)
            grads.append((xg.grad, wg.grad))
        (gx, gw), (rx, rw) = grads
        report["backward"][name] = {"route": route or ff.select_route(x, weight),
                                    "grad_x": rel_error(gx, rx), "grad_w": rel_error(gw, rw)}
    x, weight = _inputs((1, 260, 3, 2), seed=400)  # a side no kernel covers
    report["uncovered"] = {"route": ff.select_route(x, weight),
                           "equal": bool(torch.equal(ff.global_filter(x, weight),
                                                     global_filter_reference(x, weight)))}
    torch.manual_seed(500)
    module = GlobalFilter(32, 14, 14, impl="auto")
    reference = GlobalFilter(32, 14, 14)
    reference.load_state_dict(module.state_dict())
    x = torch.randn(2, 14, 14, 32)
    report["module_auto"] = {"route": ff.select_route(x, module.complex_weight),
                             "error": rel_error(module(x), reference(x)),
                             "last_route": module.last_route, "used": filter_impl_used(module)}
    covered, uncovered = GlobalFilter(2, 8, 8, impl="fast"), GlobalFilter(2, 260, 3, impl="fast")
    layers = torch.nn.ModuleList([covered, uncovered])
    before = filter_impl_used(layers)
    covered(torch.randn(1, 8, 8, 2))
    only_covered = filter_impl_used(layers)
    uncovered(torch.randn(1, 260, 3, 2))
    report["impl_used"] = [before, only_covered, filter_impl_used(layers), uncovered.last_route]
    return report


@pytest.fixture(scope="module")
def report() -> dict:
    """The interpreter report of a child process; fails loudly with its stderr if it crashed."""
    if not HAS_TRITON:
        pytest.skip("triton is not importable: the Triton kernels cannot be checked")
    # this checkout's gfbench, not whichever one the environment has installed
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": path}
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve())], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"interpreter run failed (rc {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_child_process_ran_the_interpreter(report):
    assert report["interpreter"] is True


@pytest.mark.parametrize("name,shape,route,expected_route", FORWARD_CASES)
def test_forward_fp32_matches_reference(report, name, shape, route, expected_route):
    case = report["forward"][name]
    assert case["route"] == expected_route  # the kernel ran, not the reference fallback
    assert case["dtype"] == "torch.float32"
    assert case["ref_max"] > 0.01  # the comparison is not between two zero tensors
    assert case["error"] <= FP32_TOL


@pytest.mark.parametrize("name", [c[0] for c in BF16_CASES])
def test_forward_bf16_input_matches_reference(report, name):
    case = report["bf16"][name]
    assert case["route"] in ("fused", "split")
    assert case["error"] <= BF16_TOL


@pytest.mark.parametrize("name", [c[0] for c in BACKWARD_CASES])
def test_backward_matches_reference_autograd(report, name):
    case = report["backward"][name]
    assert case["route"] in ("fused", "split")
    assert case["grad_x"] <= FP32_TOL
    assert case["grad_w"] <= FP32_TOL


def test_uncovered_side_falls_back_to_reference(report):
    assert report["uncovered"] == {"route": "reference", "equal": True}


def test_module_auto_uses_kernel_under_interpreter(report):
    assert report["module_auto"]["route"] == "fused"
    assert report["module_auto"]["error"] <= FP32_TOL
    assert report["module_auto"]["last_route"] == "fused"
    assert report["module_auto"]["used"] == "fast"


def test_impl_used_says_mixed_when_a_layer_fell_back(report):
    # nothing run yet, then only the kernel's layer, then also a layer no kernel covers
    assert report["impl_used"] == ["", "fast", "mixed", "reference"]


@pytest.mark.skipif(ff.interpreter_enabled(), reason="TRITON_INTERPRET=1 in this process")
@pytest.mark.parametrize("impl", ["reference", "auto", "fast"])
def test_rows_can_say_what_ran_on_the_cpu(impl):
    module = GlobalFilter(4, 6, 6, impl=impl)
    assert filter_impl_used(module) == ""
    module(torch.randn(1, 6, 6, 4))
    assert module.last_route == "reference" and filter_impl_used(module) == "reference"
    assert filter_impl_used(torch.nn.Linear(2, 2)) == ""


@pytest.mark.skipif(not HAS_TRITON or ff.interpreter_enabled(),
                    reason="needs Triton, without its interpreter")
@pytest.mark.parametrize("capability,runs", [((7, 0), False), ((7, 5), False), ((8, 0), True),
                                             ((8, 6), True), ((9, 0), True), ((12, 0), True)])
def test_kernels_need_compute_capability_8(capability, runs):
    reason = ff.kernel_support("cuda", capability=capability)
    assert ff.kernel_can_run("cuda", capability=capability) is runs
    assert (reason == "") is runs
    if not runs:
        assert f"{capability[0]}.{capability[1]}" in reason and "8.0" in reason


@pytest.mark.skipif(ff.interpreter_enabled(), reason="TRITON_INTERPRET=1 in this process")
def test_kernels_do_not_run_on_the_cpu():
    assert ff.kernel_support("cpu") in ("the kernels run on CUDA devices, not cpu",
                                        "Triton is not installed")


def test_width_is_the_grid_width():
    # one meaning everywhere: the H x W token grid; the filter keeps W//2+1 frequency columns
    assert GlobalFilter(8, 6, 10).complex_weight.shape == (6, 6, 8, 2)
    assert GlobalFilter(8, 6, 11).complex_weight.shape == (6, 6, 8, 2)
    assert GlobalFilter(8, 6).complex_weight.shape == (6, 4, 8, 2)


@pytest.mark.skipif(ff.interpreter_enabled(), reason="TRITON_INTERPRET=1 in this process")
@pytest.mark.parametrize("impl", ["auto", "fast"])
def test_cpu_without_interpreter_uses_reference(impl):
    x, weight = _inputs((2, 14, 14, 16), seed=1)
    assert ff.select_route(x, weight) == "reference"
    assert torch.equal(ff.global_filter(x, weight, impl=impl), global_filter_reference(x, weight))


def test_bad_arguments_raise():
    x, weight = _inputs((1, 8, 8, 4), seed=2)
    with pytest.raises(ValueError, match="impl"):
        ff.global_filter(x, weight, impl="cufft")
    with pytest.raises(ValueError, match="dot_precision"):
        ff.global_filter(x, weight, dot_precision="fp8")
    with pytest.raises(ValueError, match="weight must have shape"):
        ff.global_filter(x, weight[:, :4])


@pytest.mark.parametrize("height,width,route", [
    (7, 7, "fused"), (14, 14, "fused"), (12, 7, "fused"), (32, 32, "fused"), (33, 16, "split"),
    (64, 64, "split"), (128, 96, "split"), (256, 256, "split"), (257, 8, "reference"),
])
def test_covered_route(height, width, route):
    assert ff.covered_route(height, width) == route


@pytest.mark.parametrize("height,width,dim", [(14, 14, 384), (7, 5, 3), (64, 64, 384),
                                              (256, 256, 96)])
def test_plan_tiles_respects_dot_minimum(height, width, dim):
    plan = ff.plan_tiles(height, width, dim)
    assert min(plan.h_pad, plan.w_pad, plan.l_pad) >= ff.MIN_BLOCK
    assert plan.h_pad >= height and plan.w_pad >= width and plan.l_pad >= width // 2 + 1
    if plan.route == "fused":
        assert plan.block_d >= 1 and plan.h_pad * plan.l_pad * plan.block_d <= max(
            ff.FUSED_TILE_ELEMENTS, plan.h_pad * plan.l_pad)
    else:
        assert plan.rows_block_h * plan.rows_block_d >= ff.MIN_BLOCK
        assert plan.cols_block_l * plan.cols_block_d >= ff.MIN_BLOCK


def test_plan_tiles_rejects_a_forced_route_that_does_not_fit():
    with pytest.raises(ValueError, match="fused route covers"):
        ff.plan_tiles(64, 64, 8, "fused")


@pytest.mark.parametrize("width,expected", [(14, [1, 2, 2, 2, 2, 2, 2, 1]), (7, [1, 2, 2, 2]),
                                            (1, [1])])
def test_column_weights(width, expected):
    assert ff.column_weights(width).tolist() == expected


@pytest.mark.parametrize("height,width", [(7, 7), (6, 11), (14, 14), (5, 8)])
def test_dft_matrices_match_torch_fft(height, width):
    kept = width // 2 + 1
    mats = ff.dft_matrices(height, width)
    rfft_basis = torch.fft.rfft(torch.eye(width, dtype=torch.float64), norm="ortho")  # (W, kept)
    fft_basis = torch.fft.fft(torch.eye(height, dtype=torch.float64), norm="ortho")
    eye = torch.eye(kept, dtype=torch.complex128)
    irfft_re = torch.fft.irfft(eye, n=width, norm="ortho")  # row l: irfft of a 1 at column l
    irfft_im = torch.fft.irfft(1j * eye, n=width, norm="ortho")  # imaginary DC/Nyquist: zeros
    checks = [
        (mats.rfft_cos[:width, :kept], rfft_basis.real),
        (mats.rfft_sin[:width, :kept], rfft_basis.imag),
        (mats.dft_cos[:height, :height], fft_basis.real),
        (mats.dft_sin[:height, :height], -fft_basis.imag),
        (mats.irfft_cos[:kept, :width], irfft_re),
        (mats.irfft_sin[:kept, :width], irfft_im),
    ]
    for got, want in checks:
        torch.testing.assert_close(got.double(), want, atol=1e-7, rtol=0)
    # the padding is zero, so padded rows and columns add nothing
    for matrix, rows, cols in [(mats.rfft_cos, width, kept), (mats.rfft_sin, width, kept),
                               (mats.dft_cos, height, height), (mats.dft_sin, height, height),
                               (mats.irfft_cos, kept, width), (mats.irfft_sin, kept, width)]:
        assert matrix.shape[0] >= ff.MIN_BLOCK and matrix.shape[1] >= ff.MIN_BLOCK
        assert matrix[rows:].abs().sum() == 0 and matrix[:, cols:].abs().sum() == 0


def _torch_filter(x: torch.Tensor, weight: torch.Tensor, conjugate: bool) -> torch.Tensor:
    """The reference math in x's own precision (float64 here), for gradcheck of the backward."""
    spectrum_weight = torch.view_as_complex(weight)
    if conjugate:
        spectrum_weight = spectrum_weight.conj()
    spectrum = torch.fft.rfft2(x, dim=(1, 2), norm="ortho") * spectrum_weight
    return torch.fft.irfft2(spectrum, s=x.shape[1:3], dim=(1, 2), norm="ortho")


@pytest.mark.parametrize("shape", [(2, 4, 4, 2), (1, 5, 5, 2), (1, 3, 6, 2)])
def test_backward_math_passes_gradcheck_float64(shape):
    x, weight = _inputs(shape, seed=3)
    x = x.double().requires_grad_()
    weight = (weight * 50).double().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda a, b: ff.FilterFunction.apply(a, b, _torch_filter), (x, weight))


def test_weight_gradient_matches_reference_autograd_fp32():
    x, weight = _inputs((3, 10, 9, 8), seed=4)
    grad_y = torch.randn(x.shape, generator=torch.Generator().manual_seed(5))
    w = weight.clone().requires_grad_()
    global_filter_reference(x, w).backward(grad_y)
    assert rel_error(ff.weight_gradient(x, grad_y), w.grad) <= FP32_TOL


def _load_benchmark():
    """benchmarks/bench_global_filter.py as a module (benchmarks/ is not a package)."""
    path = REPO / "benchmarks" / "bench_global_filter.py"
    spec = importlib.util.spec_from_file_location("bench_global_filter", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_io_floor_and_summary():
    bench = _load_benchmark()
    # 32 x 14 x 14 x 384 float32 read + float32 written at 3000 GB/s
    floor_ms = bench.io_floor_ms(32 * 14 * 14 * 384, 4, 4, bandwidth_gbps=3000.0)
    assert floor_ms == pytest.approx(2 * 32 * 14 * 14 * 384 * 4 / 3000e9 * 1e3)
    assert bench.device_slug("NVIDIA H100 80GB HBM3") == "nvidia-h100-80gb-hbm3"
    x = torch.tensor([1.0, -4.0, 2.0])
    assert bench.rel_error(x + torch.tensor([0.0, 0.0, 0.4]), x) == pytest.approx(0.1)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_benchmark_exits_cleanly_without_cuda(capsys):
    assert _load_benchmark().main([]) == 1
    captured = capsys.readouterr()
    lines = (captured.out + captured.err).strip().splitlines()
    assert len(lines) == 1 and "no CUDA device" in lines[0]


if __name__ == "__main__":
    print(json.dumps(interpreter_report()))
