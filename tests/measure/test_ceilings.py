"""The machine's ceilings: each kernel's count of work, rates from (fake and real) clocks, the
GEMM's size, the shape other modules read, vendor specs beside them, `gfbench ceilings`."""

import itertools
import json
import sys

import numpy as np
import pytest
import torch

from gfbench import cli
from gfbench.hardware import KNOWN_DEVICES
from gfbench.measure import ceilings
from gfbench.measure.ceilings import (
    copy_bytes,
    gemm_macs,
    grow_gemm_size,
    kind_for_name,
    measure_ceilings,
    rate_spread,
    skipped_precisions,
    spec_json,
    triad_bytes,
)
from gfbench.measure.timing import WallClock

SHAPE = {"source", "device", "device_name", "threads", "matmul_flops_s", "bandwidth_bytes_s",
         "bandwidth_used", "skipped", "sizes"}


class FixedClock(WallClock):
    """Every timed call takes ``ms`` (the calls still run)."""

    def __init__(self, ms: float):
        self.ms = ms

    def time_calls(self, step, repeat, before):
        for _ in range(repeat):
            before()
            step()
        return [self.ms] * repeat


def _ordered(spread: dict) -> bool:
    return 0 < spread["p10"] <= spread["p50"] <= spread["p90"]


def test_each_kernel_counts_its_work_as_stream_and_the_flop_convention_do():
    n = 5
    assert gemm_macs(n) == sum(1 for _ in itertools.product(range(n), repeat=3))  # i, j, k
    a = torch.zeros(10)
    assert copy_bytes(10, a.element_size()) == 2 * a.nbytes  # b read, a written
    assert triad_bytes(10, a.element_size()) == 3 * a.nbytes  # b, c read, a written
    assert triad_bytes(7, 2) == 42 and copy_bytes(7, 8) == 112


def test_rates_are_work_over_each_call_in_percentiles_slow_end_first():
    spread = rate_spread(1e9, [10.0, 20.0, 40.0])  # rates 1e11, 5e10, 2.5e10 per second
    expected = np.percentile([1e11, 5e10, 2.5e10], [10, 50, 90])
    assert [spread[q] for q in ("p10", "p50", "p90")] == pytest.approx(list(expected))
    assert spread["p50"] == pytest.approx(5e10) and _ordered(spread)
    with pytest.raises(ValueError):
        rate_spread(1.0, [1.0, 0.0])


def test_gemm_sizes_grow_by_half_in_multiples_of_128_within_bounds():
    assert grow_gemm_size(256, (256, 8192)) == 384
    assert grow_gemm_size(384, (256, 8192)) == 640  # 576 rounded up to 5 x 128
    assert grow_gemm_size(8000, (256, 8192)) == 8192
    assert all(grow_gemm_size(n, (256, 16384)) % 128 == 0 for n in range(256, 9000, 77))


class CubicClock(WallClock):
    """A fake device doing ``rate`` MAC/s: a GEMM of size n takes n^3 / rate; ``slow_first``
    makes the first timed call of each size 1 s (another process took the core)."""

    def __init__(self, rate: float, sizes: list, slow_first: bool = False):
        self.rate, self.sizes, self.slow_first = rate, sizes, slow_first

    def time_calls(self, step, repeat, before):
        step()
        times = [self.sizes[-1] ** 3 / self.rate * 1000] * repeat
        return [1000.0, *times[1:]] if self.slow_first else times


def test_the_gemm_grows_until_its_rate_settles_with_a_call_of_20_to_100_ms():
    def constant_rate(n):  # 1e9 MAC/s at every size
        return n**3 / 1e9

    def woken_threads(n):  # 30 ms per call to wake the threads, then 4e10 MAC/s
        return 0.03 + n**3 / 4e10

    def fast(n):  # a GPU: every size under 20 ms
        return n**3 / 1e15

    # by hand: 256 -> 16.8 ms (short), 384 -> 56.6 ms at the same rate: settled
    assert ceilings.choose_gemm_size(constant_rate, (256, 8192)) == 384
    # 256, 384, 640, 1024 each gain > 10% in rate (0.55, 1.8, 7.2, 18.9 GMAC/s); 1536 would
    # take 114 ms > 100 ms: the size before
    assert ceilings.choose_gemm_size(woken_threads, (256, 8192)) == 1024
    assert ceilings.choose_gemm_size(fast, (256, 16384)) == 16384  # the cap
    assert ceilings.choose_gemm_size(lambda n: 5.0, (256, 8192)) == 256  # the first is slow


