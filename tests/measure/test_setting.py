"""One setting measured: OOM and other failures as rows, both engines, the real CPU path."""

import json

import pytest
import torch

from gfbench.measure import setting as setting_module
from gfbench.measure.faults import classify_failure, needs_restart
from gfbench.measure.memory import CPU_METHOD, NOT_MEASURED
from gfbench.measure.plan import ComplexityRequest, plan_complexity
from gfbench.measure.sweep import run_sweep
from gfbench.results import ComplexityRow

SMALL = {"mixers": ("global_filter", "attention"), "tokens": ("4", "6"), "dim": 16,
         "metrics": ("flops", "params", "latency"), "device": "cpu", "warmup": 1, "repeat": 2,
         "isolate": False}


def _plan(tmp_path, **overrides):
    return plan_complexity(ComplexityRequest(**{**SMALL, **overrides}), results_dir=tmp_path)


def _raise_for(name, side, exc, real=setting_module.build_step):
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
    monkeypatch.setattr(setting_module, "build_step", _raise_for("attention", 4, exc))
    plan = _plan(tmp_path)
    outcome = run_sweep(plan)
    rows = outcome.rows
    by_key = {(r.name, r.grid_h): r for r in rows}
    oom = by_key["attention", 4]
    assert oom.status == "oom" and "allocate" in oom.error
    assert oom.flops == 16 * 16 * 4 * 16 + 2 * 16**2 * 16  # still counted (on meta)
    assert oom.latency_ms_p50 is None
    later = by_key["attention", 6]
    assert later.status == "ok" and later.latency_ms_p50 > 0
    written = json.loads(outcome.path.read_text())["rows"]
    assert [r["status"] for r in written] == ["ok", "ok", "oom", "ok"]


def test_other_failures_are_error_rows_and_the_sweep_goes_on(tmp_path, monkeypatch):
    monkeypatch.setattr(setting_module, "build_step", _raise_for(
        "global_filter", 6, RuntimeError("kernel exploded")))
    rows = run_sweep(_plan(tmp_path)).rows
    assert [r.status for r in rows] == ["ok", "error", "ok", "ok"]
    assert "kernel exploded" in rows[1].error


def test_a_model_that_cannot_be_built_is_an_error_row(tmp_path):
    plan = plan_complexity(ComplexityRequest(models=("gfnet-ti", "resnet18"),
                                             resolutions=("224", "200"), metrics=("flops",),
                                             isolate=False, fvcore=False),
                           results_dir=tmp_path)
    rows = {(r.name, r.res_h): r for r in run_sweep(plan).rows}
    assert rows["gfnet-ti", 200].status == "error"
    assert "multiple of 16" in rows["gfnet-ti", 200].error
    assert rows["gfnet-ti", 224].status == rows["resnet18", 200].status == "ok"


def test_poisoning_errors_are_told_apart():
    # the classification lives in gfbench.measure.faults (tested there in full)
    assert needs_restart(classify_failure(RuntimeError(
        "CUDA error: an illegal memory access was encountered")))
    assert not needs_restart(classify_failure(RuntimeError("shapes cannot be multiplied")))


def test_a_memory_child_out_of_memory_is_an_oom_row_that_keeps_counts_and_timing(tmp_path):
    from gfbench.measure.sweep import ChildFunctions

    plan = _plan(tmp_path, mixers=("global_filter",), tokens=("4",),
                 metrics=("flops", "memory", "latency"))
    (row,) = run_sweep(plan, functions=ChildFunctions(memory="child_steps:memory_oom")).rows
    assert row.status == "oom" and "SIGKILL" in row.error and row.flops > 0
    assert row.latency_ms_p50 > 0 and row.peak_mem_bytes is None


def test_one_engine_failing_does_not_lose_the_row(tmp_path, monkeypatch):
    real = setting_module.count_flops

    def torch_engine_fails(builder, shape, engine="torch", **options):
        if engine == "torch":
            raise AssertionError("Expected gradient function to be set")
        return real(builder, shape, engine)

    monkeypatch.setattr(setting_module, "count_flops", torch_engine_fails)
    rows = run_sweep(_plan(tmp_path, metrics=("flops",))).rows
    assert all(r.status == "ok" and r.flops_engine == "fvcore" and r.flops > 0 for r in rows)
    assert all(r.flops_torch is None and "torch counter failed" in r.error for r in rows)
    assert all(r.bytes is None for r in rows)  # fvcore records none: no trace, no bytes


