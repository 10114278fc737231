"""Exponent fits and growth classes on synthetic data with known answers, on counted FLOPs of
real models (GFNet, Swin, mixers), and on timings too noisy to support a verdict."""

import itertools
import math

import numpy as np
import pytest

from gfbench.layers import build_mixer
from gfbench.measure.flops import count_flops
from gfbench.measure.scaling import (
    MAX_K_RANGE,
    compare_growth,
    fit_exponent,
    fit_power_law,
    larger_half,
    scaling_exponents,
    slope_range,
)
from gfbench.models.factory import create_model
from gfbench.results import ComplexityRow

TOKENS = np.array([196, 576, 1024, 2304, 4096, 9216], dtype=float)


@pytest.mark.parametrize("k", [0.5, 1.0, 1.5, 2.0, 2.7])
def test_power_law_recovers_a_known_exponent(k):
    noise = np.random.default_rng(0).lognormal(0.0, 0.02, TOKENS.size)
    fit = fit_power_law(TOKENS, 3.5 * TOKENS**k * noise)
    assert fit.k == pytest.approx(k, abs=0.03)
    assert fit.a == pytest.approx(3.5, rel=0.3)
    assert fit.r2 > 0.99 and fit.points == TOKENS.size


def test_power_law_ignores_missing_and_non_positive_points():
    fit = fit_power_law([10, 20, 40, 80], [100, None, 1600, 0])
    assert fit.points == 2 and fit.k == pytest.approx(2.0)


def test_one_distinct_size_gives_no_exponent():
    assert math.isnan(fit_power_law([64, 64], [1.0, 1.1]).k)


def test_n_log_n_and_n_squared_growth_are_told_apart():
    linear = 40 * TOKENS
    assert compare_growth(TOKENS, linear + 3 * TOKENS * np.log2(TOKENS)).best == "N log N"
    assert compare_growth(TOKENS, linear + 0.5 * TOKENS**2).best == "N^2"
    two = compare_growth(TOKENS[:2], TOKENS[:2] ** 2)
    assert two.best == "" and two.reason == "2 sizes: needs 3"  # two points give no verdict


def _counted_flops(mixer, sides, dim=384):
    return [count_flops(lambda s=s: build_mixer(mixer, dim, s), (1, s, s, dim)).total
            for s in sides]


def test_attention_flops_exponent_approaches_two_and_the_filter_stays_near_one():
    sides = [14, 28, 56, 112, 224]
    tokens = [s * s for s in sides]
    attention = _counted_flops("attention", sides)
    global_filter = _counted_flops("global_filter", sides)
    tail = fit_power_law(tokens[-2:], attention[-2:]).k
    assert fit_power_law(tokens, attention).k < tail  # the linear part fades...
    assert tail > 1.9  # ...and the N^2 term takes over
    assert fit_power_law(tokens, global_filter).k == pytest.approx(1.0, abs=0.15)
    assert compare_growth(tokens, attention).best == "N^2"
    assert compare_growth(tokens, global_filter).best == "N log N"


def _row(name, tokens, **values):
    side = int(math.sqrt(tokens))
    return ComplexityRow(subject="mixer", name=name, res_h=side, res_w=side, tokens=tokens,
                         batch_size=1, precision="fp32", mode="infer", device="cpu", dim=8,
                         **values)


def test_exponents_per_name_and_metric_skip_what_was_not_measured():
    rows = [_row("a", n, flops=2.0 * n**2, latency_ms_p50=0.1 * n) for n in (16, 64, 256)]
    rows += [_row("b", n, flops=5.0 * n) for n in (16, 64)]
    rows.append(_row("b", 256, flops=5.0 * 256**1.5, status="oom"))  # counted, never timed
    found = {(e.name, e.metric): e for e in scaling_exponents(rows)}
    assert set(found) == {("a", "flops"), ("a", "latency_ms_p50"), ("b", "flops")}
    assert found["a", "flops"].fit.k == pytest.approx(2.0)
    assert found["a", "latency_ms_p50"].fit.k == pytest.approx(1.0)
    # the OOM row's counted FLOPs are among the larger half the exponent is fitted on
    assert found["b", "flops"].fit.points == 2
    assert found["b", "flops"].fit.k == pytest.approx(math.log(256**1.5 / 64) / math.log(4))


def test_a_batch_sweep_fits_each_batch_and_says_which():
    import dataclasses
    import io

    from rich.console import Console

    from gfbench.render import exponents_table

    rows = [dataclasses.replace(_row("a", n, latency_ms_p50=b * 0.1 * n**k), batch_size=b)
            for b, k in ((1, 1.0), (8, 2.0)) for n in (16, 64, 256)]
    found = {(e.batch_size, e.metric): e.fit.k for e in scaling_exponents(rows)}
    assert found[1, "latency_ms_p50"] == pytest.approx(1.0)
    assert found[8, "latency_ms_p50"] == pytest.approx(2.0)
    screen = Console(file=io.StringIO(), width=100)
    screen.print(exponents_table(scaling_exponents(rows)))
    assert "a b1" in screen.file.getvalue() and "a b8" in screen.file.getvalue()