@pytest.mark.parametrize("slow_first", [False, True], ids=["quiet", "one slow call"])
def test_each_size_is_timed_by_its_fastest_call(monkeypatch, slow_first):
    sizes: list[int] = []
    make = ceilings._gemm_step
    monkeypatch.setattr(ceilings, "_gemm_step",
                        lambda n, dtype, device: sizes.append(n) or make(8, dtype, device))
    n = ceilings._gemm_size(torch.float32, torch.device("cpu"),
                            CubicClock(1e9, sizes, slow_first))
    # by hand at 1e9 MAC/s: 256^3 -> 16.8 ms, 384^3 -> 56.6 ms: the first at >= 20 ms is 384
    assert sizes == [256, 384] and n == 384


def test_the_measurement_reports_each_kernel_from_the_clock(monkeypatch):
    monkeypatch.setattr(ceilings, "_cpu_flags", lambda: "fpu avx512_bf16")
    result = measure_ceilings("cpu", repeat=3, warmup_s=0.0, gemm_n=64, elements=1024,
                              clock=FixedClock(2.0)).as_json()
    assert set(result) == SHAPE and result["source"] == "measured"
    assert result["device"] == "cpu" and result["threads"] == torch.get_num_threads()
    assert set(result["matmul_flops_s"]) == {"fp32", "bf16"}
    assert result["matmul_flops_s"]["fp32"]["p50"] == pytest.approx(64**3 / 0.002)
    assert result["bandwidth_bytes_s"]["copy"]["p50"] == pytest.approx(2 * 1024 * 4 / 0.002)
    assert result["bandwidth_bytes_s"]["triad"]["p90"] == pytest.approx(3 * 1024 * 4 / 0.002)
    assert result["bandwidth_used"] == "triad" and result["sizes"]["gemm_n_fp32"] == 64
    json.dumps(result)  # what a results file's provenance holds


def test_a_cpu_without_bf16_instructions_skips_bf16_and_says_why(monkeypatch):
    assert "bf16" in skipped_precisions("cpu", "fpu sse avx2")
    assert skipped_precisions("cpu", "fpu avx512_bf16") == {}
    assert skipped_precisions("cpu", "fp asimd bf16") == {}  # Arm's Features line
    assert skipped_precisions("cuda", "") == {}
    monkeypatch.setattr(ceilings, "_cpu_flags", lambda: "fpu avx2")
    result = measure_ceilings("cpu", repeat=2, warmup_s=0.0, gemm_n=32, elements=256,
                              clock=FixedClock(1.0))
    assert set(result.matmul_flops_s) == {"fp32"} and "emulated" in result.skipped["bf16"]


def _measured_on(device: str) -> dict:
    return measure_ceilings(device, repeat=3, warmup_s=0.0, gemm_n=128,
                            elements=1 << 16).as_json()


def test_a_real_cpu_measurement_has_ordered_positive_spreads():
    result = _measured_on("cpu")
    for spread in [*result["matmul_flops_s"].values(), *result["bandwidth_bytes_s"].values()]:
        assert _ordered(spread), spread


def test_the_cuda_path_runs_the_same_code_with_cuda_events():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device here: the CUDA path (CUDA events; fp32 without TF32, tf32, "
                    "bf16, fp16) is the CPU test's code with another clock and dtypes")
    result = _measured_on("cuda:0")
    assert set(result["matmul_flops_s"]) == {"fp32", "tf32", "bf16", "fp16"}
    assert result["threads"] is None and result["device"] == "cuda:0"
    for spread in [*result["matmul_flops_s"].values(), *result["bandwidth_bytes_s"].values()]:
        assert _ordered(spread), spread
    assert torch.backends.cuda.matmul.allow_tf32 is False  # restored after the tf32 GEMM


@pytest.mark.parametrize(("name", "kind"), [
    ("NVIDIA H100 80GB HBM3", "h100-sxm"), ("NVIDIA H100 PCIe", "h100-pcie"),
    ("NVIDIA H100 NVL", None), ("NVIDIA H200", "h200"), ("NVIDIA H200 NVL", None),
    ("NVIDIA A100-SXM4-80GB", "a100-80gb"), ("NVIDIA A100-SXM4-40GB", "a100-40gb"),
    ("NVIDIA A100 80GB PCIe", None), ("NVIDIA L4", "l4"), ("NVIDIA GeForce RTX 4090", "rtx-4090"),
    ("NVIDIA GeForce RTX 4090 D", None), ("Tesla T4", None)])
