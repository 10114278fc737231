"""The machine's ceilings, measured: sustained matrix-multiply throughput per precision and
memory bandwidth, each with its spread, for the roofline of every timed row.

A roofline (Williams, Waterman & Patterson, "Roofline: an insightful visual performance model
for multicore architectures", CACM 52(4), 2009) bounds a kernel by min(peak compute,
arithmetic intensity x bandwidth). Its ceilings are measured here the way the Empirical
Roofline Toolkit (LBNL, https://crd.lbl.gov/divisions/amcr/computer-science-amcr/par/research/
roofline/software/ert/) does it: by timing micro-kernels on the device, never by trusting a
datasheet. A vendor spec (gfbench.hardware) is shown beside a measurement, labelled "spec".

* Compute: one square GEMM ``torch.mm`` per precision, n x n x n = n^3 multiply-adds (the FLOP
  convention). Larger GEMMs run closer to the peak (a call's fixed costs, such as waking the
  threads, weigh less), so n grows from 256 by 1.5x (a multiple of 128), each size timed by the
  fastest of 3 calls after a first that touches fresh memory, and stops at the first size whose
  call takes at least ``GEMM_MIN_S`` (20 ms) and whose rate gains less than ``GEMM_GAIN``
  (10%) on the size before: the rate has settled. A size whose call would pass
  ``GEMM_MAX_S`` (100 ms) is not taken (the one before is), nor one past ``GEMM_N_RANGE``'s cap
  (8192 on the CPU; 16384 on CUDA, 3 GiB in fp32, where a tensor-core GEMM may take under
  20 ms, still far above the resolution of CUDA events). On CUDA fp32 runs with TF32 off
  and "tf32" with it on; on the CPU bf16 runs only where the CPU has bf16 instructions
  (avx512_bf16 / amx_bf16, Arm's bf16), else it would time an emulation.
* Bandwidth: STREAM's (McCalpin, https://www.cs.virginia.edu/stream/) copy ``a = b`` (2 arrays
  moved) and triad ``a = b + s*c`` (3 arrays; ``torch.add(b, c, alpha=s, out=a)``, one
  kernel), counted as STREAM counts them: bytes read plus bytes written, write-allocate
  traffic not included. Each fp32 array is at least ``STREAM_FACTOR`` (4, STREAM's rule) times
  the last-level cache (L2 on CUDA, the largest cache in /sys on the CPU; 256 MiB where it is
  unknown), so the cache holds almost none of it.
* The roofline uses the triad: a counted op reads its inputs and writes its output (most read
  two and write one, as the triad does), and the triad is the figure STREAM and most roofline
  papers quote. Copy is reported beside it.

Every kernel follows the timing protocol (gfbench.measure.timing): warm-up in calls and time,
then ``repeat`` timed calls on the device's clock (CUDA events on a GPU); each call's rate is
work / time, and the rates' 10th/50th/90th percentiles are reported (the same quantiles as a
latency). Imports torch: the CLI and the sweep import it only when they measure.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gfbench.errors import GfbenchError
from gfbench.hardware import KNOWN_DEVICES, DeviceKind
from gfbench.measure.timing import (
    WallClock,
    cache_bytes,
    clock_for,
    set_threads,
    summarize,
    warm_up,
)

GEMM_MIN_S = 0.02  # one GEMM call at least: long against the clock, short for a quick run
GEMM_MAX_S = 0.1  # one GEMM call at most (the size before is taken)
GEMM_GAIN = 0.1  # a rate gaining less than this on the size before has settled
GEMM_GROWTH = 1.5  # sizes tried grow by it (time by 3.4)
GEMM_N_RANGE = {"cpu": (256, 8192), "cuda": (256, 16384)}  # 16384 fp32: 3 GiB on a GPU
PROBE_CALLS = 3  # calls timed per size tried (their fastest decides)
GEMM_MULTIPLE = 128  # n rounded to it: a whole number of every BLAS tile
STREAM_FACTOR = 4  # STREAM: each array at least 4x the last-level cache
FALLBACK_ARRAY_BYTES = 256 * 2**20  # per array where the cache size is unknown
DEFAULT_REPEAT = 10  # timed calls per kernel: about 3 s for the whole measurement on 2 cores
QUICK_WARMUP_S = {"cpu": 0.1, "cuda": 0.2}  # per kernel (the GEMM sizing calls warm up too)
TRIAD_SCALAR = 3.0
BANDWIDTH_USED = "triad"
MATMUL_DTYPES = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16,
                 "fp16": torch.float16}
DEVICE_PRECISIONS = {"cpu": ("fp32", "bf16"), "cuda": ("fp32", "tf32", "bf16", "fp16")}
_CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")  # x86 flags; Arm's "Features: bf16"

Step = Callable[[], None]


@dataclass
class Ceilings:
    """Measured ceilings of one device; rates as {"p10", "p50", "p90"} per kernel."""

    device: str
    device_name: str
    threads: int | None  # CPU threads torch used; None on CUDA
    matmul_flops_s: dict[str, dict[str, float]]  # multiply-adds per second, per precision
    bandwidth_bytes_s: dict[str, dict[str, float]]  # copy and triad, bytes per second
    bandwidth_used: str = BANDWIDTH_USED
    skipped: dict[str, str] = field(default_factory=dict)  # precision -> why not measured
    sizes: dict[str, int] = field(default_factory=dict)  # GEMM n per precision, array elements

    def as_json(self) -> dict[str, Any]:
        """The shape results files and other modules read (provenance.extra["ceilings"])."""
        return {"source": "measured", "device": self.device, "device_name": self.device_name,
                "threads": self.threads, "matmul_flops_s": self.matmul_flops_s,
                "bandwidth_bytes_s": self.bandwidth_bytes_s,
                "bandwidth_used": self.bandwidth_used, "skipped": self.skipped,
                "sizes": self.sizes}


def no_ceilings(reason: str) -> dict[str, Any]:
    """What a run records when its ceilings could not be measured: the reason, no number."""
    return {"source": "none", "reason": reason}


# --- the arithmetic of each kernel (independent of any clock) ----------------------------------


def gemm_macs(n: int) -> int:
    """Multiply-adds of an n x n by n x n product: n^3 (the FLOP convention)."""
    return n**3


def copy_bytes(elements: int, itemsize: int) -> int:
    """Bytes a copy moves: each element read once and written once (STREAM's count)."""
    return 2 * elements * itemsize


def triad_bytes(elements: int, itemsize: int) -> int:
    """Bytes a triad a = b + s*c moves: two arrays read, one written (STREAM's count)."""
    return 3 * elements * itemsize


def rate_spread(work: float, times_ms: Sequence[float]) -> dict[str, float]:
    """p10/p50/p90 of work per second over the timed calls (p10 is the slow end)."""
    if not times_ms or min(times_ms) <= 0:
        raise ValueError(f"every timed call must take a positive time, got {list(times_ms)}")
    p10, p50, p90 = summarize([work / (t / 1000.0) for t in times_ms])
    return {"p10": p10, "p50": p50, "p90": p90}


def grow_gemm_size(n: int, bounds: tuple[int, int]) -> int:
    """The next GEMM size to try: 1.5x n (time x 3.4) rounded up to a multiple of 128,
    within ``bounds``."""
    grown = -(-int(n * GEMM_GROWTH) // GEMM_MULTIPLE) * GEMM_MULTIPLE
    return min(max(grown, bounds[0]), bounds[1])


def choose_gemm_size(seconds_of: Callable[[int], float],
                     bounds: tuple[int, int] = GEMM_N_RANGE["cpu"]) -> int:
    """The GEMM size the measurement times, given the time of one call of each size tried
    (module docstring: grow until the call is long enough and the rate has settled)."""
    n, before, rate_before = bounds[0], None, 0.0
    while True:
        seconds = seconds_of(n)
        if before is not None and seconds > GEMM_MAX_S:
            return before
        rate = gemm_macs(n) / max(seconds, 1e-12)
        settled = seconds >= GEMM_MIN_S and rate < rate_before * (1 + GEMM_GAIN)
        if settled or n >= bounds[1]:
            return n
        before, rate_before, n = n, rate, grow_gemm_size(n, bounds)


def stream_elements(cache: int | None, itemsize: int = 4) -> int:
    """Elements of each bandwidth array: STREAM_FACTOR x the cache, or the fallback size."""
    nbytes = STREAM_FACTOR * cache if cache else FALLBACK_ARRAY_BYTES
    return max(1, nbytes // itemsize)


def cpu_runs_bf16(flags: str) -> bool:
    """Whether a /proc/cpuinfo flags (or Arm Features) line has bf16 matrix instructions."""
    return any(flag in flags.split() for flag in _CPU_BF16_FLAGS)


def _cpu_flags() -> str:
    """The flags line of /proc/cpuinfo ('' where there is none)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line.split(":", 1)[1]
    return ""


def skipped_precisions(device_type: str, flags: str) -> dict[str, str]:
    """The precisions a device does not time, each with why."""
    if device_type == "cpu" and not cpu_runs_bf16(flags):
        return {"bf16": "this CPU lists no bf16 instructions (avx512_bf16, amx_bf16 or bf16 in "
                        "/proc/cpuinfo): its bf16 GEMM is emulated, not a ceiling"}
    return {}


# --- vendor specs beside a measurement ---------------------------------------------------------

_NAME_PATTERNS = (  # (kind, pattern of torch.cuda.get_device_name); unmatched names get none
    ("h100-pcie", re.compile(r"H100.*PCIE")),
    ("h100-sxm", re.compile(r"H100 (?:80GB HBM3|SXM)")),
    ("h200", re.compile(r"H200(?!.*NVL)")),
    ("a100-80gb", re.compile(r"A100-SXM4-80GB")),
    ("a100-40gb", re.compile(r"A100-SXM4-40GB")),
    ("l4", re.compile(r"\bL4$")),
    ("rtx-4090", re.compile(r"RTX 4090$")),
)


def kind_for_name(device_name: str) -> DeviceKind | None:
    """The known kind a CUDA device name unambiguously is (None for an NVL, a PCIe A100...)."""
    name = device_name.upper().strip()
    matches = [kind for kind, pattern in _NAME_PATTERNS if pattern.search(name)]
    return KNOWN_DEVICES[matches[0]] if len(matches) == 1 else None


def spec_json(kind: DeviceKind) -> dict[str, Any]:
    """A vendor spec in the ceilings' units (MAC/s, bytes/s), labelled as a spec."""
    peaks = {dtype: kind.peak_macs_s(dtype) for dtype in kind.vendor_tflops}
    return {"source": "spec", "kind": kind.name, "label": kind.label,
            "matmul_flops_s": peaks, "bandwidth_bytes_s": kind.bandwidth_bytes_s,
            "reference": kind.source}


# --- the measurement ---------------------------------------------------------------------------


@contextlib.contextmanager
def _tf32(enabled: bool) -> Iterator[None]:
    """TF32 matmuls on or off for the block, restored after."""
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


def _time_rates(step: Step, work: float, clock: WallClock, repeat: int,
                warmup_s: float) -> dict[str, float]:
    """Warm up (at least one call and ``warmup_s``), then the rates of ``repeat`` calls."""
    warm_up(step, clock, 1, warmup_s)
    clock.synchronize()
    return rate_spread(work, clock.time_calls(step, repeat, lambda: None))


def _gemm_step(n: int, dtype: torch.dtype, device: torch.device) -> Step:
    """One n x n x n product into a preallocated output."""
    a, b = (torch.rand(n, n, device=device).to(dtype) for _ in range(2))
    out = torch.empty(n, n, dtype=dtype, device=device)

    def step() -> None:
        torch.mm(a, b, out=out)

    return step


def _gemm_size(dtype: torch.dtype, device: torch.device, clock: WallClock) -> int:
    """choose_gemm_size on this device: each size's time is the fastest of PROBE_CALLS calls
    after a first (one call slowed by another process does not decide)."""

    def seconds_of(n: int) -> float:
        step = _gemm_step(n, dtype, device)
        step()  # the first call touches fresh memory and loads kernels: not the size's time
        clock.synchronize()
        return min(clock.time_calls(step, PROBE_CALLS, lambda: None)) / 1000.0

    return choose_gemm_size(seconds_of, GEMM_N_RANGE["cuda" if device.type == "cuda" else "cpu"])


def _bandwidth(device: torch.device, elements: int, clock: WallClock, repeat: int,
               warmup_s: float) -> dict[str, dict[str, float]]:
    """Copy and triad rates over fp32 arrays of ``elements`` each."""
    a = torch.zeros(elements, device=device)
    b, c = torch.ones(elements, device=device), torch.full((elements,), 2.0, device=device)

    def copy() -> None:
        a.copy_(b)

    def triad() -> None:
        torch.add(b, c, alpha=TRIAD_SCALAR, out=a)

    return {"copy": _time_rates(copy, copy_bytes(elements, 4), clock, repeat, warmup_s),
            "triad": _time_rates(triad, triad_bytes(elements, 4), clock, repeat, warmup_s)}


def _cache_or_none(device: torch.device) -> int | None:
    """The last-level cache in bytes, None where the system does not say."""
    try:
        return cache_bytes(device)
    except GfbenchError:
        return None


def device_name(device: torch.device) -> str:
    """The device's name as provenance writes it."""
    from gfbench.results.schema import _cpu_model

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "cpu: " + _cpu_model()


def measure_ceilings(device: str = "cpu", repeat: int = DEFAULT_REPEAT,
                     warmup_s: float | None = None, gemm_n: int | None = None,
                     elements: int | None = None,
                     clock: WallClock | None = None) -> Ceilings:
    """Measure this device's ceilings (module docstring). ``gemm_n`` and ``elements`` fix the
    sizes (tests), ``clock`` replaces the device's clock; threads are torch's current ones."""
    if repeat < 1:
        raise GfbenchError(f"--repeat {repeat} must be >= 1")
    dev = torch.device(device)
    clock = clock or clock_for(dev)
    seconds = QUICK_WARMUP_S.get(dev.type, 0.0) if warmup_s is None else warmup_s
    skipped = skipped_precisions(dev.type, _cpu_flags() if dev.type == "cpu" else "")
    matmul, sizes = {}, {}
    for precision in DEVICE_PRECISIONS["cuda" if dev.type == "cuda" else "cpu"]:
        if precision in skipped:
            continue
        dtype = MATMUL_DTYPES[precision]
        with _tf32(precision == "tf32") if dev.type == "cuda" else contextlib.nullcontext():
            n = gemm_n or _gemm_size(dtype, dev, clock)
            matmul[precision] = _time_rates(_gemm_step(n, dtype, dev), gemm_macs(n), clock,
                                            repeat, seconds)
        sizes[f"gemm_n_{precision}"] = n
    count = elements or stream_elements(_cache_or_none(dev))
    sizes["stream_elements"] = count
    bandwidth = _bandwidth(dev, count, clock, repeat, seconds)
    return Ceilings(str(dev) if dev.type == "cpu" else f"cuda:{dev.index or 0}",
                    device_name(dev), torch.get_num_threads() if dev.type == "cpu" else None,
                    matmul, bandwidth, skipped=skipped, sizes=sizes)


# --- `gfbench ceilings` ------------------------------------------------------------------------


@dataclass(frozen=True)
class CeilingsRequest:
    """What `gfbench ceilings` was asked: a device to measure, or vendor specs only."""

    device: str = "auto"
    threads: int | None = None
    repeat: int = DEFAULT_REPEAT
    spec: str | None = None  # a known kind's name or "all": print specs, measure nothing


@dataclass
class CeilingsReport:
    """Measured ceilings (with the matching vendor spec where one matches), or specs alone."""

    ceilings: Ceilings | None = None
    specs: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # a busy machine (tables only)

    def as_json(self) -> dict[str, Any]:
        """The ceilings' own shape (plus "spec" where a spec matched), or {"specs": [...]}."""
        if self.ceilings is None:
            return {"specs": self.specs}
        measured = self.ceilings.as_json()
        return {**measured, "spec": self.specs[0]} if self.specs else measured


def run_ceilings(request: CeilingsRequest) -> CeilingsReport:
    """Vendor specs (--spec), or this machine's ceilings measured on the resolved device."""
    from gfbench.device import use_device
    from gfbench.measure.quality import available_cores, busy_warning, load_average

    if request.spec is not None:
        kinds = KNOWN_DEVICES.values() if request.spec == "all" else [KNOWN_DEVICES[request.spec]]
        return CeilingsReport(specs=[spec_json(kind) for kind in kinds])
    if request.repeat < 1:
        raise GfbenchError(f"--repeat {request.repeat} must be >= 1")
    if request.threads is not None:
        set_threads(request.threads)
    device = use_device(request.device)
    load_at_start = load_average()
    ceilings = measure_ceilings(str(device), request.repeat)
    kind = kind_for_name(ceilings.device_name) if device.type == "cuda" else None
    busy = busy_warning([load_at_start, load_average()], available_cores(), ceilings.threads)
    return CeilingsReport(ceilings, [spec_json(kind)] if kind else [], [busy] if busy else [])


def measured(ceilings: dict[str, Any] | None) -> bool:
    """Whether a recorded ceilings entry holds measurements (not a reason for none)."""
    return ceilings is not None and ceilings.get("source") == "measured"

