"""Sweeps: OOM as a row, errors as rows, resume, provenance, validation, meta-only counting."""

import dataclasses
import json

import pytest
import torch

from gfbench.errors import GfbenchError, UnknownNameError
from gfbench.measure import sweep
from gfbench.measure.memory import CPU_METHOD, NOT_MEASURED, MemoryResult
from gfbench.measure.sweep import ComplexityRequest, plan_complexity, resolve_impl, run_sweep
from gfbench.results import read_results, read_rows

SMALL = {"mixers": ("global_filter", "attention"), "tokens": ("4", "6"), "dim": 16,
         "metrics": ("flops", "params", "latency"), "device": "cpu", "warmup": 1, "repeat": 2}


def _plan(tmp_path, **overrides):
    return plan_complexity(ComplexityRequest(**{**SMALL, **overrides}), results_dir=tmp_path)


def _raise_for(name, side, exc, real=sweep.build_step):
    """A build_step that fails with ``exc`` for one mixer at one grid side."""

    def build_step(**kwargs):
        if kwargs["name"] == name and kwargs["res_h"] == side:
            raise exc
        return real(**kwargs)

    return build_step


@pytest.mark.parametrize("exc", [
    torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"),
    RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 9 bytes"),
], ids=["cuda", "cpu"])
def test_out_of_memory_is_a_row_and_the_sweep_goes_on(tmp_path, monkeypatch, exc):
    monkeypatch.setattr(sweep, "build_step", _raise_for("attention", 4, exc))
    plan = _plan(tmp_path)
    rows = run_sweep(plan)
    by_key = {(r.name, r.res_h): r for r in rows}
    oom = by_key["attention", 4]
    assert oom.status == "oom" and "allocate" in oom.error
    assert oom.flops == 16 * 16 * 4 * 16 + 2 * 16**2 * 16  # still counted (on meta)
    assert oom.latency_ms_p50 is None
    later = by_key["attention", 6]
    assert later.status == "ok" and later.latency_ms_p50 > 0
    _, written = read_rows(plan.stem.with_suffix(".json"))
    assert [r.status for r in written] == ["ok", "ok", "oom", "ok"]


def test_other_failures_are_error_rows_and_the_sweep_goes_on(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep, "build_step", _raise_for("global_filter", 6,
                                                        RuntimeError("kernel exploded")))
    rows = run_sweep(_plan(tmp_path))
    assert [r.status for r in rows] == ["ok", "error", "ok", "ok"]
    assert "kernel exploded" in rows[1].error


def test_child_out_of_memory_skips_timing(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep.CpuMemoryWorker, "measure", lambda *a, **k: MemoryResult(
        None, CPU_METHOD, "oom", "child killed by SIGKILL (out of memory)"))
    monkeypatch.setattr(sweep, "build_step", _raise_for("global_filter", 4, AssertionError(
        "timing must not run after the memory child ran out of memory")))
    plan = _plan(tmp_path, mixers=("global_filter",), tokens=("4",),
                 metrics=("flops", "memory", "latency"))
    (row,) = run_sweep(plan)
    assert row.status == "oom" and row.latency_ms_p50 is None and row.flops > 0


def test_one_engine_failing_does_not_lose_the_row(tmp_path, monkeypatch):
    real = sweep.count_flops

    def torch_engine_fails(builder, shape, engine="torch"):
        if engine == "torch":
            raise AssertionError("Expected gradient function to be set")
        return real(builder, shape, engine)

    monkeypatch.setattr(sweep, "count_flops", torch_engine_fails)
    rows = run_sweep(_plan(tmp_path, metrics=("flops",)))
    assert all(r.status == "ok" and r.flops_engine == "fvcore" and r.flops > 0 for r in rows)
    assert all(r.flops_torch is None and "torch counter failed" in r.error for r in rows)


def test_resume_skips_finished_rows_after_an_interruption(tmp_path):
    plan = _plan(tmp_path, metrics=("flops",))
    calls = []

    def fake_measure(setting, options):
        calls.append((setting.name, setting.res_h))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return dataclasses.replace(setting.row(), tokens=setting.res_h**2, flops=len(calls))

    with pytest.raises(KeyboardInterrupt):
        run_sweep(plan, measure_fn=fake_measure)
    _, kept = read_rows(plan.stem.with_suffix(".json"))
    assert [(r.name, r.res_h) for r in kept] == calls[:2]

    calls.clear()
    skipped = []
    resumed = dataclasses.replace(plan, resume=True)
    rows = run_sweep(resumed, measure_fn=fake_measure,
                     on_row=lambda row, was_skipped: skipped.append(was_skipped))
    assert calls == [("attention", 4), ("attention", 6)]
    assert skipped == [True, True, False, False]
    assert [r.flops for r in rows] == [1, 2, 1, 2]  # the first run's rows are kept as they were


def test_provenance_is_in_both_files(tmp_path):
    plan = _plan(tmp_path, metrics=("flops", "params"))
    run_sweep(plan)
    provenance, frame = read_results(plan.stem.with_suffix(".json"))
    for name in ("gfbench_version", "torch_version", "timm_version", "fvcore_version",
                 "device_name", "cpu_model", "command", "date", "flop_convention"):
        assert getattr(provenance, name), name
    assert len(provenance.extra["load_average_at_start"]) == 3
    assert provenance.cpu_threads > 0 and provenance.torch_threads > 0
    assert provenance.cuda_version == (torch.version.cuda or "")
    assert "one fused multiply-add = one FLOP" in provenance.flop_convention
    assert provenance.extra["metrics"] == ["flops", "params"]
    header = plan.stem.with_suffix(".csv").read_text()
    for name in ("torch_version", "timm_version", "fvcore_version", "driver_version",
                 "cuda_version", "cpu_model", "command", "date", "flop_convention"):
        assert f"# {name}:" in header
    assert len(frame) == 4 and set(frame["flops_engine"]) == {"fvcore"}