def test_a_device_name_matches_a_kind_only_when_unambiguous(name, kind):
    found = kind_for_name(name)
    assert (found.name if found else None) == kind


def test_a_spec_is_labelled_and_in_multiply_adds():
    spec = spec_json(KNOWN_DEVICES["h100-sxm"])
    assert spec["source"] == "spec" and spec["kind"] == "h100-sxm"
    assert spec["matmul_flops_s"]["bf16"] == pytest.approx(989.5e12 / 2)  # FMA = 2 vendor FLOPs
    assert spec["bandwidth_bytes_s"] == pytest.approx(3.35e12)


def _cli(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["gfbench", "ceilings", *args])
    with pytest.raises(SystemExit) as info:
        cli.main()
    return info.value.code, capsys.readouterr()


def test_ceilings_json_on_the_cpu_prints_the_shape(monkeypatch, capsys):
    monkeypatch.setitem(ceilings.GEMM_N_RANGE, "cpu", (128, 256))  # a quick test
    monkeypatch.setattr(ceilings, "_cache_or_none", lambda device: 1 << 14)
    threads = torch.get_num_threads()
    try:
        code, captured = _cli(monkeypatch, capsys, "--device", "cpu", "--json", "--repeat", "3",
                              "--threads", "1")
    finally:
        torch.set_num_threads(threads)
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert set(result) == SHAPE and result["threads"] == 1 and result["device"] == "cpu"
    assert result["sizes"]["stream_elements"] == 4 * (1 << 14) // 4  # 4x the cache, fp32
    for spread in [*result["matmul_flops_s"].values(), *result["bandwidth_bytes_s"].values()]:
        assert set(spread) == {"p10", "p50", "p90"} and _ordered(spread)


def test_spec_needs_no_device(monkeypatch, capsys):
    def refuse(*args, **kwargs):
        raise AssertionError("--spec must not measure")

    monkeypatch.setattr(ceilings, "measure_ceilings", refuse)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, captured = _cli(monkeypatch, capsys, "--spec", "A100-80GB", "--json")
    specs = json.loads(captured.out)["specs"]
    assert code == 0
    assert [s["kind"] for s in specs] == ["a100-80gb"]
    assert specs[0]["matmul_flops_s"]["tf32"] == pytest.approx(156e12 / 2)
    code, captured = _cli(monkeypatch, capsys, "--spec", "all")
    out = captured.out
    assert code == 0 and "not measured" in out and all(kind in out for kind in KNOWN_DEVICES)


@pytest.mark.parametrize(("args", "says"), [
    (["--spec", "h100"], "--spec 'h100' is not a known device kind"),
    (["--repeat", "0"], "--repeat 0 must be >= 1"),
    (["--threads", "0"], "--threads 0 must be >= 1"),
    (["--device", "tpu"], "--device 'tpu' is not one of")])
def test_a_bad_value_is_one_line_and_exit_1(monkeypatch, capsys, args, says):
    code, captured = _cli(monkeypatch, capsys, *args)
    err = captured.err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and says in err, err


def test_cuda_without_cuda_is_one_line(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, captured = _cli(monkeypatch, capsys, "--device", "cuda")
    assert code == 1 and captured.err.strip().endswith("no CUDA device is available here "
                                                       "(use cpu)")


@pytest.mark.parametrize(("load", "warned"), [(1e3, True), (0.0, False)])
def test_a_busy_machine_is_named_under_the_table(monkeypatch, load, warned):
    from gfbench.measure import quality

    monkeypatch.setattr(quality, "load_average", lambda: [load, load, load])
    monkeypatch.setattr(ceilings, "measure_ceilings", lambda device, repeat: ceilings.Ceilings(
        "cpu", "cpu: test", 2, {"fp32": {"p10": 1.0, "p50": 2.0, "p90": 3.0}}, {}))
    report = ceilings.run_ceilings(ceilings.CeilingsRequest(device="cpu"))
    assert bool(report.warnings) == warned
    assert all("busy machine" in w and "1000.00" in w for w in report.warnings)
    assert "warnings" not in report.as_json()  # the JSON keeps the ceilings' shape