def test_exponent_is_fitted_on_the_larger_half_of_the_token_counts():
    assert larger_half([1.0, 2, 3, 4, 5]).tolist() == [False, False, True, True, True]
    assert larger_half([1.0, 2, 3]).tolist() == [False, True, True]
    assert larger_half([4.0, 1]).tolist() == [True, True]
    tokens = np.array([49.0, 196, 784, 3136])
    cost = 1e6 + tokens**2  # a fixed cost flattens the small-N end
    assert fit_exponent(tokens, cost).k > fit_power_law(tokens, cost).k
    assert fit_exponent(tokens, cost).k == pytest.approx(fit_power_law(tokens[2:], cost[2:]).k)


# --- growth classes: a constant term, a linear candidate, and "cannot tell" ---


def test_a_fixed_cost_of_3_percent_does_not_hide_n_log_n():
    cost = TOKENS * np.log2(TOKENS)
    growth = compare_growth(TOKENS, cost + 0.03 * cost.max())
    assert growth.best == "N log N"
    assert growth.rel_rms["N log N"] < 1e-9 < growth.rel_rms["N^2"]


def test_linear_costs_are_linear_not_n_log_n():
    assert compare_growth(TOKENS, 7.0 * TOKENS).best == "N"
    assert compare_growth(TOKENS, 7.0 * TOKENS + 5e3).best == "N"  # with a fixed cost
    assert compare_growth(TOKENS, np.full(TOKENS.size, 3.0)).best == "1"  # attention's params


def test_n_log_n_and_n_squared_that_fit_alike_cannot_be_told():
    n = np.array([1000.0, 1100, 1200, 1300])  # too narrow a range to see the curvature
    growth = compare_growth(n, n * np.log2(n), tolerance=0.01)
    assert growth.best == "" and growth.reason == "N log N or N^2: both fit"


def test_three_sizes_cannot_tell_n_log_n_from_n_squared():
    growth = compare_growth(TOKENS[:3], TOKENS[:3] ** 2)
    assert growth.best == "" and growth.reason == "above N; 3 sizes cannot tell"
    assert compare_growth(TOKENS[:3], 7.0 * TOKENS[:3]).best == "N"  # one size to spare


