"""What a sweep row says it ran: train-mode peaks with gradients, compile status, the global
filter path taken, and the failure class (the hooks gfbench.measure.setting calls)."""

import pytest
import torch

from gfbench.measure import compile as compile_module
from gfbench.measure import setting as setting_module
from gfbench.measure.memory import rss_peak_bytes
from gfbench.measure.plan import ComplexityRequest, plan_complexity
from gfbench.measure.sweep import run_sweep

RESETTABLE = rss_peak_bytes(lambda: None) is not None


def _rows(tmp_path, **request):
    """The rows of a small CPU sweep in this process (so that tests can patch it)."""
    base = {"device": "cpu", "warmup": 1, "repeat": 2, "dim": 16, "isolate": False}
    return run_sweep(plan_complexity(ComplexityRequest(**{**base, **request}),
                                     results_dir=tmp_path)).rows


@pytest.mark.skipif(not RESETTABLE, reason="the kernel here cannot reset the peak RSS")
def test_train_peak_includes_the_gradients(tmp_path):
    # spatial MLP on 32 x 32 tokens of width 16: (N^2 + N) float32 parameters, N = 1024
    # (about 4 MiB), so a training step holds about 4 MiB of gradients; its activations
    # (N x 16 floats) are 64 KiB. Before the fix the gradients sat in the baseline.
    (row,) = _rows(tmp_path, mixers=("spatial_mlp",), tokens=("32",), mode="train",
                   metrics=("params", "memory"))
    gradients = row.params * 4
    assert row.status == "ok" and row.params == 1024**2 + 1024
    assert gradients <= row.peak_mem_bytes <= gradients + 2**20


def test_compiled_rows_start_from_a_reset_compiler_and_say_so(tmp_path, monkeypatch):
    monkeypatch.setattr(compile_module, "DEFAULT_BACKEND", "eager")  # no C compiler needed
    with torch._dynamo.config.patch(recompile_limit=1):
        rows = _rows(tmp_path, mixers=("attention",), tokens=("4", "5", "6"), compile=True,
                     metrics=("latency",))
    assert [(r.status, r.compile, r.compile_status) for r in rows] == [
        ("ok", True, "compiled")] * 3


def test_rows_record_the_global_filter_that_ran(tmp_path):
    rows = _rows(tmp_path, mixers=("global_filter", "attention"), tokens=("4",), impl="auto",
                 metrics=("latency",))
    assert {r.name: (r.impl, r.impl_used) for r in rows} == {
        "global_filter": ("reference", "reference"), "attention": ("reference", "")}


@pytest.mark.parametrize(("exc", "status", "failure"), [
    (torch.AcceleratorError("CUDA error: an illegal memory access was encountered"),
     "error", "poisoned"),
    (RuntimeError("cuFFT error: CUFFT_ALLOC_FAILED"), "oom", "oom"),
    (RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"),
     "oom", "oom"),
    (RuntimeError("kernel exploded"), "error", "error"),
], ids=["illegal-address", "cufft", "cublas", "other"])
def test_failures_are_classified_in_the_row(tmp_path, monkeypatch, exc, status, failure):
    def build_step(**kwargs):
        raise exc

    monkeypatch.setattr(setting_module, "build_step", build_step)
    (row,) = _rows(tmp_path, mixers=("attention",), tokens=("4",), metrics=("flops",
                                                                           "latency"))
    assert (row.status, row.failure) == (status, failure)
    # counts are kept: qkv and proj (4 N D^2) plus QK^T and AV (2 N^2 D), N = 16, D = 16
    assert row.flops == 4 * 16 * 16**2 + 2 * 16**2 * 16
