"""Planning a sweep: every check before any work, one line each; defaults; patterns of size."""

import pytest
import torch

from gfbench.errors import GfbenchError, UnknownNameError
from gfbench.measure import plan as plan_module
from gfbench.measure.plan import ComplexityRequest, plan_complexity, resolve_impl

SMALL = {"mixers": ("global_filter", "attention"), "tokens": ("4", "6"), "dim": 16,
         "metrics": ("flops", "params", "latency"), "device": "cpu", "warmup": 1, "repeat": 2}


def _plan(tmp_path, **overrides):
    return plan_complexity(ComplexityRequest(**{**SMALL, **overrides}), results_dir=tmp_path)


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
    ({"batch_sizes": ("1", "x")}, "--batch-size 'x' is not a whole number"),
    ({"batch_sizes": (0,)}, "--batch-size 0 is not a whole number >= 1"),
    ({"exclude": ("deit",)}, "--exclude and --num-classes apply to --models"),
    ({"threads": 0}, "--threads 0 must be >= 1"),
    ({"reparam": True}, "--reparam applies to --models"),
])
def test_bad_requests_fail_first_in_one_line(tmp_path, overrides, message):
    with pytest.raises(GfbenchError, match=message.replace("(", r"\(")) as info:
        _plan(tmp_path, **overrides)
    assert "\n" not in str(info.value)


def test_unknown_model_gets_the_registry_error(tmp_path):
    with pytest.raises(UnknownNameError, match="unknown model 'deit-xxl'"):
        plan_complexity(ComplexityRequest(models=("deit-xxl",)), results_dir=tmp_path)


def test_a_malformed_resolution_fails_before_the_sweep(tmp_path):
    with pytest.raises(GfbenchError, match="not a number or HxW"):
        plan_complexity(ComplexityRequest(models=("gfnet",), resolutions=("224", "big")),
                        results_dir=tmp_path)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without a GPU")
def test_cuda_without_a_gpu_says_so(tmp_path):
    with pytest.raises(GfbenchError, match="no CUDA device"):
        _plan(tmp_path, device="cuda")


def test_defaults_are_the_trio_at_four_resolutions(tmp_path):
    # four sizes: a growth class with three terms (c0 + c1 N + c2 N log N) needs one more
    plan = plan_complexity(ComplexityRequest(device="cpu"), results_dir=tmp_path)
    assert [(s.name, s.res_h) for s in plan.settings] == [
        (m, r) for m in ("gfnet-xs", "deit-s", "resmlp-12") for r in (224, 320, 448, 640)]
    assert plan.name == "complexity-models-cpu-b1-fp32-infer"
    assert (plan.options.warmup, plan.options.repeat, plan.options.processes) == \
        plan_module.DEVICE_DEFAULTS["cpu"][1:]
    assert plan.isolate


def test_timm_models_default_to_their_native_size_and_take_native(tmp_path):
    plan = plan_complexity(ComplexityRequest(models=("efficientnet_b3", "gfnet-ti"),
                                             metrics=("flops",)), results_dir=tmp_path)
    sizes = [(s.name, s.res_h) for s in plan.settings]
    # efficientnet_b3's pretrained input is 288 (timm's pretrained_cfg); gfbench's own: trio
    assert sizes == [("efficientnet_b3", 288), ("gfnet-ti", 224), ("gfnet-ti", 320),
                     ("gfnet-ti", 448), ("gfnet-ti", 640)]
    native = plan_complexity(ComplexityRequest(models=("efficientnet_b3", "gfnet-ti"),
                                               resolutions=("native", "320"),
                                               metrics=("flops",)), results_dir=tmp_path)
    assert [(s.name, s.res_h) for s in native.settings] == [
        ("efficientnet_b3", 288), ("efficientnet_b3", 320), ("gfnet-ti", 224), ("gfnet-ti", 320)]


