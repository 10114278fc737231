"""Predicted peak memory (gfbench.measure.predict) against peaks derived by hand."""

import pytest
import torch
from torch import nn

from gfbench.errors import GfbenchError
from gfbench.layers.attention import Attention
from gfbench.measure.predict import allocation_bytes, predict_module, predict_setting
from gfbench.measure.setting import Setting
from gfbench.models.meta import on_meta

F32 = 4


def linear_stack(batch: int, dim: int, depth: int = 3) -> tuple[nn.Module, torch.Tensor]:
    """``depth`` Linear(dim, dim) layers with bias and a (batch, dim) input, on meta."""
    with on_meta():
        return nn.Sequential(*[nn.Linear(dim, dim) for _ in range(depth)]), \
            torch.empty(batch, dim)


def test_allocation_bytes_rounds_cuda_requests_up_to_512_and_leaves_cpu_exact():
    assert [allocation_bytes(n, "cuda") for n in (0, 1, 512, 513, 4000)] == \
        [0, 512, 512, 1024, 4096]
    assert [allocation_bytes(n, "cpu") for n in (0, 1, 513, 4000)] == [0, 1, 513, 4000]


def test_inference_peak_is_two_live_activations_of_a_linear_stack():
    # Under no_grad each output is freed once the next layer has read it: the peak is one
    # layer's input and output together; the input image is resident, not part of the peak.
    batch, dim = 10, 100
    model, x = linear_stack(batch, dim)
    pred = predict_module(model, x, "infer", device_kind="cpu")
    activation = batch * dim * F32
    assert pred.peak_above_resident == 2 * activation
    assert pred.resident == 3 * (dim * dim + dim) * F32 + activation
    assert pred.by_category["activations"] == 2 * activation
    assert pred.by_category["gradients"] == 0


def test_cuda_prediction_counts_each_allocation_rounded_to_512_bytes():
    batch, dim = 3, 10  # 120-byte activations: 512 each on CUDA
    model, x = linear_stack(batch, dim)
    assert predict_module(model, x, "infer", device_kind="cpu").peak_above_resident == 240
    cuda = predict_module(model, x, "infer", device_kind="cuda")
    assert cuda.peak_above_resident == 2 * 512
    # weight 400 B -> 512, bias 40 B -> 512, per layer; the input 120 B -> 512
    assert cuda.resident == 3 * (512 + 512) + 512


def test_training_peak_is_every_gradient_plus_the_output_and_the_first_layers_gradient():
    # Backward runs last layer first, so the first layer's gradient is the last one made: at
    # that moment every parameter has its gradient, the step still holds the output (B, D),
    # the incoming gradient of layer 1 (B, D) is live, and so are the loss and its seed (one
    # fp32 scalar each). Activations saved for layers 2 and 3 were freed by then; with the
    # weights 40x the activations, this moment is the peak.
    batch, dim = 10, 100
    model, x = linear_stack(batch, dim)
    pred = predict_module(model, x, "train", device_kind="cpu")
    params = 3 * (dim * dim + dim) * F32
    activation = batch * dim * F32
    assert pred.peak_above_resident == params + 2 * activation + 2 * F32
    assert pred.by_category["gradients"] == params
    assert pred.by_category["activations"] == 2 * activation + 2 * F32


def test_sgd_step_holds_gradients_momentum_and_the_output_at_its_peak():
    # SGD's momentum buffers appear on the update (one per parameter, a clone of its
    # gradient); the step's output is still held. In later steps the momentum is resident
    # and the update works in place, so their peak is the backward's (previous test) on top.
    batch, dim = 10, 100
    model, x = linear_stack(batch, dim)
    pred = predict_module(model, x, "train", "sgd", device_kind="cpu")
    params = 3 * (dim * dim + dim) * F32
    assert pred.peak_above_resident == 2 * params + batch * dim * F32
    assert pred.by_category["optimizer_state"] == params
    backward_peak = params + 2 * batch * dim * F32 + 2 * F32
    assert pred.steady_total == pred.resident + params + backward_peak
    assert pred.need_total == pred.steady_total