def test_counting_alone_never_touches_the_device(tmp_path, monkeypatch):
    monkeypatch.setattr(setting_module, "build_step", _raise_for(
        "global_filter", 4, AssertionError("nothing may be built on the device")))
    monkeypatch.setattr(setting_module, "time_step", None)
    plan = _plan(tmp_path, metrics=("flops", "params"), device="cuda:7")
    assert plan.device == "meta" and "-meta-" in plan.name
    rows = run_sweep(plan).rows
    assert all(r.status == "ok" and r.device == "meta" and r.flops for r in rows)
    assert all(r.flops == r.flops_torch for r in rows)  # both engines, one answer


@pytest.mark.parametrize("batch", [1, 4])
def test_bytes_per_image_of_the_global_filter_by_hand(batch):
    side, dim = 4, 16
    real = side * side * dim * 4  # float32 grid of one image
    spectrum = side * (side // 2 + 1) * dim * 8  # complex64 half spectrum of one image
    weight = spectrum  # the filter: one complex64 per frequency and channel, read once a batch
    setting = setting_module.Setting("mixer", "global_filter", side, side, batch, "fp32",
                                     "infer", "meta", dim=dim)
    row = setting_module.count_setting(setting, setting_module.SweepOptions(
        metrics=frozenset({"flops"})))
    # rfft2 (grid in, spectrum out), product (spectrum and filter in, spectrum out), irfft2
    per_image = (real + spectrum) + (2 * spectrum + weight / batch) + (spectrum + real)
    assert row.bytes == per_image == 8192 + 1536 / batch


def test_bytes_are_left_empty_where_autocast_would_change_the_dtypes():
    options = setting_module.SweepOptions(metrics=frozenset({"flops"}))
    rows = {precision: setting_module.count_setting(setting_module.Setting(
        "mixer", "attention", 4, 4, 2, precision, "infer", "meta", dim=16), options)
        for precision in ("fp32", "fp16")}
    assert rows["fp16"].flops == rows["fp32"].flops > 0
    assert rows["fp16"].bytes is None and rows["fp32"].bytes > 0


def test_large_models_are_counted_on_meta_only(tmp_path):
    plan = plan_complexity(ComplexityRequest(models=("deit",), resolutions=("1024",),
                                             metrics=("flops",), isolate=False),
                           results_dir=tmp_path)
    (row,) = run_sweep(plan).rows
    assert row.flops_engine == "torch-meta" and row.flops == row.flops_torch > 1e11
    assert row.tokens == 64 * 64 and "gelu:12" in row.uncounted_ops


def test_a_real_cpu_measurement(tmp_path):
    plan = _plan(tmp_path, mixers=("global_filter",), tokens=("32",), dim=64,
                 metrics=("flops", "params", "latency", "memory"), batch_sizes=(2,))
    outcome = run_sweep(plan)
    (row,) = outcome.rows
    assert row.status == "ok", row.error
    assert 0 < row.latency_ms_p10 <= row.latency_ms_p50 <= row.latency_ms_p90
    assert row.throughput_ips == pytest.approx(2000 / row.latency_ms_p50)
    assert row.first_call_ms > 0 and row.warmup == 1 and row.repeat == 2
    assert row.threads == torch.get_num_threads()
    assert row.mem_method in (CPU_METHOD, NOT_MEASURED)
    output_bytes = 2 * 32 * 32 * 64 * 4  # the step's float32 output alone
    assert row.peak_mem_bytes is None or row.peak_mem_bytes >= output_bytes
    payload = json.loads(outcome.path.read_text())
    assert payload["rows"][0]["latency_ms_p50"] == row.latency_ms_p50


def test_a_size_only_the_forward_refuses_is_an_error_row_not_an_ok_row_without_flops(tmp_path):
    # LeViT builds at 100 px, but its attention biases only fit the grid of sizes like 224
    plan = plan_complexity(ComplexityRequest(models=("levit_128s",), resolutions=("100", "224"),
                                             metrics=("flops",), isolate=False, fvcore=False),
                           results_dir=tmp_path)
    bad, good = run_sweep(plan).rows
    assert bad.status == "error" and bad.flops is None and "torch counter failed" in bad.error
    assert good.status == "ok" and good.flops > 2e8


def test_models_are_chosen_by_pattern_and_file(tmp_path):
    listing = tmp_path / "models.txt"
    listing.write_text("# two families\nresnet18\nconvnext_at*\n")
    request = ComplexityRequest(models=(f"@{listing}",), exclude=("convnext_atto_ols",),
                                metrics=("params",))
    plan = plan_complexity(request, results_dir=tmp_path)
    names = [s.name for s in plan.settings]
    assert names[0] == "resnet18" and "convnext_atto" in names
    assert "convnext_atto_ols" not in names and all(
        n == "resnet18" or n.startswith("convnext_at") for n in names)


def test_an_fvcore_count_that_leaves_ops_out_does_not_replace_the_full_count(tmp_path):
    # sequencer2d mixes tokens with BiLSTMs: fvcore has no handle for aten::lstm
    plan = plan_complexity(ComplexityRequest(models=("sequencer2d_s",), resolutions=("224",),
                                             metrics=("flops",), isolate=False),
                           results_dir=tmp_path)
    (row,) = run_sweep(plan).rows
    assert row.status == "ok" and row.flops_engine == "torch-meta"
    assert row.flops == row.flops_torch > 8e9 and "fvcore counts 4.959e+09 (-40.7%)" in row.error


def test_repeats_are_spread_over_processes_as_evenly_as_they_go():
    from gfbench.measure.setting import repeat_shares

    assert repeat_shares(10, 3) == [4, 3, 3]
    assert repeat_shares(2, 3) == [1, 1]  # never a process without a timed call
    assert repeat_shares(5, 1) == [5]


def test_pooled_timings_are_percentiles_of_every_call_of_every_process():
    import numpy as np

    from gfbench.measure.setting import Setting, TimedRow, pool_timings

    setting = Setting("mixer", "attention", 4, 4, 2, "fp32", "infer", "cpu", 16)
    parts = [TimedRow(setting.row(), (10.0, 11.0, 12.0)), TimedRow(setting.row(), (20.0, 21.0))]
    row = pool_timings(parts, batch_size=2)
    every = [10.0, 11.0, 12.0, 20.0, 21.0]
    assert (row.latency_ms_p10, row.latency_ms_p50, row.latency_ms_p90) == tuple(
        np.percentile(every, [10, 50, 90]))
    assert row.repeat == 5 and row.processes == 2 and row.throughput_ips == 2000 / 12.0
    failed = setting.row()
    failed.status, failed.error = "oom", "killed"
    assert pool_timings([parts[0], TimedRow(failed)], batch_size=2) is failed


def test_an_isolated_timing_is_spread_over_fresh_processes(tmp_path):
    plan = _plan(tmp_path, mixers=("global_filter",), tokens=("4",), isolate=True, repeat=6,
                 processes=3, metrics=("latency",))
    outcome = run_sweep(plan)
    (row,) = outcome.rows
    assert row.status == "ok" and row.processes == 3 and row.repeat == 6
    assert len(set(outcome.children)) == len(outcome.children) == 4  # count + 3 timings


def test_a_training_mixer_counts_its_input_gradient_as_a_layer_inside_a_network(tmp_path):
    plan = _plan(tmp_path, mixers=("spatial_mlp",), tokens=("7",), dim=16, mode="train",
                 metrics=("flops",))
    (row,) = run_sweep(plan).rows
    forward = (7 * 7) ** 2 * 16  # the token-mixing Linear over 49 tokens, 16 channels
    assert row.fwd_flops == forward and row.flops_engine == "fvcore"
    assert row.flops == row.flops_torch == 3 * forward  # + input and weight gradients


def _train_row(fwd_flops, flops_torch):
    return ComplexityRow(subject="model", name="m", res_h=224, res_w=224, batch_size=1,
                         precision="fp32", mode="train", device="meta", tokens=None,
                         flops=flops_torch, flops_torch=flops_torch, fwd_flops=fwd_flops)


def test_fvcore_cross_checks_a_training_row_forward_against_forward():
    agreed = _train_row(100.0, 300.0)
    setting_module._cross_check(agreed, 100.5)
    assert (agreed.fwd_flops, agreed.flops, agreed.flops_engine) == (100.5, 300.5, "fvcore")
    apart = _train_row(100.0, 300.0)
    setting_module._cross_check(apart, 50.0)
    assert (apart.fwd_flops, apart.flops, apart.flops_torch) == (100.0, 300.0, 300.0)
    assert "fvcore counts 50 (-50.0%) for the forward: kept the torch engine's count" \
        in apart.error
    no_torch = _train_row(None, None)  # fvcore alone has no backward: flops stays unknown
    setting_module._cross_check(no_torch, 100.0)
    assert no_torch.fwd_flops == 100.0 and no_torch.flops is None