def test_exclude_and_num_classes(tmp_path):
    plan = plan_complexity(ComplexityRequest(models=("gfnet", "deit", "resmlp"),
                                             exclude=("deit-s",), resolutions=("224",),
                                             num_classes=0, metrics=("params",)),
                           results_dir=tmp_path)
    assert [s.name for s in plan.settings] == ["gfnet-xs", "resmlp-12"]
    assert {s.num_classes for s in plan.settings} == {0}
    with pytest.raises(GfbenchError, match="removed every model"):
        plan_complexity(ComplexityRequest(models=("deit",), exclude=("deit",)),
                        results_dir=tmp_path)


def test_a_batch_list_is_a_batch_sweep_in_one_file(tmp_path):
    plan = _plan(tmp_path, batch_sizes=("1", "8"), mixers=("attention",), tokens=("4",))
    assert [s.batch_size for s in plan.settings] == [1, 8]
    assert plan.name == "complexity-mixers-cpu-b1_8-fp32-infer"


@pytest.mark.parametrize("bad", ["file", "proc"])
def test_a_bad_out_fails_before_any_work(tmp_path, bad):
    target = tmp_path / "taken"
    target.write_text("not a folder")
    out = target if bad == "file" else tmp_path / "taken" / "below"
    with pytest.raises(GfbenchError, match="--out") as info:
        _plan(tmp_path, out=out)
    assert "\n" not in str(info.value)


def test_impl_is_recorded_and_resolved_per_subject():
    plan = plan_complexity(ComplexityRequest(models=("gfnet", "deit"), resolutions=("224",),
                                             metrics=("flops",), impl="auto"))
    assert {(s.name, s.impl) for s in plan.settings} == {("gfnet-xs", "reference"),
                                                         ("deit-s", "reference")}
    assert plan.extra["impl_requested"] == "auto"
    assert resolve_impl("auto", "cpu") == "reference"  # no CUDA here: the reference ran
    with pytest.raises(GfbenchError, match="--impl 'fft' is not one of reference, fast, auto"):
        resolve_impl("fft", "cpu")
    with pytest.raises(GfbenchError, match="--impl fast cannot run on cpu: "):
        plan_complexity(ComplexityRequest(mixers=("global_filter",), tokens=("8",),
                                          metrics=("latency",), device="cpu", impl="fast"))


def test_train_step_options_reach_the_settings_and_the_key(tmp_path):
    plan = _plan(tmp_path, mixers=("attention",), tokens=("4",), mode="train",
                 optimizer="adamw", warmup_s=0.2, flush_l2=True)
    (setting,) = plan.settings
    assert setting.optimizer == "adamw" and setting.row().optimizer == "adamw"
    assert plan.options.optimizer == "adamw" and plan.options.warmup_s == 0.2
    assert plan.options.flush_l2 and plan.extra["optimizer"] == "adamw"
    plain = _plan(tmp_path, mixers=("attention",), tokens=("4",), mode="train")
    assert plain.settings[0].key() != setting.key()  # with and without an update: two rows
    with pytest.raises(GfbenchError, match="--optimizer sgd needs --mode train"):
        _plan(tmp_path, optimizer="sgd")
    with pytest.raises(GfbenchError, match="--optimizer 'lion' is not one of sgd, adamw"):
        _plan(tmp_path, mode="train", optimizer="lion")


def test_reparam_reaches_the_model_settings_the_key_the_run_name_and_provenance(tmp_path):
    request = {"models": ("repvgg_a0",), "resolutions": ("224",), "metrics": ("flops",)}
    fused = plan_complexity(ComplexityRequest(**request, reparam=True), results_dir=tmp_path)
    built = plan_complexity(ComplexityRequest(**request), results_dir=tmp_path)
    (setting,) = fused.settings
    assert setting.reparam and setting.row().reparam and not built.settings[0].reparam
    assert setting.key() != built.settings[0].key()  # both forms can share a results file
    assert fused.name == built.name + "-reparam" and fused.extra["reparam"] is True