def test_counting_alone_never_touches_the_device(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep, "build_step", _raise_for("global_filter", 4, AssertionError(
        "nothing may be built on the device")))
    monkeypatch.setattr(sweep, "time_step", None)
    plan = _plan(tmp_path, metrics=("flops", "params"), device="cuda:7")
    assert plan.device == "meta" and "-meta-" in plan.stem.name
    rows = run_sweep(plan)
    assert all(r.status == "ok" and r.device == "meta" and r.flops for r in rows)
    assert all(r.flops == r.flops_torch for r in rows)  # both engines, one answer


def test_large_models_are_counted_on_meta_only(tmp_path):
    plan = plan_complexity(ComplexityRequest(models=("deit",), resolutions=("1024",),
                                             metrics=("flops",)), results_dir=tmp_path)
    (row,) = run_sweep(plan)
    assert row.flops_engine == "torch-meta" and row.flops == row.flops_torch > 1e11
    assert row.tokens == 64 * 64 and "gelu:12" in row.uncounted_ops


def test_a_real_cpu_measurement(tmp_path):
    plan = _plan(tmp_path, mixers=("global_filter",), tokens=("32",), dim=64,
                 metrics=("flops", "params", "latency", "memory"), batch_size=2)
    (row,) = run_sweep(plan)
    assert row.status == "ok", row.error
    assert 0 < row.latency_ms_p10 <= row.latency_ms_p50 <= row.latency_ms_p90
    assert row.throughput_ips == pytest.approx(2000 / row.latency_ms_p50)
    assert row.first_call_ms > 0 and row.warmup == 1 and row.repeat == 2
    assert row.threads == torch.get_num_threads()
    assert row.mem_method in (CPU_METHOD, NOT_MEASURED)
    output_bytes = 2 * 32 * 32 * 64 * 4  # the step's float32 output alone
    assert row.peak_mem_bytes is None or row.peak_mem_bytes >= output_bytes
    payload = json.loads(plan.stem.with_suffix(".json").read_text())
    assert payload["rows"][0]["latency_ms_p50"] == row.latency_ms_p50


@pytest.mark.parametrize(("overrides", "message"), [
    ({"models": ("deit",)}, "--models and --mixers cannot be combined"),
    ({"precision": "fp16"}, "fp16 is not supported on the CPU"),
    ({"precision": "fp8"}, "--precision 'fp8' is not one of"),
    ({"mode": "eval"}, "--mode 'eval' is not one of"),
    ({"metrics": ("flops", "energy")}, "--metrics 'energy' is not one of"),
    ({"warmup": 0}, "at least one warm-up call"),
    ({"tokens": ("4x",)}, "--tokens '4x'"),
    ({"resolutions": ("224",)}, "--res applies to --models"),
    ({"channels_last": True}, "--channels-last applies to models"),
    ({"device": "tpu"}, "unknown device 'tpu'"),
])
def test_bad_requests_fail_first_in_one_line(tmp_path, overrides, message):
    with pytest.raises(GfbenchError, match=message.replace("(", r"\(")) as info:
        _plan(tmp_path, **overrides)
    assert "\n" not in str(info.value)


def test_unknown_model_gets_the_registry_error(tmp_path):
    with pytest.raises(UnknownNameError, match="unknown model 'deit-xxl'"):
        plan_complexity(ComplexityRequest(models=("deit-xxl",)), results_dir=tmp_path)


def test_a_resolution_the_model_cannot_take_fails_before_the_sweep(tmp_path):
    with pytest.raises(GfbenchError, match="multiple of 16"):
        plan_complexity(ComplexityRequest(models=("gfnet",), resolutions=("224", "300")),
                        results_dir=tmp_path)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without a GPU")
def test_cuda_without_a_gpu_says_so(tmp_path):
    with pytest.raises(GfbenchError, match="no CUDA device"):
        _plan(tmp_path, device="cuda")


def test_defaults_are_the_trio_at_three_resolutions(tmp_path):
    plan = plan_complexity(ComplexityRequest(device="cpu"), results_dir=tmp_path)
    assert [(s.name, s.res_h) for s in plan.settings] == [
        (m, r) for m in ("gfnet-xs", "deit-s", "resmlp-12") for r in (224, 384, 512)]
    assert plan.stem.name == "complexity-models-cpu-b1-fp32-infer"
    assert (plan.options.warmup, plan.options.repeat) == sweep.DEVICE_DEFAULTS["cpu"][1:]


def test_impl_is_recorded_and_resolved_per_subject():
    plan = plan_complexity(ComplexityRequest(models=("gfnet", "deit"), resolutions=("224",),
                                             metrics=("flops",), impl="auto"))
    assert {(s.name, s.impl) for s in plan.settings} == {("gfnet-xs", "reference"),
                                                         ("deit-s", "reference")}
    assert plan.extra["impl_requested"] == "auto"
    assert resolve_impl("auto", "cpu") == "reference"  # no CUDA here: the reference ran
    with pytest.raises(GfbenchError, match="--impl 'fft' is not one of reference, fast, auto"):
        resolve_impl("fft", "cpu")
    with pytest.raises(GfbenchError, match="--impl fast needs a CUDA device"):
        plan_complexity(ComplexityRequest(mixers=("global_filter",), tokens=("8",),
                                          metrics=("latency",), device="cpu", impl="fast"))