def test_explicit_attention_peak_holds_two_n_by_n_score_tensors_and_fused_holds_none():
    # Explicit attention: the scores (B, heads, N, N) stay bound while softmax writes its
    # output of the same size, so 2 * B*heads*N^2*4 bytes are live at the peak, plus the
    # token-sized tensors (qkv, the scaled q or a contiguous v, the output): each at most
    # B*N*3*dim*4 bytes. The fused kernel never forms the scores.
    batch, side, dim, heads = 2, 16, 32, 4  # N = 256 tokens, head_dim 8
    tokens = side * side
    scores = batch * heads * tokens * tokens * F32
    token_bytes = batch * tokens * 3 * dim * F32
    with on_meta():
        explicit, fused = Attention(dim, heads, fused=False), Attention(dim, heads, fused=True)
        x = torch.empty(batch, side, side, dim)
    peak = predict_module(explicit, x, "infer", device_kind="cpu").peak_above_resident
    assert 2 * scores <= peak <= 2 * scores + 3 * token_bytes
    assert predict_module(fused, x, "infer", device_kind="cpu").peak_above_resident \
        <= 3 * token_bytes


def test_other_precisions_are_refused_in_one_line():
    model, x = linear_stack(2, 8)
    with pytest.raises(GfbenchError, match="bf16 is not predicted yet"):
        predict_module(model, x, "infer", device_kind="cpu", precision="bf16")


def test_a_model_setting_is_predicted_from_its_meta_build():
    setting = Setting("model", "deit-s", 224, 224, 2, "fp32", "infer", "meta")
    pred = predict_setting(setting)
    assert pred.device_kind == "cuda"  # a count-only run predicts for a GPU
    assert pred.by_category["parameters"] >= 22_050_664 * F32  # DeiT-S, rounded up per tensor
    assert pred.by_category["input"] == 2 * 3 * 224 * 224 * F32
    assert 0 < pred.peak_above_resident < pred.resident


