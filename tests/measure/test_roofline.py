"""The roofline of a timed row, against hand computations: which ceiling bounds it, the lower
bound of one call and the gap to it, the precision's ceiling, rows without bytes, runs without
ceilings."""

import pytest

from gfbench.measure.roofline import (
    NO_CEILING,
    below_roofline_warning,
    ceiling_key,
    ceilings_warning,
    fill_roofline,
    roofline,
)
from gfbench.results import ComplexityRow


def _spread(p50: float) -> dict:
    return {"p10": p50 / 2, "p50": p50, "p90": p50 * 1.1}


CEILINGS = {"source": "measured", "device": "cpu", "device_name": "cpu: test", "threads": 2,
            "matmul_flops_s": {"fp32": _spread(1e10), "bf16": _spread(4e10)},
            "bandwidth_bytes_s": {"copy": _spread(5e8), "triad": _spread(1e9)},
            "bandwidth_used": "triad"}


def _row(**fields) -> ComplexityRow:
    base = dict(subject="mixer", name="m", res_h=None, res_w=None, tokens=16, batch_size=2,
                precision="fp32", mode="infer", device="cpu", flops=1e6, bytes=1e6,
                latency_ms_p50=4.0)
    return ComplexityRow(**{**base, **fields})


def test_a_memory_bound_row():
    # one call: 2e6 MACs at 1e10/s = 0.2 ms; 2e6 bytes at 1e9 B/s = 2 ms -> memory, 2 ms
    result = roofline(1e6, 1e6, 2, 4.0, 1e10, 1e9)
    assert result.bound == "memory"
    assert result.roofline_ms == pytest.approx(2.0)
    assert result.roofline_ratio == pytest.approx(4.0 / 2.0)
    assert result.achieved_flops_s == pytest.approx(2e6 / 0.004)
    assert result.achieved_bytes_s == pytest.approx(2e6 / 0.004)
    assert result.compute_share == pytest.approx(5e8 / 1e10)
    assert result.bandwidth_share == pytest.approx(5e8 / 1e9)


def test_a_compute_bound_row():
    # 4e9 MACs at 1e10/s = 400 ms; 4e6 bytes at 1e9 B/s = 4 ms -> compute, 400 ms
    result = roofline(1e9, 1e6, 4, 1000.0, 1e10, 1e9)
    assert result.bound == "compute"
    assert result.roofline_ms == pytest.approx(400.0)
    assert result.roofline_ratio == pytest.approx(2.5)
    assert result.compute_share == pytest.approx(0.4)
    assert result.bandwidth_share == pytest.approx(4e6 / 1.0 / 1e9)


def test_a_row_takes_the_ceiling_of_its_precision_and_the_triad():
    row = _row(precision="bf16")
    fill_roofline(row, CEILINGS)
    assert row.compute_share == pytest.approx((2e6 / 0.004) / 4e10)  # bf16's median, not fp32's
    assert row.bandwidth_share == pytest.approx((2e6 / 0.004) / 1e9)  # the triad, not the copy
    assert row.bound == "memory" and row.roofline_ms == pytest.approx(2.0)


def test_fp32_on_cuda_with_tf32_on_is_held_to_the_tf32_ceiling():
    assert ceiling_key("fp32", "cuda:0", tf32=True) == "tf32"
    assert ceiling_key("fp32", "cuda:0", tf32=False) == "fp32"
    assert ceiling_key("fp32", "cpu", tf32=True) == "fp32"  # TF32 is a CUDA matmul mode
    assert ceiling_key("bf16", "cuda:1", tf32=True) == "bf16"
    cuda = {**CEILINGS, "device": "cuda:0",
            "matmul_flops_s": {"fp32": _spread(1e10), "tf32": _spread(8e10)}}
    row = _row(device="cuda:0")
    fill_roofline(row, cuda, tf32=True)
    assert row.compute_share == pytest.approx((2e6 / 0.004) / 8e10)


def test_a_row_without_bytes_gets_the_compute_side_only():
    row = _row(bytes=None)
    fill_roofline(row, CEILINGS)
    assert row.achieved_flops_s == pytest.approx(5e8)
    assert row.compute_share == pytest.approx(5e8 / 1e10)
    assert row.achieved_bytes_s is None and row.bandwidth_share is None
    assert row.bound == NO_CEILING and row.roofline_ms is None and row.roofline_ratio is None


@pytest.mark.parametrize("ceilings", [None, {"source": "none", "reason": "child died"},
                                      {**CEILINGS, "device": "cuda:0"}],
                         ids=["none recorded", "not measured", "another device"])
def test_without_usable_ceilings_only_the_achieved_rates_are_given(ceilings):
    row = _row()
    fill_roofline(row, ceilings)
    assert row.achieved_flops_s == pytest.approx(5e8) and row.achieved_bytes_s == \
        pytest.approx(5e8)
    assert row.compute_share is None and row.bandwidth_share is None
    assert row.bound == NO_CEILING and row.roofline_ms is None


def test_a_precision_without_a_measured_ceiling_has_no_compute_share():
    row = _row(precision="fp16")  # the CPU measured fp32 and bf16 only
    fill_roofline(row, CEILINGS)
    assert row.compute_share is None and row.bound == NO_CEILING
    assert row.bandwidth_share == pytest.approx(5e8 / 1e9)


@pytest.mark.parametrize("fields", [{"latency_ms_p50": None}, {"status": "oom"}])
def test_untimed_and_failed_rows_are_left_alone(fields):
    row = _row(**fields)
    fill_roofline(row, CEILINGS)
    assert row.bound == "" and row.achieved_flops_s is None and row.roofline_ms is None


def test_one_warning_when_timed_rows_have_no_measured_ceilings():
    timed, untimed = [_row()], [_row(latency_ms_p50=None)]
    failed = {"source": "none", "reason": "RuntimeError: boom"}
    warning = ceilings_warning(failed, timed)
    assert "RuntimeError: boom" in warning and "no ceiling" in warning
    assert ceilings_warning(failed, untimed) == ""
    assert ceilings_warning(CEILINGS, timed) == ""


def test_rows_faster_than_their_lower_bound_are_flagged_not_believed():
    # 1e6 B x 2 at 1e9 B/s = 2 ms lower bound: 4 ms is ratio 2, 1 ms ratio 0.5
    rows = [_row(name="slow"), _row(name="fast", latency_ms_p50=1.0)]
    for row in rows:
        fill_roofline(row, CEILINGS)
    assert [r.roofline_ratio for r in rows] == pytest.approx([2.0, 0.5])
    warning = below_roofline_warning(rows)
    assert warning.startswith("1 timed row(s) ran faster") and "0.50, fast" in warning
    assert below_roofline_warning(rows[:1]) == ""
