"""The crossover: synthetic power laws with an analytic crossing, bands, and committed rows."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from gfbench.measure.crossover import crossings, crossover, crossovers, family
from gfbench.results import ComplexityRow
from gfbench.results.files import read_results

RESULTS = Path(__file__).resolve().parents[2] / "results"
SIZES = (49, 196, 784, 3136, 12544)


def _rows(name: str, values, sizes=SIZES, spread: float = 0.0, **fields) -> list[ComplexityRow]:
    """Mixer rows of one name with latency and FLOPs equal to the given values per size and a
    p10–p90 band of ±spread (relative) around the median."""
    rows = []
    for n, v in zip(sizes, values, strict=True):
        side = math.isqrt(n)
        row = ComplexityRow(subject="mixer", name=name, res_h=None, res_w=None, grid_h=side,
                            grid_w=side, tokens=n, batch_size=fields.get("batch_size", 1),
                            precision="fp32", mode="infer", device="cpu", dim=64,
                            flops=v, latency_ms_p50=v, latency_ms_p10=v * (1 - spread),
                            latency_ms_p90=v * (1 + spread))
        rows.append(row)
    return rows


def _law(a: float, k: float, sizes=SIZES) -> list[float]:
    return [a * n**k for n in sizes]


def test_two_power_laws_cross_where_the_algebra_says():
    # 40*n^1.1 (N log N-like) against 0.05*n^2 (attention-like): n = (40/0.05)^(1/0.9)
    expected = (40 / 0.05) ** (1 / (2 - 1.1))
    assert SIZES[0] < expected < SIZES[-1]
    found = crossover("global_filter", "attention", "flops",
                      _rows("global_filter", _law(40, 1.1)), _rows("attention", _law(0.05, 2)))
    assert found.tokens == pytest.approx(expected, rel=1e-6)
    assert found.low == found.high == found.tokens  # counted: no band
    assert found.below_after is True
    assert found.verdict.startswith("global_filter drops below attention at N≈")


def test_the_other_direction_is_a_rise():
    expected = (0.05 / 40) ** (1 / (1.1 - 2))
    found = crossover("gfnet", "deit", "flops", _rows("gfnet", _law(0.05, 2)),
                      _rows("deit", _law(40, 1.1)))
    assert found.tokens == pytest.approx(expected, rel=1e-6)
    assert found.below_after is False
    assert "rises above" in found.verdict


def test_a_crossing_outside_the_sizes_is_not_a_crossover():
    # the same laws, measured only above the crossing (~1,683): global filter below everywhere
    sizes = (3136, 12544, 50176)
    found = crossover("global_filter", "attention", "flops",
                      _rows("global_filter", _law(40, 1.1, sizes), sizes),
                      _rows("attention", _law(0.05, 2, sizes), sizes))
    assert found.tokens is None and found.low is None
    assert found.below_after is True
    assert found.verdict == ("not within the sizes measured: global_filter below attention at "
                             "every size (N 3,136–50,176)")


def test_parallel_curves_never_cross():
    found = crossover("global_filter", "spatial_mlp", "flops",
                      _rows("global_filter", _law(3, 1.5)), _rows("spatial_mlp", _law(2, 1.5)))
    assert found.tokens is None
    assert found.below_after is False
    assert "above spatial_mlp at every size" in found.verdict


def test_bands_give_a_range_holding_the_crossing():
    expected = (40 / 0.05) ** (1 / 0.9)
    found = crossover("global_filter", "attention", "latency_ms_p50",
                      _rows("global_filter", _law(40, 1.1), spread=0.1),
                      _rows("attention", _law(0.05, 2), spread=0.1))
    assert found.tokens == pytest.approx(expected, rel=1e-6)
    assert found.low is not None and found.high is not None
    assert found.low < found.tokens < found.high
    # the edges by hand: 40(1±0.1) n^1.1 = 0.05(1∓0.1) n^2 inside the bracketing sizes
    early = (40 * 0.9 / (0.05 * 1.1)) ** (1 / 0.9)
    late = (40 * 1.1 / (0.05 * 0.9)) ** (1 / 0.9)
    assert (found.low, found.high) == pytest.approx((early, late), rel=1e-6)
    assert "(p10–p90: " in found.verdict


def test_a_band_too_wide_gives_no_verdict():
    # n against 0.8 n^1.05 meet at 1.25^20 ≈ 87 tokens, but differ by at most 12 % within the
    # sizes, so ±20 % bands overlap at every size and either order fits the timings
    sizes = (49, 196, 784)
    found = crossover("global_filter", "attention", "latency_ms_p50",
                      _rows("global_filter", _law(1, 1, sizes), sizes, spread=0.2),
                      _rows("attention", _law(0.8, 1.05, sizes), sizes, spread=0.2))
    assert found.tokens is None and found.low is None and found.below_after is None
    assert found.verdict.startswith("cannot tell: the p10–p90 bands")
    assert "medians cross at N≈87" in found.verdict  # 1.25^20 = 86.7


def test_several_crossings_show_the_last():
    n = (1, 2, 4, 8)
    found = crossings(n, [1, 3, 1, 3], [2, 2, 2, 2])
    assert len(found) == 3
    assert found == sorted(found)
    assert 4 < found[-1] < 8


def test_a_size_where_the_curves_are_equal_is_the_crossing():
    assert crossings((1, 2, 4), (1, 2, 3), (2, 2, 2)) == [2.0]
    assert crossings((1, 2, 4), (2, 1, 1), (2, 2, 2)) == []  # equal, then below: no change


def test_equal_at_one_size_is_said_rather_than_below_everywhere():
    found = crossover("gfnet", "deit", "flops", _rows("gfnet", [1, 2, 4, 8, 16]),
                      _rows("deit", [1, 3, 9, 27, 81]))
    assert found.tokens is None and found.below_after is True
    assert "gfnet below deit at every other size (equal at N=49)" in found.verdict


def test_missing_values_are_said():
    rows = _rows("global_filter", _law(40, 1.1))
    assert crossover("global_filter", "attention", "bytes", rows,
                     _rows("attention", _law(1, 2))).verdict == "no bytes"
    one = crossover("global_filter", "attention", "flops", rows[:1],
                    _rows("attention", _law(1, 2))[:1])
    assert one.tokens is None and one.verdict == "1 size(s) in common: needs 2"


def test_pairs_only_within_one_setting():
    rows = (_rows("global_filter", _law(40, 1.1)) + _rows("attention", _law(0.05, 2))
            + _rows("spatial_mlp", _law(0.05, 2), batch_size=8) + _rows("dwconv", _law(1, 1)))
    found = crossovers(rows)
    pairs = {(c.first, c.second, c.batch_size) for c in found}
    assert pairs == {("global_filter", "attention", 1)}  # spatial_mlp is at batch 8
    assert {c.metric for c in found} == {"latency_ms_p50", "flops", "bytes"}
    assert all(c.dim == 64 and c.device == "cpu" for c in found)


def test_families_by_name_prefix():
    assert family("GFNet-XS", ("gfnet",)) and family("deit-s", ("deit",))
    assert family("attention_explicit", ("attention",))
    assert not family("resnet50", ("gfnet", "deit"))


def test_committed_rows_cross_in_flops_as_a_hand_calculation_says():
    """FNet's Fourier mixing against the global filter in the committed mixer sweep: FNet
    costs more at 14² tokens and less at 28²; between those two sizes each curve is the power
    law through its two points."""
    _, frame = read_results(RESULTS / "0002-complexity-mixers-meta-b1-fp32-infer.json")
    rows = list(frame.itertuples())
    flops = {(r.name, r.tokens): r.flops for r in rows}
    gf, fnet = (flops[("global_filter", 196)], flops[("global_filter", 784)]), \
        (flops[("fourier", 196)], flops[("fourier", 784)])
    assert fnet[0] > gf[0] and fnet[1] < gf[1]  # the order changes between 196 and 784
    k_gf, k_fnet = (math.log(y1 / y0) / math.log(784 / 196) for y0, y1 in (gf, fnet))
    by_hand = 196 * (fnet[0] / gf[0]) ** (1 / (k_gf - k_fnet))
    found = crossover("global_filter", "fourier", "flops",
                      [r for r in rows if r.name == "global_filter"],
                      [r for r in rows if r.name == "fourier"])
    assert found.tokens == pytest.approx(by_hand, rel=1e-9)
    assert 196 < found.tokens < 784
    assert found.below_after is False  # the global filter ends above FNet


def test_committed_mixer_sweep_global_filter_below_attention_in_flops():
    _, frame = read_results(RESULTS / "0002-complexity-mixers-meta-b1-fp32-infer.json")
    rows = list(frame.itertuples())
    flops = {(r.name, r.tokens): r.flops for r in rows}
    sizes = sorted({r.tokens for r in rows})
    assert all(flops[("global_filter", n)] < flops[("attention", n)] for n in sizes)
    found = next(c for c in crossovers(rows)
                 if (c.first, c.second, c.metric) == ("global_filter", "attention", "flops"))
    assert found.tokens is None and found.below_after is True
    assert found.verdict.startswith("not within the sizes measured")
    assert found.sizes == tuple(float(n) for n in sizes)


def test_a_count_only_run_has_no_latency_crossover_but_a_timed_pair_without_latency_says_so():
    counted = [r for name, law in (("global_filter", _law(40, 1.1)), ("attention", _law(0.05, 2)))
               for r in _rows(name, law)]
    for row in counted:
        row.latency_ms_p50 = row.latency_ms_p10 = row.latency_ms_p90 = None
    assert {c.metric for c in crossovers(counted)} == {"flops", "bytes"}
    timed_elsewhere = counted + _rows("dwconv", _law(1, 1))  # one timed row in the run
    latency = [c for c in crossovers(timed_elsewhere) if c.metric == "latency_ms_p50"]
    assert [c.verdict for c in latency] == ["not timed"]