class ReadsAValue(nn.Module):
    """A module whose forward needs a tensor's value (impossible on meta: nothing to read)."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) * float(x.sum().item())


def test_a_step_that_cannot_be_traced_is_a_one_line_note_and_the_counts_stay(tmp_path,
                                                                            monkeypatch):
    import gfbench.measure.setting as setting_module
    from gfbench.measure.complexity import run_complexity
    from gfbench.measure.plan import ComplexityRequest

    monkeypatch.setattr(setting_module, "builder", lambda setting: ReadsAValue)
    request = ComplexityRequest(models=("deit",), resolutions=("32",), metrics=("params",),
                                predict=True, out=tmp_path)
    (row,) = run_complexity(request).rows
    assert row.status == "ok" and row.params == 12  # counted
    assert row.pred_mem_bytes is None
    assert row.error.startswith("memory prediction failed: ") and "\n" not in row.error


def test_a_count_only_predict_run_starts_no_child_and_fills_pred_mem_bytes(tmp_path, spawned):
    from gfbench.measure.complexity import run_complexity
    from gfbench.measure.plan import ComplexityRequest

    request = ComplexityRequest(mixers=("global_filter",), tokens=("14",), dim=64,
                                batch_sizes=(2,), metrics=("params",), predict=True,
                                out=tmp_path)
    (row,) = run_complexity(request).rows
    assert spawned == []
    setting = Setting("mixer", "global_filter", 14, 14, 2, "fp32", "infer", "meta", dim=64)
    predicted = predict_setting(setting)
    assert row.pred_mem_bytes == predicted.peak_above_resident > 0
    assert row.pred_need_bytes == predicted.need_total == predicted.resident + \
        predicted.peak_above_resident  # inference: nothing stays between steps


@pytest.mark.parametrize("guess", [1, 5, 37, 38, 100, 5000])
@pytest.mark.parametrize("answer", [0, 1, 37, 1000])
def test_batch_search_finds_the_largest_fitting_batch_exactly_from_any_guess(answer, guess):
    from gfbench.measure.predict import largest_batch

    probes: list[int] = []

    def fits(batch: int) -> bool:
        probes.append(batch)
        return batch <= answer

    assert largest_batch(fits, guess, limit=4096) == answer
    assert all(1 <= b <= 4096 for b in probes)
    assert len(probes) <= 2 * 13 + 2  # galloping + bisection: logarithmic in the distance


def test_batch_search_stops_at_its_limit_when_everything_fits():
    from gfbench.measure.predict import largest_batch

    assert largest_batch(lambda b: True, 3, limit=100) == 100


def fitted_rows(settings: list[Setting], budget_bytes: int) -> list:
    """The count step's rows of these settings, with --fit-memory's search for the budget."""
    from gfbench.measure.setting import SweepOptions, count_setting

    options = SweepOptions(metrics=frozenset({"params"}), fit_budget_bytes=budget_bytes,
                           fit_budget="test")
    return [count_setting(s, options) for s in settings]


def test_fit_setting_is_the_largest_batch_whose_predicted_need_fits():
    from gfbench.measure.predict import memory_fit

    setting = Setting("mixer", "dwconv", 8, 8, 4, "fp32", "train", "meta", dim=16,
                      optimizer="sgd")
    need = {b: predict_setting(setting, batch_size=b).need_total for b in (36, 37, 38)}
    assert need[36] < need[37] < need[38]
    (counted,) = fitted_rows([setting], need[37])
    assert counted.fit_max_batch == 37 and counted.fit_budget_bytes == need[37]
    assert counted.fit_budget == "test" and counted.error == ""
    assert counted.fit_need_bytes == predict_setting(setting).need_total
    fit = memory_fit([counted, counted], need[37], "test")  # the same setting once
    (row,) = fit.fits
    assert row.max_batch == 37 and row.fits and row.need_bytes <= need[37]
    assert row.pred_peak_at_max == predict_setting(setting, batch_size=37).peak_above_resident
    # at batch 4: 8x8 fits exactly, 16x16 and 32x32 do not; the smallest of those is named
    # whatever the order asked
    exact = predict_setting(setting).need_total
    sizes = [dataclasses_replace(setting, res_h=side, res_w=side) for side in (32, 8, 16)]
    fit = memory_fit(fitted_rows(sizes, exact), exact, "test")
    assert [f.fits for f in fit.fits] == [False, True, False]
    assert [f.max_batch for f in fit.fits][1] == 4  # exactly its own batch
    assert fit.smallest_unfit() == {"dwconv": "16x16"}


def test_a_failed_fit_leaves_the_batch_empty_and_says_why_in_one_line():
    from gfbench.measure.predict import memory_fit

    # a mixer the registry does not know: the count step fails before any fit, the row says
    # why, and the fit read from the row carries that line
    unknown = Setting("mixer", "no_such_mixer", 8, 8, 1, "fp32", "infer", "meta", dim=16)
    (row,) = fitted_rows([unknown], 2**20)
    assert row.status == "error" and row.fit_max_batch is None
    (fit,) = memory_fit([row], 2**20, "test").fits
    assert fit.max_batch == 0 and not fit.fits and fit.error == row.error
    assert "\n" not in fit.error and "no_such_mixer" in fit.error


def test_a_search_that_fails_is_a_note_and_the_counts_stay(monkeypatch):
    import gfbench.measure.predict as predict
    from gfbench.measure.predict import FIT_FAILED, memory_fit
    from gfbench.measure.setting import SweepOptions, count_setting

    def broken(setting, batch_size=None, device_kind=None):
        raise RuntimeError("cannot trace this step\nsecond line")

    monkeypatch.setattr(predict, "predict_setting", broken)
    setting = Setting("mixer", "dwconv", 8, 8, 2, "fp32", "infer", "meta", dim=16)
    (row,) = fitted_rows([setting], 2**20)
    plain = count_setting(setting, SweepOptions(metrics=frozenset({"params"})))
    assert row.status == "ok" and row.params == plain.params > 0
    assert row.fit_budget_bytes == 2**20 and row.fit_max_batch is None
    assert row.error == FIT_FAILED + "cannot trace this step"
    (fit,) = memory_fit([row], 2**20, "test").fits
    assert fit.error == "cannot trace this step" and fit.max_batch == 0


def dataclasses_replace(setting: Setting, **changes) -> Setting:
    """A copy of a setting with some fields changed."""
    import dataclasses

    return dataclasses.replace(setting, **changes)


def test_on_a_device_the_found_batch_is_measured_beside_its_prediction(tmp_path):
    # The CPU route of the check (a CUDA run uses the same runner with CUDA's counter):
    # explicit attention at 16x16 tokens, whose peak is its N x N scores.
    from gfbench.measure.complexity import run_complexity
    from gfbench.measure.plan import ComplexityRequest
    from gfbench.options import parse_memory_budget

    request = ComplexityRequest(mixers=("attention_explicit",), tokens=("16",), dim=64,
                                batch_sizes=(2,), metrics=("memory",), device="cpu",
                                fit_memory=parse_memory_budget("64MiB"), out=tmp_path)
    (fit,) = run_complexity(request).memory_fit.fits
    assert fit.check == "ok" and fit.max_batch > 2
    assert fit.measured_peak_at_max == pytest.approx(fit.pred_peak_at_max, rel=0.1)
