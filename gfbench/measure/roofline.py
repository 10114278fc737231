"""The roofline of a timed row: how close its median latency comes to the lower bound that the
machine's measured ceilings put on it (Williams, Waterman & Patterson, "Roofline", CACM 2009).

One call of batch B must at least do its FLOPs at the peak and move its bytes at the
bandwidth, so it takes at least max(flops*B / peak, bytes*B / bandwidth): that maximum is
``roofline_ms``, the ceiling it hits is ``bound`` ("compute" when the FLOPs take longer,
"memory" otherwise) and ``roofline_ratio`` = median latency / roofline_ms (1: on the roofline).
The peak is the matmul ceiling of the row's precision (fp32 on CUDA with TF32 on: the tf32
ceiling, since that is what its matmuls ran at); the bandwidth is the ceilings'
``bandwidth_used`` (the triad). Each ceiling is the median of its measured rates, the same
statistic as the row's latency. Only measured ceilings are used, never a vendor spec.

A row without ``bytes`` (files older than the traffic count) gets the compute side only
(achieved FLOP/s and its share of the peak), ``bound`` "no ceiling" and no lower bound; a run
without measured ceilings gets achieved rates only. Pure functions: no torch, nothing printed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NO_CEILING = "no ceiling"


@dataclass(frozen=True)
class Roofline:
    """The roofline fields of one row (None where an input is missing)."""

    achieved_flops_s: float | None = None
    achieved_bytes_s: float | None = None
    compute_share: float | None = None
    bandwidth_share: float | None = None
    bound: str = ""
    roofline_ms: float | None = None
    roofline_ratio: float | None = None


def ceiling_key(precision: str, device: str, tf32: bool) -> str:
    """The matmul ceiling a row's precision ran at: 'tf32' for fp32 on CUDA with TF32 on."""
    if precision == "fp32" and device.startswith("cuda") and tf32:
        return "tf32"
    return precision


def _p50(spreads: Any, key: str) -> float | None:
    """The median rate of ``key`` in a {key: {"p50": x}} mapping, None if absent or not > 0."""
    value = (spreads or {}).get(key, {}).get("p50")
    return float(value) if value and value > 0 else None


def matmul_peak(ceilings: dict[str, Any] | None, key: str) -> float | None:
    """The measured matmul ceiling (MAC/s, median) of a precision key, None where unmeasured."""
    if not ceilings or ceilings.get("source") != "measured":
        return None
    return _p50(ceilings.get("matmul_flops_s"), key)


def bandwidth(ceilings: dict[str, Any] | None) -> float | None:
    """The measured bandwidth (bytes/s, median) the roofline uses, None where unmeasured."""
    if not ceilings or ceilings.get("source") != "measured":
        return None
    return _p50(ceilings.get("bandwidth_bytes_s"), ceilings.get("bandwidth_used", "triad"))


def _same_device(ceilings: dict[str, Any] | None, device: str) -> bool:
    """Whether ceilings were measured on the kind of device (cpu, cuda) the row ran on."""
    if not ceilings:
        return False
    return str(ceilings.get("device", "")).split(":")[0] == device.split(":")[0]


def roofline(flops: float | None, nbytes: float | None, batch: int, latency_ms: float,
             peak: float | None, bandwidth_bytes_s: float | None) -> Roofline:
    """The roofline of one call of ``batch`` (per-image ``flops`` MACs and ``nbytes`` bytes)
    that took ``latency_ms`` at the median, against ``peak`` MAC/s and a bandwidth."""
    seconds = latency_ms / 1000.0
    work = None if flops is None else flops * batch
    moved = None if nbytes is None else nbytes * batch
    achieved = None if work is None else work / seconds
    streamed = None if moved is None else moved / seconds
    compute_share = None if achieved is None or peak is None else achieved / peak
    bandwidth_share = (None if streamed is None or bandwidth_bytes_s is None
                       else streamed / bandwidth_bytes_s)
    if work is None or moved is None or peak is None or bandwidth_bytes_s is None:
        return Roofline(achieved, streamed, compute_share, bandwidth_share, NO_CEILING)
    compute_s, memory_s = work / peak, moved / bandwidth_bytes_s
    bound_ms = max(compute_s, memory_s) * 1000.0
    return Roofline(achieved, streamed, compute_share, bandwidth_share,
                    "compute" if compute_s > memory_s else "memory", bound_ms,
                    latency_ms / bound_ms if bound_ms > 0 else None)


def fill_roofline(row: Any, ceilings: dict[str, Any] | None, tf32: bool = False) -> None:
    """Set a timed row's roofline fields from the run's ceilings (untimed or failed rows are
    left as they are; ceilings of another device type count as none). A ComplexityRow or a
    timed BreakdownRow (fp32: it has no precision field)."""
    if row.status != "ok" or row.latency_ms_p50 is None or row.latency_ms_p50 <= 0:
        return
    usable = ceilings if _same_device(ceilings, str(row.device)) else None
    precision = getattr(row, "precision", "fp32")
    result = roofline(row.flops, row.bytes, row.batch_size, row.latency_ms_p50,
                      matmul_peak(usable, ceiling_key(precision, str(row.device), tf32)),
                      bandwidth(usable))
    for name, value in vars(result).items():
        setattr(row, name, value)


def ceilings_warning(ceilings: dict[str, Any] | None, rows: list[Any]) -> str:
    """One line when a run timed rows without measured ceilings (why, where recorded), or ""."""
    if not any(r.latency_ms_p50 is not None for r in rows):
        return ""
    if ceilings is None or ceilings.get("source") == "measured":
        return ""
    return (f"no roofline: the machine's ceilings could not be measured "
            f"({ceilings.get('reason', 'no reason recorded')}); rows say bound 'no ceiling'")


def below_roofline_warning(rows: list[Any]) -> str:
    """One line when timed rows ran faster than their lower bound (ratio under 1), or "": the
    measured ceilings were then below what those kernels reached (a GEMM or triad measured on
    a busy machine, or kernels that beat a square GEMM), so a ratio is no distance to the
    hardware there, only a comparison between rows of the run."""
    below = [r for r in rows if r.roofline_ratio is not None and r.roofline_ratio < 1]
    if not below:
        return ""
    worst = min(below, key=lambda r: r.roofline_ratio)
    return (f"{len(below)} timed row(s) ran faster than the roofline's lower bound (lowest "
            f"ratio {worst.roofline_ratio:.2f}, {worst.name}): the measured ceilings are below "
            "what these kernels reached (busy machine or a GEMM they beat); read those ratios "
            "as comparisons within the run, not as a distance to the hardware")
