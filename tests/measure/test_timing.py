"""Timing: warm-up by count and time, percentiles, the untimed first call, cache flushing,
threads, precisions, modes and optimizers (the CUDA clock shares the protocol: injected)."""

import time

import pytest
import torch
from torch import nn

from gfbench.errors import GfbenchError
from gfbench.measure import timing
from gfbench.measure.timing import (
    DEFAULT_WARMUP_S,
    WallClock,
    cache_bytes,
    make_flush,
    make_step,
    set_threads,
    summarize,
    time_step,
)


def test_percentiles_are_ordered_and_interpolated():
    assert summarize([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]) == (2.0, 6.0, 10.0)


def test_the_first_call_is_timed_apart_and_never_in_the_statistics():
    calls = []

    def step():
        calls.append(1)
        if len(calls) == 1:
            time.sleep(0.2)  # compilation, lazy init...

    before = torch.get_num_threads()
    set_threads(1)
    try:
        stats = time_step(step, "cpu", warmup=2, repeat=7, warmup_s=0.0)
    finally:
        set_threads(before)
    assert len(calls) == 2 + 7
    assert stats.samples == 7 and stats.method == "perf_counter"
    assert stats.first_call_ms >= 200
    assert stats.p90_ms < 100
    assert stats.p10_ms <= stats.p50_ms <= stats.p90_ms
    assert stats.threads == 1  # the threads the timed calls ran with


def test_cpu_warm_up_lasts_a_second_by_default_whatever_the_call_count():
    # bf16 kernels on the CPU keep getting faster over the first few calls: warm up by time
    calls = []
    start = time.perf_counter()
    stats = time_step(lambda: (calls.append(1), time.sleep(0.05)), "cpu", warmup=2, repeat=3)
    warm_calls = len(calls) - 1 - 3
    # about 1 s of 50 ms calls (a count-only warm-up would make 1; a loaded machine fewer)
    assert stats.warmup_calls == warm_calls and 5 <= warm_calls <= 21
    assert time.perf_counter() - start >= 1.0 + 4 * 0.05


def test_warmup_of_zero_is_refused():
    with pytest.raises(ValueError, match="first call is never timed"):
        time_step(lambda: None, "cpu", warmup=0, repeat=3)


def test_throughput_of_a_10_ms_step_on_a_batch_of_8_is_about_800_per_second():
    stats = time_step(lambda: time.sleep(0.01), "cpu", warmup=1, repeat=3, warmup_s=0.0)
    assert 200 <= stats.throughput(8) <= 800  # sleep(0.01) takes at least 10 ms


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


class StepClock(WallClock):
    """A clock that advances 0.125 s (exact in binary) per call of the step it counts."""

    def __init__(self):
        self.t, self.calls = 0.0, 0

    def now(self):
        return self.t

    def step(self):
        self.calls += 1
        self.t += 0.125


@pytest.mark.parametrize(("warmup", "warmup_s", "expected"), [
    (3, 1.0, 8),  # time dominates: 1.0 s of 0.125 s calls after the first
    (6, 0.2, 5),  # count dominates: warmup counts the untimed first call
    (1, 0.0, 0),
])
def test_warmup_runs_for_a_minimum_count_and_a_minimum_time(warmup, warmup_s, expected):
    clock = StepClock()
    stats = time_step(clock.step, "cpu", warmup=warmup, repeat=4, warmup_s=warmup_s,
                      clock=clock)
    assert stats.warmup_calls == expected
    assert clock.calls == 1 + expected + 4


def test_warmup_time_defaults_per_device():
    assert DEFAULT_WARMUP_S["cuda"] >= 0.5 and DEFAULT_WARMUP_S["cpu"] >= 1.0
    clock = StepClock()  # 0.125 s per call: 1 s of warm-up is 8 calls after the first
    assert time_step(clock.step, "cpu", warmup=2, repeat=1, clock=clock).warmup_calls == 8


def test_work_before_each_call_is_not_timed():
    times = WallClock().time_calls(lambda: None, 3, before=lambda: time.sleep(0.05))
    assert len(times) == 3 and max(times) < 25


def test_flush_runs_before_every_timed_call(monkeypatch):
    events = []
    monkeypatch.setattr(timing, "make_flush",
                        lambda device: (lambda: events.append("flush"), 1234))
    stats = time_step(lambda: events.append("step"), "cpu", warmup=2, repeat=3, warmup_s=0.0,
                      flush_l2=True)
    assert events == ["step", "step"] + ["flush", "step"] * 3
    assert stats.flushed_bytes == 1234


def test_cpu_flush_writes_twice_the_last_level_cache():
    try:
        cache = cache_bytes("cpu")
    except GfbenchError:
        pytest.skip("no cache sizes in sysfs here")
    flush, nbytes = make_flush("cpu")
    flush()
    assert nbytes == 2 * cache


def test_cache_sizes_are_parsed_and_missing_ones_refused(monkeypatch, tmp_path):
    assert [timing._parse_cache_size(t) for t in ("32768K\n", "1M", "512")] == [
        32 * 2**20, 2**20, 512]
    monkeypatch.setattr(timing, "_CPU_CACHES", tmp_path / "missing")
    with pytest.raises(GfbenchError, match="cache size of cpu is unknown"):
        cache_bytes("cpu")


def test_set_threads_returns_what_torch_uses():
    before = torch.get_num_threads()
    try:
        assert set_threads(1) == 1 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    with pytest.raises(GfbenchError, match="--threads 0 must be >= 1"):
        set_threads(0)


@pytest.mark.parametrize("optimizer,buffers", [("sgd", 1), ("adamw", 2)])
def test_train_step_with_an_optimizer_updates_and_releases(optimizer, buffers):
    model = nn.Linear(8, 4)
    before = model.weight.detach().clone()
    step = make_step(model, torch.randn(2, 8), mode="train", optimizer=optimizer)
    step()
    assert not torch.equal(model.weight, before)  # the update ran
    state = step.optimizer.state[model.weight]
    assert sum(torch.is_tensor(v) and v.shape == model.weight.shape
               for v in state.values()) == buffers
    step.release()
    assert model.weight.grad is None and not step.optimizer.state


def test_an_optimizer_needs_train_mode():
    with pytest.raises(ValueError, match="needs mode 'train'"):
        make_step(nn.Linear(2, 2), torch.zeros(1, 2), optimizer="sgd")
    with pytest.raises(ValueError, match="optimizer must be one of"):
        make_step(nn.Linear(2, 2), torch.zeros(1, 2), mode="train", optimizer="lion")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_flush_writes_twice_the_l2_and_warmup_lasts():
    a = torch.randn(256, 256, device="cuda")
    start = time.perf_counter()
    stats = time_step(lambda: a @ a, "cuda", warmup=2, repeat=5, flush_l2=True)
    assert time.perf_counter() - start >= DEFAULT_WARMUP_S["cuda"]
    assert stats.flushed_bytes == 2 * torch.cuda.get_device_properties(0).L2_cache_size
    assert stats.method == "cuda events" and stats.warmup_calls >= 1
