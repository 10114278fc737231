"""Exponent fits on synthetic data with known exponents, and on counted mixer FLOPs."""

import math

import numpy as np
import pytest

from gfbench.layers import build_mixer
from gfbench.measure.flops import count_flops
from gfbench.measure.scaling import (
    compare_growth,
    fit_exponent,
    fit_power_law,
    larger_half,
    scaling_exponents,
)
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
    assert compare_growth(TOKENS[:2], TOKENS[:2] ** 2).best == ""  # two points cannot tell


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


def test_exponent_is_fitted_on_the_larger_half_of_the_token_counts():
    assert larger_half([1.0, 2, 3, 4, 5]).tolist() == [False, False, True, True, True]
    assert larger_half([1.0, 2, 3]).tolist() == [False, True, True]
    assert larger_half([4.0, 1]).tolist() == [True, True]
    tokens = np.array([49.0, 196, 784, 3136])
    cost = 1e6 + tokens**2  # a fixed cost flattens the small-N end
    assert fit_exponent(tokens, cost).k > fit_power_law(tokens, cost).k
    assert fit_exponent(tokens, cost).k == pytest.approx(fit_power_law(tokens[2:], cost[2:]).k)