def _model_flops(name, sides, patch):
    counted = [count_flops(lambda s=s: create_model(name, s), (1, 3, s, s)).total for s in sides]
    return [(s // patch) ** 2 for s in sides], counted


def test_counted_gfnet_flops_are_n_log_n_and_swin_flops_linear():
    # GFNet: per-token layers plus FFTs whose share is ~1%; Swin: windowed attention is linear
    tokens, flops = _model_flops("gfnet-xs", [224, 448, 672, 896], 16)
    assert compare_growth(tokens, flops).best == "N log N"
    tokens, flops = _model_flops("swin_tiny_patch4_window7_224", [224, 448, 672], 4)
    assert flops[0] == pytest.approx(4.5e9, rel=0.01)  # Swin-T's 4.5 GFLOPs at 224
    assert compare_growth(tokens, flops).best == "N"


def test_a_small_n_log_n_part_is_found_unless_rounding_of_its_log_hides_it():
    def cost(share, log):  # fixed + per-token cost, `share` of it in FFTs (GFNet: about 1%)
        return 1e6 + 4e6 * TOKENS + share * 4e6 / 14 * TOKENS * log(np.log2(TOKENS))

    assert compare_growth(TOKENS, cost(0.01, np.asarray)).best == "N log N"
    assert compare_growth(TOKENS, cost(0.05, np.ceil)).best == "N log N"
    # counted with ceil(log2 N), a 1% part is as close to N^2 as to N log N at these sizes
    assert compare_growth(TOKENS, cost(0.01, np.ceil)).reason == "N log N or N^2: both fit"


def _timed_rows(name, tokens, p50, p10, p90):
    return [_row(name, int(n), latency_ms_p10=lo, latency_ms_p50=mid, latency_ms_p90=hi)
            for n, lo, mid, hi in zip(tokens, p10, p50, p90, strict=True)]


@pytest.mark.parametrize("seed", range(20))
def test_thirty_percent_noise_on_three_sizes_gives_no_exponent_and_no_class(seed):
    tokens = np.array([196.0, 576, 1024])  # the default run: 224, 384 and 512 px
    p50 = 2.0 * tokens * np.random.default_rng(seed).uniform(0.7, 1.3, tokens.size)
    rows = _timed_rows("m", tokens, p50, 0.85 * p50, 1.15 * p50)
    (latency,) = [e for e in scaling_exponents(rows) if e.metric == "latency_ms_p50"]
    assert latency.fit.noisy.startswith("noisy:") and latency.growth.best == ""
    assert not latency.counted and latency.growth.margin > 0.1499  # the bands: ±15%


def test_quiet_timings_keep_their_exponent_and_class():
    p50 = 0.01 * TOKENS**2 + 0.5 * TOKENS
    rows = _timed_rows("m", TOKENS, p50, 0.98 * p50, 1.03 * p50)
    (latency,) = [e for e in scaling_exponents(rows) if e.metric == "latency_ms_p50"]
    assert latency.fit.noisy == "" and latency.growth.best == "N^2"
    assert latency.fit.k_low < latency.fit.k < latency.fit.k_high


# --- exponents: fit quality, and "noisy" instead of a number ---


def _corner_slopes(log_n, log_low, log_high):
    """Every least-squares slope with each point at one end of its band (brute force)."""
    return [np.polyfit(log_n, np.where(corner, log_high, log_low), 1)[0]
            for corner in itertools.product([False, True], repeat=log_n.size)]


def test_slope_range_is_the_extreme_of_all_band_corners():
    rng = np.random.default_rng(3)
    log_n = np.log(TOKENS)
    log_mid = 1.3 * log_n + rng.normal(0, 0.05, log_n.size)
    log_low = log_mid - rng.uniform(0.01, 0.2, log_n.size)
    log_high = log_mid + rng.uniform(0.01, 0.3, log_n.size)
    corners = _corner_slopes(log_n, log_low, log_high)
    assert slope_range(log_n, log_low, log_high) == pytest.approx((min(corners), max(corners)))


def test_exact_power_law_has_its_exponent_range_r2_and_sizes():
    cost = 3.5 * TOKENS**1.7
    fit = fit_exponent(TOKENS, cost, 0.95 * cost, 1.08 * cost, measured=True)
    assert fit.k == pytest.approx(1.7) and fit.a == pytest.approx(3.5)
    assert fit.r2 == pytest.approx(1.0) and fit.points == 3 and fit.noisy == ""
    tail = np.log(TOKENS[3:])
    corners = _corner_slopes(tail, tail * 1.7 + math.log(3.5 * 0.95),
                             tail * 1.7 + math.log(3.5 * 1.08))
    assert (fit.k_low, fit.k_high) == pytest.approx((min(corners), max(corners)))
    assert fit.k_low < 1.7 < fit.k_high
    counted = fit_exponent(TOKENS, cost)  # counted: exact, no band, never noisy
    assert math.isnan(counted.k_low) and counted.noisy == "" and counted.r2 == pytest.approx(1)


def test_a_median_that_turns_back_is_noisy():
    cost = 2.0 * TOKENS
    cost[4] = 0.9 * cost[3]  # the fourth and fifth sizes are in the larger half
    fit = fit_exponent(TOKENS, cost, measured=True)
    assert fit.noisy == "noisy: median turns back at N=4096"
    assert fit_exponent(TOKENS, cost).noisy == ""  # counted values are never noisy


def test_overlapping_bands_are_noisy():
    cost = np.array([10.0, 11.0])
    fit = fit_exponent([1024, 2048], cost, [9.0, 10.5], [11.5, 12.0], measured=True)
    assert fit.noisy == "noisy: p10–p90 of N=1024, 2048 overlap"


def test_a_wide_exponent_range_is_noisy():
    cost = np.array([10.0, 16.0])  # N ratio 1.5: the bands leave k anywhere from ~0.3 to ~2
    fit = fit_exponent([1000, 1500], cost, [8.5, 13.6], [11.5, 18.4], measured=True)
    assert fit.k_high - fit.k_low > MAX_K_RANGE
    assert fit.noisy.startswith("noisy: p10–p90 allow k ")


def test_a_poor_power_law_fit_is_noisy():
    tokens = np.array([250.0, 500, 1000, 2000, 4000, 8000])
    cost = np.array([1.0, 1.0, 1.0, 1.01, 1.02, 10.0])  # flat, then a cliff
    fit = fit_exponent(tokens, cost, 0.999 * cost, 1.001 * cost, measured=True)
    assert fit.points == 3 and fit.r2 < 0.9 and fit.noisy.startswith("noisy: r² ")


def test_the_reason_names_the_noise_that_hides_faster_growth():
    tokens = np.array([196.0, 576, 1024])
    assert compare_growth(tokens, 2 * tokens, noise=0.2).reason == "noise 20% hides N log N"
    assert compare_growth(tokens, 2 * tokens, noise=3.0).reason == "noise over 100% hides N"
    # the verdict turns where the noise reaches what a line misses pure N log N by (11%)
    miss = compare_growth(tokens, tokens * np.log2(tokens)).rel_rms["N"]
    assert compare_growth(tokens, 2 * tokens, noise=miss).best == ""
    assert compare_growth(tokens, 2 * tokens, noise=0.9 * miss).best == "N"
