"""Timing: warm-up, percentiles, the untimed first call, precisions and modes."""

import time

import pytest
import torch
from torch import nn

from gfbench.measure.timing import make_step, summarize, time_step


def test_percentiles_are_ordered_and_interpolated():
    assert summarize([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]) == (2.0, 6.0, 10.0)


def test_the_first_call_is_timed_apart_and_never_in_the_statistics():
    calls = []

    def step():
        calls.append(1)
        if len(calls) == 1:
            time.sleep(0.2)  # compilation, lazy init...

    stats = time_step(step, "cpu", warmup=2, repeat=7)
    assert len(calls) == 2 + 7
    assert stats.samples == 7 and stats.method == "perf_counter"
    assert stats.first_call_ms >= 200
    assert stats.p90_ms < 100
    assert stats.p10_ms <= stats.p50_ms <= stats.p90_ms
    assert stats.threads == torch.get_num_threads()


def test_warmup_of_zero_is_refused():
    with pytest.raises(ValueError, match="first call is never timed"):
        time_step(lambda: None, "cpu", warmup=0, repeat=3)


def test_throughput_is_batch_over_median():
    stats = time_step(lambda: time.sleep(0.01), "cpu", warmup=1, repeat=3)
    assert stats.throughput(8) == pytest.approx(8000 / stats.p50_ms)


def test_train_step_runs_backward_and_frees_gradients_first():
    model = nn.Linear(8, 4)
    step = make_step(model, torch.randn(2, 8), mode="train")
    step()
    first = model.weight.grad.clone()
    step()
    assert model.training
    assert torch.equal(model.weight.grad, first)  # not accumulated across steps


def test_inference_step_builds_no_graph():
    model = nn.Linear(8, 4)
    make_step(model, torch.randn(2, 8), mode="infer")()
    assert not model.training and model.weight.grad is None


def test_bf16_autocast_on_cpu():
    seen = []
    model = nn.Linear(8, 4)
    model.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    make_step(model, torch.randn(2, 8), precision="bf16")()
    assert seen == [torch.bfloat16]


@pytest.mark.parametrize(("precision", "mode"), [("fp64", "infer"), ("fp32", "eval")])
def test_unknown_precision_or_mode_is_refused(precision, mode):
    with pytest.raises(ValueError):
        make_step(nn.Identity(), torch.zeros(1), precision=precision, mode=mode)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_events_time_a_gpu_step():
    a = torch.randn(1024, 1024, device="cuda")
    stats = time_step(lambda: a @ a, "cuda", warmup=3, repeat=10)
    assert stats.method == "cuda events" and 0 < stats.p10_ms <= stats.p50_ms <= stats.p90_ms
